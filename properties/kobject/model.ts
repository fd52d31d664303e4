// The kobject release sequencing model (spec/kobject-release.md): the machine of
// machines/kobject/machine.ts at bounded thread counts, its invariants KOBJ-1…7, the shipped 3.14
// races, the seeded mutants, and the adapter that drives impl/dm-core in lockstep.

import { machineSystem } from '../../checker/compose.js';
import type { MState } from '../../checker/machine.js';
import type { Bounds, Invariant, Model, MutantInfo, ShippedDefect } from '../../checker/model.js';
import { DmCore } from '../../impl/dm-core/dm.js';
import {
  externalKobjEvents,
  kobjCode,
  kobjectEvents,
  kobjectMachine,
  type KobjBounds,
  type KobjCtx,
  type KobjEvent,
} from '../../machines/kobject/machine.js';

export type KobjState = MState<KobjCtx>;

const toBounds = (b: Bounds): KobjBounds => ({ readers: b['readers']!, getters: b['getters']!, foreign: b['foreign']!, openers: b['openers']! });

export const kobjectMutants: readonly MutantInfo[] = [
  {
    id: 'pre-be35f486-free-after-put',
    title: 'no kobject release: free_dev right after dm_sysfs_exit\'s kobject_put',
    fix: 'be35f486 dm: wait until embedded kobject is released before destroying a device',
    breaks: ['KOBJ-1'],
    killedBy: ['explore', 'lockstep'],
  },
  {
    id: 'release-in-module-text',
    title: 'dm_kobject_release in dm-mod text: a preempted release thread resumes after rmmod',
    fix: 'dm sysfs: fix a module unload race (added dm-builtin.c)',
    breaks: ['KOBJ-2'],
    killedBy: ['explore', 'lockstep'],
    // Measured over 20 fresh seeds: missed 5–9 times at 400–500 lockstep runs, never at 5000 (~0.2 s).
    runs: 5000,
  },
  {
    id: 'module-put-before-wait',
    title: 'free_dev\'s module_put moved before wait_for_completion',
    fix: 'be35f486 (ordering of dm_sysfs_exit before free_dev)',
    breaks: ['KOBJ-2'],
    killedBy: ['explore', 'lockstep'],
  },
  {
    id: 'complete-in-sysfs-exit',
    title: 'the completion signalled in dm_sysfs_exit instead of in the release',
    fix: 'be35f486',
    breaks: ['KOBJ-5', 'KOBJ-1'],
    killedBy: ['explore', 'lockstep'],
  },
  {
    id: 'unlocked-get-from-kobject',
    title: 'dm_get_from_kobject tests the flags and takes dm_get outside _minor_lock',
    fix: 'CVE-2017-18203 dm: fix race between dm_get_from_kobject() and __dm_destroy()',
    breaks: ['KOBJ-3'],
    killedBy: ['explore', 'lockstep'],
  },
  {
    id: 'get-md-after-unlock',
    title: 'dm_get_md takes its reference after dropping _minor_lock',
    fix: 'dm: fix a race condition in dm_get_md',
    breaks: ['KOBJ-3'],
    killedBy: ['explore', 'lockstep'],
  },
  {
    id: 'destroy-without-waiting-holders',
    title: '__dm_destroy proceeds without waiting for md->holders (dm_destroy_immediate with users)',
    fix: '__dm_destroy wait=true path',
    breaks: ['KOBJ-4'],
    killedBy: ['explore', 'lockstep'],
    // Measured over 20 fresh seeds: missed 5–9 times at 400–500 lockstep runs, never at 5000 (~0.2 s).
    runs: 5000,
  },
];

export const kobjectShipped: readonly ShippedDefect[] = [
  {
    id: '3.14-unlocked-get-from-kobject',
    title: 'dm_get_from_kobject races __dm_destroy: BUG_ON(DMF_FREEING) in dm_get',
    profile: 'linux-3.14',
    fix: 'CVE-2017-18203 dm: fix race between dm_get_from_kobject() and __dm_destroy()',
    breaks: ['KOBJ-3'],
    killedBy: ['explore', 'lockstep'],
    bounds: { readers: 1, getters: 0, foreign: 0, openers: 0 },
  },
  {
    id: '3.14-get-md-after-unlock',
    title: 'dm_get_md takes its reference after dropping _minor_lock',
    profile: 'linux-3.14',
    fix: 'dm: fix a race condition in dm_get_md',
    breaks: ['KOBJ-3'],
    killedBy: ['explore', 'lockstep'],
    bounds: { readers: 0, getters: 1, foreign: 0, openers: 0 },
  },
];

/** Region states in which a thread is executing dm-mod code. */
function inModuleText(s: KobjState, regions: readonly string[], releaseInModule: boolean): string[] {
  const out: string[] = [];
  s.value.forEach((v, i) => {
    const r = regions[i]!;
    const busy =
      (r === 'device' && !['absent', 'live', 'ebusy', 'freed'].includes(v)) ||
      (r === 'release' && v === 'running' && releaseInModule) ||
      (r.startsWith('reader') && !['idle', 'done'].includes(v)) ||
      (r.startsWith('getter') && !['idle', 'done'].includes(v));
    if (busy) out.push(`${r} (${v})`);
  });
  return out;
}

export const kobjectModel: Model<KobjState, KobjEvent> = {
  id: 'kobject',
  title: 'dm core: kobject release sequencing (be35f486, dm-builtin)',
  spec: 'spec/kobject-release.md',
  profiles: ['linux-3.14', 'fixed'],
  defaultProfile: 'fixed',
  bounds: {
    readers: { default: 1, min: 0, max: 3, describe: 'sysfs readers' },
    getters: { default: 1, min: 0, max: 2, describe: 'dm_get_md callers' },
    foreign: { default: 1, min: 0, max: 2, describe: 'foreign kobject holders' },
    openers: { default: 1, min: 0, max: 2, describe: 'block-device openers' },
  },
  mutants: kobjectMutants,
  shipped: kobjectShipped,
  machines: [kobjectMachine({ readers: 1, getters: 1, foreign: 1, openers: 1 }, { profile: 'fixed', mutant: null })],
  instance(bounds, variant) {
    const b = toBounds(bounds);
    const m = kobjectMachine(b, variant);
    const code = kobjCode(variant);
    const regions = m.regionNames;
    const events = kobjectEvents(b);
    const at = (s: KobjState, region: string): string => s.value[regions.indexOf(region)]!;
    const invariants: Invariant<KobjState>[] = [
      {
        spec: ['KOBJ-1'],
        name: 'no-use-after-free',
        check: ({ context: c }) => {
          if (c.oops.startsWith('UAF')) return c.oops;
          if (c.dev !== 2) return null;
          if (c.kref > 0) return `kfree(md) while ${c.kref} kobject reference(s) remain`;
          if (c.holders > 0) return `kfree(md) while md->holders = ${c.holders}`;
          if (c.active > 0) return `kfree(md) while ${c.active} sysfs show() call(s) are in flight`;
          if (code.hasRelease && c.completions === 0) return 'kfree(md) before dm_kobject_release completed';
          return null;
        },
      },
      {
        spec: ['KOBJ-2'],
        name: 'no-module-text-after-unload',
        check: (s) => {
          const c = s.context;
          if (!c.loaded) {
            const busy = inModuleText(s, regions, code.releaseInModule);
            if (busy.length) return `dm-mod is unloaded while ${busy.join(', ')} still executes its text`;
          }
          if (code.hasRelease && c.dev !== 0 && !c.devRef && c.completions === 0) return 'module_put for the device before its kobject release completed';
          return null;
        },
      },
      {
        spec: ['KOBJ-3'],
        name: 'no-get-after-freeing',
        check: ({ context: c }) => (c.oops.startsWith('BUG_ON') ? c.oops : null),
      },
      {
        spec: ['KOBJ-4'],
        name: 'sysfs-exit-after-holders-drained',
        check: (s) => (at(s, 'device') === 'drained' && s.context.holders > 0 ? `dm_sysfs_exit reached with md->holders = ${s.context.holders}` : null),
      },
      {
        spec: ['KOBJ-5'],
        name: 'complete-and-exit-once',
        check: ({ context: c }) =>
          c.completions > 1 ? `complete() ran ${c.completions} times` : c.sysfsExits > 1 ? `dm_sysfs_exit ran ${c.sysfsExits} times` : null,
      },
      {
        spec: ['KOBJ-7'],
        name: 'remove-of-open-device-is-ebusy',
        check: ({ context: c }) => (c.deleting && c.openCount > 0 ? `DMF_DELETING set while the device is open ${c.openCount} time(s)` : null),
      },
    ];
    const quiescent = (s: KobjState): boolean =>
      ['absent', 'live', 'ebusy', 'freed'].includes(at(s, 'device')) &&
      at(s, 'release') === 'idle' &&
      !s.context.relPending &&
      regions.every((r, i) => !(r.startsWith('reader') || r.startsWith('getter')) || ['idle', 'done'].includes(s.value[i]!));
    return {
      system: machineSystem(m, () => events),
      invariants,
      quiescent,
      progressSpec: ['KOBJ-6'],
      describe: (s) => {
        const c = s.context;
        const flags = [c.deleting && 'DELETING', c.freeing && 'FREEING', !c.loaded && 'dm-mod unloaded', c.oops && `OOPS ${c.oops}`].filter(Boolean).join(' ');
        const threads = regions.map((r, i) => `${r}:${s.value[i]}`).join(' ');
        return `[${threads}] kref=${c.kref} holders=${c.holders} open=${c.openCount} active=${c.active} completion=${c.completions} modref=${c.modref}${flags ? ' ' + flags : ''}`;
      },
      valueOf: (s) => s.value.join(' '),
      project: (s) => ({ value: Object.fromEntries(regions.map((r, i) => [r, s.value[i]!])), ...s.context }),
    };
  },
  impl: {
    async: true,
    isExternal: (e) => externalKobjEvents.has(e.type),
    create(variant, bounds, gate) {
      const core = new DmCore(variant, toBounds(bounds), gate);
      return {
        apply: (e) => {
          switch (e.type) {
            case 'CREATE':
              return core.create();
            case 'REMOVE':
              return core.remove();
            case 'READ_OPEN':
              return core.readOpen(e.r!);
            case 'GETMD_FIND':
            case 'GETMD_NOTFOUND':
              return core.getMd(e.g!);
            case 'OPEN':
              return core.open(e.o!);
            case 'CLOSE':
              return core.close(e.o!);
            case 'FOREIGN_GET':
              return core.foreignGet(e.f!);
            case 'FOREIGN_PUT':
              return core.foreignPut(e.f!);
            case 'RMMOD':
              return core.rmmod();
            default:
              throw new Error(`kobject impl: ${e.type} is not an external event`);
          }
        },
        project: () => core.project(),
      };
    },
  },
};

// The dm core device lifecycle around its embedded kobject, Linux 3.14.
// Follows drivers/md/dm.c (__dm_destroy, free_dev, dm_get, dm_get_md, dm_get_from_kobject,
// dm_blk_open), drivers/md/dm-ioctl.c (dev_remove), drivers/md/dm-sysfs.c (dm_sysfs_exit,
// dm_attr_show), drivers/md/dm-builtin.c (dm_kobject_release) and lib/kobject.c (kobject_put,
// kobject_cleanup with CONFIG_DEBUG_KOBJECT_RELEASE's delayed release).
// One parallel machine: a region per thread (remove, release, each reader/getter/opener/foreign
// holder) plus the device and the module, over one shared context of flags and counts.

import { defineMachine, type DmMachine, type RegionDef, type TransitionDef } from '../../checker/machine.js';
import type { Ev, Variant } from '../../checker/model.js';

export interface KobjBounds {
  readonly readers: number;
  readonly getters: number;
  readonly foreign: number;
  readonly openers: number;
}

export interface KobjCtx {
  /** 0 absent, 1 live, 2 freed (kfree done). */
  readonly dev: 0 | 1 | 2;
  readonly deleting: boolean;
  readonly freeing: boolean;
  /** The kobject's sysfs directory exists (until kobject_cleanup's kobject_del). */
  readonly sysfs: boolean;
  readonly kref: number;
  readonly holders: number;
  readonly openCount: number;
  /** sysfs active references of show() calls in flight. */
  readonly active: number;
  readonly completions: number;
  readonly sysfsExits: number;
  /** dm-mod references: the device's own (alloc_dev) plus the remove ioctl's while it runs. */
  readonly modref: number;
  /** The device still holds its own module reference (dropped by free_dev's module_put). */
  readonly devRef: boolean;
  readonly loaded: boolean;
  /** kref reached 0 and kobject_cleanup has not run yet. */
  readonly relPending: boolean;
  /** The first oops (BUG_ON, use-after-free, unloaded text); '' while the kernel is fine. */
  readonly oops: string;
}

export type KobjEvent = Ev & { readonly r?: number; readonly g?: number; readonly o?: number; readonly f?: number };

/** Which code the variant runs: the 3.14 races, and the seeded mutants of spec/kobject-release.md. */
export interface KobjCode {
  readonly lockedGetFromKobject: boolean;
  readonly lockedGetMd: boolean;
  readonly hasRelease: boolean;
  readonly completeInExit: boolean;
  readonly releaseInModule: boolean;
  readonly modulePutBeforeWait: boolean;
  readonly waitHolders: boolean;
}

export function kobjCode(v: Variant): KobjCode {
  const fixed = v.profile === 'fixed';
  const m = v.mutant;
  return {
    lockedGetFromKobject: fixed && m !== 'unlocked-get-from-kobject',
    lockedGetMd: fixed && m !== 'get-md-after-unlock',
    hasRelease: m !== 'pre-be35f486-free-after-put',
    completeInExit: m === 'complete-in-sysfs-exit',
    releaseInModule: m === 'release-in-module-text',
    modulePutBeforeWait: m === 'module-put-before-wait',
    waitHolders: m !== 'destroy-without-waiting-holders',
  };
}

export const initialKobjCtx: KobjCtx = {
  dev: 0,
  deleting: false,
  freeing: false,
  sysfs: false,
  kref: 0,
  holders: 0,
  openCount: 0,
  active: 0,
  completions: 0,
  sysfsExits: 0,
  modref: 0,
  devRef: false,
  loaded: true,
  relPending: false,
  oops: '',
};

type T = TransitionDef<KobjCtx, KobjEvent>;
type Region = RegionDef<KobjCtx, KobjEvent>;

const oops = (c: KobjCtx, what: string): KobjCtx => (c.oops ? c : { ...c, oops: what });
/** Any access to the md after kfree is a use-after-free. */
// Messages are built only when something is wrong: these run on every explored transition.
const touch = (c: KobjCtx, who: string, action?: string): KobjCtx =>
  c.dev === 2 ? oops(c, `UAF: ${action === undefined ? who : `${who} ${action}`} on freed mapped_device`) : c;
const flagsSet = (c: KobjCtx): boolean => c.deleting || c.freeing;
/** dm_get: BUG_ON(test_bit(DMF_FREEING)) then atomic_inc(holders). */
const dmGet = (c: KobjCtx, who: string): KobjCtx => {
  const t = touch(c, who, 'dm_get');
  const b = t.freeing ? oops(t, `BUG_ON(DMF_FREEING) in dm_get from ${who}`) : t;
  return { ...b, holders: b.holders + 1 };
};
const dmPut = (c: KobjCtx, who: string): KobjCtx => ({ ...touch(c, who, 'dm_put'), holders: c.holders - 1 });
/** kobject_put: the last put leaves a release pending (delayed, as DEBUG_KOBJECT_RELEASE does). */
const kobjPut = (c: KobjCtx, who: string): KobjCtx => {
  const t = touch(c, who, 'kobject_put');
  const kref = t.kref - 1;
  return { ...t, kref, relPending: t.relPending || kref === 0 };
};

/** The remove thread's steps in the variant's order (dev_remove → __dm_destroy → free_dev). */
export function removeSteps(code: KobjCode): readonly string[] {
  if (!code.hasRelease) return ['SET_FREEING', 'HOLDERS_DRAINED', 'SYSFS_PUT', 'TABLE_DESTROY', 'MODULE_PUT', 'KFREE'];
  if (code.modulePutBeforeWait) return ['SET_FREEING', 'HOLDERS_DRAINED', 'SYSFS_PUT', 'MODULE_PUT', 'WAIT_DONE', 'TABLE_DESTROY', 'KFREE'];
  return ['SET_FREEING', 'HOLDERS_DRAINED', 'SYSFS_PUT', 'WAIT_DONE', 'TABLE_DESTROY', 'MODULE_PUT', 'KFREE'];
}

/** State name after each remove step. */
export const afterStep: Readonly<Record<string, string>> = {
  REMOVE: 'deleting',
  SET_FREEING: 'freeing',
  HOLDERS_DRAINED: 'drained',
  SYSFS_PUT: 'put',
  WAIT_DONE: 'completed',
  TABLE_DESTROY: 'table_destroyed',
  MODULE_PUT: 'module_put',
  KFREE: 'freed',
};

/** The device's life: create, then dev_remove → __dm_destroy → free_dev, run by the remove thread. */
function deviceRegion(code: KobjCode): Region {
  const step: Record<string, T> = {
    SET_FREEING: { update: (c) => ({ ...c, freeing: true }) },
    HOLDERS_DRAINED: code.waitHolders ? { guard: function holdersZero(c) { return c.holders === 0; } } : { label: 'no wait' },
    SYSFS_PUT: {
      update: (c) => {
        const p = kobjPut({ ...c, sysfsExits: c.sysfsExits + 1 }, 'dm_sysfs_exit');
        return code.completeInExit ? { ...p, completions: p.completions + 1 } : p;
      },
    },
    WAIT_DONE: { guard: function completionDone(c) { return c.completions > 0; } },
    TABLE_DESTROY: {},
    MODULE_PUT: { update: (c) => ({ ...c, modref: c.modref - 1, devRef: false }) },
    // The ioctl returns with kfree: its open /dev/mapper/control stops pinning dm-mod.
    KFREE: { update: (c) => ({ ...c, dev: 2, modref: c.modref - 1 }) },
  };
  const start: T[] = [
    { target: 'deleting', guard: function notOpen(c) { return c.dev === 1 && !c.deleting && c.openCount === 0; }, update: (c) => ({ ...c, deleting: true, modref: c.modref + 1 }) },
    { target: 'ebusy', guard: function open(c) { return c.dev === 1 && c.openCount > 0; } },
  ];
  const create: T = {
    target: 'live',
    guard: function moduleLoaded(c) { return c.loaded; },
    update: (c) => ({ ...c, dev: 1, kref: 1, sysfs: true, modref: c.modref + 1, devRef: true }),
  };
  const states: Record<string, { on: Record<string, T | T[]> }> = {
    absent: { on: { CREATE: create } },
    live: { on: { REMOVE: start } },
    ebusy: { on: { REMOVE: start } },
  };
  let from = 'deleting';
  for (const s of removeSteps(code)) {
    const to = afterStep[s]!;
    states[from] = { on: { [s]: { ...step[s]!, target: to } } };
    from = to;
  }
  states[from] ??= { on: {} };
  return { initial: 'absent', states };
}

function releaseRegion(code: KobjCode): Region {
  return {
    initial: 'idle',
    states: {
      idle: {
        on: {
          RELEASE_RUN: {
            target: 'running',
            // kobject_cleanup → kobject_del drains in-flight show() calls first.
            guard: function drained(c) { return c.relPending && c.active === 0; },
            update: (c) => {
              const t = touch({ ...c, relPending: false, sysfs: false }, 'kobject_cleanup');
              return code.hasRelease ? { ...t, completions: t.completions + 1 } : t;
            },
          },
        },
      },
      running: {
        on: {
          RELEASE_RETURN: {
            target: 'idle',
            // Returning from a release function in module text after rmmod jumps into freed code.
            update: (c) => (code.releaseInModule && !c.loaded ? oops(c, 'executing unloaded dm-mod text: dm_kobject_release returns') : c),
          },
        },
      },
    },
  };
}

// Each thread's events carry its index (r, g, o, f); a thread's transitions match only its own.

function readerRegion(i: number, code: KobjCode): Region {
  const me = { r: i };
  const who = `sysfs reader ${i}`;
  const einval: T = { target: 'einval', match: me, guard: flagsSet, update: (c) => touch(c, who, 'dm_get_from_kobject') };
  return {
    initial: 'idle',
    states: {
      idle: {
        on: {
          READ_OPEN: {
            target: 'open',
            match: me,
            guard: function inSysfs(c) { return c.sysfs; },
            update: (c) => ({ ...touch(c, who, 'open'), active: c.active + 1 }),
          },
        },
      },
      open: code.lockedGetFromKobject
        ? { on: { READ_GET: { target: 'holding', match: me, guard: (c) => !flagsSet(c), update: (c) => dmGet(c, who) }, READ_EINVAL: einval } }
        : { on: { READ_TEST: { target: 'tested', match: me, guard: (c) => !flagsSet(c), update: (c) => touch(c, who, 'flag test') }, READ_EINVAL: einval } },
      ...(code.lockedGetFromKobject ? {} : { tested: { on: { READ_GET: { target: 'holding', match: me, update: (c: KobjCtx) => dmGet(c, who) } } } }),
      holding: { on: { READ_PUT: { target: 'shown', match: me, update: (c) => dmPut(c, who) } } },
      shown: { on: { READ_CLOSE: { target: 'done', match: me, update: (c) => ({ ...c, active: c.active - 1 }) } } },
      einval: { on: { READ_CLOSE: { target: 'done', match: me, update: (c) => ({ ...c, active: c.active - 1 }) } } },
      done: {},
    },
  };
}

function getterRegion(i: number, code: KobjCode): Region {
  const me = { g: i };
  const who = `dm_get_md ${i}`;
  const findable = (c: KobjCtx): boolean => c.dev === 1 && !flagsSet(c);
  return {
    initial: 'idle',
    states: {
      idle: {
        on: {
          GETMD_FIND: code.lockedGetMd
            ? { target: 'holding', match: me, guard: findable, update: (c) => dmGet(c, who) }
            : { target: 'found', match: me, guard: findable },
          GETMD_NOTFOUND: { target: 'done', match: me, guard: (c) => !findable(c) },
        },
      },
      ...(code.lockedGetMd ? {} : { found: { on: { GETMD_GET: { target: 'holding', match: me, update: (c: KobjCtx) => dmGet(c, who) } } } }),
      holding: { on: { GETMD_PUT: { target: 'done', match: me, update: (c) => dmPut(c, who) } } },
      done: {},
    },
  };
}

function openerRegion(i: number): Region {
  const me = { o: i };
  const who = `opener ${i}`;
  return {
    initial: 'closed',
    states: {
      closed: {
        on: {
          OPEN: {
            target: 'open',
            match: me,
            guard: (c) => c.dev === 1 && !flagsSet(c),
            update: (c) => ({ ...c, openCount: c.openCount + 1, holders: c.holders + 1 }),
          },
        },
      },
      open: { on: { CLOSE: { target: 'closed', match: me, update: (c) => ({ ...dmPut(c, who), openCount: c.openCount - 1 }) } } },
    },
  };
}

function foreignRegion(i: number): Region {
  const me = { f: i };
  const who = `foreign holder ${i}`;
  return {
    initial: 'none',
    states: {
      none: { on: { FOREIGN_GET: { target: 'holding', match: me, guard: (c) => c.dev === 1 && c.kref > 0, update: (c) => ({ ...c, kref: c.kref + 1 }) } } },
      holding: { on: { FOREIGN_PUT: { target: 'done', match: me, update: (c) => kobjPut(c, who) } } },
      done: {},
    },
  };
}

export function kobjectMachine(b: KobjBounds, v: Variant): DmMachine<KobjCtx, KobjEvent> {
  const code = kobjCode(v);
  const regions: Record<string, Region> = {
    device: deviceRegion(code),
    release: releaseRegion(code),
  };
  for (let i = 0; i < b.readers; i++) regions[`reader${i}`] = readerRegion(i, code);
  for (let i = 0; i < b.getters; i++) regions[`getter${i}`] = getterRegion(i, code);
  for (let i = 0; i < b.openers; i++) regions[`opener${i}`] = openerRegion(i);
  for (let i = 0; i < b.foreign; i++) regions[`foreign${i}`] = foreignRegion(i);
  regions['module'] = {
    initial: 'loaded',
    states: {
      loaded: { on: { RMMOD: { target: 'unloaded', guard: function noModuleRefs(c) { return c.modref === 0; }, update: (c) => ({ ...c, loaded: false }) } } },
      unloaded: {},
    },
  };
  return defineMachine({ id: 'kobject', context: initialKobjCtx, regions });
}

/** Every event instance of the alphabet at these bounds, in a fixed order (RMMOD last). */
export function kobjectEvents(b: KobjBounds): readonly KobjEvent[] {
  const out: KobjEvent[] = [{ type: 'CREATE' }, { type: 'REMOVE' }];
  for (const t of ['SET_FREEING', 'HOLDERS_DRAINED', 'SYSFS_PUT', 'WAIT_DONE', 'TABLE_DESTROY', 'MODULE_PUT', 'KFREE', 'RELEASE_RUN', 'RELEASE_RETURN']) {
    out.push({ type: t });
  }
  for (let r = 0; r < b.readers; r++) {
    for (const t of ['READ_OPEN', 'READ_TEST', 'READ_GET', 'READ_EINVAL', 'READ_PUT', 'READ_CLOSE']) out.push({ type: t, r });
  }
  for (let g = 0; g < b.getters; g++) for (const t of ['GETMD_FIND', 'GETMD_NOTFOUND', 'GETMD_GET', 'GETMD_PUT']) out.push({ type: t, g });
  for (let o = 0; o < b.openers; o++) for (const t of ['OPEN', 'CLOSE']) out.push({ type: t, o });
  for (let f = 0; f < b.foreign; f++) for (const t of ['FOREIGN_GET', 'FOREIGN_PUT']) out.push({ type: t, f });
  out.push({ type: 'RMMOD' });
  return out;
}

/** Events the environment issues; the rest are steps threads take on their own. */
export const externalKobjEvents: ReadonlySet<string> = new Set([
  'CREATE',
  'REMOVE',
  'READ_OPEN',
  'GETMD_FIND',
  'GETMD_NOTFOUND',
  'OPEN',
  'CLOSE',
  'FOREIGN_GET',
  'FOREIGN_PUT',
  'RMMOD',
]);

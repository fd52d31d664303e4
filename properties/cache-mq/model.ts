// Model of the 3.14 dm-cache mq policy's promotion decision (drivers/md/dm-cache-policy-mq.c:
// map, pre_cache_entry_found, no_entry_found, adjusted_promote_threshold, requeue_and_update_tick,
// io tracker, mq_set_config_value). Rules: spec/cache-mq.md. Machine: machines/cache-mq/.
// Reference implementation: impl/cache/mq-policy.ts.

import type { Bounds, BoundSpec, Ev, ImplAdapter, Instance, Invariant, Json, Model, MutantInfo, Variant } from '../../checker/model.js';
import type { MState } from '../../checker/machine.js';
import { machineSystem } from '../../checker/compose.js';
import { MqPolicy, type PolicyResult } from '../../impl/cache/mq-policy.js';
import { initialContext, mqMachine, parseU32, TUNABLE_KEYS, type MqCtx, type MqEvent, type LastMap } from '../../machines/cache-mq/mq.machine.js';

export type MqState = MState<MqCtx>;

export const mqBounds: Readonly<Record<string, BoundSpec>> = {
  oblocks: { default: 2, min: 1, max: 4, describe: 'origin blocks the bios address' },
  cacheSize: { default: 1, min: 1, max: 3, describe: 'cache blocks (pre-cache pool has as many entries)' },
  maxTick: { default: 1, min: 0, max: 40, describe: 'ticks (bio completions / waker) the explorer may issue' },
  readAdj: { default: 2, min: 0, max: 16, describe: 'read_promote_adjustment at table load (kernel default 4; small values keep exhaustive runs small)' },
  writeAdj: { default: 1, min: 0, max: 16, describe: 'write_promote_adjustment at table load (kernel default 8; small values keep exhaustive runs small)' },
  discardAdj: { default: 1, min: 0, max: 16, describe: 'discard_promote_adjustment at table load (kernel default 1)' },
  seqThreshold: { default: 1, min: 1, max: 512, describe: 'sequential_threshold at table load (kernel default 512; small so the explorer reaches SEQUENTIAL)' },
  randThreshold: { default: 2, min: 1, max: 16, describe: 'random_threshold at table load (kernel default 4)' },
  configs: { default: 0, min: 0, max: 1, describe: '1 = the explorer also sends set_config messages (good and bad)' },
};

export const mqMutants: readonly MutantInfo[] = [
  { id: 'adjustments-ignored', title: 'read/write/discard promote adjustments treated as 0 (every block goes straight into the cache)', fix: 'synthetic: 78e03d69733c (tunables) applied wrongly', breaks: ['CACHE-3'], killedBy: ['explore', 'lockstep'] },
  { id: 'read-write-swapped', title: 'read_promote_adjustment used for writes and write_promote_adjustment for reads', fix: 'synthetic, against 78e03d69733c adjusted_promote_threshold', breaks: ['CACHE-3'], killedBy: ['explore', 'lockstep'] },
  { id: 'threshold-off-by-one', title: 'promotion tests hit_count > threshold instead of >=', fix: 'synthetic, against should_promote', breaks: ['CACHE-3'], killedBy: ['explore', 'lockstep'] },
  { id: 'sequential-detection-off', title: 'the io tracker never switches to SEQUENTIAL, so streams are promoted', fix: 'synthetic, against iot_check_for_pattern_switch', breaks: ['CACHE-5'], killedBy: ['explore', 'lockstep'] },
];

function tunablesFrom(b: Bounds): number[] {
  return [b['seqThreshold'] ?? 2, b['randThreshold'] ?? 2, b['discardAdj'] ?? 1, b['readAdj'] ?? 4, b['writeAdj'] ?? 8];
}

/** set_config messages the explorer tries: accepted, unknown key, bad value. */
export const CONFIG_EVENTS: readonly MqEvent[] = [
  { type: 'CONFIG', key: 'read_promote_adjustment', value: '0' },
  { type: 'CONFIG', key: 'Write_Promote_Adjustment', value: '+16\n' },
  { type: 'CONFIG', key: 'promote_adjustment', value: '1' },
  { type: 'CONFIG', key: 'read_promote_adjustment', value: '-1' },
];

export function mqEvents(s: MqState, b: Bounds): MqEvent[] {
  const out: MqEvent[] = [];
  const n = b['oblocks'] ?? 2;
  for (let o = 0; o < n; o++) {
    for (const dir of ['R', 'W'] as const) {
      // A discard only changes the threshold of writes, so reads are tried undiscarded.
      for (const disc of dir === 'R' ? [false] : [false, true]) for (const mig of [true, false]) out.push({ type: 'MAP', o, dir, disc, mig });
    }
  }
  if (s.context.tick < (b['maxTick'] ?? 9)) out.push({ type: 'TICK' });
  for (let o = 0; o < n; o++) out.push({ type: 'DIRTY', o }, { type: 'CLEAN', o });
  if ((b['configs'] ?? 0) > 0) out.push(...CONFIG_EVENTS);
  return out;
}

/** What the implementation must show too. */
export function projectCtx(c: MqCtx): Json {
  const cache: [number, number, boolean][] = [
    ...c.clean.map((e): [number, number, boolean] => [e.o, e.c, false]),
    ...c.dirty.map((e): [number, number, boolean] => [e.o, e.c, true]),
  ].sort((a, b) => a[0] - b[0]);
  const pre = c.pre.map((e): [number, number] => [e.o, e.h]).sort((a, b) => a[0] - b[0]);
  return {
    cache,
    pre,
    tick: c.tick,
    hitCount: c.hitCount,
    promoteThreshold: c.promoteThreshold,
    pattern: c.seq ? 'sequential' : 'random',
    nrSeq: c.nrSeq,
    nrRand: c.nrRand,
    tunables: c.tun,
    last: c.last === null ? null : c.last.kind === 'map' ? { op: c.last.op, cblock: c.last.cblock, old: c.last.old, r: c.last.r } : { r: c.last.r },
  };
}

const isPromotion = (l: LastMap): boolean => l.op === 'NEW' || l.op === 'REPLACE';

/** The decision the spec (CACHE-3, CACHE-4, CACHE-6) requires for the latest map, or null if any op is fine. */
export function expectedDecision(l: LastMap): { promote: boolean; r: number } | null {
  if (l.where === 'cache') return null;
  if (l.seq) return { promote: false, r: 0 };
  if (l.where === 'none') {
    if (l.thr > 1) return { promote: false, r: 0 };
    if (!l.mig) return { promote: false, r: -11 };
    return { promote: l.room, r: 0 };
  }
  if ((!l.disc && l.sameTick) || l.prior < l.thr) return { promote: false, r: 0 };
  if (!l.mig) return { promote: false, r: -11 };
  return { promote: l.room, r: 0 };
}

function lastMap(s: MqState): LastMap | null {
  const l = s.context.last;
  return l !== null && l.kind === 'map' ? l : null;
}

export const mqInvariants: readonly Invariant<MqState>[] = [
  {
    spec: ['CACHE-1', 'CACHE-2'],
    name: 'one-entry-per-block',
    check: (s) => {
      const c = s.context;
      const os = [...c.pre, ...c.clean, ...c.dirty].map((e) => e.o);
      const dupO = os.find((o, i) => os.indexOf(o) !== i);
      if (dupO !== undefined) return `origin block ${dupO} has two policy entries`;
      const cbs = [...c.clean, ...c.dirty].map((e) => e.c);
      const dupC = cbs.find((x, i) => cbs.indexOf(x) !== i);
      if (dupC !== undefined) return `cache block ${dupC} is mapped to two origin blocks`;
      const inFree = cbs.find((x) => c.cfree.includes(x));
      if (inFree !== undefined) return `cache block ${inFree} is both mapped and on the free list`;
      if (cbs.length + c.cfree.length !== c.cacheSize) return `cache pool accounts for ${cbs.length + c.cfree.length} blocks, not ${c.cacheSize}`;
      if (c.pre.length + c.preFree !== c.cacheSize) return `pre-cache pool accounts for ${c.pre.length + c.preFree} entries, not ${c.cacheSize}`;
      return null;
    },
  },
  {
    spec: ['CACHE-3', 'CACHE-4', 'CACHE-6'],
    name: 'promotion-threshold',
    check: (s) => {
      const l = lastMap(s);
      if (!l) return null;
      const want = expectedDecision(l);
      if (!want || l.seq) return null;
      if (want.promote !== isPromotion(l) || want.r !== l.r) {
        return (
          `${l.dir === 'R' ? 'read' : 'write'} of block ${l.o} (${l.disc ? 'discarded, ' : ''}${l.mig ? 'can migrate' : 'cannot migrate'}, ` +
          `${l.where === 'pre' ? `${l.prior} earlier access(es) counted${l.sameTick ? ', one in this tick' : ''}` : 'not tracked yet'}, threshold ${l.thr}) ` +
          `gave ${l.op}${l.r ? ` r=${l.r}` : ''}; the rule says ${want.promote ? 'promote' : 'no promotion'}${want.r ? ` r=${want.r}` : ''}`
        );
      }
      return null;
    },
  },
  {
    spec: ['CACHE-4'],
    name: 'one-hit-per-tick',
    check: (s) => {
      for (const e of s.context.pre) {
        const g = s.context.g.seen[String(e.o)];
        if (g && g[0] !== e.h) return `pre-cache block ${e.o} has hit count ${e.h} after ${g[0]} access(es) in distinct ticks`;
      }
      return null;
    },
  },
  {
    spec: ['CACHE-5'],
    name: 'sequential-not-promoted',
    check: (s) => {
      const l = lastMap(s);
      if (!l || !l.seq || l.where === 'cache') return null;
      if (l.op !== 'MISS' || l.preChanged) {
        return `block ${l.o} was ${l.op === 'MISS' ? 'put in the pre-cache' : `given ${l.op}`} while the io pattern is SEQUENTIAL`;
      }
      return null;
    },
  },
  {
    spec: ['CACHE-6'],
    name: 'no-migration-without-bandwidth',
    check: (s) => {
      const l = lastMap(s);
      return l && !l.mig && isPromotion(l) ? `block ${l.o} got ${l.op} although the caller could not migrate` : null;
    },
  },
  {
    spec: ['CACHE-7'],
    name: 'replace-demotes-clean',
    check: (s) => {
      const l = lastMap(s);
      return l && l.op === 'REPLACE' && !l.oldWasClean ? `REPLACE demoted block ${l.old}, which was not clean` : null;
    },
  },
  {
    spec: ['CACHE-9'],
    name: 'config-errors',
    check: (s) => {
      const l = s.context.last;
      if (l === null || l.kind !== 'config') return null;
      const i = (TUNABLE_KEYS as readonly string[]).indexOf(l.key.toLowerCase());
      const v = parseU32(l.value);
      const ok = i >= 0 && v !== null;
      if (!ok) {
        if (l.r !== -22) return `set_config ${l.key} ${JSON.stringify(l.value)} returned ${l.r}, not -EINVAL`;
        if (l.before.join() !== l.after.join()) return `rejected set_config ${l.key} changed the tunables`;
        return null;
      }
      if (l.r !== 0 || l.after[i] !== v) return `set_config ${l.key} ${JSON.stringify(l.value)} was not applied`;
      return null;
    },
  },
];

/** Dedup key: in RANDOM the tracker's random count never influences anything, so it is clamped. */
function mqKey(s: MqState): string {
  const c = s.context;
  const clamp = (seq: boolean, n: number): number => (seq ? n : Math.min(n, 1));
  const k = { ...c, nrRand: clamp(c.seq, c.nrRand), g: { ...c.g, nrRand: clamp(c.g.seq, c.g.nrRand) } };
  return s.value.join('|') + '#' + JSON.stringify(k);
}

export function mqInstance(bounds: Bounds, variant: Variant): Instance<MqState, Ev> {
  const m = mqMachine(initialContext(bounds['cacheSize'] ?? 1, tunablesFrom(bounds), variant.mutant));
  const sys = machineSystem(m, (s) => mqEvents(s, bounds), m.initial(), mqKey);
  return {
    system: sys as Instance<MqState, Ev>['system'],
    invariants: mqInvariants,
    quiescent: () => true,
    describe: (s) => {
      const c = s.context;
      const l = c.last;
      const lastTxt = l === null ? '' : l.kind === 'map' ? ` last=${l.dir}${l.o}->${l.op}${l.r ? `(${l.r})` : ''}` : ` config r=${l.r}`;
      return (
        `${s.value[0]} tick=${c.tick} cache={${[...c.clean.map((e) => `${e.o}@${e.c}`), ...c.dirty.map((e) => `${e.o}@${e.c}*`)].join(',')}} ` +
        `pre={${c.pre.map((e) => `${e.o}:${e.h}`).join(',')}} adj=r${c.tun[3]}/w${c.tun[4]}/d${c.tun[2]}${lastTxt}`
      );
    },
    valueOf: (s) => s.value.join('|'),
    project: (s) => projectCtx(s.context),
  };
}

function resultJson(r: PolicyResult): Json {
  return { op: r.op, cblock: r.cblock, old: r.oldOblock, r: r.r };
}

export const mqImpl: ImplAdapter<Ev> = {
  create: (variant, bounds) => {
    const t = tunablesFrom(bounds);
    const p = new MqPolicy({
      cacheSize: bounds['cacheSize'] ?? 1,
      tunables: { sequentialThreshold: t[0]!, randomThreshold: t[1]!, discardPromoteAdjustment: t[2]!, readPromoteAdjustment: t[3]!, writePromoteAdjustment: t[4]! },
      variant,
    });
    let last: Json = null;
    return {
      apply: (e) => {
        const ev = e as MqEvent;
        switch (ev.type) {
          case 'MAP':
            last = resultJson(p.map({ oblock: ev.o, dir: ev.dir, discarded: ev.disc, canMigrate: ev.mig, sector: ev.o, sectors: 1 }));
            return;
          case 'TICK':
            p.tickOnce();
            last = null;
            return;
          case 'DIRTY':
            p.setDirty(ev.o);
            last = null;
            return;
          case 'CLEAN':
            p.clearDirty(ev.o);
            last = null;
            return;
          case 'CONFIG':
            last = { r: p.setConfigValue(ev.key, ev.value) };
            return;
        }
      },
      project: () => {
        const pj = p.project() as Record<string, Json>;
        return { ...pj, last };
      },
      selfCheck: () => {
        const m = p.selfCheck();
        return m === null ? null : { spec: ['CACHE-1', 'CACHE-2'], message: m };
      },
    };
  },
  isExternal: () => true,
};

export const cacheMqModel: Model<MqState, Ev> = {
  id: 'cache-mq',
  title: 'dm-cache mq policy promotion tunables (3.14, policy 1.2.0)',
  spec: 'spec/cache-mq.md',
  profiles: ['linux-3.14', 'fixed'],
  defaultProfile: 'linux-3.14',
  bounds: mqBounds,
  mutants: mqMutants,
  shipped: [],
  machines: [mqMachine(initialContext(1, [512, 4, 1, 4, 8], null))],
  instance: mqInstance,
  impl: mqImpl,
  commands: (s, b) => mqEvents(s, b),
};

// The thin-pool Model for the engine: machine, bounds, invariants, fault surface, projection and the
// impl adapter. Kernel: drivers/md/dm-thin.c (Linux 3.14.1), pool target modes and resize.

import type { Bounds, BoundSpec, FaultSurface, Instance, Json, Model, Variant } from '../../checker/model.js';
import { UsageError } from '../../checker/model.js';
import { machineKey, machineSystem } from '../../checker/compose.js';
import type { MState } from '../../checker/machine.js';
import { buildPoolMachine } from '../../machines/thin-pool/machine.js';
import { candidateEvents, dataFree, mdFree } from '../../machines/thin-pool/semantics.js';
import { PROFILES, type Mode, type PoolConfig, type PoolCtx, type PoolEvent, type Profile } from '../../machines/thin-pool/types.js';
import { poolInvariants } from './invariants.js';
import { poolMutants, poolShipped } from './mutants.js';
import { statusLine } from './status.js';
// impl adapter: see impl-adapter.ts

export type PoolMState = MState<PoolCtx>;

export const poolBounds: Readonly<Record<string, BoundSpec>> = {
  vblocks: { default: 1, min: 1, max: 4, describe: 'virtual blocks per thin device' },
  data: { default: 1, min: 1, max: 4, describe: 'data blocks in the initial table' },
  dataMax: { default: 2, min: 1, max: 6, describe: 'largest data size a reload may ask for' },
  md: { default: 5, min: 4, max: 16, describe: 'metadata blocks at creation' },
  mdMax: { default: 7, min: 4, max: 20, describe: 'largest metadata size a reload may ask for' },
  lowWater: { default: 1, min: 0, max: 4, describe: 'data low-water mark in blocks' },
  queue: { default: 2, min: 1, max: 4, describe: 'most bios parked on the retry list at once' },
  eins: { default: 0, min: 0, max: 1, describe: '1 = table has error_if_no_space' },
};

export function poolConfig(bounds: Bounds, variant: Variant): PoolConfig {
  if (!PROFILES.includes(variant.profile as Profile)) {
    throw new UsageError(`unknown profile '${variant.profile}'; thin-pool has: ${PROFILES.join(', ')}`);
  }
  if (variant.mutant !== null && !poolMutants.some((m) => m.id === variant.mutant)) {
    throw new UsageError(`unknown mutant '${variant.mutant}'; thin-pool has: ${poolMutants.map((m) => m.id).join(', ')}`);
  }
  const b = (k: string) => {
    const v = bounds[k] ?? poolBounds[k]!.default;
    return v;
  };
  return {
    profile: variant.profile as Profile,
    mutant: variant.mutant,
    vblocks: b('vblocks'),
    data: b('data'),
    dataMax: Math.max(b('dataMax'), b('data')),
    md: b('md'),
    mdMax: Math.max(b('mdMax'), b('md')),
    lowWater: b('lowWater'),
    maxQueue: b('queue'),
    eins: b('eins') === 1,
  };
}

/** What the lockstep runner compares with the impl: the user-visible pool. */
export function projectPool(s: PoolMState, profile: Profile): Json {
  const c = s.context;
  const l = c.last;
  return {
    mode: s.value[0]!,
    status: statusLine(s.value[0] as Mode, c, profile),
    needsCheck: c.needsCheck,
    queued: c.retry.length,
    mapping: c.map[0]!.slice(),
    committed: c.cmap[0] ? c.cmap[0].slice() : null,
    thin1: c.map[1] !== null,
    io: l?.io ? l.io.result : null,
    released: l ? l.released.map((r) => r.result) : [],
    errno: l?.errno ?? null,
    events: l ? l.events.slice() : [],
  };
}

export const poolFaults: FaultSurface<PoolMState> = {
  sites: (s) => (s.context.fault === 'none' && s.value[0] !== 'fail' ? ['md-io', 'md-io-abort'] : []),
  inject: (s, site) => ({ value: s.value, context: { ...s.context, fault: site === 'md-io-abort' ? 'md-io-abort' : 'md-io' } }),
};

export function poolInstance(bounds: Bounds, variant: Variant): Instance<PoolMState, PoolEvent> {
  const cfg = poolConfig(bounds, variant);
  const machine = buildPoolMachine(cfg);
  const system = machineSystem(machine, (s) => candidateEvents(cfg, { mode: s.value[0] as Mode, ctx: s.context }));
  return {
    system: { ...system, key: machineKey },
    invariants: poolInvariants(cfg.profile),
    describe: (s) => {
      const c = s.context;
      return `${s.value[0]} data free ${dataFree(c)}/${c.dataNr} md free ${mdFree(c)}/${c.mdNr} queued ${c.retry.length}${c.needsCheck ? ' needs_check' : ''} map ${JSON.stringify(c.map)}`;
    },
    valueOf: (s) => s.value[0]!,
    project: (s) => projectPool(s, cfg.profile),
    fault: poolFaults,
  };
}

export const thinPoolModel: Model<PoolMState, PoolEvent> = {
  id: 'thin-pool',
  title: 'dm-thin pool modes, out of space, metadata failure and resize',
  spec: 'spec/thin-pool.md',
  profiles: PROFILES,
  defaultProfile: 'linux-3.14',
  bounds: poolBounds,
  mutants: poolMutants,
  shipped: poolShipped,
  machines: [buildPoolMachine(poolConfig({}, { profile: 'linux-3.14', mutant: null })), buildPoolMachine(poolConfig({}, { profile: 'fixed', mutant: null }))].map((mc, i) => ({
    id: i === 0 ? 'thin-pool-3.14' : 'thin-pool-fixed',
    statechart: () => ({ ...mc.statechart(), id: i === 0 ? 'thin-pool-3.14' : 'thin-pool-fixed' }),
  })),
  instance: poolInstance,
  // impl: poolImplAdapter (wired in impl-adapter.ts)
};

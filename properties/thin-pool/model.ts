// The thin-pool Model for the engine: machine, bounds, invariants, fault surface, projection and the
// impl adapter. Kernel: drivers/md/dm-thin.c (Linux 3.14.1), pool target modes and resize.

import type { Bounds, FaultSurface, Instance, Json, Model, Variant } from '../../checker/model.js';
import { machineKey, machineSystem } from '../../checker/compose.js';
import type { MState } from '../../checker/machine.js';
import { buildPoolMachine } from '../../machines/thin-pool/machine.js';
import { candidateEvents, dataFree, mdFree } from '../../machines/thin-pool/semantics.js';
import { PROFILES, type Mode, type PoolCtx, type PoolEvent, type Profile } from '../../machines/thin-pool/types.js';
import { poolBounds, poolConfig } from './config.js';
import { poolInvariants } from './invariants.js';
import { poolMutants, poolShipped } from './mutants.js';
import { statusLine } from './status.js';
import { poolImplAdapter } from './impl-adapter.js';
import { poolScenarios } from './scenarios.js';
import { scenarioBounds } from './run-scenario.js';

export type PoolMState = MState<PoolCtx>;

export { poolBounds, poolConfig };

/** What the lockstep runner compares with the impl: the user-visible pool. */
export function projectPool(s: PoolMState, profile: Profile): Json {
  const c = s.context;
  const l = c.last;
  return {
    mode: s.value[0]!,
    status: statusLine(s.value[0] as Mode, c, profile),
    needsCheck: c.needsCheck,
    queued: c.retry.length,
    mapping: s.value[0] === 'fail' ? null : c.map[0]!.slice(),
    thin1: s.value[0] === 'fail' ? null : c.map[1] !== null,
    io: l?.io ? l.io.result : null,
    // Bios that completed off the retry list (re-parked ones show in `queued`).
    released: l ? l.released.filter((r) => r.result !== 'queued').map((r) => r.result) : [],
    errno: l?.errno ?? null,
    events: l ? l.events.slice() : [],
    // Internal, but what the later events depend on: the registered metadata threshold
    // (calc_metadata_threshold at pool_ctr) and whether no_space_timeout's delayed work is queued.
    mdThreshold: c.mdThr,
    // dmsetup info's SUSPENDED: a failed resume leaves the pool device suspended.
    suspended: c.suspended,
    timer: c.timer,
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
  impl: poolImplAdapter,
  // The dmtest/lvm2 scenarios, for `dmcheck check`'s coverage report (each under the first profile it expects).
  scenarios: poolScenarios.map((sc) => ({
    name: sc.name,
    source: sc.source,
    bounds: scenarioBounds(sc),
    steps: sc.events,
    profile: Object.keys(sc.expect).includes('linux-3.14') ? 'linux-3.14' : (Object.keys(sc.expect)[0] ?? 'linux-3.14'),
  })),
};

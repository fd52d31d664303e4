// The thin-pool Model for the engine: machine, bounds, invariants, fault surface, projection and the
// impl adapter. Kernel: drivers/md/dm-thin.c (Linux 3.14.1), pool target modes and resize.

import type { Bounds, FaultSurface, Instance, Invariant, Json, Model, Variant, Ev } from '../../checker/model.js';
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
  const l = c.shown;
  return {
    mode: s.value[0]!,
    status: statusLine(s.value[0] as Mode, c, profile),
    needsCheck: c.needsCheck,
    queued: c.retry.length,
    mapping: s.value[0] === 'fail' ? null : c.map[0]!.slice(),
    thin1: s.value[0] === 'fail' ? null : c.map[1] !== null,
    io: l?.io ?? null,
    // Bios that completed off the retry list (re-parked ones show in `queued`).
    released: l ? l.released.filter((r) => r !== 'queued') : [],
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

/**
 * State reduction for the explorer (and everything else that steps the instance). The transition
 * rules read the ghost record `last` of the step that led to a state, which made arrivals by
 * different steps distinct states (about 13× as many at the default bounds). Here every successor is
 * judged by every rule as it is generated; when it breaks none, its record is dropped (the visible
 * part stays in `shown`; the step never reads the previous record, semantics.ts `begin`), so
 * arrivals that look the same merge. A successor that breaks a rule keeps its whole record, so the
 * explorer (which checks new states) reports it with its shortest path.
 */
function reducedStep(step: (s: PoolMState, e: PoolEvent) => PoolMState | null, invariants: readonly Invariant<PoolMState>[]) {
  return (s: PoolMState, e: PoolEvent): PoolMState | null => {
    const n = step(s, e);
    if (n === null || n.context.last === null) return n;
    for (const inv of invariants) if (inv.check(n) !== null) return n;
    return { value: n.value, context: { ...n.context, last: null } };
  };
}

/**
 * The explorer's state key: without `shown` once the step's record is dropped. The step reads
 * neither, and the rules read `shown` never, so states that differ only there have the same futures
 * and the same verdicts; lockstep and replay step concrete states and still see `shown`.
 */
function reduced(s: PoolMState): PoolMState {
  return s.context.last === null && s.context.shown !== null ? { value: s.value, context: { ...s.context, shown: null } } : s;
}

function reducedKey(s: PoolMState): string {
  return machineKey(reduced(s));
}

export function poolInstance(bounds: Bounds, variant: Variant): Instance<PoolMState, PoolEvent> {
  const cfg = poolConfig(bounds, variant);
  const machine = buildPoolMachine(cfg);
  const system = machineSystem(machine, (s) => candidateEvents(cfg, { mode: s.value[0] as Mode, ctx: s.context }));
  const invariants = poolInvariants(cfg.profile);
  const { encode, decode } = machine;
  return {
    system: {
      initial: system.initial,
      events: system.events,
      step: reducedStep(system.step, invariants),
      key: reducedKey,
      // The same identification as units for the explorer's store: the machine's encoder on the
      // reduced state (decoding gives the reduced state, which has the same futures and verdicts).
      ...(encode !== undefined && decode !== undefined ? { units: { of: reducedKey, encode: (s: PoolMState, out: Uint16Array) => encode(reduced(s), out), decode } } : {}),
    },
    invariants,
    describe: (s) => {
      const c = s.context;
      return `${s.value[0]} data free ${dataFree(c)}/${c.dataNr} md free ${mdFree(c)}/${c.mdNr} queued ${c.retry.length}${c.needsCheck ? ' needs_check' : ''} map ${JSON.stringify(c.map)}`;
    },
    valueOf: (s) => s.value[0]!,
    project: (s) => projectPool(s, cfg.profile),
    fault: poolFaults,
  };
}

/** The same instance without the state reduction (for the test that compares the two). */
export function unreducedInstance(bounds: Bounds, variant: Variant): Instance<PoolMState, PoolEvent> {
  const inst = poolInstance(bounds, variant);
  const cfg = poolConfig(bounds, variant);
  const system = machineSystem(buildPoolMachine(cfg), (s) => candidateEvents(cfg, { mode: s.value[0] as Mode, ctx: s.context }));
  return { ...inst, system: { ...system, key: machineKey } };
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
    // In the explorer's own vocabulary: a metadata fault is the engine's @fault operator.
    steps: sc.events.map((e): Ev => (e.type === 'fault' ? { type: '@fault', site: e.kind } : e)),
    profile: Object.keys(sc.expect).includes('linux-3.14') ? 'linux-3.14' : (Object.keys(sc.expect)[0] ?? 'linux-3.14'),
  })),
};

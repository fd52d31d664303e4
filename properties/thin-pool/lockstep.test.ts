// Lockstep: fast-check drives the machine and the pool target impl (impl/thin/pool-target.ts over the
// abstract-accounting metadata) together, with metadata fault injection (md-io, md-io-abort), and
// checks projections and every invariant after each step. Seeds are fixed and printed.

import { describe, expect, it } from 'vitest';
import { canonical, lockstep } from '../../checker/lockstep.js';
import { boundsWithDefaults, type Ev, type Model } from '../../checker/model.js';
import { thinPoolModel, type PoolMState } from './model.js';
import { OUT_OF_SPACE_BOUNDS, poolShipped } from './mutants.js';

/** What the runs reached (machine side), so the test can tell the faults and degraded paths ran. */
type Reach = Record<string, number>;

/**
 * Under linux-3.14 the shipped #15 defect (THIN-POOL-11) is expected; lockstep checks the rest. A probe
 * rule that never fails counts the modes, the parked bios and the pools left suspended the runs
 * went through (the states it sees carry no step record: model.ts drops it once every rule passed).
 */
function withoutShipped(profile: string, reach: Reach): Model<PoolMState, Ev> {
  const shipped = new Set(poolShipped.filter((d) => d.profile === profile).flatMap((d) => d.breaks));
  const base = thinPoolModel as unknown as Model<PoolMState, Ev>;
  const count = (k: string): void => {
    reach[k] = (reach[k] ?? 0) + 1;
  };
  return {
    ...base,
    instance: (b, v) => {
      const inst = base.instance(b, v);
      const probe = {
        spec: [],
        name: 'reach probe',
        check: (s: PoolMState): null => {
          count(`mode ${s.value[0]}`);
          if (s.context.retry.length > 0) count('parked');
          if (s.context.suspended) count('suspended');
          return null;
        },
      };
      return { ...inst, invariants: [...inst.invariants.filter((i) => !i.spec.some((x) => shipped.has(x))), probe] };
    },
  };
}

const RUNS: { profile: string; bounds: Readonly<Record<string, number>>; seed: number }[] = [
  { profile: 'linux-3.14', bounds: {}, seed: 1401 },
  { profile: 'linux-3.14', bounds: { vblocks: 2, data: 2, md: 8, mdMax: 10 }, seed: 1402 },
  { profile: 'fixed', bounds: {}, seed: 1403 },
  { profile: 'fixed', bounds: { vblocks: 2, data: 2, md: 8, mdMax: 10 }, seed: 1404 },
  // One data block under two virtual blocks: out of data space in two writes, bios parked.
  { profile: 'linux-3.14', bounds: OUT_OF_SPACE_BOUNDS, seed: 1405 },
  { profile: 'fixed', bounds: OUT_OF_SPACE_BOUNDS, seed: 1406 },
];

describe('thin-pool lockstep (machine vs impl, with metadata faults)', () => {
  for (const r of RUNS) {
    it(`${r.profile} ${JSON.stringify(r.bounds)} seed ${r.seed}`, async () => {
      console.log(`thin-pool lockstep: profile ${r.profile} seed ${r.seed}`);
      const reach: Reach = {};
      const res = await lockstep(withoutShipped(r.profile, reach), boundsWithDefaults(thinPoolModel, r.bounds), { profile: r.profile, mutant: null }, { seed: r.seed, numRuns: 400, maxCommands: 25 });
      if (res.failure) console.log(JSON.stringify(res.failure, null, 1));
      expect(res.ok).toBe(true);
      expect(res.runs).toBe(400);
      console.log(`  reached: ${JSON.stringify(reach)}`);
      // Not vacuous: the pool degraded, and fail mode is only reached through an injected
      // md-io-abort (the abort after a failed metadata operation fails too).
      for (const m of ['write', 'read_only', 'fail']) expect(reach[`mode ${m}`] ?? 0, `mode ${m}`).toBeGreaterThan(0);
      // and runs left pools suspended (a refused resume), as the spec says the probe checks.
      expect(reach['suspended'] ?? 0, 'suspended').toBeGreaterThan(0);
      if (r.bounds === OUT_OF_SPACE_BOUNDS) for (const k of ['mode out_of_data_space', 'parked']) expect(reach[k] ?? 0, k).toBeGreaterThan(0);
    }, 600_000);
  }

  it('the projection comparison is not vacuous: a mutated impl diverges from the machine', () => {
    // Machine correct, impl with mutant #2: after running out of space the queued bio differs.
    const bounds = boundsWithDefaults(thinPoolModel, { vblocks: 2, md: 10, mdMax: 10 });
    const inst = thinPoolModel.instance(bounds, { profile: 'linux-3.14', mutant: null });
    const impl = thinPoolModel.impl!.create({ profile: 'linux-3.14', mutant: '2-unserviceable-eio' }, bounds, { step: () => Promise.resolve(true) });
    let s = inst.system.initial()[0]!;
    const diverged: boolean[] = [];
    for (const e of [{ type: 'write', v: 0 }, { type: 'write', v: 1 }] as const) {
      s = inst.system.step(s, e)!;
      impl.apply(e);
      diverged.push(canonical(inst.project!(s)) !== canonical(impl.project()));
    }
    expect(diverged).toEqual([false, true]);
  });
});

// Lockstep: fast-check drives the machine and the pool target impl (impl/thin/pool-target.ts over the
// abstract-accounting metadata) together, with metadata fault injection (md-io, md-io-abort), and
// checks projections and every invariant after each step. Seeds are fixed and printed.

import { describe, expect, it } from 'vitest';
import { canonical, lockstep } from '../../checker/lockstep.js';
import { boundsWithDefaults, type Ev, type Model } from '../../checker/model.js';
import { thinPoolModel, type PoolMState } from './model.js';
import { poolShipped } from './mutants.js';

/** Under linux-3.14 the shipped #15 defect (THIN-POOL-11) is expected; lockstep checks the rest. */
function withoutShipped(profile: string): Model<PoolMState, Ev> {
  const shipped = new Set(poolShipped.filter((d) => d.profile === profile).flatMap((d) => d.breaks));
  const base = thinPoolModel as unknown as Model<PoolMState, Ev>;
  return {
    ...base,
    instance: (b, v) => {
      const inst = base.instance(b, v);
      return { ...inst, invariants: inst.invariants.filter((i) => !i.spec.some((x) => shipped.has(x))) };
    },
  };
}

const RUNS: { profile: string; bounds: Record<string, number>; seed: number }[] = [
  { profile: 'linux-3.14', bounds: {}, seed: 1401 },
  { profile: 'linux-3.14', bounds: { vblocks: 2, data: 2, md: 8, mdMax: 10 }, seed: 1402 },
  { profile: 'fixed', bounds: {}, seed: 1403 },
  { profile: 'fixed', bounds: { vblocks: 2, data: 2, md: 8, mdMax: 10 }, seed: 1404 },
];

describe('thin-pool lockstep (machine vs impl, with metadata faults)', () => {
  for (const r of RUNS) {
    it(`${r.profile} ${JSON.stringify(r.bounds)} seed ${r.seed}`, async () => {
      console.log(`thin-pool lockstep: profile ${r.profile} seed ${r.seed}`);
      const res = await lockstep(withoutShipped(r.profile), boundsWithDefaults(thinPoolModel, r.bounds), { profile: r.profile, mutant: null }, { seed: r.seed, numRuns: 150, maxCommands: 25 });
      if (res.failure) console.log(JSON.stringify(res.failure, null, 1));
      expect(res.ok).toBe(true);
      expect(res.runs).toBe(150);
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

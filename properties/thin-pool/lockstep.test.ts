// Lockstep: fast-check drives the machine and the pool target impl (impl/thin/pool-target.ts over the
// abstract-accounting metadata) together, with metadata fault injection (md-io, md-io-abort), and
// checks projections and every invariant after each step. Seeds are fixed and printed.

import { describe, expect, it } from 'vitest';
import { lockstep } from '../../checker/lockstep.js';
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

  it('the lockstep runner notices a mutant the machine does not have', async () => {
    // Machine correct, impl mutated: the projections must diverge (the comparison is not vacuous).
    const base = thinPoolModel as unknown as Model<PoolMState, Ev>;
    const mixed: Model<PoolMState, Ev> = {
      ...withoutShipped('linux-3.14'),
      impl: { ...base.impl!, create: (_v, b, g) => base.impl!.create({ profile: 'linux-3.14', mutant: '2-unserviceable-eio' }, b, g) },
    };
    const res = await lockstep(mixed, boundsWithDefaults(thinPoolModel, { vblocks: 2 }), { profile: 'linux-3.14', mutant: null }, { seed: 1405, numRuns: 300, maxCommands: 25 });
    expect(res.ok).toBe(false);
    expect(res.failure?.violation.property).toBe('projection');
  }, 600_000);
});

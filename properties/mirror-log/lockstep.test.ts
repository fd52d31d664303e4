// Lockstep: the mirror-log machines and impl/mirror (dm-raid1 region hash, dm-log-userspace client,
// cmirrord-like server; drivers/md/dm-raid1.c, dm-region-hash.c, dm-log-userspace-base.c) driven
// together through properties/mirror-log/impl-adapter.ts, projections compared after every step.
// Seeds are fixed and printed (checker/seed.ts).

import { describe, expect, it } from 'vitest';
import { lockstep, type LockstepResult } from '../../checker/lockstep.js';
import { asModel, boundsWithDefaults, type Bounds, type Gate, type Variant } from '../../checker/model.js';
import { testSeed } from '../../checker/seed.js';
import type { MirrorEv } from '../../machines/mirror-log/types.js';
import { cfgsFrom } from './config.js';
import { mirrorImplAdapter } from './impl-adapter.js';
import { mirrorLogModel } from './model.js';
import { MIRROR_MUTANTS } from './mutants.js';

const model = asModel(mirrorLogModel);
const FIXED: Variant = { profile: 'fixed', mutant: null };
const noGate: Gate<MirrorEv> = { step: () => Promise.reject(new Error('the mirror adapter drives its own gate')) };

/** The model with an adapter that notes which initial states the runs started from. */
function countingStarts(): { starts: Set<number>; m: typeof model } {
  const starts = new Set<number>();
  const impl = model.impl!;
  return {
    starts,
    m: {
      ...model,
      impl: {
        ...impl,
        create: (v, b, g, i) => {
          starts.add(i ?? 0);
          return impl.create(v, b, g, i);
        },
      },
    },
  };
}

function explain(r: LockstepResult): string {
  return r.failure ? `${r.failure.violation.property}: ${r.failure.violation.message}\n${r.failure.steps.map((e) => JSON.stringify(e)).join(' ')}` : 'ok';
}

describe('mirror-log lockstep: machine and impl/mirror agree under fixed', () => {
  it('default bounds: both log modes (plain and integrated_flush, aware server), peer node, resends', async () => {
    const seed = testSeed('mirror-log lockstep defaults');
    const bounds = boundsWithDefaults(model);
    const { starts, m } = countingStarts();
    const r = await lockstep(m, bounds, FIXED, { seed, numRuns: 200 });
    expect(r.ok, explain(r)).toBe(true);
    expect(r.runs).toBe(200);
    // Both dm-raid1 configurations were driven; the batching caller (no impl) never was.
    const cfgs = cfgsFrom(bounds, FIXED);
    expect([...starts].map((i) => `${cfgs[i]!.integrated ? 'integrated' : 'plain'}/${cfgs[i]!.batch ? 'batch' : 'raid1'}`).sort()).toEqual([
      'integrated/raid1',
      'plain/raid1',
    ]);
  }, 120_000);

  const more: readonly { readonly name: string; readonly bounds: Bounds }[] = [
    { name: 'plain log against upstream cmirrord', bounds: { integrated: 0, server: 0 } },
    { name: '"sync" creation (recovery copies) with a failing log device', bounds: { resync: 1, logFaults: 1 } },
    { name: 'three regions, three writes, two resends', bounds: { regions: 3, writes: 3, resends: 2, nodes: 1 } },
    { name: 'clear_region allocation failures, no handle_errors, log faults', bounds: { allocFail: 1, handleErrors: 0, logFaults: 1, nodes: 1 } },
    { name: 'legs with write caches, one node', bounds: { cache: 1, nodes: 1 } },
    { name: 'legs with write caches, two nodes (the peer flushes the legs before its clears)', bounds: { cache: 1, nodes: 2 } },
  ];
  for (const c of more) {
    it(c.name, async () => {
      const seed = testSeed(`mirror-log lockstep ${c.name}`, 7);
      const r = await lockstep(model, boundsWithDefaults(model, c.bounds), FIXED, { seed, numRuns: 150 });
      expect(r.ok, explain(r)).toBe(true);
    }, 120_000);
  }
});

describe('mirror-log lockstep finds what the machine does through the impl', () => {
  it('linux-3.14: the clears-only flush that cancels the pending lazy flush (ULOG-4), impl agreeing up to it', async () => {
    const seed = testSeed('mirror-log lockstep linux-3.14');
    const bounds = boundsWithDefaults(model, { nodes: 1, integrated: 1 });
    const r = await lockstep(model, bounds, { profile: 'linux-3.14', mutant: null }, { seed, numRuns: 1000 });
    expect(r.failure?.violation.property, explain(r)).toBe('lazy-flush');
    expect(r.failure?.violation.spec).toEqual(['ULOG-4']);
    // Under fixed the same bounds hold.
    const f = await lockstep(model, bounds, FIXED, { seed, numRuns: 300 });
    expect(f.ok, explain(f)).toBe(true);
  }, 120_000);
});

describe('the comparison can fail: an impl mutant against the correct machine diverges', () => {
  // marks-before-clears needs a caller that batches clears and marks (dm-raid1 never does; the
  // adapter has no such caller). mark-drop needs the machine to offer the failing allocation, which
  // it does with allocFail=1 (for clear_region only).
  const cases: readonly { readonly mutant: string; readonly bounds: Bounds }[] = [
    ...MIRROR_MUTANTS.filter((m) => m.id !== 'marks-before-clears' && m.id !== 'mark-drop').map((m) => ({ mutant: m.id, bounds: m.bounds })),
    { mutant: 'mark-drop', bounds: { nodes: 1, allocFail: 1 } },
  ];
  for (const c of cases) {
    it(`impl mutant ${c.mutant}: projection mismatch or impl check, never agreement`, async () => {
      const seed = testSeed(`mirror-log impl mutant ${c.mutant}`);
      const r = await lockstep(model, boundsWithDefaults(model, c.bounds), FIXED, {
        seed,
        numRuns: 300,
        implVariant: { profile: 'fixed', mutant: c.mutant },
      });
      expect(r.failure, `impl mutant ${c.mutant} went unnoticed in ${r.runs} runs`).not.toBeNull();
      // The machine is correct, so the failure is the impl's: a projection or an impl-side rule.
      expect(['projection', 'impl-check']).toContain(r.failure!.violation.property);
      const breaks = MIRROR_MUTANTS.find((m) => m.id === c.mutant)!.breaks;
      expect(r.failure!.violation.spec.some((s) => breaks.includes(s)), r.failure!.violation.message).toBe(true);
    }, 120_000);
  }
});

describe('the adapter', () => {
  it('starts only from the dm-raid1 configurations, and refuses the batching caller', () => {
    const bounds = boundsWithDefaults(model);
    const starts = mirrorImplAdapter.initialStates!(bounds, FIXED);
    const cfgs = cfgsFrom(bounds, FIXED);
    expect(starts.map((i) => cfgs[i]!.batch)).toEqual([false, false]);
    const batch = cfgs.findIndex((c) => c.batch);
    expect(() => mirrorImplAdapter.create(FIXED, bounds, noGate, batch)).toThrow(/batching caller/);
  });

  it('says so when the machine takes a step the impl cannot take', async () => {
    const bounds = boundsWithDefaults(model, { nodes: 1 });
    const impl = mirrorImplAdapter.create(FIXED, bounds, noGate, 0);
    await impl.ready;
    // Nothing is on the wire: there is no reply to deliver and no request to serve.
    await expect(impl.apply({ type: 'reply' })).rejects.toThrow(/no step for delivering the oldest reply/);
    await expect(impl.apply({ type: 'srv' })).rejects.toThrow(/no step for serving/);
    // A write wakes kmirrord; with the pass released, the first flush request is on the wire.
    await impl.apply({ type: 'bio', r: 1 });
    await impl.apply({ type: 'pass', drop: 0 });
    const p = impl.project() as { readonly wire: readonly { readonly t: string; readonly p: readonly number[] }[]; readonly kp: string };
    expect(p.kp).toBe('w');
    expect(p.wire.map((q) => `${q.t}(${q.p.join(',')})`)).toEqual(['M(1)']);
  });
});

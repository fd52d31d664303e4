// The lockstep hunt with a planned path (Defect.plan) and trace minimization with a control
// variant, on a toy counter: machine and implementation count incs and decs; the implementation's
// own check fails on a dec at zero (an "underflow" every variant has, standing for a limit the
// machine does not model) and, under mutant 'five', when the count reaches five.
import { describe, expect, it } from 'vitest';
import { hunt, targetsOf } from './hunt.js';
import { minimizeTrace } from './minimize.js';
import type { Ev, LockstepPlan, Model } from './model.js';
import { makeTrace } from './trace.js';

const inc: Ev = { type: 'inc' };
const dec: Ev = { type: 'dec' };

function counterModel(plan: LockstepPlan, withDec = true): Model<number, Ev> {
  return {
    id: 'counter',
    title: 'a counter',
    spec: 'none',
    profiles: ['fixed', 'old'],
    defaultProfile: 'fixed',
    bounds: {},
    mutants: [{ id: 'five', title: 'fails at five', fix: 'none', breaks: ['C-1'], killedBy: ['lockstep'], plan }],
    shipped: [{ id: 'old-five', title: 'the old code fails at five', profile: 'old', fix: 'none', breaks: ['C-1'], killedBy: ['lockstep'], operators: { crashes: false } }],
    machines: [],
    instance: () => ({
      // A crash "loses" the count: the machine's own invariant C-9 fails right after it.
      crash: { volatileWrites: () => 1, crash: () => -100 },
      system: {
        initial: () => [0],
        events: () => (withDec ? [inc, dec] : [inc]),
        step: (n, e) => (e.type === 'inc' ? n + 1 : e.type === 'dec' ? n - 1 : null),
        key: (n) => String(n),
      },
      invariants: [{ name: 'not-lost', spec: ['C-9'], check: (n) => (n === -100 ? 'the count was lost' : null) }],
      describe: (n) => `n=${n}`,
      valueOf: () => 'counting',
      project: (n) => n,
    }),
    impl: {
      isExternal: () => true,
      create: (variant) => {
        let n = 0;
        let bad: { spec: string[]; message: string } | null = null;
        return {
          apply: (e: Ev) => {
            if (e.type !== 'inc' && e.type !== 'dec') return;
            if (e.type === 'dec' && n === 0) bad ??= { spec: ['C-1'], message: 'dec at zero' };
            n += e.type === 'inc' ? 1 : -1;
            if ((variant.mutant === 'five' || variant.profile === 'old') && n === 5) bad ??= { spec: ['C-1'], message: 'reached five' };
          },
          project: () => n,
          selfCheck: () => bad,
        };
      },
    },
  };
}

const target = (m: Model<number, Ev>) => targetsOf(m as unknown as Parameters<typeof targetsOf>[0])[0]!;
const huntIt = (m: Model<number, Ev>, minimize = true) =>
  hunt(m as unknown as Parameters<typeof hunt>[0], target(m), 'lockstep', { seed: 1, numRuns: 1, minimize });

describe('lockstep hunt with a plan', () => {
  it('runs the plan instead of random commands, cuts it at the failing step and delta-debugs it', async () => {
    const m = counterModel({ steps: [inc, inc, dec, inc, inc, inc, inc, inc, dec], why: 'test' });
    const h = await huntIt(m);
    expect(h.problem).toBeNull();
    expect(h.trace?.violation?.message).toBe('reached five');
    expect(h.trace?.steps).toEqual([inc, inc, inc, inc, inc]);
    expect(h.trace?.note).toMatch(/planned path \(test\).*delta-debugged/);
  });

  it('without minimization keeps the plan up to the failing step', async () => {
    const m = counterModel({ steps: [inc, inc, dec, inc, inc, inc, inc, inc, dec], why: 'test' });
    const h = await huntIt(m, false);
    expect(h.trace?.steps).toHaveLength(7);
    expect(h.trace?.note).not.toMatch(/delta-debugged/);
  });

  it('reports a plan that runs clean', async () => {
    const h = await huntIt(counterModel({ steps: [inc, inc], why: 'test' }));
    expect(h.trace).toBeNull();
    expect(h.problem).toMatch(/ran clean in lockstep/);
  });

  it('refuses a plan that fails on the correct implementation too', async () => {
    const h = await huntIt(counterModel({ steps: [dec, inc, inc, inc, inc, inc, inc, inc], why: 'test' }));
    expect(h.trace).toBeNull();
    expect(h.problem).toMatch(/fails on the correct implementation too \(impl-check: dec at zero\)/);
  });
});

describe('minimizeTrace with a control variant', () => {
  // Under the mutant the trace fails at five; its subsequence [dec] fails the same way (property
  // and spec ids) on every variant, so only the control keeps ddmin on the mutant's own failure.
  const m = counterModel({ steps: [], why: 'unused' });
  const trace = makeTrace({
    model: 'counter',
    bounds: {},
    profile: 'fixed',
    mutant: 'five',
    engine: 'lockstep',
    initialIndex: 0,
    steps: [inc, inc, dec, dec, inc, inc, inc, inc, inc],
    violation: { kind: 'impl', property: 'impl-check', spec: ['C-1'], message: 'reached five' },
  });

  it('without it, wanders to a shorter failure every variant shares', async () => {
    const t = await minimizeTrace(m, trace);
    expect(t.steps).toEqual([dec]);
  });

  it('with it, keeps a failure the correct code does not have', async () => {
    const t = await minimizeTrace(m, trace, { control: { profile: 'fixed', mutant: null } });
    expect(t.steps).toEqual([inc, inc, inc, inc, inc]);
  });

  it('requires the same spec ids, not only the same property', async () => {
    const other = { ...trace, violation: { ...trace.violation!, spec: ['C-2'] } };
    const t = await minimizeTrace(m, other);
    expect(t.steps).toEqual(trace.steps);
  });
});

describe('lockstep hunt with operators switched off for a target', () => {
  // Without decs, the only ways to fail are five incs (C-1) and a crash (C-9).
  it('never crashes, so the crash-only violation C-9 cannot be found before the target', async () => {
    const m = counterModel({ steps: [], why: 'unused' }, false);
    const t = targetsOf(m as unknown as Parameters<typeof targetsOf>[0]).find((x) => x.id === 'old-five')!;
    expect(t.operators).toEqual({ crashes: false });
    for (const seed of [1, 2, 3]) {
      const h = await hunt(m as unknown as Parameters<typeof hunt>[0], t, 'lockstep', { seed, numRuns: 200, minimize: false });
      expect(h.problem).toBeNull();
      expect(h.trace?.violation?.spec).toEqual(['C-1']);
      expect(h.trace?.steps.some((e) => e.type.startsWith('@'))).toBe(false);
    }
  });

  it('with crashes on, the same runs do reach the crash (so switching them off is what keeps C-9 out)', async () => {
    const m = counterModel({ steps: [], why: 'unused' }, false);
    const t = { ...targetsOf(m as unknown as Parameters<typeof targetsOf>[0]).find((x) => x.id === 'old-five')! };
    delete (t as { operators?: unknown }).operators;
    const specs = await Promise.all(
      [1, 2, 3].map(async (seed) => (await hunt(m as unknown as Parameters<typeof hunt>[0], t, 'lockstep', { seed, numRuns: 200, minimize: false })).trace?.violation?.spec[0]),
    );
    expect(specs).toContain('C-9');
  });
});

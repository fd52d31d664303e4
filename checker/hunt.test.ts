// The lockstep hunt with a planned path (MutantInfo.plan) and trace minimization with a control
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

function counterModel(plan: LockstepPlan): Model<number, Ev> {
  return {
    id: 'counter',
    title: 'a counter',
    spec: 'none',
    profiles: ['fixed'],
    defaultProfile: 'fixed',
    bounds: {},
    mutants: [{ id: 'five', title: 'fails at five', fix: 'none', breaks: ['C-1'], killedBy: ['lockstep'], plan }],
    shipped: [],
    machines: [],
    instance: () => ({
      system: {
        initial: () => [0],
        events: () => [inc, dec],
        step: (n, e) => (e.type === 'inc' ? n + 1 : e.type === 'dec' ? n - 1 : null),
        key: (n) => String(n),
      },
      invariants: [],
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
            if (e.type === 'dec' && n === 0) bad ??= { spec: ['C-1'], message: 'dec at zero' };
            n += e.type === 'inc' ? 1 : -1;
            if (variant.mutant === 'five' && n === 5) bad ??= { spec: ['C-1'], message: 'reached five' };
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

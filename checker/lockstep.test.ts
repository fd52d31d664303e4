// projectionMismatch: a lockstep disagreement names the projection fields that differ and the spec
// rules the instance maps them to, so a mutant seen only as a projection difference still counts
// against its rule.
import { describe, expect, it } from 'vitest';
import { lockstep, projectionMismatch } from './lockstep.js';
import type { Ev, Instance, Model } from './model.js';

const inst = (projectionSpec?: (f: string) => readonly string[]): Instance<unknown, Ev> =>
  ({
    system: { initial: () => [], events: () => [], step: () => null, key: () => '' },
    invariants: [],
    describe: () => '',
    valueOf: () => '',
    ...(projectionSpec ? { projectionSpec } : {}),
  }) as Instance<unknown, Ev>;

describe('projectionMismatch', () => {
  it('is null when both sides project equal values, whatever the key order', () => {
    expect(projectionMismatch(inst(), { a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }, 'now')).toBeNull();
  });

  it('names the differing fields and the union of their rules', () => {
    const spec = (f: string): readonly string[] => ({ free: ['R-17'], devices: ['R-3', 'R-14'], held: ['R-10'] })[f] ?? [];
    const v = projectionMismatch(inst(spec), { free: 4, devices: [1], held: true, tid: 0 }, { free: 3, devices: [2], held: true, tid: 0 }, 'after 2 steps');
    expect(v?.property).toBe('projection');
    expect(v?.spec).toEqual(['R-3', 'R-14', 'R-17']);
    expect(v?.message).toMatch(/^implementation and machine disagree on devices, free after 2 steps:/);
  });

  it('counts a field only one side has, and names no rule without a mapping', () => {
    const v = projectionMismatch(inst(), { a: 1 }, { a: 1, broken: 'x' }, 'now');
    expect(v?.spec).toEqual([]);
    expect(v?.message).toContain('disagree on broken now');
  });
});

// The lockstep runner with an impl whose every event goes through apply (awaitApply) and that can
// start from several of the model's initial states (initialStates): the start is part of the run.
interface Toy {
  readonly from: number;
  readonly n: number;
}

function toyModel(starts: readonly number[], applied: number[]): Model<Toy, Ev> {
  return {
    id: 'toy',
    title: 'a counter started from one of two initial states',
    spec: 'none',
    profiles: ['p'],
    defaultProfile: 'p',
    bounds: {},
    mutants: [],
    shipped: [],
    machines: [],
    instance: () => ({
      system: {
        initial: () => [
          { from: 0, n: 0 },
          { from: 1, n: 0 },
        ],
        events: () => [{ type: 'inc' }],
        step: (s) => (s.n < 4 ? { ...s, n: s.n + 1 } : null),
        key: (s) => `${s.from}:${s.n}`,
      },
      invariants: [],
      describe: (s) => `${s.from}:${s.n}`,
      valueOf: () => 'counting',
      project: (s) => s.n,
    }),
    impl: {
      async: true,
      awaitApply: true,
      // Internal only: without awaitApply the runner would never issue it.
      isExternal: () => false,
      initialStates: () => starts,
      create: (_v, _b, _g, initial = 0) => {
        let n = 0;
        return {
          apply: async () => {
            applied.push(initial);
            await new Promise<void>((r) => setImmediate(r));
            n += initial === 1 ? 2 : 1; // wrong only when started from the second initial state
          },
          project: () => n,
        };
      },
    },
  };
}

describe('lockstep with awaitApply and initialStates', () => {
  it('issues internal events through apply and agrees from a start the impl gets right', async () => {
    const applied: number[] = [];
    const r = await lockstep(toyModel([0], applied), {}, { profile: 'p', mutant: null }, { seed: 5, numRuns: 20 });
    expect(r.ok).toBe(true);
    expect(applied.length).toBeGreaterThan(0);
    expect(new Set(applied)).toEqual(new Set([0]));
  });

  it('starts runs from every listed initial state and records the one that fails', async () => {
    const applied: number[] = [];
    const r = await lockstep(toyModel([0, 1], applied), {}, { profile: 'p', mutant: null }, { seed: 5, numRuns: 50 });
    expect(r.failure?.violation.property).toBe('projection');
    expect(r.failure?.initialIndex).toBe(1);
    expect(r.failure?.steps).toEqual([{ type: 'inc' }]);
  });
});

// projectionMismatch: a lockstep disagreement names the projection fields that differ and the spec
// rules the instance maps them to, so a mutant seen only as a projection difference still counts
// against its rule.
import { describe, expect, it } from 'vitest';
import { projectionMismatch } from './lockstep.js';
import type { Ev, Instance } from './model.js';

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

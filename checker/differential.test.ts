import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { disagreementWithXState } from './differential.js';
import { defineMachine, type MState } from './machine.js';
import type { Ev } from './model.js';
import { testSeed } from './seed.js';
import { kobjectEvents, kobjectMachine } from '../machines/kobject/machine.js';

describe('compiled stepper vs XState', () => {
  it('agree on random kobject event sequences under both profiles', () => {
    const seed = testSeed('kobject xstate differential');
    const b = { readers: 1, getters: 1, foreign: 1, openers: 1 };
    for (const profile of ['fixed', 'linux-3.14']) {
      const m = kobjectMachine(b, { profile, mutant: null });
      const alphabet = kobjectEvents(b);
      fc.assert(
        fc.property(fc.array(fc.nat({ max: alphabet.length - 1 }), { maxLength: 40 }), (picks) => {
          expect(disagreementWithXState(m, m.initial(), picks.map((p) => alphabet[p]!))).toBeNull();
        }),
        { seed, numRuns: 100 },
      );
    }
  });

  it('reports a disagreement when the two really differ', () => {
    // A guard that reads mutable outside state makes the two runs diverge: the check must see it.
    let flip = false;
    const m = defineMachine<{ n: number }, Ev>({
      id: 'odd',
      context: { n: 0 },
      regions: { odd: { initial: 'a', states: { a: { on: { GO: { target: 'b', guard: () => (flip = !flip) } } }, b: {} } } },
    });
    const from: MState<{ n: number }> = m.initial();
    expect(disagreementWithXState(m, from, [{ type: 'GO' }])).toMatch(/after step 1 \(GO\)/);
  });
});

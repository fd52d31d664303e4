import { describe, expect, it } from 'vitest';
import { machineSystem } from './compose.js';
import { defineFlatMachine, type MState } from './machine.js';
import { asModel, type Ev, type Model } from './model.js';
import { coverAtOwnBounds, scenarioCoverage } from './scenarios.js';

// A counter that counts up to `max` (a bound), with a STATUS query the explorer never tries.
type C = { n: number };
const counter = (max: number) =>
  defineFlatMachine<C, Ev>({
    id: 'counter',
    context: { n: 0 },
    initial: 'run',
    states: { run: { on: { INC: { guard: (c) => c.n < max, update: (c) => ({ n: c.n + 1 }) }, STATUS: {} } } },
  });

const model: Model<MState<C>, Ev> = {
  id: 'counter',
  title: 'counter',
  spec: '-',
  profiles: ['p'],
  defaultProfile: 'p',
  bounds: { max: { default: 2, min: 1, max: 100_000, describe: 'largest count' } },
  mutants: [],
  shipped: [],
  machines: [],
  instance: (b) => {
    const m = counter(b['max']!);
    return { system: machineSystem(m, () => [{ type: 'INC' }]), invariants: [], describe: (s) => `n=${s.context.n}`, valueOf: () => 'run', validEnd: () => true };
  },
  scenarios: [
    { name: 'two', source: 't', steps: [{ type: 'INC' }, { type: 'INC' }] },
    { name: 'three', source: 't', bounds: { max: 3 }, steps: [{ type: 'INC' }, { type: 'INC' }, { type: 'INC' }] },
    { name: 'huge', source: 't', bounds: { max: 50_000 }, steps: [{ type: 'INC' }] },
    { name: 'queried', source: 't', bounds: { max: 3 }, steps: [{ type: 'INC' }, { type: 'STATUS' }] },
    { name: 'impossible', source: 't', steps: [{ type: 'INC' }, { type: 'INC' }, { type: 'INC' }] },
  ],
};

describe('scenario coverage', () => {
  it('covers at the defaults, then at a scenario\'s own bounds within the budget, never a path with untried events', () => {
    const m = asModel(model);
    const atDefaults = scenarioCoverage(m, 'p', { max: 2 });
    const by = (name: string) => atDefaults.find((c) => c.name === name)!;
    expect(by('two')).toMatchObject({ feasible: true, explorable: true, covered: true });
    expect(by('three')).toMatchObject({ feasible: true, explorable: true, covered: false });
    expect(by('queried')).toMatchObject({ feasible: true, explorable: false, covered: false });
    expect(by('impossible')).toMatchObject({ feasible: false, covered: false });
    const own = coverAtOwnBounds(m, 'p', atDefaults, { maxStates: 1000, maxSeconds: 10 });
    const after = (name: string) => own.find((c) => c.name === name)!;
    expect(after('three')).toMatchObject({ covered: true, why: 'explored at its own bounds (4 states)' });
    expect(after('huge').covered).toBe(false);
    expect(after('huge').why).toMatch(/beyond this run's budget/);
    expect(after('queried').covered).toBe(false);
    expect(after('impossible').covered).toBe(false);
  });
});

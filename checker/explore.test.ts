import { describe, expect, it } from 'vitest';
import { machineSystem } from './compose.js';
import { explore, progressViolation } from './explore.js';
import { defineFlatMachine, defineMachine, type MState } from './machine.js';
import type { Ev, Instance } from './model.js';
import { crashEvents } from './operators.js';

type C = { n: number };
const counter = defineFlatMachine<C, Ev>({
  id: 'counter',
  context: { n: 0 },
  initial: 'run',
  states: {
    run: {
      on: {
        INC: { guard: (c) => c.n < 3, update: (c) => ({ n: c.n + 1 }) },
        STOP: { target: 'stopped' },
      },
    },
    stopped: {},
  },
});

function inst(over: Partial<Omit<Instance<MState<C>, Ev>, 'valueOf'>> = {}): Instance<MState<C>, Ev> {
  return {
    system: machineSystem(counter, () => [{ type: 'INC' }, { type: 'STOP' }]),
    invariants: [],
    describe: (s) => `${s.value[0]} n=${s.context.n}`,
    valueOf: (s) => s.value.join(),
    validEnd: () => true,
    ...over,
  };
}

describe('explorer', () => {
  it('uses a system\'s fast paths only while they belong to its own step and key', () => {
    const base = machineSystem(counter, () => [{ type: 'INC' }, { type: 'STOP' }]);
    expect(base.successors?.of).toBe(base.step);
    expect(base.units?.of).toBe(base.key);
    // A coarser key (n forgotten once stopped) and a step that never stops, by spreading the system:
    // the machine's own units and successors no longer describe it and must not be used.
    const coarse = { ...base, key: (s: MState<C>) => (s.value[0] === 'stopped' ? 'stopped' : `run${s.context.n}`) };
    expect(explore(inst({ system: coarse })).states).toBe(5);
    const noStop = { ...base, step: (s: MState<C>, e: Ev) => (e.type === 'STOP' ? null : base.step(s, e)) };
    expect(explore(inst({ system: noStop })).states).toBe(4);
    // Replacing the event list (step kept) must be honoured too: the fast path steps the new list.
    const onlyInc = { ...base, events: () => [{ type: 'INC' }] };
    expect(explore(inst({ system: onlyInc })).states).toBe(4);
    const none = { ...base, events: () => [] };
    expect(explore(inst({ system: none })).states).toBe(1);
  });

  it('counts states, transitions and depth exactly', () => {
    const r = explore(inst());
    // run n=0..3 and stopped n=0..3; INC enabled for n<3 in run, STOP in every run state.
    expect(r.states).toBe(8);
    expect(r.transitions).toBe(3 + 4);
    expect(r.depth).toBe(4);
    expect(r.complete).toBe(true);
    expect(r.eventCoverage).toEqual({ INC: 3, STOP: 4 });
  });

  it('returns the shortest path to an invariant violation', () => {
    const r = explore(inst({ invariants: [{ spec: ['T-1'], name: 'small', check: (s) => (s.context.n >= 2 ? `n=${s.context.n}` : null) }] }));
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]!.path.map((e) => e.type)).toEqual(['INC', 'INC']);
    expect(r.violations[0]!.spec).toEqual(['T-1']);
    expect(r.complete).toBe(false);
  });

  it('reports deadlocks in states that are not valid ends', () => {
    const r = explore(inst({ validEnd: (s) => s.value[0] === 'run' }));
    expect(r.violations[0]!.kind).toBe('deadlock');
    expect(r.violations[0]!.path.map((e) => e.type)).toEqual(['STOP']);
  });

  it('finds states from which no quiescent state is reachable (AG EF)', () => {
    const r = explore(inst({ quiescent: (s) => s.value[0] === 'run' && s.context.n === 3, progressSpec: ['T-LIVE'] }));
    const v = r.violations.find((x) => x.kind === 'progress');
    expect(v?.spec).toEqual(['T-LIVE']);
    expect(v?.path.map((e) => e.type)).toEqual(['STOP']);
  });

  it('marks a run cut by max-states as incomplete', () => {
    const r = explore(inst(), { maxStates: 3 });
    expect(r.complete).toBe(false);
    expect(r.stopped).toBe('max-states');
  });

  it('progressViolation returns -1 when every state reaches a quiescent one', () => {
    const from = Int32Array.from([0, 1]);
    const to = Int32Array.from([1, 0]);
    expect(progressViolation(2, from, to, (i) => i === 0)).toBe(-1);
    expect(progressViolation(3, from, to, (i) => i === 0)).toBe(2);
  });
});

describe('parallel machines', () => {
  it('takes an event in every region that enables it, guards on the pre-event context', () => {
    const m = defineMachine<{ a: number; b: number }, Ev>({
      id: 'p',
      context: { a: 0, b: 0 },
      regions: {
        r1: { initial: 'x', states: { x: { on: { GO: { target: 'y', update: (c) => ({ ...c, a: c.a + 1 }) } } }, y: {} } },
        r2: { initial: 'x', states: { x: { on: { GO: { target: 'y', guard: (c) => c.a === 0, update: (c) => ({ ...c, b: c.a + 10 }) } } }, y: {} } },
      },
    });
    const s = m.step(m.initial(), { type: 'GO' })!;
    expect(s.value).toEqual(['y', 'y']);
    // r2's update sees r1's assign (XState applies assigns in order), its guard saw a = 0.
    expect(s.context).toEqual({ a: 1, b: 11 });
    expect(m.step(s, { type: 'GO' })).toBeNull();
  });
});

describe('crash operator', () => {
  it('enumerates every subset of the volatile writes, and torn variants', () => {
    const surface = { volatileWrites: () => 3, tearable: (_s: null, i: number) => i === 0, crash: () => null };
    const { events, truncated } = crashEvents(surface, null, 8);
    expect(truncated).toBe(false);
    const plain = events.filter((e) => e.torn === null);
    expect(plain).toHaveLength(8);
    // torn write 0 only when 0 is not kept: 4 subsets.
    expect(events.filter((e) => e.torn === 0)).toHaveLength(4);
  });
  it('says when it had to cut the enumeration', () => {
    const surface = { volatileWrites: () => 12, crash: () => null };
    expect(crashEvents(surface, null, 8).truncated).toBe(true);
  });
});

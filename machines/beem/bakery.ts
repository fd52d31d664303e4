// BEEM bakery.1: Lamport's bakery algorithm for N = 2 processes with tickets capped at 9.
// Source: plug-obp/beem-benchmark, original-benchmark/bakery/generated_files/bakery.1.dve
// (globals `byte choosing[2]`, `byte number[2]`; processes P_0, P_1 with locals `byte j, max`;
// `system async`). BEEM state space: 1506 states, 2697 edges, 101 BFS levels. The cap
// (`max < 9`, the file's "artificial constraint") makes a process that would draw ticket 10 stuck in
// `choose`, so the state space is finite and has deadlocks.
//
// Guards are kept as the DVE file has them, with short-circuit `and`/`or` (DiVinE evaluates them
// lazily, so `j < 2 and number[j] > max` never reads number[2]).

import { at, byte, dveSystem, setAt, type DveProcess, type DveSystem } from './dve.js';

export interface BakeryLocal {
  readonly j: number;
  readonly max: number;
}

export interface BakeryCtx {
  readonly choosing: readonly number[];
  readonly number: readonly number[];
  /** Locals of P_i at index i. */
  readonly local: readonly BakeryLocal[];
}

export const BAKERY_1_N = 2;
export const BAKERY_1_MAX = 9;

function withLocal(c: BakeryCtx, i: number, l: BakeryLocal): BakeryCtx {
  const local = c.local.slice();
  local[i] = l;
  return { choosing: c.choosing, number: c.number, local };
}

function proc(i: number, n: number, cap: number): DveProcess<BakeryCtx> {
  const me = (c: BakeryCtx): BakeryLocal => c.local[i]!;
  return {
    name: `P_${i}`,
    states: ['NCS', 'choose', 'for_loop', 'wait', 'CS'],
    init: 'NCS',
    trans: [
      // NCS -> choose: raise choosing, start the scan for the highest ticket.
      { from: 'NCS', to: 'choose', effect: (c) => withLocal({ ...c, choosing: setAt(c.choosing, i, 1) }, i, { j: 0, max: 0 }) },
      // choose -> choose: a higher ticket; max = number[j] first, then j + 1.
      {
        from: 'choose',
        to: 'choose',
        guard: (c) => me(c).j < n && at(c.number, me(c).j) > me(c).max,
        effect: (c) => {
          const max = at(c.number, me(c).j);
          return withLocal(c, i, { j: byte(me(c).j + 1), max });
        },
      },
      // choose -> choose: not higher.
      {
        from: 'choose',
        to: 'choose',
        guard: (c) => me(c).j < n && at(c.number, me(c).j) <= me(c).max,
        effect: (c) => withLocal(c, i, { j: byte(me(c).j + 1), max: me(c).max }),
      },
      // choose -> for_loop: take max + 1 (only below the cap), lower choosing.
      {
        from: 'choose',
        to: 'for_loop',
        guard: (c) => me(c).j === n && me(c).max < cap,
        effect: (c) => {
          const d = { ...c, number: setAt(c.number, i, byte(me(c).max + 1)) };
          return withLocal({ ...d, choosing: setAt(d.choosing, i, 0) }, i, { j: 0, max: me(d).max });
        },
      },
      // for_loop -> wait: process j has finished choosing.
      { from: 'for_loop', to: 'wait', guard: (c) => me(c).j < n && at(c.choosing, me(c).j) === 0 },
      // wait -> for_loop: process j has no ticket, a later one, or an equal one (the DVE guard's
      // tie-break `i <= j` is kept verbatim).
      {
        from: 'wait',
        to: 'for_loop',
        guard: (c) => {
          const nj = at(c.number, me(c).j);
          const ni = at(c.number, i);
          return nj === 0 || nj > ni || (nj === ni && i <= me(c).j);
        },
        effect: (c) => withLocal(c, i, { j: byte(me(c).j + 1), max: me(c).max }),
      },
      { from: 'for_loop', to: 'CS', guard: (c) => me(c).j === n },
      { from: 'CS', to: 'NCS', effect: (c) => ({ ...c, number: setAt(c.number, i, 0) }) },
    ],
  };
}

/** bakery with n processes and ticket cap (n = 2, cap = 9 is BEEM's bakery.1). */
export function bakerySystem(n: number = BAKERY_1_N, cap: number = BAKERY_1_MAX): DveSystem<BakeryCtx> {
  if (!Number.isInteger(n) || n < 2) throw new Error(`bakery needs at least 2 processes, got ${n}`);
  if (!Number.isInteger(cap) || cap < 1 || cap > 254) throw new Error(`bakery ticket cap must be 1..254, got ${cap}`);
  const zeros = (): number[] => new Array<number>(n).fill(0);
  const ctx: BakeryCtx = { choosing: zeros(), number: zeros(), local: Array.from({ length: n }, () => ({ j: 0, max: 0 })) };
  return dveSystem<BakeryCtx>('bakery', ctx, Array.from({ length: n }, (_, i) => proc(i, n, cap)));
}

// BEEM peterson.1: Peterson's filter mutual-exclusion algorithm for N = 3 processes.
// Source: plug-obp/beem-benchmark, original-benchmark/peterson/generated_files/peterson.1.dve
// (globals `byte pos[3]`, `byte step[3]`; processes P_0..P_2 with locals `byte j=0, k=0`;
// `system async`). BEEM state space: 12498 states, 33369 edges, 54 BFS levels.
//
// Process i walks levels j = 1..N-1: it announces its level (pos[i] = j), makes itself the victim
// of that level (step[j-1] = i), then scans k = 0..N-1 and climbs when it is no longer the victim
// or nobody else is at its level or above. The scan's guard is kept exactly as the DVE file has it
// (`k == i || pos[k] < j`), including evaluation order.

import { at, byte, dveSystem, setAt, type DveProcess, type DveSystem } from './dve.js';

export interface PetersonCtx {
  readonly pos: readonly number[];
  readonly step: readonly number[];
  /** The locals of P_i (DVE `byte j, k`) at index i: a flat state vector, as DVE keeps it. */
  readonly j: readonly number[];
  readonly k: readonly number[];
}

export const PETERSON_1_N = 3;

// Effects build the next context as one literal over the unchanged arrays (the state vector's
// other variables are shared, not copied).
function proc(i: number, n: number): DveProcess<PetersonCtx> {
  return {
    name: `P_${i}`,
    states: ['NCS', 'CS', 'wait', 'q2', 'q3'],
    init: 'NCS',
    trans: [
      // NCS -> wait: start at level 1.
      { from: 'NCS', to: 'wait', effect: (c) => ({ pos: c.pos, step: c.step, j: setAt(c.j, i, 1), k: c.k }) },
      // wait -> q2: announce the level.
      { from: 'wait', to: 'q2', guard: (c) => at(c.j, i) < n, effect: (c) => ({ pos: setAt(c.pos, i, at(c.j, i)), step: c.step, j: c.j, k: c.k }) },
      // q2 -> q3: become the level's victim, start the scan.
      { from: 'q2', to: 'q3', effect: (c) => ({ pos: c.pos, step: setAt(c.step, at(c.j, i) - 1, i), j: c.j, k: setAt(c.k, i, 0) }) },
      // q3 -> q3: process k is no threat (it is me, or below my level).
      {
        from: 'q3',
        to: 'q3',
        guard: (c) => {
          const k = at(c.k, i);
          return k < n && (k === i || at(c.pos, k) < at(c.j, i));
        },
        effect: (c) => ({ pos: c.pos, step: c.step, j: c.j, k: setAt(c.k, i, byte(at(c.k, i) + 1)) }),
      },
      // q3 -> wait: someone else became the victim, or the scan found nobody ahead; climb.
      {
        from: 'q3',
        to: 'wait',
        guard: (c) => at(c.step, at(c.j, i) - 1) !== i || at(c.k, i) === n,
        effect: (c) => ({ pos: c.pos, step: c.step, j: setAt(c.j, i, byte(at(c.j, i) + 1)), k: c.k }),
      },
      { from: 'wait', to: 'CS', guard: (c) => at(c.j, i) === n },
      { from: 'CS', to: 'NCS', effect: (c) => ({ pos: setAt(c.pos, i, 0), step: c.step, j: c.j, k: c.k }) },
    ],
  };
}

/** peterson with n processes (n = 3 is BEEM's peterson.1). */
export function petersonSystem(n: number = PETERSON_1_N): DveSystem<PetersonCtx> {
  if (!Number.isInteger(n) || n < 2) throw new Error(`peterson needs at least 2 processes, got ${n}`);
  const zeros = (): number[] => new Array<number>(n).fill(0);
  const ctx: PetersonCtx = { pos: zeros(), step: zeros(), j: zeros(), k: zeros() };
  return dveSystem<PetersonCtx>('peterson', ctx, Array.from({ length: n }, (_, i) => proc(i, n)));
}

// BEEM phils.1: dining philosophers, N = 4, each takes its left fork then its right one.
// Source: plug-obp/beem-benchmark, original-benchmark/phils/generated_files/phils.1.dve
// (processes phil_0..phil_3, global `byte fork[4]`, `system async`). BEEM state space: 80 states,
// 212 edges, 10 BFS levels (phils.1.stat.xml); the system deadlocks when every philosopher holds
// one fork.

import { at, dveSystem, setAt, type DveProcess, type DveSystem } from './dve.js';

export interface PhilsCtx {
  /** fork[i] = 1 while some philosopher holds fork i. */
  readonly fork: readonly number[];
}

export const PHILS_1_N = 4;

function phil(i: number, n: number): DveProcess<PhilsCtx> {
  const left = i;
  const right = (i + 1) % n;
  return {
    name: `phil_${i}`,
    states: ['think', 'one', 'eat', 'finish'],
    init: 'think',
    trans: [
      { from: 'think', to: 'one', guard: (c) => at(c.fork, left) === 0, effect: (c) => ({ fork: setAt(c.fork, left, 1) }) },
      { from: 'one', to: 'eat', guard: (c) => at(c.fork, right) === 0, effect: (c) => ({ fork: setAt(c.fork, right, 1) }) },
      { from: 'eat', to: 'finish', effect: (c) => ({ fork: setAt(c.fork, left, 0) }) },
      { from: 'finish', to: 'think', effect: (c) => ({ fork: setAt(c.fork, right, 0) }) },
    ],
  };
}

/** phils with n philosophers (n = 4 is BEEM's phils.1). */
export function philsSystem(n: number = PHILS_1_N): DveSystem<PhilsCtx> {
  if (!Number.isInteger(n) || n < 2) throw new Error(`phils needs at least 2 philosophers, got ${n}`);
  const procs = Array.from({ length: n }, (_, i) => phil(i, n));
  return dveSystem<PhilsCtx>('phils', { fork: new Array<number>(n).fill(0) }, procs);
}

// Whole-state-graph helpers for the engine's self-validation: a plain BFS over any System that
// keeps every key and every labelled edge, and a System that steps a DmMachine through XState's own
// pure `transition()` instead of the compiled stepper. Comparing the two graphs checks the compiled
// `.step` of checker/machine.ts against XState semantics on every reachable state.

import { initialTransition, transition, type AnyMachineSnapshot } from 'xstate';
import { machineKey } from '../../checker/compose.js';
import type { DmMachine, MState } from '../../checker/machine.js';
import type { Ev, System } from '../../checker/model.js';

export interface StateGraph {
  readonly keys: ReadonlySet<string>;
  /** `from -type{params}-> to` for every enabled (state, event) pair; a multiset as a sorted list. */
  readonly edges: readonly string[];
  /** Number of BFS levels (max depth + 1). */
  readonly levels: number;
  /** States per BFS level. */
  readonly perLevel: readonly number[];
}

/** Exhaustive BFS keeping the whole graph. Throws past `limit` states (these graphs are small). */
export function stateGraph<S, E extends Ev>(sys: System<S, E>, limit = 200_000): StateGraph {
  const depth = new Map<string, number>();
  const queue: S[] = [];
  const edges: string[] = [];
  for (const s of sys.initial()) {
    const k = sys.key(s);
    if (!depth.has(k)) {
      depth.set(k, 0);
      queue.push(s);
    }
  }
  const perLevel: number[] = [];
  for (let head = 0; head < queue.length; head++) {
    const s = queue[head]!;
    const k = sys.key(s);
    const d = depth.get(k)!;
    perLevel[d] = (perLevel[d] ?? 0) + 1;
    for (const e of sys.events(s)) {
      const n = sys.step(s, e);
      if (n === null) continue;
      const nk = sys.key(n);
      edges.push(`${k} -${JSON.stringify(e)}-> ${nk}`);
      if (!depth.has(nk)) {
        if (depth.size >= limit) throw new Error(`stateGraph: more than ${limit} states; raise the limit or use explore()`);
        depth.set(nk, d + 1);
        queue.push(n);
      }
    }
  }
  edges.sort();
  return { keys: new Set(depth.keys()), edges, levels: perLevel.length, perLevel };
}

/**
 * The machine stepped by XState. An event is enabled when XState selects a transition for it
 * (`getTransitionData`, which evaluates the guards exactly as `transition()` does); a state-level
 * self-loop without actions is enabled even though it leaves the snapshot unchanged.
 */
export function xstateSystem<C, E extends Ev>(m: DmMachine<C, E>, events: (s: MState<C>) => readonly E[]): System<AnyMachineSnapshot, E> {
  const logic = m.xstate;
  const toMState = (snap: AnyMachineSnapshot): MState<C> => ({ value: m.valueFromXState(snap.value), context: snap.context as C });
  return {
    initial: () => [initialTransition(logic)[0]],
    events: (snap) => events(toMState(snap)),
    step: (snap, e) => {
      if (snap.status !== 'active') throw new Error(`XState snapshot is ${snap.status}, not active`);
      if (logic.getTransitionData(snap, e).length === 0) return null;
      return transition(logic, snap, e)[0];
    },
    key: (snap) => machineKey(toMState(snap)),
  };
}

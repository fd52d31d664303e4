// Exhaustive breadth-first explorer. Checks every invariant on every reachable state, detects
// deadlocks, checks AG EF quiescent (from every reachable state a quiescent state stays reachable)
// and returns the shortest path to the first violation of each kind. Limits stop it with the result
// marked incomplete, never silently.

import type { Ev, Instance } from './model.js';
import { defaultOperatorOptions, isOperatorEvent, withOperators, type OperatorOptions } from './operators.js';
import { visitedStates } from './state-store.js';

export interface ExploreOptions {
  readonly maxStates?: number;
  readonly maxSeconds?: number;
  /** Keep exploring after a violation (collects the first violation of each property). */
  readonly allViolations?: boolean;
  readonly checkDeadlock?: boolean;
  readonly checkProgress?: boolean;
  /** Keep the edge list (needed for the progress check and state-graph diagrams). */
  readonly keepGraph?: boolean;
  readonly operators?: OperatorOptions;
  /** Called about every 250 ms with the running counts. */
  readonly onProgress?: (p: { states: number; transitions: number; depth: number; seconds: number }) => void;
}

export type ViolationKind = 'invariant' | 'deadlock' | 'progress';

export interface Violation {
  readonly kind: ViolationKind;
  readonly property: string;
  readonly spec: readonly string[];
  readonly message: string;
  /** Events from the initial state `initialIndex` to the violating state. */
  readonly path: readonly Ev[];
  readonly initialIndex: number;
}

export interface ExploreResult {
  readonly complete: boolean;
  /** Why it stopped early, if it did. */
  readonly stopped: null | 'violation' | 'max-states' | 'max-seconds';
  readonly crashSubsetsTruncated: boolean;
  readonly states: number;
  readonly transitions: number;
  readonly depth: number;
  readonly seconds: number;
  readonly violations: readonly Violation[];
  /** Per event type: how many enabled transitions carried it. */
  readonly eventCoverage: Readonly<Record<string, number>>;
  /** Per abstract state value: how many distinct states have it (counted when first read). */
  readonly valueCoverage: Readonly<Record<string, number>>;
  readonly graph?: ExploredGraph;
}

export interface ExploredGraph {
  readonly values: readonly string[];
  readonly edgeFrom: Int32Array;
  readonly edgeTo: Int32Array;
  readonly edgeType: readonly string[];
  readonly initial: readonly number[];
}

class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

// A JS Map holds at most 2^24 entries (states keyed by string).
const MAP_LIMIT = 16_000_000;

export function explore<S>(inst: Instance<S, Ev>, opts: ExploreOptions = {}): ExploreResult {
  const sys = withOperators(inst, opts.operators ?? defaultOperatorOptions);
  const { step, events } = sys;
  // The fast path, while it belongs to the system's own step (withOperators keeps it only without operators).
  const fast = sys.successors;
  const successors = fast !== undefined && fast.of === step ? fast.each : undefined;
  const maxStates = Math.min(opts.maxStates ?? 5_000_000, MAP_LIMIT);
  const deadline = opts.maxSeconds !== undefined ? Date.now() + opts.maxSeconds * 1000 : Infinity;
  const checkProgress = (opts.checkProgress ?? true) && inst.quiescent !== undefined;
  const wantGraph = opts.keepGraph ?? false;
  const keepGraph = wantGraph || checkProgress;
  const checkDeadlock = opts.checkDeadlock ?? true;
  const validEnd = inst.validEnd ?? inst.quiescent ?? (() => false);

  const t0 = performance.now();
  const visited = visitedStates<S>(inst.system);
  const parent = new IntList();
  const parentEvent: (Ev | null)[] = [];
  const depthOf = new IntList();
  const edgeFrom = new IntList();
  const edgeTo = new IntList();
  const edgeType = new IntList();
  const typeIds = new Map<string, number>();
  // One counter object per event type: a transition costs one lookup (none when it repeats the
  // previous transition's event object).
  const eventCoverage = new Map<string, { n: number }>();
  let lastEvent: Ev | null = null;
  let lastCount = { n: 0 };
  const violations: Violation[] = [];
  const violated = new Set<string>();
  const initialIdx: number[] = [];
  let transitions = 0;
  let stopped: ExploreResult['stopped'] = null;
  let lastReport = t0;

  const pathTo = (i: number): { path: Ev[]; initialIndex: number } => {
    const path: Ev[] = [];
    let cur = i;
    while (parent.data[cur]! >= 0) {
      path.push(parentEvent[cur]!);
      cur = parent.data[cur]!;
    }
    path.reverse();
    return { path, initialIndex: initialIdx.indexOf(cur) };
  };

  const record = (kind: ViolationKind, property: string, spec: readonly string[], message: string, at: number): boolean => {
    if (violated.has(property)) return false;
    violated.add(property);
    violations.push({ kind, property, spec, message, ...pathTo(at) });
    return !opts.allViolations;
  };

  /** The number of state s, and whether it is new (then its path is recorded and it is checked). */
  const add = (s: S, from: number, e: Ev | null): number => {
    const seen = visited.add(s);
    if (seen >= 0) return seen;
    const i = visited.size - 1;
    parent.push(from);
    parentEvent.push(e);
    depthOf.push(from >= 0 ? depthOf.data[from]! + 1 : 0);
    return i;
  };

  const checkState = (i: number, s: S): boolean => {
    for (const inv of inst.invariants) {
      if (violated.has(inv.name)) continue;
      const msg = inv.check(s);
      if (msg !== null && record('invariant', inv.name, inv.spec, msg, i)) return true;
    }
    return false;
  };

  for (const s of sys.initial()) {
    const before = visited.size;
    const i = add(s, -1, null);
    if (visited.size > before) initialIdx.push(i);
  }

  // One enabled transition out of state `from`: count it, store the target, check it when new.
  let from = -1;
  let protocolMoves = 0;
  let halted = false;
  const visit = (e: Ev, next: S): void => {
    if (halted) return;
    transitions++;
    if (!sys.operators || !isOperatorEvent(e)) protocolMoves++;
    if (e !== lastEvent) {
      lastEvent = e;
      let c = eventCoverage.get(e.type);
      if (c === undefined) eventCoverage.set(e.type, (c = { n: 0 }));
      lastCount = c;
    }
    lastCount.n++;
    const before = visited.size;
    const j = add(next, from, e);
    if (keepGraph) {
      edgeFrom.push(from);
      edgeTo.push(j);
      let tid = typeIds.get(e.type);
      if (tid === undefined) typeIds.set(e.type, (tid = typeIds.size));
      edgeType.push(tid);
    }
    if (visited.size > before && checkState(j, next)) halted = true;
  };

  let head = 0;
  outer: {
    for (let i = 0; i < visited.size; i++) {
      if (checkState(i, visited.at(i))) {
        stopped = 'violation';
        break outer;
      }
    }
    while (head < visited.size) {
      if (visited.size >= maxStates) {
        stopped = 'max-states';
        break;
      }
      // The clock is read every 64 expansions: often enough for 250 ms reports, cheap for small models.
      const now = (head & 63) === 0 ? performance.now() : lastReport;
      if (now - lastReport > 250) {
        lastReport = now;
        if (Date.now() > deadline) {
          stopped = 'max-seconds';
          break;
        }
        opts.onProgress?.({ states: visited.size, transitions, depth: depthOf.data[head]!, seconds: (now - t0) / 1000 });
      }
      const i = head++;
      const s = visited.at(i);
      from = i;
      protocolMoves = 0;
      if (successors !== undefined) {
        successors(s, events(s), visit);
      } else {
        for (const e of events(s)) {
          const next = step(s, e);
          if (next !== null) visit(e, next);
          if (halted) break;
        }
      }
      if (halted) {
        stopped = 'violation';
        break outer;
      }
      if (checkDeadlock && protocolMoves === 0 && !validEnd(s)) {
        if (record('deadlock', 'deadlock', [], `no event is enabled in ${inst.describe(s)}`, i)) {
          stopped = 'violation';
          break;
        }
      }
    }
  }

  const complete = stopped === null;
  if (checkProgress && stopped === null) {
    const bad = progressViolation(visited.size, edgeFrom.view(), edgeTo.view(), (i) => inst.quiescent!(visited.at(i)));
    if (bad >= 0) {
      record('progress', 'progress', inst.progressSpec ?? [], `no quiescent state is reachable from ${inst.describe(visited.at(bad))}`, bad);
    }
  }

  let depth = 0;
  for (let i = 0; i < depthOf.length; i++) depth = Math.max(depth, depthOf.data[i]!);
  const seconds = (performance.now() - t0) / 1000;
  const result: ExploreResult = {
    complete: complete && !sys.truncatedCrashes(),
    stopped,
    crashSubsetsTruncated: sys.truncatedCrashes(),
    states: visited.size,
    transitions,
    depth,
    seconds,
    violations,
    eventCoverage: Object.fromEntries([...eventCoverage].map(([t, c]) => [t, c.n])),
    // A statistic, not part of the search: counted over the stored states only when someone reads it.
    get valueCoverage(): Readonly<Record<string, number>> {
      const counts = new Map<string, number>();
      for (let i = 0; i < visited.size; i++) {
        const v = inst.valueOf(visited.at(i));
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      const record = Object.fromEntries(counts);
      Object.defineProperty(this, 'valueCoverage', { value: record });
      return record;
    },
    ...(wantGraph
      ? {
          graph: {
            values: Array.from({ length: visited.size }, (_, i) => inst.valueOf(visited.at(i))),
            edgeFrom: edgeFrom.view().slice(),
            edgeTo: edgeTo.view().slice(),
            edgeType: (() => {
              const names = [...typeIds.keys()];
              return Array.from(edgeType.view(), (t) => names[t]!);
            })(),
            initial: initialIdx,
          },
        }
      : {}),
  };
  return result;
}

/** Backward reachability from quiescent states; returns the lowest-index (shallowest) state that cannot reach one, or -1. */
export function progressViolation(n: number, from: Int32Array, to: Int32Array, quiescent: (i: number) => boolean): number {
  // Reverse adjacency in CSR form.
  const count = new Int32Array(n + 1);
  for (let e = 0; e < to.length; e++) count[to[e]! + 1]!++;
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const fill = count.slice(0, n);
  const rev = new Int32Array(to.length);
  for (let e = 0; e < to.length; e++) rev[fill[to[e]!]!++] = from[e]!;
  const good = new Uint8Array(n);
  const stack: number[] = [];
  for (let i = 0; i < n; i++) {
    if (quiescent(i)) {
      good[i] = 1;
      stack.push(i);
    }
  }
  while (stack.length) {
    const j = stack.pop()!;
    for (let k = count[j]!; k < count[j + 1]!; k++) {
      const p = rev[k]!;
      if (!good[p]) {
        good[p] = 1;
        stack.push(p);
      }
    }
  }
  for (let i = 0; i < n; i++) if (!good[i]) return i;
  return -1;
}

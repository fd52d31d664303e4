// Engine operators: crashes and fault injection. A model only says which writes are volatile and how
// a crash or a fault changes its state; the engine decides which crash subsets and faults to try.
// Operator events carry an '@' so traces, coverage and diagrams can tell them from protocol events.

import type { CrashSurface, Ev, FaultSurface, Instance, System } from './model.js';

export interface CrashEvent extends Ev {
  readonly type: '@crash';
  readonly keep: readonly number[];
  readonly torn: number | null;
}

export interface FaultEvent extends Ev {
  readonly type: '@fault';
  readonly site: string;
}

export function isOperatorEvent(e: Ev): boolean {
  return e.type.startsWith('@');
}

export interface OperatorOptions {
  /** Crash subsets are enumerated in full up to this many volatile writes (2^n subsets). */
  readonly maxCrashWrites: number;
  readonly crashes: boolean;
  readonly faults: boolean;
}

export const defaultOperatorOptions: OperatorOptions = { maxCrashWrites: 8, crashes: true, faults: true };

/**
 * Every crash a state allows: each subset of the volatile writes survives, and additionally any one
 * tearable write not in the subset may land torn. With more than `maxCrashWrites` volatile writes the
 * enumeration is cut to prefixes plus singletons, and `truncated` says so.
 */
export function crashEvents<S>(surface: CrashSurface<S>, s: S, maxWrites: number): { events: CrashEvent[]; truncated: boolean } {
  const n = surface.volatileWrites(s);
  const subsets: number[][] = [];
  let truncated = false;
  if (n <= maxWrites) {
    for (let mask = 0; mask < 1 << n; mask++) {
      const keep: number[] = [];
      for (let i = 0; i < n; i++) if (mask & (1 << i)) keep.push(i);
      subsets.push(keep);
    }
  } else {
    truncated = true;
    for (let p = 0; p <= n; p++) subsets.push(Array.from({ length: p }, (_, i) => i));
    for (let i = 0; i < n; i++) subsets.push([i]);
  }
  const events: CrashEvent[] = [];
  for (const keep of subsets) {
    events.push({ type: '@crash', keep, torn: null });
    if (surface.tearable) {
      for (let t = 0; t < n; t++) {
        if (!keep.includes(t) && surface.tearable(s, t)) events.push({ type: '@crash', keep, torn: t });
      }
    }
  }
  return { events, truncated };
}

export function applyOperator<S>(inst: Instance<S, Ev>, s: S, e: Ev): S | null {
  if (e.type === '@crash') {
    const c = e as CrashEvent;
    return inst.crash ? inst.crash.crash(s, c.keep, c.torn) : null;
  }
  if (e.type === '@fault') {
    const f = e as FaultEvent;
    if (!inst.fault || !inst.fault.sites(s).includes(f.site)) return null;
    return inst.fault.inject(s, f.site);
  }
  return null;
}

export function operatorEvents<S>(
  crash: CrashSurface<S> | undefined,
  fault: FaultSurface<S> | undefined,
  s: S,
  opts: OperatorOptions,
): { events: Ev[]; truncated: boolean } {
  const events: Ev[] = [];
  let truncated = false;
  if (crash && opts.crashes) {
    const c = crashEvents(crash, s, opts.maxCrashWrites);
    events.push(...c.events);
    truncated = c.truncated;
  }
  if (fault && opts.faults) for (const site of fault.sites(s)) events.push({ type: '@fault', site });
  return { events, truncated };
}

/** The instance's system with the operators folded in: what the explorer, lockstep and replay step. */
export function withOperators<S>(
  inst: Instance<S, Ev>,
  opts: OperatorOptions = defaultOperatorOptions,
): System<S, Ev> & { truncatedCrashes: () => boolean; readonly operators: boolean } {
  let truncated = false;
  const base = inst.system;
  const crashes = inst.crash !== undefined && opts.crashes;
  const faults = inst.fault !== undefined && opts.faults;
  // No operator applies: the protocol's own system, fast paths (successors, units) included.
  if (!crashes && !faults) return { ...base, operators: false, truncatedCrashes: () => false };
  return {
    operators: true,
    initial: base.initial,
    key: base.key,
    events: (s) => {
      const ops = operatorEvents(inst.crash, inst.fault, s, opts);
      if (ops.truncated) truncated = true;
      return ops.events.length ? [...base.events(s), ...ops.events] : base.events(s);
    },
    step: (s, e) => (isOperatorEvent(e) ? applyOperator(inst, s, e) : base.step(s, e)),
    truncatedCrashes: () => truncated,
  };
}

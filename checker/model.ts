// The model interface: what a protocol hands to the engine. Nothing in checker/ knows any protocol;
// a protocol adds spec/, machines/, impl/, properties/ and registers one Model in properties/registry.ts.

import type { OperatorOptions } from './operators.js';

/** Every event is a plain JSON object with a `type`; parameters are further fields. */
export interface Ev {
  readonly type: string;
  readonly [param: string]: Json | undefined;
}

export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json | undefined };

/** Which kernel a run models, and which seeded bug (if any) is switched on. */
export interface Variant {
  readonly profile: string;
  readonly mutant: string | null;
}

/** Named, numeric bounds of a model instance (e.g. devices=1, readers=2). */
export type Bounds = Readonly<Record<string, number>>;

export interface BoundSpec {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly describe: string;
}

/**
 * A checked property over one state. `check` returns null when it holds, or a sentence saying what
 * is wrong in this state. `spec` names the rule(s) of spec/<protocol>.md it checks.
 */
export interface Invariant<S> {
  readonly spec: readonly string[];
  readonly name: string;
  readonly check: (s: S) => string | null;
}

/** The transition system the explorer walks. `step` returns null when the event is disabled. */
export interface System<S, E extends Ev> {
  readonly initial: () => readonly S[];
  /**
   * Candidate events in `s` (the alphabet instances worth trying); disabled ones are allowed. An
   * array once returned must not change afterwards: the compiled machine systems precompute their
   * successors per returned array.
   */
  readonly events: (s: S) => readonly E[];
  readonly step: (s: S, e: E) => S | null;
  /**
   * Optional fast path for the explorer: `each(s, evs, emit)` calls `emit` for every event of `evs`
   * (the caller's `events(s)`) that `step` enables, in list order, with the state `step` would
   * give. Used only while `of` is this system's own `step`: a model that spreads a system and
   * replaces its step loses the fast path, never its semantics (a replaced `events` is passed in).
   */
  readonly successors?: {
    readonly of: System<S, E>['step'];
    readonly each: (s: S, evs: readonly E[], emit: (e: E, next: S) => void) => void;
  };
  /** Canonical key: equal keys mean equal states. */
  readonly key: (s: S) => string;
  /**
   * Optional: the same identification as units, for the explorer's state store. `encode` writes a
   * state's units into `out` from 0 and returns their count (retry with a larger buffer when it
   * exceeds out.length), or -1 for a state that must be identified by `key`; equal unit sequences
   * exactly when equal keys. `decode` gives back a state equivalent (same key, same futures) to the
   * one encoded at units[start]. Used only while `of` is this system's own `key`.
   */
  readonly units?: {
    readonly of: System<S, E>['key'];
    readonly encode: (s: S, out: Uint16Array) => number;
    readonly decode: (units: Uint16Array, start: number) => S;
  };
}

/** What seeded mutants and shipped defects share: what they break, and how the hunt reaches them. */
export interface Defect {
  readonly id: string;
  readonly title: string;
  /** Kernel commit or reference that fixed the real bug. */
  readonly fix: string;
  /** The spec rules it breaks. */
  readonly breaks: readonly string[];
  /** Which engines must find it. */
  readonly killedBy: readonly ('explore' | 'lockstep')[];
  /** Bounds that reach it, if not the defaults. */
  readonly bounds?: Bounds;
  /** Lockstep runs the hunt needs at least (a long or narrow path), when more than the caller's. */
  readonly runs?: number;
  /**
   * For a path too narrow for random commands: the lockstep hunt runs these steps (machine and
   * implementation together, every rule checked) instead of fast-check's commands, then
   * delta-debugs what failed. The steps must run clean on the correct implementation.
   */
  readonly plan?: LockstepPlan;
  /**
   * Engine operators the lockstep hunt leaves out, for a defect that needs none of them while they
   * would reach other defects of the same profile first (e.g. `{ crashes: false }`).
   */
  readonly operators?: Partial<OperatorOptions>;
}

/** A hand-derived event sequence for the lockstep hunt (Defect.plan). */
export interface LockstepPlan {
  readonly steps: readonly Ev[];
  /** Where the derivation is written down (a spec section), for the trace's note. */
  readonly why: string;
}

/** A seeded bug modelled on a real kernel fix (switched on as the variant's mutant). */
export type MutantInfo = Defect;

/**
 * A defect the profile ships with (not seeded): under `profile` the checker must find a violation of
 * `breaks`; under the fixed profile the same rules must hold.
 */
export interface ShippedDefect extends Defect {
  readonly profile: string;
}

/**
 * Engine operators a model may expose. The model only says what the durable/volatile split is; the
 * engine enumerates which subset of volatile writes a crash keeps.
 */
export interface CrashSurface<S> {
  /** Number of writes issued but not yet made durable by a flush, in issue order. */
  readonly volatileWrites: (s: S) => number;
  /** Whether the write at that index may be torn (only its first sector lands). */
  readonly tearable?: (s: S, index: number) => boolean;
  /**
   * The state after a power cut that keeps exactly `keep` of the volatile writes (and tears `torn`),
   * or null when the model allows no crash here (e.g. a crash budget is spent).
   */
  readonly crash: (s: S, keep: readonly number[], torn: number | null) => S | null;
}

export interface FaultSurface<S> {
  /** Fault sites that may be armed now (e.g. "metadata write to block 7"). */
  readonly sites: (s: S) => readonly string[];
  readonly inject: (s: S, site: string) => S;
}

/** How an implementation is driven in lockstep and in replay. */
export interface ImplAdapter<E extends Ev> {
  /**
   * A fresh implementation under this variant. `gate` is the engine's scheduler hook (see Gate);
   * `initial` is the index of the model's initial state the run starts from (default 0).
   */
  readonly create: (variant: Variant, bounds: Bounds, gate: Gate<E>, initial?: number) => ImplHandle<E>;
  /**
   * Indices of the model's initial states the impl can start from (a model may explore several
   * configurations at once). Default: the first one only.
   */
  readonly initialStates?: (bounds: Bounds, variant: Variant) => readonly number[];
  /**
   * External events are commands the environment issues (ioctl, message, bio). Internal events are
   * steps the implementation takes by itself; it announces each through the gate before doing it.
   */
  readonly isExternal: (e: E) => boolean;
  /**
   * True when the impl runs internal steps asynchronously through the Gate; the lockstep runner then
   * interleaves them with fast-check's scheduler. An async impl must perform an external event's own
   * effect synchronously inside `apply`, before its first await.
   */
  readonly async?: boolean;
  /**
   * Async impls only: every event, internal ones included, is issued by the engine through `apply`
   * (isExternal then only tells environment commands apart, e.g. for diagrams), and apply's promise
   * settles once the impl has finished reacting, with nothing left for the scheduler. The lockstep
   * runner and replay await it, then compare projections.
   */
  readonly awaitApply?: boolean;
  /**
   * Runs of up to this many commands, with lengths spread over the whole range instead of biased
   * short (fast-check size 'max'): for protocols whose interesting states lie many steps deep.
   * Default: the caller's maxCommands (30), biased short.
   */
  readonly longRuns?: number;
}

export interface ImplHandle<E extends Ev> {
  /** Issue an external event. For an async impl the returned promise may settle later. */
  readonly apply: (e: E) => void | Promise<unknown>;
  /** The observable state to compare with the machine's projection. */
  readonly project: () => Json;
  /** When set, the engine awaits it before the first step (an impl that starts up asynchronously). */
  readonly ready?: Promise<unknown>;
  /** Invariants that only the implementation can judge (e.g. on-disk format). Null = fine. */
  readonly selfCheck?: () => { readonly spec: readonly string[]; readonly message: string } | null;
}

/**
 * An async implementation awaits `gate.step(e)` before each atomic step `e` of its own. The engine
 * decides when it proceeds (fast-check's scheduler in lockstep, the recorded trace in replay) and
 * records `e` in the trace at that moment.
 */
export interface Gate<E extends Ev> {
  /**
   * Resolves true when the impl may take step `e` now. With `ready`, the step is only taken if
   * `ready()` still holds at the moment the engine releases it (a condition another thread can undo,
   * like `md->holders == 0`); otherwise it resolves false and the impl waits and asks again.
   */
  readonly step: (e: E, ready?: () => boolean) => Promise<boolean>;
}

/** One bounded instance of a protocol, under one variant. */
export interface Instance<S, E extends Ev> {
  readonly system: System<S, E>;
  readonly invariants: readonly Invariant<S>[];
  /** Progress target for the AG EF check; absent means no progress check. */
  readonly quiescent?: (s: S) => boolean;
  /** The spec rules the progress check stands for (e.g. a liveness rule). */
  readonly progressSpec?: readonly string[];
  /** States with no enabled event that are fine to end in. Default: quiescent states. */
  readonly validEnd?: (s: S) => boolean;
  /** A short human line for the state (used by replay and diagrams). */
  readonly describe: (s: S) => string;
  /** The abstract state value (grouping key for state-graph diagrams and per-state coverage). */
  readonly valueOf: (s: S) => string;
  /** Observable projection compared with the impl in lockstep. */
  readonly project?: (s: S) => Json;
  /**
   * The spec rules a disagreement on one top-level field of the projection breaks (e.g. a free
   * count that drifts). Without it a projection mismatch names no rule.
   */
  readonly projectionSpec?: (field: string) => readonly string[];
  readonly crash?: CrashSurface<S>;
  readonly fault?: FaultSurface<S>;
}

export interface Model<S, E extends Ev> {
  readonly id: string;
  readonly title: string;
  /** spec/<file>.md that holds the rules this model checks. */
  readonly spec: string;
  readonly profiles: readonly string[];
  readonly defaultProfile: string;
  readonly bounds: Readonly<Record<string, BoundSpec>>;
  readonly mutants: readonly MutantInfo[];
  readonly shipped: readonly ShippedDefect[];
  /** The XState machines of this model, for diagrams (see checker/machine.ts). */
  readonly machines: readonly DiagramSource[];
  readonly instance: (bounds: Bounds, variant: Variant) => Instance<S, E>;
  readonly impl?: ImplAdapter<E>;
  /** Named scenarios (dmtest, lvm2, ...) as event lists; `dmcheck check` reports which the state space covers. */
  readonly scenarios?: readonly Scenario<E>[];
  /** Events the lockstep runner may issue in state s (defaults to external enabled events). */
  readonly commands?: (s: S, bounds: Bounds) => readonly E[];
}

export interface Scenario<E extends Ev> {
  readonly name: string;
  /** Where it comes from, e.g. "dmtest: out_of_data_space_errors_immediately_if_requested". */
  readonly source: string;
  readonly profile?: string;
  readonly bounds?: Bounds;
  /** Protocol events, or engine operators (`@fault`, `@crash`) where the scenario injects one. */
  readonly steps: readonly (E | Ev)[];
}

/** Anything diagrams can draw as a statechart. */
export interface DiagramSource {
  readonly id: string;
  readonly statechart: () => StatechartShape;
}

export interface StatechartShape {
  readonly id: string;
  readonly regions: readonly {
    readonly name: string;
    readonly initial: string;
    readonly states: readonly string[];
    readonly transitions: readonly { readonly from: string; readonly to: string; readonly label: string }[];
  }[];
}

// Models are registered with their concrete S and E erased; the engine only passes values through.
export type AnyModel = Model<unknown, Ev>;

/** Erase a model's state and event types for the registry (the engine never inspects them). */
export function asModel<S, E extends Ev>(m: Model<S, E>): AnyModel {
  return m as unknown as AnyModel;
}

export function boundsWithDefaults(model: { bounds: Readonly<Record<string, BoundSpec>> }, given: Bounds = {}): Bounds {
  const out: Record<string, number> = {};
  for (const [k, spec] of Object.entries(model.bounds)) out[k] = spec.default;
  for (const [k, v] of Object.entries(given)) {
    const spec = model.bounds[k];
    if (!spec) {
      throw new UsageError(`unknown bound '${k}'; this model takes: ${Object.keys(model.bounds).join(', ') || '(none)'}`);
    }
    if (!Number.isInteger(v) || v < spec.min || v > spec.max) {
      throw new UsageError(`bound ${k}=${v} is out of range: ${spec.describe}, an integer from ${spec.min} to ${spec.max}`);
    }
    out[k] = v;
  }
  return out;
}

/** Bad input from the user: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

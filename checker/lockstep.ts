// The lockstep runner: fast-check drives the machine and the reference implementation together.
// Each command picks one enabled external event (or engine operator) of the machine's current
// state; both sides take it; projections are compared and invariants checked. Async
// implementations announce internal steps through the Gate, and fast-check's scheduler orders them,
// so races are explored, shrunk and replayable. Shrinking gives the minimal failing sequence.

import fc from 'fast-check';
import type { Bounds, Ev, Gate, ImplHandle, Instance, Json, Model, Variant } from './model.js';
import { defaultOperatorOptions, isOperatorEvent, withOperators, type OperatorOptions } from './operators.js';
import type { TraceViolation } from './trace.js';

export interface LockstepOptions {
  readonly seed: number;
  readonly numRuns: number;
  readonly maxCommands?: number;
  readonly operators?: OperatorOptions;
  /** fast-check replay path (from a previous failure). */
  readonly path?: string;
  /** Run the impl under another variant than the machine (to show an impl mutant is observable). */
  readonly implVariant?: Variant;
}

export interface LockstepFailure {
  /** The model's initial state the run started from. */
  readonly initialIndex: number;
  readonly steps: readonly Ev[];
  readonly violation: TraceViolation;
  readonly seed: number;
  readonly path: string;
}

export interface LockstepResult {
  readonly ok: boolean;
  readonly runs: number;
  readonly seed: number;
  readonly failure: LockstepFailure | null;
}

/** The implementation cannot run at these bounds (it supports none of the model's initial states). */
export class LockstepUnavailable extends Error {
  override readonly name = 'LockstepUnavailable';
}

class Violated extends Error {
  constructor(readonly violation: TraceViolation) {
    super(`${violation.property} [${violation.spec.join(', ')}]: ${violation.message}`);
  }
}

/** One execution: the machine state, the impl, and the steps taken so far. */
export class LockstepRun<S> {
  readonly steps: Ev[] = [];
  failure: TraceViolation | null = null;
  state: S;
  readonly impl: ImplHandle<Ev>;
  private readonly sys: ReturnType<typeof withOperators<S>>;
  readonly inst: Instance<S, Ev>;

  constructor(
    private readonly model: Model<S, Ev>,
    bounds: Bounds,
    variant: Variant,
    gateFor: (run: LockstepRun<S>) => Gate<Ev>,
    operators: OperatorOptions,
    implVariant: Variant = variant,
    readonly initialIndex = 0,
  ) {
    const inst = model.instance(bounds, variant);
    this.inst = inst;
    this.sys = withOperators(inst, operators);
    const first = this.sys.initial()[initialIndex];
    if (first === undefined) throw new Error(`model ${model.id} has no initial state #${initialIndex}`);
    this.state = first;
    if (!model.impl) throw new Error(`model ${model.id} has no implementation adapter, so it cannot run in lockstep`);
    this.impl = model.impl.create(implVariant, bounds, gateFor(this), initialIndex);
    this.awaitApply = model.impl.awaitApply === true;
  }

  readonly awaitApply: boolean;

  /** External events (and operators) the environment may issue now, grouped by type. */
  candidates(): Ev[] {
    const adapter = this.model.impl!;
    const out: Ev[] = [];
    for (const e of this.sys.events(this.state)) {
      // With awaitApply the engine issues internal events too (the impl's steps go through apply).
      if (!(isOperatorEvent(e) || adapter.isExternal(e) || adapter.awaitApply === true)) continue;
      if (this.sys.step(this.state, e) !== null) out.push(e);
    }
    return out;
  }

  fail(v: TraceViolation): never {
    this.failure ??= v;
    throw new Violated(v);
  }

  /**
   * Set by the synchronous runner right after it compared both sides: nothing ran since, so the
   * next record need not project both sides again (a projection can cost more than the step).
   */
  comparedNow = false;

  /** Compare projections, take `e` on the machine side, check invariants. */
  record(e: Ev): void {
    if (this.failure) throw new Violated(this.failure);
    if (!this.comparedNow) this.compare();
    this.comparedNow = false;
    const next = this.sys.step(this.state, e);
    this.steps.push(e);
    if (next === null) {
      this.fail({
        kind: 'lockstep',
        property: 'refinement',
        spec: [],
        message: `the implementation took ${JSON.stringify(e)}, which the machine does not allow in ${this.inst.describe(this.state)}`,
      });
    }
    this.state = next;
    for (const inv of this.inst.invariants) {
      const msg = inv.check(this.state);
      if (msg !== null) this.fail({ kind: 'invariant', property: inv.name, spec: inv.spec, message: msg });
    }
  }

  compare(): void {
    const self = this.impl.selfCheck?.();
    if (self) this.fail({ kind: 'impl', property: 'impl-check', spec: self.spec, message: self.message });
    if (!this.inst.project) return;
    const v = projectionMismatch(this.inst, this.inst.project(this.state), this.impl.project(), `after ${this.steps.length} steps`);
    if (v) this.fail(v);
  }
}

/**
 * Null when machine and implementation project equal values; otherwise the violation, naming the
 * top-level fields that differ and the rules the instance says those fields stand for.
 */
export function projectionMismatch<S>(inst: Instance<S, Ev>, machine: Json, impl: Json, when: string): TraceViolation | null {
  const want = canonical(machine);
  const got = canonical(impl);
  if (want === got) return null;
  const isObj = (j: Json): j is { readonly [k: string]: Json | undefined } => typeof j === 'object' && j !== null && !Array.isArray(j);
  const fields =
    isObj(machine) && isObj(impl)
      ? [...new Set([...Object.keys(machine), ...Object.keys(impl)])].filter((k) => canonical(machine[k] ?? null) !== canonical(impl[k] ?? null)).sort()
      : [];
  const spec = [...new Set(fields.flatMap((f) => inst.projectionSpec?.(f) ?? []))];
  const on = fields.length ? ` on ${fields.join(', ')}` : '';
  return { kind: 'lockstep', property: 'projection', spec, message: `implementation and machine disagree${on} ${when}:\n  machine: ${want}\n  impl:    ${got}` };
}

/** JSON with sorted object keys, so projections compare by value. */
export function canonical(j: Json): string {
  return JSON.stringify(j, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Picks the `choice`-th candidate: first an event type, then an instance of it, so large families (crash subsets) do not crowd out the rest. */
export function pick(cands: readonly Ev[], choice: number): Ev | null {
  if (cands.length === 0) return null;
  const types = [...new Set(cands.map((e) => e.type))];
  const type = types[choice % types.length]!;
  const same = cands.filter((e) => e.type === type);
  return same[Math.floor(choice / types.length) % same.length]!;
}

class PickSync<S> implements fc.Command<object, LockstepRun<S>> {
  private chosen: Ev | null = null;
  constructor(readonly choice: number) {}
  check(): boolean {
    return true;
  }
  run(_m: object, r: LockstepRun<S>): void {
    const e = pick(r.candidates(), this.choice);
    this.chosen = e;
    if (e === null) return;
    r.record(e);
    try {
      r.impl.apply(e);
    } catch (err) {
      if (err instanceof Violated) throw err;
      r.fail({ kind: 'impl', property: 'impl-error', spec: [], message: `${JSON.stringify(e)} threw: ${(err as Error).message}` });
    }
    r.compare();
    r.comparedNow = true;
  }
  toString(): string {
    return this.chosen ? JSON.stringify(this.chosen) : `pick(${this.choice})`;
  }
}

class PickAsync<S> implements fc.AsyncCommand<object, LockstepRun<S>> {
  private chosen: Ev | null = null;
  constructor(readonly choice: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, r: LockstepRun<S>): Promise<void> {
    if (r.failure) return;
    const e = pick(r.candidates(), this.choice);
    this.chosen = e;
    if (e === null) return;
    r.record(e);
    if (r.awaitApply) {
      // The event's whole effect is in apply's promise: wait for it and compare, as for a sync impl.
      try {
        await r.impl.apply(e);
      } catch (err) {
        if (err instanceof Violated) throw err;
        r.fail({ kind: 'impl', property: 'impl-error', spec: [], message: `${JSON.stringify(e)} failed: ${(err as Error).message}` });
      }
      r.compare();
      return;
    }
    const p = r.impl.apply(e);
    if (p) {
      p.then(undefined, (err: unknown) => {
        if (!(err instanceof Violated)) {
          r.failure ??= { kind: 'impl', property: 'impl-error', spec: [], message: `${JSON.stringify(e)} failed: ${(err as Error).message}` };
        }
      });
    }
  }
  toString(): string {
    return this.chosen ? JSON.stringify(this.chosen) : `pick(${this.choice})`;
  }
}

export async function lockstep<S>(model: Model<S, Ev>, bounds: Bounds, variant: Variant, opts: LockstepOptions): Promise<LockstepResult> {
  const operators = opts.operators ?? defaultOperatorOptions;
  const long = model.impl?.longRuns;
  const maxCommands = opts.maxCommands ?? long ?? 30;
  const cmdOpts = long !== undefined ? { maxCommands, size: 'max' as const } : { maxCommands };
  const choice = fc.nat({ max: 1 << 20 });
  let lastFailure: { initialIndex: number; steps: Ev[]; violation: TraceViolation } | null = null;
  const params = { seed: opts.seed, numRuns: opts.numRuns, ...(opts.path !== undefined ? { path: opts.path } : {}) };

  const noteFailure = (r: LockstepRun<S>, err: unknown): void => {
    const violation: TraceViolation =
      r.failure ?? { kind: 'impl', property: 'impl-error', spec: [], message: (err as Error)?.message ?? String(err) };
    lastFailure = { initialIndex: r.initialIndex, steps: r.steps.slice(), violation };
  };
  // Which initial state a run starts from: part of the generated case (so it shrinks and replays)
  // only when the impl can start from more than one; otherwise the first, as before.
  const starts = model.impl?.initialStates?.(bounds, opts.implVariant ?? variant) ?? [0];
  if (starts.length === 0) {
    throw new LockstepUnavailable(`model ${model.id}: the implementation supports none of the initial states at these bounds (see its impl adapter's initialStates)`);
  }
  const withStart = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<[number, T]> =>
    starts.length > 1 ? fc.tuple(fc.constantFrom(...starts), arb) : arb.map((x): [number, T] => [starts[0]!, x]);

  let details: { failed: boolean; numRuns: number; seed: number; counterexamplePath: string | null; errorInstance: unknown };
  if (model.impl?.async) {
    const prop = fc.asyncProperty(fc.scheduler(), withStart(fc.commands([choice.map((c) => new PickAsync<S>(c))], cmdOpts)), async (s, [start, cmds]) => {
      const gateFor = (run: LockstepRun<S>): Gate<Ev> => ({
        step: async (e, ready) => {
          await s.schedule(Promise.resolve(), JSON.stringify(e));
          if (ready && !ready()) return false;
          try {
            run.record(e);
          } catch (err) {
            // The run has failed: park this thread for good instead of unwinding it.
            if (err instanceof Violated) return new Promise<boolean>(() => {});
            throw err;
          }
          return true;
        },
      });
      const run = new LockstepRun(model, bounds, variant, gateFor, operators, opts.implVariant, start);
      try {
        await run.impl.ready;
        await fc.scheduledModelRun(s, () => ({ model: {}, real: run }), cmds);
        await s.waitIdle();
        if (run.failure) throw new Violated(run.failure);
        run.compare();
      } catch (err) {
        noteFailure(run, err);
        throw err;
      }
    });
    details = await fc.check(prop, params);
  } else {
    const prop = fc.property(withStart(fc.commands([choice.map((c) => new PickSync<S>(c))], cmdOpts)), ([start, cmds]) => {
      const gate = (): Gate<Ev> => ({ step: () => Promise.reject(new Error('sync impl used the gate')) });
      const run = new LockstepRun(model, bounds, variant, gate, operators, opts.implVariant, start);
      try {
        fc.modelRun(() => ({ model: {}, real: run }), cmds);
      } catch (err) {
        noteFailure(run, err);
        throw err;
      }
    });
    details = fc.check(prop, params);
  }
  if (!details.failed) return { ok: true, runs: details.numRuns, seed: details.seed, failure: null };
  const f = lastFailure as { initialIndex: number; steps: Ev[]; violation: TraceViolation } | null;
  if (f === null) {
    throw new Error(`lockstep run failed outside a step (seed ${details.seed}): ${String(details.errorInstance)}`);
  }
  return {
    ok: false,
    runs: details.numRuns,
    seed: details.seed,
    failure: { ...f, seed: details.seed, path: details.counterexamplePath ?? '' },
  };
}

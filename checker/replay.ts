// Replay: re-run a trace step by step through the machine and, where the model has one, the
// implementation, narrating each step, and say whether the recorded violation reproduces.
// The implementation's internal steps are released in exactly the trace's order by a gate that
// follows the trace, so an async race found by the lockstep runner replays deterministically.

import type { Ev, Gate, Instance, Model } from './model.js';
import { canonical, projectionMismatch } from './lockstep.js';
import { isOperatorEvent, withOperators } from './operators.js';
import type { Trace, TraceViolation } from './trace.js';

export interface ReplayOptions {
  /** Drive the implementation too (default: when the model has one). */
  readonly impl?: boolean;
  /** Override the trace's mutant (null = correct implementation). */
  readonly mutant?: string | null;
  /** Override the trace's profile (e.g. 'fixed', to show a shipped defect is gone). */
  readonly profile?: string;
  readonly log?: (line: string) => void;
}

export interface ReplayResult {
  /** The first violation seen, on either side. */
  readonly found: TraceViolation | null;
  /** Whether `found` is the violation the trace records (or none, when it records none). */
  readonly reproduced: boolean;
  readonly stepsRun: number;
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A gate that lets an async impl proceed only with the step the trace names next. */
class TraceGate implements Gate<Ev> {
  private readonly waiting = new Map<string, (() => void)[]>();
  step = (e: Ev, ready?: () => boolean): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const k = canonical(e);
      const q = this.waiting.get(k) ?? [];
      q.push(() => resolve(ready ? ready() : true));
      this.waiting.set(k, q);
    });
  /** Release the impl's pending step `e`; false if no thread is waiting to take it. */
  async release(e: Ev): Promise<boolean> {
    for (let tries = 0; tries < 5; tries++) {
      const q = this.waiting.get(canonical(e));
      const resolve = q?.shift();
      if (resolve) {
        resolve();
        await settle();
        return true;
      }
      await settle();
    }
    return false;
  }
  pending(): string[] {
    return [...this.waiting.entries()].filter(([, q]) => q.length > 0).map(([k]) => k);
  }
}

export async function replayTrace<S>(model: Model<S, Ev>, trace: Trace, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const log = opts.log ?? (() => {});
  const variant = { profile: opts.profile ?? trace.profile, mutant: opts.mutant !== undefined ? opts.mutant : trace.mutant };
  const inst = model.instance(trace.bounds, variant);
  const sys = withOperators(inst);
  const inits = sys.initial();
  const first = inits[trace.initialIndex];
  if (first === undefined) {
    const found: TraceViolation = { kind: 'lockstep', property: 'initial', spec: [], message: `the model has no initial state #${trace.initialIndex}` };
    return { found, reproduced: false, stepsRun: 0 };
  }
  let s: S = first;
  // An impl that cannot start from this initial state (ImplAdapter.initialStates) is left out.
  const starts = model.impl?.initialStates?.(trace.bounds, variant) ?? null;
  const implCanStart = starts === null || starts.includes(trace.initialIndex);
  const useImpl = (opts.impl ?? true) && model.impl !== undefined && implCanStart;
  const gate = new TraceGate();
  const impl = useImpl ? model.impl!.create(variant, trace.bounds, gate, trace.initialIndex) : null;
  let found: TraceViolation | null = null;
  const implFailures: string[] = [];

  log(`model ${model.id}  profile ${variant.profile}  mutant ${variant.mutant ?? '(none)'}  bounds ${JSON.stringify(trace.bounds)}`);
  log(`  0. initial: ${inst.describe(s)}`);
  if ((opts.impl ?? true) && model.impl !== undefined && !implCanStart) log('     (the implementation cannot start from this initial state: machine only)');

  const compare = (): TraceViolation | null => {
    if (!impl) return null;
    if (implFailures.length) return { kind: 'impl', property: 'impl-error', spec: [], message: implFailures[0]! };
    const self = impl.selfCheck?.();
    if (self) return { kind: 'impl', property: 'impl-check', spec: self.spec, message: self.message };
    if (!inst.project) return null;
    return projectionMismatch(inst, inst.project(s), impl.project(), `after ${i} steps`);
  };

  if (impl?.ready) {
    try {
      await impl.ready;
    } catch (err) {
      implFailures.push(`the implementation did not start: ${(err as Error).message}`);
    }
  }
  let i = 0;
  for (; i < trace.steps.length && !found; i++) {
    const e = trace.steps[i]!;
    found = compare();
    if (found) break;
    const next = sys.step(s, e);
    if (next === null) {
      found = { kind: 'lockstep', property: 'refinement', spec: [], message: `step ${i + 1} ${JSON.stringify(e)} is not enabled in ${inst.describe(s)}` };
      log(`${String(i + 1).padStart(3)}. ${fmt(e)}  -- NOT ENABLED here`);
      break;
    }
    const before = inst.describe(s);
    s = next;
    const after = inst.describe(s);
    const changed = changedTokens(before, after);
    log(`${String(i + 1).padStart(3)}. ${fmt(e)}${changed ? `   → ${changed}` : ''}`);
    for (const inv of inst.invariants) {
      const msg = inv.check(s);
      if (msg !== null) {
        found = { kind: 'invariant', property: inv.name, spec: inv.spec, message: msg };
        break;
      }
    }
    if (impl) {
      if (isOperatorEvent(e) || model.impl!.isExternal(e) || model.impl!.awaitApply === true) {
        try {
          const done = impl.apply(e)?.then(undefined, (err: unknown) => implFailures.push(`${fmt(e)} failed: ${(err as Error).message}`));
          if (model.impl!.awaitApply) await done;
        } catch (err) {
          implFailures.push(`${fmt(e)} threw: ${(err as Error).message}`);
        }
        await settle();
      } else if (!(await gate.release(e))) {
        found ??= {
          kind: 'lockstep',
          property: 'refinement',
          spec: [],
          message: `the implementation never offered step ${fmt(e)}; it is waiting at: ${gate.pending().join(', ') || 'nothing'}`,
        };
      }
    }
  }
  if (!found) found = compare();
  if (!found && trace.violation?.kind === 'deadlock') {
    const stuck = sys.events(s).every((e) => isOperatorEvent(e) || sys.step(s, e) === null);
    const ok = (inst.validEnd ?? inst.quiescent ?? (() => false))(s);
    if (stuck && !ok) found = { kind: 'deadlock', property: 'deadlock', spec: [], message: `no event is enabled in ${inst.describe(s)}` };
  }
  if (!found && trace.violation?.kind === 'progress' && inst.quiescent && !quiescentReachable(inst, s)) {
    found = { kind: 'progress', property: 'progress', spec: inst.progressSpec ?? [], message: `no quiescent state is reachable from ${inst.describe(s)}` };
  }
  if (found) log(`VIOLATION ${found.property}${found.spec.length ? ` [${found.spec.join(', ')}]` : ''}: ${found.message}`);
  else log('no violation');
  const reproduced = trace.violation === null ? found === null : found !== null && found.property === trace.violation.property;
  return { found, reproduced, stepsRun: i };
}

/** Bounded search: can some quiescent state be reached from `from`? */
export function quiescentReachable<S>(inst: Instance<S, Ev>, from: S, limit = 1_000_000): boolean {
  const sys = withOperators(inst);
  const seen = new Set<string>([sys.key(from)]);
  const queue: S[] = [from];
  for (let h = 0; h < queue.length && seen.size < limit; h++) {
    const s = queue[h]!;
    if (inst.quiescent!(s)) return true;
    for (const e of sys.events(s)) {
      const n = sys.step(s, e);
      if (n === null) continue;
      const k = sys.key(n);
      if (!seen.has(k)) {
        seen.add(k);
        queue.push(n);
      }
    }
  }
  return false;
}

export function fmt(e: Ev): string {
  const { type, ...params } = e;
  const ps = Object.entries(params)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  return ps ? `${type} ${ps}` : type;
}

/** The words of a state description that a step changed (descriptions are space-separated facts). */
export function changedTokens(before: string, after: string): string {
  const strip = (t: string): string => t.replace(/^\[|\]$/g, '');
  const was = new Set(before.split(/\s+/).map(strip));
  return after
    .split(/\s+/)
    .map(strip)
    .filter((t) => t && !was.has(t))
    .join(' ');
}

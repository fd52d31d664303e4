// Hunting seeded mutants and shipped defects: run the engines each one must be found by, and turn
// the minimal failure into a trace. Used by `dmcheck kill`, `npm run check` and the test suite.

import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { explore } from './explore.js';
import { lockstep } from './lockstep.js';
import { minimizeTrace } from './minimize.js';
import { defaultOperatorOptions, type OperatorOptions } from './operators.js';
import { replayTrace } from './replay.js';
import { boundsWithDefaults, type AnyModel, type Bounds, type Defect, type LockstepPlan, type Variant } from './model.js';
import { makeTrace, type Trace } from './trace.js';

export type Engine = 'explore' | 'lockstep';

export interface Target {
  /** Mutant id or shipped-defect id. */
  readonly id: string;
  readonly kind: 'mutant' | 'shipped';
  readonly variant: Variant;
  readonly bounds: Bounds;
  readonly breaks: readonly string[];
  readonly engines: readonly Engine[];
  /** Minimum lockstep runs (Defect.runs). */
  readonly runs?: number;
  /** Steps the lockstep hunt runs instead of random commands (Defect.plan). */
  readonly plan?: LockstepPlan;
  /** Operator switches for the lockstep hunt (Defect.operators). */
  readonly operators?: Partial<OperatorOptions>;
}

/** The profile with every later fix applied: 'fixed' when the model has it. */
export function fixedProfile(model: AnyModel): string {
  return model.profiles.includes('fixed') ? 'fixed' : model.defaultProfile;
}

export function targetsOf(model: AnyModel): Target[] {
  const target = (d: Defect, kind: Target['kind'], variant: Variant): Target => ({
    id: d.id,
    kind,
    variant,
    bounds: boundsWithDefaults(model, d.bounds ?? {}),
    breaks: d.breaks,
    engines: d.killedBy,
    runs: d.runs ?? 0,
    ...(d.plan !== undefined ? { plan: d.plan } : {}),
    ...(d.operators !== undefined ? { operators: d.operators } : {}),
  });
  return [
    ...model.mutants.map((m) => target(m, 'mutant', { profile: fixedProfile(model), mutant: m.id })),
    ...model.shipped.map((d) => target(d, 'shipped', { profile: d.profile, mutant: null })),
  ];
}

export interface HuntResult {
  readonly target: Target;
  readonly engine: Engine;
  readonly trace: Trace | null;
  /** Why the hunt counts as failed, if it does (not found, or found something else). */
  readonly problem: string | null;
  readonly seconds: number;
}

export interface HuntOptions {
  readonly seed: number;
  readonly numRuns: number;
  readonly maxStates?: number;
  readonly maxSeconds?: number;
  /**
   * Delta-debug a lockstep failure to a 1-minimal trace (default true). Only a trace that is
   * written needs it (`dmcheck kill --write`); a check that the target is found does not, and a
   * long planned path costs one replay per candidate.
   */
  readonly minimize?: boolean;
  /** Progress of long work (a minimization), one line at a time. */
  readonly log?: (line: string) => void;
}

export async function hunt(model: AnyModel, target: Target, engine: Engine, opts: HuntOptions): Promise<HuntResult> {
  const t0 = performance.now();
  const done = (trace: Trace | null, problem: string | null): HuntResult => ({ target, engine, trace, problem, seconds: (performance.now() - t0) / 1000 });
  const fields = { model: model.id, bounds: target.bounds, profile: target.variant.profile, mutant: target.variant.mutant };
  if (engine === 'explore') {
    const r = explore(model.instance(target.bounds, target.variant), {
      ...(opts.maxStates !== undefined ? { maxStates: opts.maxStates } : {}),
      ...(opts.maxSeconds !== undefined ? { maxSeconds: opts.maxSeconds } : {}),
    });
    const v = r.violations[0];
    if (!v) return done(null, `explorer found no violation in ${r.states} states${r.complete ? '' : ' (incomplete: ' + r.stopped + ')'}`);
    const trace = makeTrace({
      ...fields,
      engine,
      initialIndex: v.initialIndex,
      steps: v.path,
      violation: { kind: v.kind, property: v.property, spec: v.spec, message: v.message },
      note: `${target.kind} ${target.id}: shortest counterexample (BFS)`,
    });
    return done(trace, breaksOk(target, v.spec));
  }
  if (!model.impl) return done(null, `model ${model.id} has no implementation for the lockstep runner`);
  // The minimized trace must not fail the same way on the correct code.
  const control: Variant = { profile: fixedProfile(model), mutant: null };
  const minimize = async (t: Trace, known = false): Promise<Trace> => {
    if (opts.minimize === false) return t;
    if (t.steps.length > 20) opts.log?.(`${target.id}: delta-debugging a ${t.steps.length}-step failure (two replays per candidate)`);
    return minimizeTrace(model, t, { control, known });
  };
  if (target.plan) {
    const planned = makeTrace({ ...fields, engine, initialIndex: 0, steps: [...target.plan.steps], violation: null, note: '' });
    const r = await replayTrace(model, planned);
    if (!r.found) return done(null, `the plan (${target.plan.steps.length} steps, ${target.plan.why}) ran clean in lockstep`);
    const clean = await replayTrace(model, planned, control);
    if (clean.found) return done(null, `the plan fails on the correct implementation too (${clean.found.property}: ${clean.found.message})`);
    const failing = makeTrace({
      ...fields,
      engine,
      initialIndex: 0,
      steps: target.plan.steps.slice(0, r.stepsRun),
      violation: r.found,
      note: `${target.kind} ${target.id}: a planned path (${target.plan.why}) run in lockstep${opts.minimize === false ? '' : ', then delta-debugged to a 1-minimal step list'}`,
    });
    // Both replays above are the minimizer's first check (the plan cut at its failing step).
    return done(await minimize(failing, true), breaksOk(target, r.found.spec));
  }
  const r = await lockstep(model, target.bounds, target.variant, {
    seed: opts.seed,
    numRuns: Math.max(opts.numRuns, target.runs ?? 0),
    ...(target.operators ? { operators: { ...defaultOperatorOptions, ...target.operators } } : {}),
  });
  if (!r.failure) return done(null, `lockstep found no failure in ${r.runs} runs (seed ${r.seed})`);
  const shrunk = makeTrace({
    ...fields,
    engine,
    initialIndex: r.failure.initialIndex,
    steps: r.failure.steps,
    violation: r.failure.violation,
    fastcheck: { seed: r.failure.seed, path: r.failure.path },
    note: `${target.kind} ${target.id}: shrunk by fast-check${opts.minimize === false ? '' : ', then delta-debugged to a 1-minimal step list'}`,
  });
  const trace = await minimize(shrunk);
  return done(trace, breaksOk(target, r.failure.violation.spec));
}

function breaksOk(target: Target, spec: readonly string[]): string | null {
  return spec.some((s) => target.breaks.includes(s)) ? null : `found a violation of [${spec.join(', ') || 'no spec id'}], expected one of [${target.breaks.join(', ')}]`;
}

/** Where a target's committed trace lives. */
export function counterexamplePath(root: string, model: string, targetId: string, engine: Engine): string {
  return join(root, model, `${targetId}.${engine}.json`);
}

export function listCounterexamples(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const f of readdirSync(join(root, dir.name))) if (f.endsWith('.json')) out.push(join(root, dir.name, f));
  }
  return out.sort();
}

// Delta debugging (Zeller's ddmin) over a trace's steps: the smallest subsequence that still
// reproduces the recorded violation through machine and implementation. fast-check's shrinking
// works on the commands it generated; this works on the steps that actually ran, including the
// scheduler's interleaving, so a lockstep counterexample ends up 1-minimal.
//
// A candidate reproduces when it shows the recorded property with the same spec ids; with a
// `control` variant (the correct code, for a mutant's or a shipped defect's trace) it must also
// not show that violation there, so shrinking cannot wander to a path that fails for another
// reason (a mutant's trace that also fails on the correct implementation explains nothing).

import type { Ev, Model, Variant } from './model.js';
import { replayTrace } from './replay.js';
import type { Trace } from './trace.js';

export interface MinimizeOptions {
  /** Replays at most (each candidate costs one, or two with a control). */
  readonly budget?: number;
  /** The correct code the minimized trace must not fail under in the same way. */
  readonly control?: Variant;
  /** The caller has just replayed the whole trace both ways (a planned hunt): skip doing it again. */
  readonly known?: boolean;
}

export async function minimizeTrace<S>(model: Model<S, Ev>, trace: Trace, opts: MinimizeOptions = {}): Promise<Trace> {
  const budget = opts.budget ?? 2000;
  const want = trace.violation;
  let runs = 0;
  const sameViolation = (found: { property: string; spec: readonly string[] } | null): boolean =>
    found !== null && want !== null && found.property === want.property && [...found.spec].sort().join() === [...want.spec].sort().join();
  const reproduces = async (steps: readonly Ev[]): Promise<boolean> => {
    runs++;
    const candidate = { ...trace, steps };
    if (!sameViolation((await replayTrace(model, candidate)).found)) return false;
    if (!opts.control) return true;
    runs++;
    const clean = await replayTrace(model, candidate, { profile: opts.control.profile, mutant: opts.control.mutant });
    return clean.found?.property !== want!.property;
  };
  let steps = [...trace.steps];
  if (!want || !(opts.known === true || (await reproduces(steps)))) return trace;
  let n = 2;
  while (steps.length >= 2 && runs < budget) {
    const size = Math.ceil(steps.length / n);
    let reduced = false;
    for (let i = 0; i < n && runs < budget; i++) {
      const complement = [...steps.slice(0, i * size), ...steps.slice((i + 1) * size)];
      if (complement.length < steps.length && (await reproduces(complement))) {
        steps = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= steps.length) break;
      n = Math.min(n * 2, steps.length);
    }
  }
  return { ...trace, steps };
}

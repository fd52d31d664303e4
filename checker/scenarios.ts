// Scenario coverage: a named scenario is covered when its every step is enabled in the model at the
// explored bounds. The explorer is exhaustive there, so a feasible path lies inside the state space.

import type { AnyModel, Bounds, Ev } from './model.js';
import { boundsWithDefaults } from './model.js';
import { withOperators } from './operators.js';
import { fmt } from './replay.js';

export interface ScenarioCoverage {
  readonly name: string;
  readonly source: string;
  /** Every step enabled in the model at the scenario's own bounds. */
  readonly feasible: boolean;
  /** Feasible, and inside the state space explored at the given bounds. */
  readonly covered: boolean;
  /** Why not feasible, or which bound takes it beyond the explored space. */
  readonly why: string | null;
}

export function scenarioCoverage(model: AnyModel, profile: string, bounds: Bounds): ScenarioCoverage[] {
  return (model.scenarios ?? []).map((sc) => {
    const b = boundsWithDefaults(model, sc.bounds ?? {});
    const p = sc.profile ?? profile;
    const tooBig = Object.entries(b).find(([k, v]) => v > (bounds[k] ?? v));
    const inst = model.instance(b, { profile: p, mutant: null });
    const sys = withOperators(inst);
    let s: unknown = sys.initial()[0];
    for (let i = 0; i < sc.steps.length; i++) {
      const e: Ev = sc.steps[i]!;
      const next = sys.step(s, e);
      if (next === null) {
        return { name: sc.name, source: sc.source, feasible: false, covered: false, why: `step ${i + 1} (${fmt(e)}) is not enabled in ${inst.describe(s)}` };
      }
      s = next;
    }
    return tooBig
      ? { name: sc.name, source: sc.source, feasible: true, covered: false, why: `needs ${tooBig[0]}=${tooBig[1]}, beyond the default bounds` }
      : { name: sc.name, source: sc.source, feasible: true, covered: true, why: null };
  });
}

// Scenario coverage: a named scenario is covered when its every step is enabled in the model and is
// one of the events the explorer tries, at bounds explored to completion (the defaults, or the
// scenario's own). The explorer is exhaustive there, so the path lies inside the state space.

import { explore } from './explore.js';
import { canonical } from './lockstep.js';
import type { AnyModel, Bounds, Ev } from './model.js';
import { boundsWithDefaults } from './model.js';
import { withOperators } from './operators.js';
import { fmt } from './replay.js';

export interface ScenarioCoverage {
  readonly name: string;
  readonly source: string;
  /** Every step enabled in the model at the scenario's own bounds. */
  readonly feasible: boolean;
  /** Every step is one of the events the explorer tries in that state (else no exploration holds the path). */
  readonly explorable: boolean;
  /** Feasible, explorable, and inside the state space explored at the given bounds. */
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
    let untried: string | null = null;
    for (let i = 0; i < sc.steps.length; i++) {
      const e: Ev = sc.steps[i]!;
      const next = sys.step(s, e);
      if (next === null) {
        return { name: sc.name, source: sc.source, feasible: false, explorable: false, covered: false, why: `step ${i + 1} (${fmt(e)}) is not enabled in ${inst.describe(s)}` };
      }
      if (untried === null && !sys.events(s).some((x) => canonical(x) === canonical(e))) untried = `step ${i + 1} (${fmt(e)}) is not an event the explorer tries`;
      s = next;
    }
    if (untried !== null) return { name: sc.name, source: sc.source, feasible: true, explorable: false, covered: false, why: untried };
    return tooBig
      ? { name: sc.name, source: sc.source, feasible: true, explorable: true, covered: false, why: `needs ${tooBig[0]}=${tooBig[1]}, beyond the default bounds` }
      : { name: sc.name, source: sc.source, feasible: true, explorable: true, covered: true, why: null };
  });
}

/** How far `coverAtOwnBounds` may explore for one bound set. */
export interface OwnBoundsBudget {
  readonly maxStates: number;
  readonly maxSeconds: number;
}

/**
 * Scenarios that need other starting bounds than the explored defaults (another initial table, a
 * feature flag): each distinct bound set (with the scenario's profile) is explored once, with every
 * violation collected, within the budget. A feasible scenario whose own bounds were explored to
 * completion lies in that space (the exploration is exhaustive), so it is covered there.
 */
export function coverAtOwnBounds(
  model: AnyModel,
  profile: string,
  coverage: readonly ScenarioCoverage[],
  budget: OwnBoundsBudget,
): ScenarioCoverage[] {
  const explored = new Map<string, { complete: boolean; states: number }>();
  return coverage.map((c) => {
    if (c.covered || !c.explorable) return c;
    const sc = (model.scenarios ?? []).find((x) => x.name === c.name)!;
    const b = boundsWithDefaults(model, sc.bounds ?? {});
    const p = sc.profile ?? profile;
    const k = `${p} ${JSON.stringify(b)}`;
    let r = explored.get(k);
    if (r === undefined) {
      const x = explore(model.instance(b, { profile: p, mutant: null }), { allViolations: true, checkProgress: false, ...budget });
      explored.set(k, (r = { complete: x.complete, states: x.states }));
    }
    return r.complete
      ? { ...c, covered: true, why: `explored at its own bounds (${r.states} states)` }
      : { ...c, why: `${c.why}; its own bounds hold more than ${r.states} states, beyond this run's budget` };
  });
}

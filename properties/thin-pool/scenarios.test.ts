// The dmtest / lvm2 / oracle scenarios of dm-thin.md §11 (scenarios.ts), replayed through the
// machine and through the pool target impl (drivers/md/dm-thin.c behaviour), asserting the kernel's
// observable outcome and that both sides agree at every step.

import { describe, expect, it } from 'vitest';
import { canonical } from '../../checker/lockstep.js';
import { withOperators } from '../../checker/operators.js';
import { scenarioCoverage } from '../../checker/scenarios.js';
import { asModel, boundsWithDefaults, type Ev, type Instance } from '../../checker/model.js';
import { initialPoolState, poolStep } from '../../machines/thin-pool/semantics.js';
import type { PoolState, Profile } from '../../machines/thin-pool/types.js';
import { poolConfig } from './config.js';
import { createPoolHarness } from './impl-adapter.js';
import { projectPool, thinPoolModel, type PoolMState } from './model.js';
import { compareExpect, observeMachine, runScenarioOnMachine, scenarioBounds } from './run-scenario.js';
import { poolScenarios } from './scenarios.js';

describe('thin-pool named scenarios', () => {
  for (const sc of poolScenarios) {
    for (const [profile, exp] of Object.entries(sc.expect)) {
      it(`${sc.name} (${profile})`, () => {
        const p = profile as Profile;
        const final = runScenarioOnMachine(sc, p);
        expect(compareExpect(exp!, observeMachine(final, p))).toEqual([]);

        // The impl, step by step, must show the same projection as the machine.
        const bounds = boundsWithDefaults(thinPoolModel, scenarioBounds(sc));
        const cfg = poolConfig(bounds, { profile: p, mutant: null });
        const h = createPoolHarness({ profile: p, mutant: null }, bounds);
        let s: PoolState = initialPoolState(cfg);
        for (const e of sc.events) {
          s = poolStep(cfg, s, e)!;
          h.apply(e);
          const want = canonical(projectPool({ value: [s.mode], context: s.ctx }, p));
          expect(canonical(h.project()), `after ${JSON.stringify(e)}`).toBe(want);
        }
      });
    }
  }

  it('covers the dmtest scenarios the issue names', () => {
    const names = poolScenarios.map((s) => s.name);
    for (const n of [
      'out_of_data_space_errors_immediately_if_requested',
      'resize_after_OODS_held_io',
      'resize_after_OODS_error_immediately',
      'resize_metadata_after_exhaust',
      'commit_failure_sets_needs_check',
      'exhausting_metadata_space_causes_fail_mode',
      'thin_remove_works_after_resize',
      'bz1230271_metadata_replaced_by_error_target',
      'out_of_data_space_times_out',
    ]) {
      expect(names).toContain(n);
    }
  });

  it("what `dmcheck check` reports as covered is a path of the explored graph, at the defaults or at the scenario's own bounds", () => {
    // checker/scenarios.ts only compares bounds (and `dmcheck check` explores a scenario's own bounds
    // when they differ); here each step of every scenario must be one of the events the explorer
    // tries in that state, at the bounds it is covered at (a `fault` message is the engine's @fault
    // operator).
    const model = asModel(thinPoolModel);
    const defaults = boundsWithDefaults(thinPoolModel, {});
    const cov = scenarioCoverage(model, 'fixed', defaults);
    const covered = cov.filter((c) => c.covered).map((c) => c.name);
    console.log(`scenarios inside the explored space: ${covered.length}/${cov.length}: ${covered.join(', ')}`);
    expect(covered.length).toBeGreaterThanOrEqual(10);
    // What the engine would cover at a scenario's own bounds (coverAtOwnBounds explores those).
    const explorable = cov.filter((c) => c.explorable).map((c) => c.name);
    console.log(`explorable at their own bounds: ${explorable.length}/${cov.length}; not: ${cov.filter((c) => !c.explorable).map((c) => `${c.name} (${c.why})`).join('; ')}`);
    expect(explorable).toEqual(expect.arrayContaining(covered));
    // Every scenario is a path of events the explorer tries (issue #4: each named scenario covered;
    // that its own bounds explore within the budget is what `dmcheck check` measures).
    expect(explorable).toEqual(poolScenarios.map((s) => s.name));
    const off: string[] = [];
    for (const sc of poolScenarios.filter((x) => explorable.includes(x.name))) {
      const at = covered.includes(sc.name) ? defaults : boundsWithDefaults(thinPoolModel, scenarioBounds(sc));
      for (const profile of Object.keys(sc.expect)) {
        const inst = thinPoolModel.instance(at, { profile, mutant: null }) as unknown as Instance<PoolMState, Ev>;
        const sys = withOperators(inst);
        let st = sys.initial()[0]!;
        for (const [i, e] of sc.events.entries()) {
          const asTried: Ev = e.type === 'fault' ? { type: '@fault', site: e.kind } : e;
          const tried = sys.events(st).some((x) => canonical(x) === canonical(asTried));
          const next = sys.step(st, asTried);
          if (!tried || next === null) {
            off.push(`${sc.name} (${profile}) step ${i + 1} ${JSON.stringify(e)}: ${tried ? 'not enabled' : 'not an event the explorer tries'}`);
            break;
          }
          st = next;
        }
      }
    }
    expect(off).toEqual([]);
  });
});

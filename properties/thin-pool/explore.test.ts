// Exhaustive check of the thin-pool machine (drivers/md/dm-thin.c modes) at the model's default
// bounds, which include one data grow (1 → 2 blocks) and one metadata grow (5 → 7 blocks) by table
// reload (maybe_resize_data_dev / maybe_resize_metadata_dev), with metadata fault injection: the fixed
// profile violates nothing; linux-3.14 violates exactly the shipped #15 rule (THIN-POOL-11), and its
// path is printed. Deterministic BFS, no seeds needed.

import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Ev, type Instance, type Invariant } from '../../checker/model.js';
import { thinPoolModel, type PoolMState } from './model.js';

/** The bounds `dmcheck check thin-pool` explores (no overrides). */
export const EXPLORE_BOUNDS = boundsWithDefaults(thinPoolModel, {});

interface Reached {
  dataNr: number;
  mdNr: number;
  grownWhileDegraded: number;
}

function run(profile: string) {
  const inst = thinPoolModel.instance(EXPLORE_BOUNDS, { profile, mutant: null }) as unknown as Instance<PoolMState, Ev>;
  // A probe that never fails: records how far the committed space maps grew, so the test can tell
  // that resize really is inside the explored space.
  const reached: Reached = { dataNr: 0, mdNr: 0, grownWhileDegraded: 0 };
  const probe: Invariant<PoolMState> = {
    spec: [],
    name: 'growth probe',
    check: (s) => {
      const c = s.context;
      reached.dataNr = Math.max(reached.dataNr, c.dataNr);
      reached.mdNr = Math.max(reached.mdNr, c.mdNr);
      if (c.last?.ev.startsWith('reload') && c.last.modeFrom !== 'write' && c.dataNr > c.last.dataBefore) reached.grownWhileDegraded++;
      return null;
    },
  };
  const r = explore({ ...inst, invariants: [...inst.invariants, probe] }, { allViolations: true, checkDeadlock: false, checkProgress: false, maxSeconds: 1200 });
  return { r, reached };
}

describe('thin-pool exhaustive exploration (default bounds, with resize)', () => {
  it('the default bounds allow growing data and metadata', () => {
    expect(EXPLORE_BOUNDS['dataMax']!).toBeGreaterThan(EXPLORE_BOUNDS['data']!);
    expect(EXPLORE_BOUNDS['mdMax']!).toBeGreaterThan(EXPLORE_BOUNDS['md']!);
  });

  it('fixed: every invariant holds in every reachable state', () => {
    const { r, reached } = run('fixed');
    console.log(`thin-pool fixed ${JSON.stringify(EXPLORE_BOUNDS)}: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
    expect(r.complete).toBe(true);
    expect(r.violations.map((v) => `${v.property}: ${v.message}`)).toEqual([]);
    for (const m of ['write', 'out_of_data_space', 'out_of_metadata_space', 'read_only', 'fail']) expect(r.valueCoverage[m] ?? 0).toBeGreaterThan(0);
    expect(reached).toMatchObject({ dataNr: EXPLORE_BOUNDS['dataMax'], mdNr: EXPLORE_BOUNDS['md']! + 2 });
    expect(reached.grownWhileDegraded).toBeGreaterThan(0);
  }, 1_300_000);

  it('linux-3.14: only the shipped defect THIN-POOL-11 (#15) is violated', () => {
    const { r, reached } = run('linux-3.14');
    console.log(`thin-pool linux-3.14 ${JSON.stringify(EXPLORE_BOUNDS)}: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
    for (const v of r.violations) console.log(`  ${v.property} [${v.spec.join(', ')}]: ${v.message}\n    ${v.path.map((e) => JSON.stringify(e)).join(' ')}`);
    expect(r.complete).toBe(true);
    expect(r.violations.flatMap((v) => v.spec)).toEqual(['THIN-POOL-11']);
    for (const m of ['write', 'out_of_data_space', 'read_only', 'fail']) expect(r.valueCoverage[m] ?? 0).toBeGreaterThan(0);
    expect(reached).toMatchObject({ dataNr: EXPLORE_BOUNDS['dataMax'], mdNr: EXPLORE_BOUNDS['md']! + 2 });
    expect(reached.grownWhileDegraded).toBeGreaterThan(0);
  }, 1_300_000);
});

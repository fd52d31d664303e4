// Exhaustive check of the thin-pool machine (drivers/md/dm-thin.c modes) at the model's default
// bounds, which include one data grow (1 → 2 blocks) and one metadata grow (6 → 8 blocks) by table
// reload (maybe_resize_data_dev / maybe_resize_metadata_dev), with metadata fault injection: the fixed
// profile violates nothing; linux-3.14 violates exactly the shipped #15 rule (THIN-POOL-11), and its
// path is printed. Deterministic BFS, no seeds needed.

import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Ev, type Instance, type Invariant } from '../../checker/model.js';
import { thinPoolModel, unreducedInstance, type PoolMState } from './model.js';

/** The bounds `dmcheck check thin-pool` explores (no overrides). */
export const EXPLORE_BOUNDS = boundsWithDefaults(thinPoolModel, {});

interface Reached {
  dataNr: number;
  mdNr: number;
  /** States with the grown data space map in a mode other than write (grown, then degraded, or the reverse). */
  grownDegraded: number;
}

function run(profile: string) {
  const inst = thinPoolModel.instance(EXPLORE_BOUNDS, { profile, mutant: null }) as unknown as Instance<PoolMState, Ev>;
  // A probe that never fails: records how far the committed space maps grew, so the test can tell
  // that resize really is inside the explored space.
  const reached: Reached = { dataNr: 0, mdNr: 0, grownDegraded: 0 };
  const probe: Invariant<PoolMState> = {
    spec: [],
    name: 'growth probe',
    check: (s) => {
      const c = s.context;
      reached.dataNr = Math.max(reached.dataNr, c.dataNr);
      reached.mdNr = Math.max(reached.mdNr, c.mdNr);
      if (c.dataNr > EXPLORE_BOUNDS['data']! && s.value[0] !== 'write') reached.grownDegraded++;
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
    expect(reached.grownDegraded).toBeGreaterThan(0);
  }, 1_300_000);

  it('linux-3.14: only the shipped defect THIN-POOL-11 (#15) is violated', () => {
    const { r, reached } = run('linux-3.14');
    console.log(`thin-pool linux-3.14 ${JSON.stringify(EXPLORE_BOUNDS)}: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
    for (const v of r.violations) console.log(`  ${v.property} [${v.spec.join(', ')}]: ${v.message}\n    ${v.path.map((e) => JSON.stringify(e)).join(' ')}`);
    expect(r.complete).toBe(true);
    expect(r.violations.flatMap((v) => v.spec)).toEqual(['THIN-POOL-11']);
    for (const m of ['write', 'out_of_data_space', 'read_only', 'fail']) expect(r.valueCoverage[m] ?? 0).toBeGreaterThan(0);
    expect(reached).toMatchObject({ dataNr: EXPLORE_BOUNDS['dataMax'], mdNr: EXPLORE_BOUNDS['md']! + 2 });
    expect(reached.grownDegraded).toBeGreaterThan(0);
  }, 1_300_000);

  it('the state reduction (model.ts reducedStep/reducedKey) finds the same first violations as the full state space', () => {
    // Small bounds and a few mutants so the unreduced space stays cheap (every mutant at the default
    // bounds was compared once by hand: same violations, same shortest lengths; see spec/thin-pool.md).
    const bounds = boundsWithDefaults(thinPoolModel, { vblocks: 1, md: 5, mdMax: 5, dataMax: 2, queue: 1 });
    const opts = { allViolations: true, checkDeadlock: false, checkProgress: false, maxSeconds: 600 };
    const sig = (vs: readonly { property: string; path: readonly unknown[] }[]): string[] => vs.map((v) => `${v.property}@${v.path.length}`).sort();
    const differ: string[] = [];
    let reducedStates = 0;
    let fullStates = 0;
    for (const profile of ['fixed', 'linux-3.14']) {
      for (const mutant of [null, '6-level', '13-resize-with-needs-check']) {
        const reduced = thinPoolModel.instance(bounds, { profile, mutant }) as unknown as Instance<PoolMState, Ev>;
        const full = unreducedInstance(bounds, { profile, mutant }) as unknown as Instance<PoolMState, Ev>;
        const a = explore(reduced, opts);
        const b = explore(full, opts);
        reducedStates += a.states;
        fullStates += b.states;
        if (sig(a.violations).join() !== sig(b.violations).join()) differ.push(`${profile} ${mutant}: ${sig(a.violations).join()} vs ${sig(b.violations).join()}`);
      }
    }
    console.log(`reduction: ${reducedStates} states instead of ${fullStates}`);
    expect(differ).toEqual([]);
    expect(reducedStates).toBeLessThan(fullStates / 3);
  }, 1_300_000);
});

// Exhaustive check of the thin-pool machine (drivers/md/dm-thin.c modes) at small bounds with
// metadata fault injection: the fixed profile violates nothing; linux-3.14 violates exactly the
// shipped #15 rule (THIN-POOL-11), and its path is printed. Deterministic BFS, no seeds needed.

import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Ev, type Instance } from '../../checker/model.js';
import { thinPoolModel, type PoolMState } from './model.js';

export const EXPLORE_BOUNDS = { vblocks: 1, data: 1, dataMax: 1, md: 6, mdMax: 6, queue: 1 };

function run(profile: string) {
  const inst = thinPoolModel.instance(boundsWithDefaults(thinPoolModel, EXPLORE_BOUNDS), { profile, mutant: null });
  return explore(inst as unknown as Instance<PoolMState, Ev>, { allViolations: true, checkDeadlock: false, checkProgress: false, maxSeconds: 1200 });
}

describe('thin-pool exhaustive exploration', () => {
  it('fixed: every invariant holds in every reachable state', () => {
    const r = run('fixed');
    console.log(`thin-pool fixed: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
    expect(r.complete).toBe(true);
    expect(r.violations.map((v) => `${v.property}: ${v.message}`)).toEqual([]);
    for (const m of ['write', 'out_of_data_space', 'out_of_metadata_space', 'read_only', 'fail']) expect(r.valueCoverage[m] ?? 0).toBeGreaterThan(0);
  }, 1_300_000);

  it('linux-3.14: only the shipped defect THIN-POOL-11 (#15) is violated', () => {
    const r = run('linux-3.14');
    console.log(`thin-pool linux-3.14: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
    for (const v of r.violations) console.log(`  ${v.property} [${v.spec.join(', ')}]: ${v.message}\n    ${v.path.map((e) => JSON.stringify(e)).join(' ')}`);
    expect(r.complete).toBe(true);
    expect(r.violations.flatMap((v) => v.spec)).toEqual(['THIN-POOL-11']);
    for (const m of ['write', 'out_of_data_space', 'read_only', 'fail']) expect(r.valueCoverage[m] ?? 0).toBeGreaterThan(0);
  }, 1_300_000);
});

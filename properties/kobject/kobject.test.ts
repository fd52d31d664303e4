// KOBJ-1…7 at the default bounds: exhaustive under 'fixed', the two 3.14 races under 'linux-3.14',
// and the async implementation in lockstep with the machine under fast-check's scheduler.
import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { lockstep } from '../../checker/lockstep.js';
import { boundsWithDefaults } from '../../checker/model.js';
import { testSeed } from '../../checker/seed.js';
import { kobjectModel } from './model.js';

const bounds = boundsWithDefaults(kobjectModel);

describe('kobject release sequencing', () => {
  it('holds exhaustively under fixed at the default bounds (KOBJ-1..7)', () => {
    const r = explore(kobjectModel.instance(bounds, { profile: 'fixed', mutant: null }), { allViolations: true });
    expect(r.violations).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.states).toBeGreaterThan(100);
    // Every thread reaches every state of its region somewhere in the state space.
    for (const t of ['READ_GET', 'READ_EINVAL', 'GETMD_NOTFOUND', 'WAIT_DONE', 'RELEASE_RETURN', 'RMMOD', 'FOREIGN_PUT']) {
      expect(r.eventCoverage[t], t).toBeGreaterThan(0);
    }
  });

  it('finds both 3.14 races and the bigger bounds still hold under fixed', () => {
    const r314 = explore(kobjectModel.instance(bounds, { profile: 'linux-3.14', mutant: null }), { allViolations: true });
    const messages = r314.violations.filter((v) => v.spec.includes('KOBJ-3')).map((v) => v.message);
    expect(messages.join('\n')).toMatch(/BUG_ON\(DMF_FREEING\)/);
    const big = boundsWithDefaults(kobjectModel, { readers: 2, getters: 1, foreign: 2, openers: 1 });
    const r = explore(kobjectModel.instance(big, { profile: 'fixed', mutant: null }));
    expect(r.violations).toEqual([]);
    expect(r.complete).toBe(true);
  });

  it('impl and machine agree in lockstep under fixed (async, scheduled)', async () => {
    const seed = testSeed('kobject lockstep fixed');
    const r = await lockstep(kobjectModel, bounds, { profile: 'fixed', mutant: null }, { seed, numRuns: 150 });
    expect(r.failure).toBeNull();
    expect(r.ok).toBe(true);
  });

  it('the lockstep runner finds the shipped dm_get_from_kobject race under linux-3.14', async () => {
    const seed = testSeed('kobject lockstep linux-3.14');
    const b = boundsWithDefaults(kobjectModel, { getters: 0, foreign: 0, openers: 0 });
    const r = await lockstep(kobjectModel, b, { profile: 'linux-3.14', mutant: null }, { seed, numRuns: 400 });
    expect(r.failure?.violation.spec).toContain('KOBJ-3');
  });

  it('each impl mutant is observable: driven against the correct machine, lockstep fails', async () => {
    const seed = testSeed('kobject impl mutants vs correct machine');
    const fixed = { profile: 'fixed', mutant: null };
    for (const m of kobjectModel.mutants) {
      // The runs each mutant's hunt needs (kobject/model.ts): at 400 some fresh seeds missed
      // destroy-without-waiting-holders.
      const r = await lockstep(kobjectModel, bounds, fixed, { seed, numRuns: Math.max(400, m.runs ?? 0), implVariant: { profile: 'fixed', mutant: m.id } });
      expect(r.failure, m.id).not.toBeNull();
    }
  });
});

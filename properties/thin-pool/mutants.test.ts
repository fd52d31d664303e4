// Every seeded mutant of mutants.ts and the shipped 3.14 defect (#15) has a saved minimal trace in
// counterexamples/thin-pool/ (written by hunt.ts from the BFS explorer). Each replays through the
// machine and the impl (drivers/md/dm-thin.c behaviour) to the violation of the rule it breaks, and
// the same steps do not reproduce it without the mutant (or under the fixed profile).

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayTrace } from '../../checker/replay.js';
import { loadTrace } from '../../checker/trace.js';
import type { Ev, Model } from '../../checker/model.js';
import { huntTargets, traceFile } from './hunt.js';
import { thinPoolModel, type PoolMState } from './model.js';
import { mutantProfile, poolMutants, poolShipped } from './mutants.js';

const model = thinPoolModel as unknown as Model<PoolMState, Ev>;

describe('thin-pool mutants and the shipped defect', () => {
  it('lists at least the mutants the issue asks for', () => {
    const nums = new Set(poolMutants.map((m) => m.id.split('-')[0]));
    for (const n of ['1', '2', '3', '4', '5', '6', '13', '14', '16', '18', '19', '23']) expect(nums).toContain(n);
    expect(poolShipped.map((d) => d.id)).toContain('oods-no-commit');
    for (const m of poolMutants) expect(mutantProfile[m.id]).toBeDefined();
  });

  for (const t of huntTargets()) {
    it(`${t.id}: saved trace replays to ${t.breaks.join('/')}`, async () => {
      const file = traceFile(t.id);
      expect(existsSync(file), `${file} is missing: run npx tsx properties/thin-pool/hunt.ts ${t.id}`).toBe(true);
      const trace = loadTrace(file, [thinPoolModel.id]);
      expect(trace.mutant).toBe(t.mutant);
      expect(trace.profile).toBe(t.profile);
      const rep = await replayTrace(model, trace);
      expect(rep.reproduced, JSON.stringify(rep.found)).toBe(true);
      expect(rep.found?.spec.some((s) => t.breaks.includes(s))).toBe(true);
      if (t.mutant !== null) {
        const clean = await replayTrace(model, trace, { mutant: null });
        expect(clean.reproduced).toBe(false);
      } else {
        const fixed = await replayTrace(model, trace, { profile: 'fixed' });
        expect(fixed.reproduced).toBe(false);
      }
    }, 120_000);
  }
});

// Every seeded mutant and every shipped defect of every registered model is found by each engine
// its entry names, as a violation of a rule it is declared to break, and has its committed trace.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { counterexamplePath, hunt, targetsOf } from '../checker/hunt.js';
import { testSeed } from '../checker/seed.js';
import { models } from './registry.js';

const seed = testSeed('mutant hunt');

for (const model of models) {
  const targets = targetsOf(model);
  if (targets.length === 0) continue;
  describe(`${model.id}: seeded mutants and shipped defects`, () => {
    for (const t of targets) {
      for (const engine of t.engines) {
        it(`${t.kind} ${t.id} is found by the ${engine === 'explore' ? 'explorer' : 'lockstep runner'} [${t.breaks.join(', ')}]`, async () => {
          // Found is what this test asks; the committed traces are minimized (dmcheck kill --write) and
          // replayed by counterexamples.test.ts.
          const h = await hunt(model, t, engine, { seed, numRuns: 500, maxSeconds: 120, minimize: false });
          expect(h.problem).toBeNull();
          expect(h.trace?.violation?.spec.some((s) => t.breaks.includes(s))).toBe(true);
          expect(existsSync(counterexamplePath('counterexamples', model.id, t.id, engine)), 'committed counterexample (npx dmcheck kill --write)').toBe(true);
        });
      }
    }
  });
}

// Every committed trace under counterexamples/ reproduces its recorded violation through the
// machine and the implementation, and does not under the correct code ('fixed', no mutant).
import { describe, expect, it } from 'vitest';
import { fixedProfile, listCounterexamples } from '../checker/hunt.js';
import { replayTrace } from '../checker/replay.js';
import { loadTrace } from '../checker/trace.js';
import { models } from './registry.js';

const files = listCounterexamples('counterexamples');
const ids = models.map((m) => m.id);

describe('committed counterexamples', () => {
  it('exist', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const f of files) {
    it(`${f} reproduces, and not under the correct code`, async () => {
      const t = loadTrace(f, ids);
      const model = models.find((m) => m.id === t.model)!;
      const again = await replayTrace(model, t);
      expect(again.found?.property, again.found?.message).toBe(t.violation?.property);
      expect(again.reproduced).toBe(true);
      const clean = await replayTrace(model, t, { mutant: null, profile: fixedProfile(model) });
      expect(clean.found?.property).not.toBe(t.violation?.property);
    });
  }
});

// Finds each cache-mq mutant with the explorer and writes its minimal trace to
// counterexamples/cache-mq/<mutant>.json (run: npx tsx properties/cache-mq/counterexamples.ts).
// The replay test (cache-mq.test.ts) checks every committed trace still reproduces.

import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Bounds } from '../../checker/model.js';
import { makeTrace, writeTrace, type Trace } from '../../checker/trace.js';
import { cacheMqModel } from './model.js';

/** Bounds per mutant: the smallest instance that shows it. */
export const MQ_MUTANT_BOUNDS: Readonly<Record<string, Bounds>> = {
  'adjustments-ignored': {},
  'read-write-swapped': {},
  'threshold-off-by-one': {},
  'sequential-detection-off': { maxTick: 0 },
};

export function findMutantTrace(mutant: string): Trace {
  const bounds = boundsWithDefaults(cacheMqModel, MQ_MUTANT_BOUNDS[mutant] ?? {});
  const variant = { profile: 'linux-3.14', mutant };
  const r = explore(cacheMqModel.instance(bounds, variant), { maxStates: 200_000 });
  const v = r.violations[0];
  if (!v) throw new Error(`cache-mq: the explorer did not find mutant ${mutant} within ${r.states} states`);
  return makeTrace({
    model: cacheMqModel.id,
    bounds,
    profile: variant.profile,
    mutant,
    engine: 'explore',
    initialIndex: v.initialIndex,
    steps: v.path,
    violation: { kind: v.kind, property: v.property, spec: v.spec, message: v.message },
  });
}

if (process.argv[1]?.endsWith('counterexamples.ts')) {
  for (const m of cacheMqModel.mutants) {
    const t = findMutantTrace(m.id);
    writeTrace(`counterexamples/cache-mq/${m.id}.json`, t);
    console.log(`${m.id}: ${t.violation?.property} [${t.violation?.spec.join(', ')}] in ${t.steps.length} steps`);
  }
}

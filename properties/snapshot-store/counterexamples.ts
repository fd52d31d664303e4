// Finds each snapshot-store mutant and shipped defect with the explorer and writes its minimal trace
// to counterexamples/snapshot-store/<id>.json (run: npx tsx properties/snapshot-store/counterexamples.ts).
// snapshot-store.test.ts checks that every committed trace still reproduces.

import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Bounds } from '../../checker/model.js';
import { makeTrace, writeTrace, type Trace } from '../../checker/trace.js';
import { snapshotStoreModel } from './model.js';

/** The smallest instance that shows each seeded bug. */
export const SNAP_MUTANT_BOUNDS: Readonly<Record<string, Bounds>> = {
  'origin-before-commit': { restarts: 0, crashes: 0 },
  'area-before-zero': { restarts: 0 },
  'area-off-by-one': { restarts: 0, crashes: 0 },
  'terminator-old-chunk': { crashes: 0 },
  'no-area-copy': { crashes: 0 },
};

export function findSnapTrace(id: string, profile = 'linux-3.14'): Trace {
  const shipped = snapshotStoreModel.shipped.find((d) => d.id === id);
  const mutant = shipped ? null : id;
  const bounds = boundsWithDefaults(snapshotStoreModel, shipped ? (shipped.bounds ?? {}) : (SNAP_MUTANT_BOUNDS[id] ?? {}));
  const variant = { profile: shipped ? shipped.profile : profile, mutant };
  const r = explore(snapshotStoreModel.instance(bounds, variant), { maxStates: 500_000, checkProgress: true, keepGraph: true });
  const v = r.violations[0];
  if (!v) throw new Error(`snapshot-store: the explorer did not find ${id} within ${r.states} states`);
  return makeTrace({
    model: snapshotStoreModel.id,
    bounds,
    profile: variant.profile,
    mutant,
    engine: 'explore',
    initialIndex: v.initialIndex,
    steps: v.path,
    violation: { kind: v.kind, property: v.property, spec: v.spec, message: v.message },
    ...(shipped ? { note: `shipped defect ${id} of ${shipped.profile}; fixed by ${shipped.fix}` } : {}),
  });
}

export const SNAP_TRACE_IDS: readonly string[] = [...snapshotStoreModel.mutants.map((m) => m.id), ...snapshotStoreModel.shipped.map((d) => d.id)];

if (process.argv[1]?.endsWith('counterexamples.ts')) {
  for (const id of SNAP_TRACE_IDS) {
    const t = findSnapTrace(id);
    writeTrace(`counterexamples/snapshot-store/${id}.json`, t);
    console.log(`${id}: ${t.violation?.kind} ${t.violation?.property} [${t.violation?.spec.join(', ')}] in ${t.steps.length} steps: ${t.violation?.message}`);
  }
}

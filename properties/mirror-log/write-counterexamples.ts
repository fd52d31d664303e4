// Writes the minimal (BFS-shortest) traces of the mirror-log model under counterexamples/mirror-log/:
// every registered mutant and shipped defect (the same traces `dmcheck kill --write` produces) and
// the integrated_flush-vs-upstream-server hazard.
// Run: npx tsx properties/mirror-log/write-counterexamples.ts

import { counterexamplePath, hunt, targetsOf, type Target } from '../../checker/hunt.js';
import { asModel, boundsWithDefaults } from '../../checker/model.js';
import { writeTrace } from '../../checker/trace.js';
import { mirrorLogModel } from './model.js';
import { COMPAT_HAZARD } from './mutants.js';

export function mirrorTargets(): Target[] {
  const model = asModel(mirrorLogModel);
  return [
    ...targetsOf(model),
    {
      // A configuration hazard: it shows under every profile, so it is hunted under 'fixed'.
      id: COMPAT_HAZARD.id,
      kind: 'shipped' as const,
      variant: { profile: 'fixed', mutant: null },
      bounds: boundsWithDefaults(model, COMPAT_HAZARD.bounds),
      breaks: COMPAT_HAZARD.breaks,
      engines: ['explore' as const],
    },
  ];
}

async function main(): Promise<void> {
  const model = asModel(mirrorLogModel);
  let failed = 0;
  for (const t of mirrorTargets()) {
    const h = await hunt(model, t, 'explore', { seed: 1, numRuns: 1 });
    if (h.problem !== null || h.trace === null) {
      failed++;
      console.error(`NOT FOUND ${t.id}: ${h.problem ?? 'no trace'}`);
      continue;
    }
    // The configuration hazard reproduces under every profile, so it lives in a subfolder that the
    // generic "does not reproduce under the fixed profile" replay test does not scan.
    const file =
      t.id === COMPAT_HAZARD.id
        ? `counterexamples/${model.id}/hazards/${t.id}.explore.json`
        : counterexamplePath('counterexamples', model.id, t.id, 'explore');
    writeTrace(file, h.trace);
    console.log(`${t.id}: ${h.trace.violation!.property} [${h.trace.violation!.spec.join(', ')}] in ${h.trace.steps.length} steps -> ${file}`);
  }
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1]?.endsWith('write-counterexamples.ts')) await main();

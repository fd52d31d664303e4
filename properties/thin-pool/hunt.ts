// Finds each seeded mutant (and the shipped 3.14 defect) with the explorer and saves its minimal
// trace under counterexamples/thin-pool/. The search only checks the rules the mutant claims to break,
// so the shortest path is the shortest path to *that* violation, avoiding states that break other
// rules (under linux-3.14 the shipped #15 defect would otherwise be reported first on replay). Run: npx tsx properties/thin-pool/hunt.ts [id ...]

import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Bounds, type Ev, type Instance } from '../../checker/model.js';
import { makeTrace, writeTrace, type Trace } from '../../checker/trace.js';
import { thinPoolModel, type PoolMState } from './model.js';
import { mutantProfile, poolMutants, poolShipped } from './mutants.js';

export interface HuntTarget {
  readonly id: string;
  readonly profile: string;
  readonly mutant: string | null;
  readonly breaks: readonly string[];
  readonly bounds: Bounds;
}

export function huntTargets(): HuntTarget[] {
  const out: HuntTarget[] = poolMutants.map((m) => ({
    id: m.id,
    profile: mutantProfile[m.id] ?? 'linux-3.14',
    mutant: m.id,
    breaks: m.breaks,
    bounds: {},
  }));
  for (const d of poolShipped) out.push({ id: d.id, profile: d.profile, mutant: null, breaks: d.breaks, bounds: d.bounds ?? {} });
  return out;
}

export function traceFile(id: string): string {
  return `counterexamples/thin-pool/${id}.json`;
}

/** Explore for the first violation of the target's rules; null if none within the limits. */
export function hunt(t: HuntTarget, maxSeconds = 600): Trace | null {
  const bounds = boundsWithDefaults(thinPoolModel, t.bounds);
  const full = thinPoolModel.instance(bounds, { profile: t.profile, mutant: t.mutant });
  const targets = full.invariants.filter((i) => i.spec.some((s) => t.breaks.includes(s)));
  const others = full.invariants.filter((i) => !targets.includes(i));
  const base = full.system as unknown as Instance<PoolMState, Ev>['system'];
  // Paths through states that break another rule (e.g. the shipped #15 defect) are pruned, so the
  // saved trace shows this violation first when replayed with every invariant on.
  const inst: Instance<PoolMState, Ev> = {
    ...(full as unknown as Instance<PoolMState, Ev>),
    system: {
      ...base,
      step: (s, e) => {
        const n = base.step(s, e);
        if (n === null) return null;
        const breaksTarget = targets.some((i) => i.check(n) !== null);
        return breaksTarget || !others.some((i) => i.check(n) !== null) ? n : null;
      },
    },
    invariants: targets,
  };
  const r = explore(inst, { maxSeconds, checkDeadlock: false, checkProgress: false });
  const v = r.violations[0];
  if (!v) return null;
  return makeTrace({
    model: thinPoolModel.id,
    bounds,
    profile: t.profile,
    mutant: t.mutant,
    engine: 'explore',
    initialIndex: v.initialIndex,
    steps: v.path,
    violation: { kind: v.kind, property: v.property, spec: v.spec, message: v.message },
    note: `found by BFS in ${r.states} states (${r.seconds.toFixed(1)} s), checking only ${t.breaks.join(', ')}`,
  });
}

if (process.argv[1]?.endsWith('hunt.ts')) {
  const want = process.argv.slice(2);
  for (const t of huntTargets()) {
    if (want.length && !want.includes(t.id)) continue;
    const tr = hunt(t);
    if (!tr) {
      console.log(`${t.id}: NOT FOUND`);
      continue;
    }
    writeTrace(traceFile(t.id), tr);
    console.log(`${t.id}: ${tr.violation?.property} [${tr.violation?.spec.join(', ')}] in ${tr.steps.length} steps; ${tr.note}`);
  }
}

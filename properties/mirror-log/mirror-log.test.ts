// Exhaustive exploration of the mirror-log machines (spec/mirror-log.md, ULOG-1 … ULOG-10):
// the fixed profile holds, the shipped 3.14 defects and every seeded mutant are found with the
// rule they break, the integrated_flush/upstream-server hazard is found and the compatible pairings
// hold, the saved traces replay, and the compiled machine agrees with its XState form.

import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { machineKey } from '../../checker/compose.js';
import { asModel, boundsWithDefaults, type Bounds, type Ev, type Instance } from '../../checker/model.js';
import { replayTrace } from '../../checker/replay.js';
import { testSeed } from '../../checker/seed.js';
import { validateTrace } from '../../checker/trace.js';
import type { MState } from '../../checker/machine.js';
import { buildMirrorLogMachine, eventAlphabet, K_STATES, L_STATES } from '../../machines/mirror-log/machine.js';
import { initialCtx } from '../../machines/mirror-log/logic.js';
import type { Ctx } from '../../machines/mirror-log/types.js';
import { cfgFrom, compactKey, mirrorInstance, mirrorLogModel } from './model.js';
import { COMPAT_HAZARD, MIRROR_MUTANTS, MIRROR_SHIPPED } from './mutants.js';

type S = MState<Ctx>;
const model = asModel(mirrorLogModel);
const B = (b: Bounds): Bounds => boundsWithDefaults(model, b);
const run = (b: Bounds, profile: string, mutant: string | null, allViolations = false) =>
  explore(mirrorInstance(B(b), { profile, mutant }) as unknown as Instance<unknown, Ev>, { allViolations });

describe('mirror-log: correct code', () => {
  it('fixed profile: every invariant holds, no deadlock, quiescence always reachable (defaults: 2 regions, 2 nodes, both modes, both callers)', () => {
    const r = run({}, 'fixed', null, true);
    expect(r.complete).toBe(true);
    expect(r.violations).toEqual([]);
    expect(r.states).toBeGreaterThan(1000);
  });

  it('fixed profile at 3 regions and 2 nodes holds', () => {
    const r = run({ regions: 3 }, 'fixed', null, true);
    expect(r.complete).toBe(true);
    expect(r.violations).toEqual([]);
  }, 900_000);

  it('fixed profile holds with resync, a leg error, a log-device failure, alloc failures and a crash (1 node)', () => {
    for (const b of [
      { resync: 1, legErrors: 1, nodes: 1 },
      { logFaults: 1, nodes: 1, batch: 0 },
      { logFaults: 1, handleErrors: 0, nodes: 1, batch: 0 },
      { allocFail: 1, nodes: 1 },
      { crashes: 1, nodes: 1, batch: 0 },
    ]) {
      const r = run(b, 'fixed', null, true);
      expect(r.complete, JSON.stringify(b)).toBe(true);
      expect(r.violations, JSON.stringify(b)).toEqual([]);
    }
  }, 900_000);

  it('fixed profile with leg write caches holds for two nodes: the peer flushes the shared legs before its clears too', () => {
    // Regression: the fix once covered node 1's clears only, and pmark → pwrite → pdone → pclear on
    // node 2 left a clean region with its data still in a leg cache (ULOG-6).
    const r = run({ cache: 1, nodes: 2 }, 'fixed', null, true);
    expect(r.complete).toBe(true);
    expect(r.violations).toEqual([]);
    const old = run({ cache: 1, nodes: 2 }, 'linux-3.14', null, false);
    expect(old.violations.some((v) => v.spec.includes('ULOG-6'))).toBe(true);
  }, 900_000);

  it('linux-3.14 without integrated_flush holds (the 3.14 change keeps the old mode as it was)', () => {
    const r = run({ integrated: 0 }, 'linux-3.14', null, true);
    expect(r.violations).toEqual([]);
  });
});

describe('mirror-log: compatibility of log mode and server (ULOG-10)', () => {
  for (const [integrated, server] of [
    [0, 0],
    [0, 1],
    [1, 1],
  ] as const) {
    it(`integrated=${integrated} against ${server ? 'a payload-aware' : 'the upstream'} server keeps marks durable`, () => {
      const r = run({ integrated, server }, 'fixed', null, true);
      expect(r.complete).toBe(true);
      expect(r.violations).toEqual([]);
    });
  }

  it('integrated_flush against upstream cmirrord loses marks: ULOG-10, then a write reaches a leg unmarked (ULOG-1)', () => {
    const r = run(COMPAT_HAZARD.bounds, 'fixed', null, true);
    const props = r.violations.map((v) => v.spec[0]);
    expect(props).toContain('ULOG-10');
    expect(props).toContain('ULOG-1');
    expect(props).toContain('ULOG-6');
    const first = r.violations.find((v) => v.spec.includes('ULOG-10'))!;
    expect(first.path.map((e) => e.type)).toEqual(['bio', 'pass', 'srv']);
    // the same trace under 3.14 as shipped
    const r314 = run(COMPAT_HAZARD.bounds, 'linux-3.14', null);
    expect(r314.violations[0]?.spec).toContain('ULOG-10');
  });
});

describe('mirror-log: shipped 3.14 defects', () => {
  for (const d of MIRROR_SHIPPED) {
    it(`${d.id} is found under linux-3.14 [${d.breaks.join(', ')}] and absent under fixed`, () => {
      const bad = run(d.bounds, 'linux-3.14', null);
      expect(bad.violations[0]?.spec.some((s) => d.breaks.includes(s))).toBe(true);
      const good = run(d.bounds, 'fixed', null, true);
      expect(good.violations).toEqual([]);
    });
  }
});

describe('mirror-log: seeded mutants at their own bounds', () => {
  for (const m of MIRROR_MUTANTS) {
    it(`${m.id} is killed [${m.breaks.join(', ')}]`, () => {
      const r = run(m.bounds, 'fixed', m.id);
      const v = r.violations[0];
      expect(v, `${m.id} survived ${r.states} states`).toBeDefined();
      expect(v!.spec.some((s) => m.breaks.includes(s)), `${m.id}: ${v!.property} ${v!.message}`).toBe(true);
      // and the same bounds without the mutant hold
      expect(run(m.bounds, 'fixed', null).violations).toEqual([]);
    });
  }
});

describe('mirror-log: committed traces', () => {
  const files = [
    ...[...MIRROR_MUTANTS, ...MIRROR_SHIPPED].map((m) => `counterexamples/mirror-log/${m.id}.explore.json`),
    `counterexamples/mirror-log/hazards/${COMPAT_HAZARD.id}.explore.json`,
  ];
  for (const f of files) {
    it(`${f} replays to its recorded violation`, async () => {
      const t = validateTrace(JSON.parse(readFileSync(f, 'utf8')), f, [model.id]);
      const again = await replayTrace(model, t);
      expect(again.reproduced, again.found?.message).toBe(true);
    });
  }
});

describe('mirror-log: machine mechanics', () => {
  const seed = testSeed('mirror-log machine differential');

  it('compiled step and the XState machine agree on random runs, and region values follow the context', () => {
    for (const integrated of [false, true]) {
      const cfg = cfgFrom({ integrated: integrated ? 1 : 0, batch: 0, resends: 1 }, { profile: 'linux-3.14', mutant: null });
      const m = buildMirrorLogMachine(cfg);
      const alphabet = eventAlphabet(cfg);
      fc.assert(
        fc.property(fc.array(fc.nat({ max: alphabet.length - 1 }), { maxLength: 40 }), (picks) => {
          const actor = createActor(m.xstate).start();
          let s: S = m.initial(initialCtx(cfg));
          for (const p of picks) {
            const e = alphabet[p]!;
            const next = m.step(s, e);
            if (next === null) continue;
            s = next;
            actor.send(e);
            const snap = actor.getSnapshot();
            expect(m.valueFromXState(snap.value)).toEqual([...s.value]);
            expect(JSON.stringify(snap.context)).toBe(JSON.stringify(s.context));
            expect(s.value[1]).toBe(K_STATES[s.context.kp]);
            expect(s.value[2]).toBe(L_STATES[s.context.lz]);
          }
          actor.stop();
        }),
        { seed, numRuns: 150 },
      );
    }
  });

  it('registers both log modes against both servers as machines with statecharts', () => {
    const ids = mirrorLogModel.machines.map((m) => m.id).sort();
    expect(ids).toEqual(['mirror-log-integrated-aware', 'mirror-log-integrated-upstream', 'mirror-log-plain-aware', 'mirror-log-plain-upstream']);
    for (const m of mirrorLogModel.machines) {
      const sc = m.statechart();
      expect(sc.regions.map((r) => r.name)).toEqual(['mirror', 'kmirrord', 'dmlogd', 'cmirrord']);
      const k = sc.regions[1]!;
      expect(k.states).toEqual(['idle', 'updateFlush', 'writeFlush']);
      expect(k.transitions.some((t) => t.from === 'writeFlush' && t.to === 'idle' && t.label.startsWith('reply'))).toBe(true);
    }
  });

  it('the compact state key identifies exactly the states machineKey does', () => {
    const inst = mirrorInstance(B({ nodes: 1, integrated: 2, batch: 2 }), { profile: 'linux-3.14', mutant: null });
    const seen = new Map<string, string>();
    const queue: S[] = [...inst.system.initial()];
    const keys = new Set<string>(queue.map(compactKey));
    for (let h = 0; h < queue.length; h++) {
      const s = queue[h]!;
      const full = machineKey(s);
      const ck = compactKey(s);
      const prev = seen.get(ck);
      if (prev !== undefined) expect(prev).toBe(full);
      seen.set(ck, full);
      for (const e of inst.system.events(s)) {
        const n = inst.system.step(s, e);
        if (n === null) continue;
        const k = compactKey(n);
        if (!keys.has(k)) {
          keys.add(k);
          queue.push(n);
        }
      }
    }
    expect(new Set(seen.values()).size).toBe(seen.size);
    expect(seen.size).toBeGreaterThan(500);
  });
});

// Tests for the mq promotion model (spec/cache-mq.md): exhaustive exploration, lockstep with the
// reference implementation, kernel-count scenarios, monotonicity, config errors, and every mutant
// found and replayed from counterexamples/cache-mq/.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { explore } from '../../checker/explore.js';
import { lockstep } from '../../checker/lockstep.js';
import { replayTrace } from '../../checker/replay.js';
import { validateTrace } from '../../checker/trace.js';
import { boundsWithDefaults } from '../../checker/model.js';
import { MqPolicy, type Dir } from '../../impl/cache/mq-policy.js';
import { MQ_DEFAULTS, cacheMessage, ctrPolicyArgs, kstrtoul10, emitConfigValues, type MqTunables } from '../../impl/cache/config.js';
import { testSeed } from '../../checker/seed.js';
import { initialContext, mqMachine, type MqCtx, type MqEvent } from '../../machines/cache-mq/mq.machine.js';
import type { MState } from '../../checker/machine.js';
import { disagreementWithXState } from '../../checker/differential.js';
import { cacheMqModel, mqEvents } from './model.js';
import { MQ_MUTANT_BOUNDS, findMutantTrace } from './counterexamples.js';

// Fixed by default (DMCHECK_SEED=random for a fresh one); printed so any failure can be rerun.
const SEED = testSeed('cache-mq', 0x6d71);
const LONG = 600_000;

/** Accesses of one block, each in its own tick, until promoted; returns the 1-based access number. */
function promotedOn(dir: Dir, tun: MqTunables = MQ_DEFAULTS, max = 64, discarded = false): number | null {
  const p = new MqPolicy({ cacheSize: 4, tunables: tun });
  for (let i = 1; i <= max; i++) {
    const r = p.map({ oblock: 7, dir, discarded, canMigrate: true, sector: 7 * 8 + 1000, sectors: 8 });
    if (r.op === 'NEW' || r.op === 'REPLACE') return i;
    p.tickOnce();
  }
  return null;
}

describe('cache-mq: kernel promotion counts (CACHE-3, CACHE-4)', () => {
  it('with the defaults a read is promoted on its 5th access and a write on its 9th, one per tick', () => {
    expect(promotedOn('R')).toBe(5);
    expect(promotedOn('W')).toBe(9);
  });

  it('accesses within one tick count once (same-tick repeats do not promote sooner)', () => {
    const p = new MqPolicy({ cacheSize: 2 });
    const read = () => p.map({ oblock: 3, dir: 'R', discarded: false, canMigrate: true, sector: 3 * 8 + 100, sectors: 8 });
    let n = 0;
    for (let tick = 0; tick < 4; tick++) {
      for (let k = 0; k < 5; k++) expect(read().op).toBe('MISS');
      n++;
      p.tickOnce();
    }
    expect(n).toBe(4);
    expect(read().op).toBe('NEW'); // the 5th tick with an access
  });

  it('a threshold of <= 1 promotes a never-seen block at once; blocked migration gives -EWOULDBLOCK', () => {
    expect(promotedOn('R', { ...MQ_DEFAULTS, readPromoteAdjustment: 1 })).toBe(1);
    expect(promotedOn('R', { ...MQ_DEFAULTS, readPromoteAdjustment: 0 })).toBe(1);
    expect(promotedOn('R', { ...MQ_DEFAULTS, readPromoteAdjustment: 2 })).toBe(3);
    const p = new MqPolicy({ cacheSize: 1, tunables: { ...MQ_DEFAULTS, readPromoteAdjustment: 0 } });
    const r = p.map({ oblock: 1, dir: 'R', discarded: false, canMigrate: false, sector: 500, sectors: 8 });
    expect(r).toEqual({ op: 'MISS', cblock: null, oldOblock: null, r: -11 });
  });

  it('a write to a discarded block uses the absolute discard adjustment; a discarded read does not', () => {
    expect(promotedOn('W', MQ_DEFAULTS, 64, true)).toBe(1);
    expect(promotedOn('W', { ...MQ_DEFAULTS, discardPromoteAdjustment: 3 }, 64, true)).toBe(4);
    expect(promotedOn('R', MQ_DEFAULTS, 64, true)).toBe(5);
  });

  it('a sequential stream is not promoted, even with adjustments of 0 (CACHE-5)', () => {
    const p = new MqPolicy({ cacheSize: 8, tunables: { ...MQ_DEFAULTS, readPromoteAdjustment: 0, sequentialThreshold: 4 } });
    const ops: string[] = [];
    // The tracker starts with last_end 0, so a stream from sector 1 is contiguous from its first bio.
    for (let b = 0; b < 12; b++) ops.push(p.map({ oblock: b, dir: 'R', discarded: false, canMigrate: true, sector: 1 + b * 8, sectors: 8 }).op);
    expect(ops.slice(0, 3)).toEqual(['NEW', 'NEW', 'NEW']);
    expect(ops.slice(3)).toEqual(Array(9).fill('MISS'));
    expect(p.residency()).toBe(3);
  });
});

describe('cache-mq: monotonicity (CACHE-8)', () => {
  it('raising an adjustment never promotes a block sooner', () => {
    const sched = fc.array(fc.record({ dir: fc.constantFrom<Dir>('R', 'W'), ticks: fc.nat({ max: 2 }), disc: fc.boolean() }), { minLength: 1, maxLength: 40 });
    const adj = fc.record({ r: fc.nat({ max: 10 }), w: fc.nat({ max: 10 }), dr: fc.nat({ max: 6 }), dw: fc.nat({ max: 6 }) });
    const firstPromotion = (tun: MqTunables, s: readonly { dir: Dir; ticks: number; disc: boolean }[]): number => {
      const p = new MqPolicy({ cacheSize: 2, tunables: tun });
      for (let i = 0; i < s.length; i++) {
        const a = s[i]!;
        const r = p.map({ oblock: 5, dir: a.dir, discarded: a.disc, canMigrate: true, sector: 4001, sectors: 8 });
        if (r.op === 'NEW' || r.op === 'REPLACE') return i;
        for (let t = 0; t < a.ticks; t++) p.tickOnce();
      }
      return Infinity;
    };
    fc.assert(
      fc.property(sched, adj, (s, a) => {
        const lo = { ...MQ_DEFAULTS, readPromoteAdjustment: a.r, writePromoteAdjustment: a.w };
        const hi = { ...lo, readPromoteAdjustment: a.r + a.dr, writePromoteAdjustment: a.w + a.dw };
        expect(firstPromotion(hi, s)).toBeGreaterThanOrEqual(firstPromotion(lo, s));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('cache-mq: set_config and table arguments (CACHE-9)', () => {
  it('parses values as kstrtoul base 10 and keys case-insensitively', () => {
    expect(kstrtoul10('+12\n')).toBe(12n);
    for (const bad of ['', '-1', '0x10', ' 1', '1 ', '1\n\n', '18446744073709551616']) expect(typeof kstrtoul10(bad)).toBe('number');
    const p = new MqPolicy({ cacheSize: 1 });
    expect(p.setConfigValue('READ_promote_adjustment', '0')).toBe(0);
    expect(p.config().readPromoteAdjustment).toBe(0);
    expect(p.setConfigValue('write_promote_adjustment', '4294967297')).toBe(0); // stored in an unsigned
    expect(p.config().writePromoteAdjustment).toBe(1);
  });

  it('unknown keys and bad values are -EINVAL and change nothing', () => {
    const p = new MqPolicy({ cacheSize: 1 });
    const before = p.emitConfig();
    expect(p.setConfigValue('promote_adjustment', '1')).toBe(-22);
    expect(p.setConfigValue('read_promote_adjustment', '-1')).toBe(-22);
    expect(p.setConfigValue('read_promote_adjustment', '99999999999999999999')).toBe(-22);
    expect(p.emitConfig()).toBe(before);
    expect(before).toBe(emitConfigValues(MQ_DEFAULTS));
  });

  it('table policy args: odd count and bad pairs abort the constructor; messages need two words', () => {
    expect(ctrPolicyArgs(['read_promote_adjustment']).ok).toBe(false);
    const bad = ctrPolicyArgs(['read_promote_adjustment', '2', 'nope', '1']);
    expect(bad.ok ? null : bad.errno).toBe(-22);
    const good = ctrPolicyArgs(['migration_threshold', '4096', 'write_promote_adjustment', '2']);
    expect(good.ok && good.value.mq.writePromoteAdjustment === 2 && good.value.migrationThreshold === 4096).toBe(true);
    if (!good.ok) return;
    const m1 = cacheMessage(good.value, ['read_promote_adjustment']);
    expect(m1.ok ? 0 : m1.errno).toBe(-22);
    const m2 = cacheMessage(good.value, ['read_promote_adjustment', '1']);
    expect(m2.ok && m2.value.mq.readPromoteAdjustment).toBe(1);
  });
});

describe('cache-mq: exhaustive and lockstep', () => {
  it(
    'the 3.14 policy holds every rule in every reachable state (maxTick 1; set_config at maxTick 0)',
    () => {
      for (const bounds of [{}, { maxTick: 2, writeAdj: 2, oblocks: 1 }, { maxTick: 0, configs: 1 }]) {
        const b = boundsWithDefaults(cacheMqModel, bounds);
        const r = explore(cacheMqModel.instance(b, { profile: 'linux-3.14', mutant: null }), { maxStates: 2_000_000 });
        expect(r.violations).toEqual([]);
        expect(r.complete).toBe(true);
        // Both patterns were reached, so the run was not vacuous.
        if (b['oblocks']! > 1) expect(Object.keys(r.valueCoverage).sort()).toEqual(['random', 'sequential']);
        if (b['configs']) expect(r.eventCoverage['CONFIG']).toBeGreaterThan(0);
      }
    },
    LONG,
  );

  it(
    'impl and machine agree in lockstep (seed printed on failure)',
    async () => {
      for (const bounds of [{}, { cacheSize: 2, oblocks: 3, readAdj: 1, writeAdj: 2, maxTick: 6 }]) {
        const b = boundsWithDefaults(cacheMqModel, bounds);
        const r = await lockstep(cacheMqModel, b, { profile: 'linux-3.14', mutant: null }, { seed: SEED, numRuns: 60, maxCommands: 50 });
        expect(r.failure?.violation ?? null).toBeNull();
        expect(r.ok).toBe(true);
      }
    },
    LONG,
  );

  it('impl and machine agree through a generation change (1024 hits, full cache)', () => {
    // Drives both sides directly: long runs are out of reach of the lockstep command budget.
    const b = boundsWithDefaults(cacheMqModel, { cacheSize: 2, oblocks: 4, readAdj: 0, writeAdj: 0, seqThreshold: 512, maxTick: 40 });
    const inst = cacheMqModel.instance(b, { profile: 'linux-3.14', mutant: null });
    const impl = cacheMqModel.impl!.create({ profile: 'linux-3.14', mutant: null }, b, { step: () => Promise.resolve(true) });
    let s = inst.system.initial()[0]!;
    const evs = [
      { type: 'MAP', o: 0, dir: 'R', disc: false, mig: true },
      { type: 'MAP', o: 2, dir: 'W', disc: false, mig: true },
      { type: 'DIRTY', o: 2 },
      { type: 'TICK' },
    ] as const;
    let generations = 0;
    for (let i = 0; i < 1100 * 4; i++) {
      const e = evs[i % evs.length]!;
      const n = inst.system.step(s, e);
      if (n === null) continue;
      const before = s.context.promoteThreshold;
      s = n;
      impl.apply(e);
      if (s.context.promoteThreshold !== before) generations++;
      expect(JSON.stringify(impl.project())).toBe(JSON.stringify(inst.project!(s)));
    }
    expect(s.context.generation).toBeGreaterThan(0);
    expect(generations).toBeGreaterThan(0);
  });
});

describe('cache-mq: machine', () => {
  it('the compiled machine and its XState form agree on every step', () => {
    const b = boundsWithDefaults(cacheMqModel, { maxTick: 40, configs: 1, oblocks: 3, cacheSize: 2 });
    const ctx = initialContext(2, [2, 2, 1, 2, 1], null);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 1000 }), { maxLength: 40 }), (picks) => {
        const m = mqMachine(ctx);
        const choose = (s: MState<MqCtx>, i: number): MqEvent | null => {
          const evs = mqEvents(s, b);
          return evs.length === 0 || i >= picks.length ? null : (evs[picks[i]! % evs.length]! as MqEvent);
        };
        expect(disagreementWithXState(m, m.initial(), choose, picks.length)).toBeNull();
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('the statechart has both io patterns and the pattern switches', () => {
    const shape = cacheMqModel.machines[0]!.statechart();
    expect(shape.regions[0]!.states).toEqual(['random', 'sequential']);
    expect(shape.regions[0]!.transitions.some((t) => t.from === 'random' && t.to === 'sequential')).toBe(true);
  });
});

describe('cache-mq: mutants', () => {
  for (const m of cacheMqModel.mutants) {
    it(`${m.id} is found by the explorer, breaking ${m.breaks.join(', ')}, and its saved trace replays`, async () => {
      const found = findMutantTrace(m.id);
      expect(found.violation?.spec).toEqual(expect.arrayContaining([...m.breaks]));
      const file = `counterexamples/cache-mq/${m.id}.json`;
      const saved = validateTrace(JSON.parse(readFileSync(file, 'utf8')), file, [cacheMqModel.id]);
      expect(saved.bounds).toEqual(boundsWithDefaults(cacheMqModel, MQ_MUTANT_BOUNDS[m.id] ?? {}));
      const rep = await replayTrace(cacheMqModel, saved);
      expect(rep.reproduced).toBe(true);
      expect(rep.found?.spec).toEqual(expect.arrayContaining([...m.breaks]));
      // Without the mutant the same steps are clean.
      const clean = await replayTrace(cacheMqModel, saved, { mutant: null });
      expect(clean.found).toBeNull();
    });

    it(`${m.id} is found by the lockstep runner`, async () => {
      const b = boundsWithDefaults(cacheMqModel, MQ_MUTANT_BOUNDS[m.id] ?? {});
      const r = await lockstep(cacheMqModel, b, { profile: 'linux-3.14', mutant: m.id }, { seed: SEED, numRuns: 300, maxCommands: 30 });
      expect(r.ok).toBe(false);
      expect(r.failure?.violation.spec).toEqual(expect.arrayContaining([...m.breaks]));
    }, LONG);
  }
});

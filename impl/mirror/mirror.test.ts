// Behaviour of the mirror implementation (impl/mirror) against spec/mirror-log.md: request order in
// both log modes, the lazy flush and its 3.14 cancellation, the compat hazard, at-least-once
// delivery, failures, lvm2 mirror scenarios, and crash consistency at every interleaving.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { testSeed } from '../../checker/seed.js';
import { notTimer } from './sim.js';
import { buildStack } from './stack.js';
import { crashRule, drive, rig, sentTypes } from './testkit.js';
import { RequestType } from './wire.js';

const noTimer = notTimer;

describe('userspace_flush request order (ULOG-1, ULOG-3)', () => {
  it('plain mode: a first write sends MARK then FLUSH, and reaches the legs only after the FLUSH reply', async () => {
    const r = await rig({ regions: 2, integrated: false, aware: false });
    const n0 = r.s.transfer.sent.length;
    const w = r.s.mirror.write(0);
    await drive(r);
    expect(await w).toBe(0);
    // mark + commit before the write; after completion the next pass clears and commits again
    expect(sentTypes(r.s, n0)).toEqual(['MARK', 'FLUSH', 'CLEAR', 'FLUSH']);
    expect(r.violations).toEqual([]);
    expect(r.s.legs.map((l) => l.read(0))).toEqual([1, 1]);
  });

  it('integrated mode: the mark rides on the FLUSH (one request, one cluster round)', async () => {
    const r = await rig({ regions: 2, integrated: true, aware: true });
    const n0 = r.s.transfer.sent.length;
    const rounds0 = r.s.cluster.cost.clusterRounds;
    const w = r.s.mirror.write(1);
    await drive(r);
    expect(await w).toBe(0);
    // the FLUSH carries the mark; after completion the clear goes out and its commit is deferred
    expect(sentTypes(r.s, n0)).toEqual(['FLUSH(1)', 'CLEAR']);
    expect(r.s.log.lazyPending).toBe(true);
    expect(r.s.cluster.cost.byType['FLUSH']).toBe(1);
    expect(r.s.cluster.cost.clusterRounds - rounds0).toBeGreaterThan(0);
    expect(r.violations).toEqual([]);
  });

  for (const integrated of [false, true]) {
    it(`${integrated ? 'integrated' : 'plain'} mode: clears of the update pass go out before the marks of the write pass`, async () => {
      const r = await rig({ regions: 2, integrated, aware: true });
      let done0 = false;
      void r.s.mirror.write(0).then(() => (done0 = true));
      await drive(r, { stopIf: () => done0 }); // region 0 is on the clean list, its pass not yet run
      const n0 = r.s.transfer.sent.length;
      const w = r.s.mirror.write(1); // same pass: update_states clears 0, do_writes marks 1
      await drive(r);
      expect(await w).toBe(0);
      const t = sentTypes(r.s, n0);
      // then region 1 completes and is cleared in its turn
      expect(t).toEqual(integrated ? ['CLEAR', 'FLUSH(1)', 'CLEAR'] : ['CLEAR', 'FLUSH', 'MARK', 'FLUSH', 'CLEAR', 'FLUSH']);
      expect(r.violations).toEqual([]);
    });
  }
});

describe('lazy flush (ULOG-4)', () => {
  it('integrated clears-only flush defers the commit 3 s; the timer sends an empty FLUSH', async () => {
    const r = await rig({ regions: 2, integrated: true, aware: true });
    await Promise.all([r.s.mirror.write(0), drive(r)]);
    r.s.mirror.wake();
    await drive(r); // update pass: CLEAR(0), lazy flush queued
    expect(r.s.log.lazyPending).toBe(true);
    expect(r.s.log.schedFlush).toBe(1);
    expect(r.s.device.clean[0]).toBe(0); // the clear is not committed yet
    const n0 = r.s.transfer.sent.length;
    await drive(r, { include: (e) => e.type === 'lazyfire' || noTimer(e) });
    expect(sentTypes(r.s, n0)).toEqual(['FLUSH']);
    expect(r.s.device.clean[0]).toBe(1);
  });

  for (const profile of ['linux-3.14', 'fixed']) {
    it(`${profile}: a second clears-only flush while the lazy flush is queued ${profile === 'fixed' ? 'keeps it' : 'cancels it (shipped defect)'}`, async () => {
      const r = await rig({ regions: 2, integrated: true, aware: true, variant: { profile, mutant: null } });
      void r.s.mirror.write(0);
      void r.s.mirror.write(1); // both marked by one FLUSH(0,1)
      // finish region 0 first: its clears-only flush queues the lazy flush
      await drive(r, { include: (e) => noTimer(e) && !(e.type === 'legio' && e['r'] === 1) });
      expect(r.s.log.lazyPending).toBe(true);
      expect(r.s.device.clean).toEqual([0, 0]);
      // now region 1: a second clears-only flush while the lazy flush is queued
      await drive(r);
      if (profile === 'linux-3.14') {
        expect(r.s.log.lazyPending).toBe(false);
        expect(r.s.log.schedFlush).toBe(0);
        await drive(r, { include: (e) => e.type === 'lazyfire' || noTimer(e) });
        expect(r.s.device.clean).toEqual([0, 0]); // nothing ever commits the clears
      } else {
        expect(r.s.log.lazyPending).toBe(true);
        await drive(r, { include: (e) => e.type === 'lazyfire' || noTimer(e) });
        expect(r.s.device.clean).toEqual([1, 1]);
      }
    });
  }

  it('postsuspend runs a pending lazy flush first', async () => {
    const r = await rig({ regions: 2, integrated: true, aware: true });
    await Promise.all([r.s.mirror.write(0), drive(r)]);
    r.s.mirror.wake();
    await drive(r);
    const n0 = r.s.transfer.sent.length;
    const p = r.s.log.postsuspend();
    await drive(r);
    expect(await p).toBe(0);
    expect(sentTypes(r.s, n0, false)).toEqual(['FLUSH', 'POSTSUSPEND']);
    expect(r.s.device.clean[0]).toBe(1);
  });
});

describe('compatibility (ULOG-10)', () => {
  it('integrated_flush against upstream cmirrord: the mark is ignored and the write reaches the legs with the region clean on disk', async () => {
    const r = await rig({ regions: 2, integrated: true, aware: false });
    await Promise.all([r.s.mirror.write(0), drive(r)]);
    expect(r.violations.some((v) => v.startsWith('ULOG-1'))).toBe(true);
    expect(r.s.cluster.state!.marks).toEqual([]);
  });
  for (const [integrated, aware] of [
    [false, false],
    [false, true],
    [true, true],
  ] as const) {
    it(`integrated=${integrated} against ${aware ? 'an aware' : 'the upstream'} server keeps the rule`, async () => {
      const r = await rig({ regions: 2, integrated, aware });
      const w = Promise.all([r.s.mirror.write(0), r.s.mirror.write(1)]);
      await drive(r, { stopIf: () => r.gate.pending().includes('legio') });
      expect(r.s.cluster.state!.marks.map((m) => m.region).sort()).toEqual([0, 1]);
      expect(r.s.device.clean).toEqual([0, 0]);
      await drive(r);
      expect(await w).toEqual([0, 0]);
      expect(r.violations).toEqual([]);
    });
  }
});

describe('transport (ULOG-7)', () => {
  it('a timeout resends with a new seq; the stale reply is dropped; the server sees the duplicate', async () => {
    const r = await rig({ regions: 1, integrated: false, aware: true });
    const n0 = r.s.transfer.sent.length;
    const w = r.s.mirror.write(0);
    // run until the MARK is on the wire, then let its 15 s timer expire before the server answers
    await drive(r, { stopIf: () => r.s.transfer.sent.slice(n0).some((x) => x.type === 10) });
    expect(await r.gate.release((e) => e.type === 'timeout')).toBe(true);
    await drive(r);
    expect(await w).toBe(0);
    const marks = r.s.transfer.sent.slice(n0).filter((x) => x.type === 10);
    expect(marks.length).toBe(2);
    expect(marks[0]!.seq).not.toBe(marks[1]!.seq);
    expect(r.s.cluster.cost.byType['MARK_REGION']).toBe(2);
    expect(r.violations).toEqual([]);
    expect(r.s.transfer.waiting()).toEqual([]);
  });

  it('a payload over 332 bytes is refused with -EINVAL before sending', async () => {
    const r = await rig({ regions: 1, integrated: false, aware: true });
    const res = await r.s.transfer.consult('u', 1n, 10, new Uint8Array(333), 0);
    expect(res.r).toBe(-22);
  });

  it('-ESRCH (no daemon) makes the request re-send CTR and RESUME, then retry', async () => {
    const r = await rig({ regions: 1, integrated: false, aware: true });
    r.s.cluster.setListening(false);
    const w = r.s.mirror.write(0);
    await drive(r, { stopIf: () => r.gate.pending().includes('reconnect') });
    r.s.cluster.setListening(true);
    await drive(r, { include: (e) => e.type === 'reconnect' || noTimer(e) });
    expect(await w).toBe(0);
    const t = sentTypes(r.s, 0, false);
    const lastCtr = t.lastIndexOf('CTR');
    expect(t.slice(lastCtr, lastCtr + 2)).toEqual(['CTR', 'RESUME']);
    expect(t.slice(lastCtr)).toContain('MARK');
    expect(r.violations).toEqual([]);
  });
});

describe('lvm2 mirror scenarios', () => {
  it('nosync creation: every region in sync, no recovery, writes mirrored', async () => {
    const r = await rig({ regions: 3, integrated: true, aware: true });
    await Promise.all([r.s.mirror.write(0), r.s.mirror.write(2), drive(r)]);
    expect(r.s.transfer.sent.some((x) => x.type === 12 && false)).toBe(false);
    expect(r.s.legs[0]!.durable).toEqual(r.s.legs[1]!.durable);
    expect(r.violations).toEqual([]);
  });

  it('sync creation (resync): mirror_resume wakes kmirrord, every region is copied from the default leg and becomes clean', async () => {
    // No write and no explicit wake: dm_rh_start_recovery's wakeup is what starts the recovery
    // (rig has already run the passes and copies it led to; the second leg started as -1).
    const r = await rig({ regions: 3, integrated: true, aware: true, resync: true });
    expect(r.s.transfer.sent.some((x) => x.type === RequestType.GET_RESYNC_WORK)).toBe(true);
    await drive(r, { include: (e) => e.type === 'lazyfire' || noTimer(e) });
    expect(r.s.legs[1]!.durable).toEqual(r.s.legs[0]!.durable);
    expect(r.s.cluster.state!.sync).toEqual([1, 1, 1]);
    expect(r.s.device.clean).toEqual([1, 1, 1]);
    expect(await Promise.all([r.s.log.getSyncCount(), drive(r)]).then(([n]) => n)).toBe(3);
  });

  it('leg failure and repair: the failed region goes NOSYNC, is resynced from the default leg, and legs agree again', async () => {
    const r = await rig({ regions: 2, integrated: false, aware: true, handleErrors: false });
    r.s.legs[1]!.failNextWrite = true;
    const w = r.s.mirror.write(1);
    await drive(r, { stopIf: () => r.s.cluster.state!.sync[1] === 0 });
    expect(r.s.legs.map((l) => l.durable[1])).toEqual([1, 0]); // the legs differ
    expect(r.s.device.clean[1]).toBe(0);
    await drive(r);
    expect(await w).toBe(0); // handle_errors off: completed as success
    // in_sync_hint still says "all in sync", so no GET_RESYNC_WORK goes out until the repair
    // reloads the table: resume resets the hint and cmirrord re-reads the log device
    expect(r.gate.log.some((e) => e.type === 'copy')).toBe(false);
    const p = r.s.log.resume();
    await drive(r);
    expect(await p).toBe(0);
    r.s.mirror.wake();
    await drive(r);
    expect(r.gate.log.some((e) => e.type === 'copy' && e['r'] === 1)).toBe(true);
    expect(r.s.legs[1]!.durable[1]).toBe(r.s.legs[0]!.durable[1]);
    expect(r.s.cluster.state!.sync[1]).toBe(1);
    expect(crashRule(r.s)).toBeNull();
  });

  it('log failure: the flush fails, log_failure sticks, writes are held (handle_errors) and end -EIO at suspend', async () => {
    const r = await rig({ regions: 2, integrated: true, aware: true });
    r.s.device.failing = true;
    const w = r.s.mirror.write(0);
    await drive(r);
    expect(r.s.mirror.logFailure).toBe(1);
    expect(r.s.log.tableEvents).toBeGreaterThan(0);
    expect(r.s.mirror.held.length).toBe(1);
    expect(r.s.legs[0]!.durable[0]).toBe(0); // never written
    r.s.device.failing = false;
    void r.s.mirror.write(1);
    await drive(r);
    expect(r.s.mirror.logFailure).toBe(1); // sticky (ULOG-9)
    r.s.mirror.releaseHeld();
    expect(await w).toBe(-5);
  });
});

describe('crash at any interleaving (ULOG-6)', () => {
  const seed = testSeed('mirror crash interleavings');
  const crashCase = (integrated: boolean, cache: boolean, profile: string) =>
    fc.asyncProperty(fc.array(fc.nat(), { minLength: 1, maxLength: 60 }), fc.nat({ max: 80 }), async (choices, cut) => {
      const r = await rig({ regions: 2, integrated, aware: true, legCache: cache, variant: { profile, mutant: null } });
      let i = 0;
      // Like any block device user, the upper layer never has two overlapping writes in flight:
      // the second write to region 0 is issued when the first has completed.
      void r.s.mirror.write(0).then(() => r.s.mirror.write(0));
      void r.s.mirror.write(1);
      let bad: string | null = null;
      await drive(r, {
        include: (e) => e.type === 'lazyfire' || noTimer(e),
        choose: (n) => choices[i++ % choices.length]! % n,
        stopIf: () => (bad ??= crashRule(r.s)) !== null || i >= cut,
      });
      bad ??= crashRule(r.s);
      // power cut: nothing held runs again; leg 0 had written its cache back, leg 1 loses its cache
      r.gate.dropAll();
      r.s.legs[0]!.flushCache();
      r.s.legs[1]!.powerCut();
      bad ??= crashRule(r.s);
      if (bad) throw new Error(bad);
      // reboot: resume from the log device, recover every region not clean
      const gate2 = r.gate;
      const p = buildStack({ regions: 2, integrated, aware: true, gate: gate2, variant: { profile, mutant: null }, device: r.s.device, legs: r.s.legs });
      await drive(r, { include: (e) => e.type !== 'timeout' });
      const s2 = await p;
      s2.mirror.wake();
      await drive({ gate: gate2, s: s2, violations: [] }, { include: (e) => e.type !== 'timeout' });
      for (const leg of s2.legs) leg.flushCache();
      expect(s2.legs[0]!.durable).toEqual(s2.legs[1]!.durable);
      return true;
    });

  for (const integrated of [false, true]) {
    it(`${integrated ? 'integrated' : 'plain'} log, write-through legs: every crash state has clean-on-disk ⊆ identical legs, and recovery makes all legs identical`, async () => {
      const out = await fc.check(crashCase(integrated, false, 'linux-3.14'), { seed, numRuns: 60 });
      expect(out.failed, `${String(out.counterexample)}: ${String(out.errorInstance)}`).toBe(false);
    });
  }

  it('legs with write caches under linux-3.14: a crash can leave a clean region with differing legs (no flush_callback_fn)', async () => {
    let found: string | null = null;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { minLength: 1, maxLength: 60 }), fc.nat({ max: 80 }), async (choices, cut) => {
        const r = await rig({ regions: 2, integrated: true, aware: true, legCache: true });
        let i = 0;
        void [r.s.mirror.write(0), r.s.mirror.write(1)];
        await drive(r, { include: (e) => e.type === 'lazyfire' || noTimer(e), choose: (n) => choices[i++ % choices.length]! % n, stopIf: () => i >= cut });
        r.gate.dropAll();
        r.s.legs[0]!.flushCache();
        r.s.legs[1]!.powerCut();
        found ??= crashRule(r.s);
        return true;
      }),
      { seed, numRuns: 80 },
    );
    expect(found).not.toBeNull();
  });
});

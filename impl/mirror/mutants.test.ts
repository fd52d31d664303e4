// The seeded mutants of properties/mirror-log/mutants.ts in the implementation: each one makes the
// implementation break the spec rule it names (spec/mirror-log.md), and the correct code does not.
import { describe, expect, it } from 'vitest';
import type { Variant } from '../../checker/model.js';
import { notTimer } from './sim.js';
import { drive, rig, sentTypes } from './testkit.js';
import { RequestType } from './wire.js';

const V = (mutant: string | null, profile = 'linux-3.14'): Variant => ({ profile, mutant });
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('impl mutants', () => {
  for (const mutant of ['no-final-flush', null]) {
    it(`no-final-flush ${mutant ? 'breaks' : 'absent: keeps'} ULOG-1 (plain mode)`, async () => {
      const r = await rig({ regions: 2, integrated: false, aware: true, variant: V(mutant) });
      await Promise.all([r.s.mirror.write(0), drive(r)]);
      expect(r.violations.some((v) => v.startsWith('ULOG-1'))).toBe(mutant !== null);
    });
  }

  for (const mutant of ['write-before-reply', null]) {
    it(`write-before-reply ${mutant ? 'breaks' : 'absent: keeps'} ULOG-1 (both modes)`, async () => {
      for (const integrated of [false, true]) {
        const r = await rig({ regions: 2, integrated, aware: true, variant: V(mutant) });
        const w = r.s.mirror.write(0);
        // Run until a leg write is offered, then let it go before anything else (before the commit is served).
        await drive(r, { stopIf: () => r.gate.pending().includes('legio') });
        await drive(r, { include: (e) => e.type === 'legio' });
        await Promise.all([w, drive(r)]);
        expect(r.violations.some((v) => v.startsWith('ULOG-1')), `${integrated}`).toBe(mutant !== null);
      }
    });
  }

  for (const mutant of ['mark-drop', null]) {
    it(`mark-drop ${mutant ? 'breaks' : 'absent: keeps'} ULOG-5/ULOG-1`, async () => {
      // the oracle says "allocation fails" for every mark (only the mutant asks it for marks)
      const r = await rig({ regions: 2, integrated: true, aware: true, variant: V(mutant), clearAllocFails: () => mutant !== null });
      await Promise.all([r.s.mirror.write(0), drive(r)]);
      expect(r.violations.some((v) => v.startsWith('ULOG-1'))).toBe(mutant !== null);
    });
  }

  for (const mutant of ['marks-before-clears', null]) {
    it(`marks-before-clears ${mutant ? 'breaks' : 'absent: keeps'} ULOG-3 for a caller that batches clear(R) and mark(R)`, async () => {
      for (const integrated of [false, true]) {
        const r = await rig({ regions: 2, integrated, aware: true, variant: V(mutant) });
        r.s.log.markRegion(0);
        await Promise.all([r.s.log.flush(), drive(r)]);
        const n0 = r.s.transfer.sent.length;
        r.s.log.clearRegion(0); // the old write finished …
        r.s.log.markRegion(0); // … and a new one starts before the flush
        await Promise.all([r.s.log.flush(), drive(r)]);
        const t = sentTypes(r.s, n0);
        expect(t[0], `${integrated}`).toBe(mutant ? (integrated ? 'FLUSH(1)' : 'MARK') : 'CLEAR');
        // the region must stay dirty at the server (a write may follow the flush)
        expect(r.s.cluster.state!.clean[0], `${integrated}`).toBe(mutant ? 1 : 0);
      }
    });
  }

  it('lazy-at-once sends the commit of a clears-only flush at once; lazy-never never schedules it (ULOG-4)', async () => {
    for (const mutant of ['lazy-at-once', 'lazy-never', null]) {
      const r = await rig({ regions: 2, integrated: true, aware: true, variant: V(mutant) });
      await Promise.all([r.s.mirror.write(0), drive(r)]);
      const last = r.s.log.flushCalls[r.s.log.flushCalls.length - 1]!;
      expect(last.marks).toBe(0);
      expect(last.requests.includes(RequestType.FLUSH), String(mutant)).toBe(mutant === 'lazy-at-once');
      expect(r.s.log.lazyPending, String(mutant)).toBe(mutant === null);
    }
  });

  it('cancel-no-reset leaves sched_flush = 1 with nothing queued, so later clears are never committed (ULOG-4)', async () => {
    for (const mutant of ['cancel-no-reset', null]) {
      const r = await rig({ regions: 2, integrated: true, aware: true, variant: V(mutant) });
      await Promise.all([r.s.mirror.write(0), drive(r)]); // clear(0) queued the lazy flush
      expect(r.s.log.lazyPending).toBe(true);
      await Promise.all([r.s.mirror.write(1), drive(r)]); // FLUSH(1) cancels it
      expect(r.s.log.schedFlush === 1 && !r.s.log.lazyPending, String(mutant)).toBe(mutant !== null);
    }
  });

  it('server-clear-ignores-others sets the clean bit while node 2 still has the region marked (ULOG-8)', async () => {
    for (const mutant of ['server-clear-ignores-others', null]) {
      const r = await rig({ regions: 2, integrated: false, aware: true, variant: V(mutant) });
      r.s.peer.mark(0);
      await Promise.all([r.s.mirror.write(0), drive(r)]); // node 1 marks, writes, clears region 0
      const st = r.s.cluster.state!;
      expect(st.marks).toEqual([{ region: 0, node: 2 }]);
      expect(st.clean[0] === 1 && r.s.device.clean[0] === 1, String(mutant)).toBe(mutant !== null);
    }
  });

  it('rh-race: dm_rh_dec deciding CLEAN outside the lock lets a region be cleared with a write in flight (ULOG-2 → ULOG-1)', async () => {
    for (const mutant of ['rh-race', null]) {
      const r = await rig({ regions: 1, integrated: false, aware: true, variant: V(mutant) });
      await Promise.all([r.s.mirror.write(0), drive(r, { include: (e) => notTimer(e) && e.type !== 'dec2' })]);
      // the second write finds the region still DIRTY (pending 0, decision not applied): no mark
      void r.s.mirror.write(0);
      await drive(r, { include: (e) => notTimer(e) && e.type !== 'dec2' && e.type !== 'legio' });
      await r.gate.release((e) => e.type === 'dec2'); // the stale decision: CLEAN, onto the clean list
      await drive(r, { include: (e) => notTimer(e) && e.type !== 'legio' }); // next pass clears + commits
      await drive(r);
      await settle();
      expect(r.violations.some((v) => v.startsWith('ULOG-1')), String(mutant)).toBe(mutant !== null);
    }
  });

  it('log-failure-reset clears log_failure on the next successful flush (ULOG-9)', async () => {
    for (const mutant of ['log-failure-reset', null]) {
      const r = await rig({ regions: 2, integrated: true, aware: true, variant: V(mutant) });
      r.s.device.failing = true;
      void r.s.mirror.write(0);
      await drive(r);
      expect(r.s.mirror.logFailure).toBe(1);
      r.s.device.failing = false;
      void r.s.mirror.write(1);
      await drive(r);
      expect(r.s.mirror.logFailureEver).toBe(1);
      expect(r.s.mirror.logFailure, String(mutant)).toBe(mutant ? 0 : 1);
    }
  });
});

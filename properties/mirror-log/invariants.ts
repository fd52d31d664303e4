// Invariants of spec/mirror-log.md (ULOG-1 … ULOG-10) over the abstract state of machines/mirror-log.
// Kernel sources the rules come from: dm-log-userspace-base.c (userspace_flush), dm-raid1.c
// (do_writes), dm-region-hash.c (rh_inc, dm_rh_dec), lvm2 cmirrord functions.c (clear_region).

import type { Invariant } from '../../checker/model.js';
import type { MState } from '../../checker/machine.js';
import type { Cfg, Ctx } from '../../machines/mirror-log/types.js';
import { MAX_FLUSH_GROUP_COUNT } from '../../machines/mirror-log/types.js';

type S = MState<Ctx>;

/** Degraded mode the spec exempts: a failed log flush with handle_errors off (ULOG-1, ULOG-6). */
const degraded = (cfg: Cfg, c: Ctx): boolean => c.lf === 1 && !cfg.handleErrors;

/** Whether the legs of region r may hold different data if the power failed now. */
export function legsMayDiffer(c: Ctx, r: number): string | null {
  if (c.fly[r]! > 0) return 'a node-1 write is in flight to both legs';
  if (c.ns[r]! > 0) return 'a nosync write is in flight to the default leg';
  if (c.pr[r] === 2) return 'a node-2 write is in flight';
  if (c.dv[r] === 1) return 'the legs already differ';
  if (c.vo[r] === 1) return "completed data is still in a leg's volatile cache";
  if (c.rh[r] === 'Q') return 'a recovery copy is running';
  return null;
}

/** Node 1 has CLEAR(r) queued, being sent, or on the wire. */
function clearOutstanding(c: Ctx, r: number): boolean {
  if (c.cl.includes(r)) return true;
  if (c.f?.plan.some((q) => q.t === 'C' && q.p.includes(r))) return true;
  return c.rq.some((q) => q.t === 'C' && q.p.includes(r));
}

/** `cfgOf` gives the configuration a state belongs to (one exploration may mix several). */
export function mirrorInvariants(n: number, cfgOf: (c: Ctx) => Cfg): Invariant<S>[] {
  const regions = Array.from({ length: n }, (_, r) => r);
  return [
    {
      spec: ['ULOG-1'],
      name: 'mark-durable-before-write',
      check: ({ context: c }) => {
        if (degraded(cfgOf(c), c)) return null;
        for (const r of regions) {
          if (c.fly[r]! === 0) continue;
          if (c.dc[r] === 1) return `a write to region ${r} reached the legs while the log device still records it clean`;
          if ((c.sm[r]! & 1) === 0) return `a write to region ${r} reached the legs but the server holds no mark for node 1`;
        }
        return null;
      },
    },
    {
      spec: ['ULOG-2'],
      name: 'clear-only-when-quiescent',
      check: ({ context: c }) => {
        for (const r of regions) {
          const s = c.rh[r];
          if ((s === 'L' || s === 'R') && c.pd[r]! > 0) {
            return `region ${r} is on the ${s === 'L' ? 'clean' : 'recovered'} list (it will be cleared) with ${c.pd[r]} write(s) pending`;
          }
          if (!cfgOf(c).batch && clearOutstanding(c, r) && c.pd[r]! > 0) {
            return `CLEAR(${r}) is outstanding while ${c.pd[r]} write(s) to it are pending`;
          }
        }
        return null;
      },
    },
    {
      spec: ['ULOG-3'],
      name: 'clears-before-marks',
      check: ({ context: c }) =>
        c.f && /[MF].*C/.test(c.f.log) ? `one userspace_flush sent ${c.f.log.split('').join(',')}: a CLEAR after a MARK/FLUSH` : null,
    },
    {
      spec: ['ULOG-4'],
      name: 'lazy-flush',
      check: ({ context: c }) => {
        if (!cfgOf(c).integrated) return null;
        const queued = c.lz === 'q' || c.lz === 'sq';
        if (c.sf === 1 && !queued) return 'sched_flush is 1 but no delayed flush is queued';
        if (c.sf === 0 && queued) return 'a delayed flush is queued but sched_flush is 0';
        if (c.f && c.f.nm && c.f.log.includes('F')) return 'a clears-only flush sent a FLUSH at once instead of deferring it';
        if (c.kp === 'i' && c.unc === 1 && !queued) {
          return 'node 1 sent CLEARs that no FLUSH has followed and no delayed flush is queued: they may never be committed';
        }
        return null;
      },
    },
    {
      spec: ['ULOG-5'],
      name: 'marks-never-dropped',
      check: ({ context: c }) => {
        if (c.lf === 1 || c.kp !== 'i') return null;
        for (const r of regions) {
          if (c.rh[r] === 'D' && (c.sm[r]! & 1) === 0) return `region ${r} is DIRTY on node 1 but the server never recorded its mark`;
        }
        return null;
      },
    },
    {
      spec: ['ULOG-6'],
      name: 'crash-clean-implies-identical',
      check: ({ context: c }) => {
        if (degraded(cfgOf(c), c)) return null;
        for (const r of regions) {
          if (c.dc[r] !== 1) continue;
          const why = legsMayDiffer(c, r);
          if (why) return `region ${r} is clean on the log device but ${why}: a crash now leaves it unrecovered with differing legs`;
        }
        return null;
      },
    },
    {
      spec: ['ULOG-7'],
      name: 'one-reply-per-request',
      check: ({ context: c }) => {
        const seqs = c.rq.map((q) => q.s);
        if (new Set(seqs).size !== seqs.length) return 'two live requests share a seq';
        const rs = c.rp.map((p) => p.s);
        if (new Set(rs).size !== rs.length) return 'two replies carry the same seq';
        for (const q of c.rq) if (q.p.length > MAX_FLUSH_GROUP_COUNT) return `a request carries ${q.p.length} regions (max 32)`;
        if (c.ws >= 0 && c.ws === c.ls) return 'two kernel threads wait for the same seq';
        return null;
      },
    },
    {
      spec: ['ULOG-8'],
      name: 'cluster-clean-bit',
      check: ({ context: c }) => {
        for (const r of regions) {
          if (c.mc[r] === 1 && c.sm[r] !== 0) return `the server set region ${r} clean while node(s) ${c.sm[r]} still have it marked`;
          if (c.mc[r] === 1 && c.sy[r] === 0) return `the server set region ${r} clean while it is out of sync`;
        }
        return null;
      },
    },
    {
      spec: ['ULOG-9'],
      name: 'sticky-log-failure',
      check: ({ context: c }) => (c.lfe === 1 && c.lf === 0 ? 'log_failure went back to 0 after a failed flush' : null),
    },
    {
      spec: ['ULOG-10'],
      name: 'flush-payload-applied',
      check: ({ context: c }) => (c.lost === 1 ? 'the server ignored the marks carried by a FLUSH (integrated_flush against a server without it)' : null),
    },
  ];
}

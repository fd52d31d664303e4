// Pure transition functions of the mirror-log model: one function per event, null when disabled.
// Follows (paraphrased, no kernel text): drivers/md/dm-log-userspace-base.c userspace_flush,
// flush_by_group, do_flush, userspace_mark_region, userspace_clear_region;
// drivers/md/dm-log-userspace-transfer.c dm_consult_userspace (seq, resend on timeout, reply match);
// drivers/md/dm-region-hash.c rh_inc, dm_rh_dec, dm_rh_update_states, dm_rh_mark_nosync,
// dm_rh_recovery_prepare/end; drivers/md/dm-raid1.c do_mirror, do_writes, do_failures, mirror_end_io;
// lvm2 daemons/cmirrord/functions.c mark_region, clear_region, clog_flush, clog_resume.
//
// Abstractions (all stated in spec/mirror-log.md): with at most 3 regions every group fits one
// request (MAX_FLUSH_GROUP_COUNT = 32), so the one-by-one fallback is never needed; a cluster
// round (request delivery, all members applying it, the server's response) is one atomic `srv`
// step; GET_RESYNC_WORK, SET_REGION_SYNC and IN_SYNC are atomic reads/writes of the server's sync
// bits; the peer node is abstract (mark round, write, clear round).

import { cfgTag, EIO, type Cfg, type Ctx, type Flush, type MirrorEv, type Req, type RhState } from './types.js';

const set = <T>(a: readonly T[], i: number, v: T): T[] => {
  const out = a.slice();
  out[i] = v;
  return out;
};
const add = (a: readonly number[], i: number, d: number): number[] => set(a, i, (a[i] ?? 0) + d);
const setRh = (rh: string, i: number, v: RhState): string => rh.slice(0, i) + v + rh.slice(i + 1);
const rhAt = (c: Ctx, r: number): RhState => c.rh[r] as RhState;
const any = (a: readonly number[]): boolean => a.some((x) => x !== 0);

export function initialCtx(cfg: Cfg): Ctx {
  const z = Array.from({ length: cfg.n }, () => 0);
  const one = Array.from({ length: cfg.n }, () => 1);
  // "nosync" creation: every region in sync and clean on disk, legs assumed identical.
  // "sync" creation: nothing clean, nothing in sync, legs may differ until resynced.
  return {
    cf: cfgTag(cfg),
    rh: 'A'.repeat(cfg.n),
    pd: z,
    bq: z,
    wq: z,
    wn: z,
    fly: z,
    ns: z,
    hb: z,
    dz: z,
    bud: cfg.writes,
    ml: [],
    cl: [],
    f: null,
    kp: 'i',
    ws: -1,
    sf: 0,
    lz: 'i',
    ls: -1,
    unc: 0,
    rq: [],
    rp: [],
    seq: 0,
    rs: cfg.resends,
    sm: z,
    mc: cfg.resync ? z : one,
    dc: cfg.resync ? z : one,
    sy: cfg.resync ? z : one,
    tc: 0,
    df: 0,
    lost: 0,
    pr: z,
    pb: cfg.peer ? cfg.peerWrites : 0,
    dv: cfg.resync ? one : z,
    vo: z,
    le: cfg.legErrors,
    lf: 0,
    lfe: 0,
    cr: cfg.crashes,
  };
}

// ---------------------------------------------------------------- transport

/** Puts a request on the wire with a fresh seq (dm_ulog_seq++). */
function send(c: Ctx, t: Req['t'], p: readonly number[], w: Req['w']): Ctx {
  const s = c.seq;
  const req: Req = { s, t, p, w };
  let unc = c.unc;
  if (w === 'k' && t === 'C') unc = 1;
  if (t === 'F') unc = 0;
  return { ...c, rq: [...c.rq, req], seq: s + 1, unc, ...(w === 'k' ? { ws: s } : { ls: s }) };
}

/** Seqs only need to be unique among live requests: restart numbering when nothing is live. */
function normSeq(c: Ctx): Ctx {
  return c.rq.length === 0 && c.rp.length === 0 && c.ws < 0 && c.ls < 0 && c.seq !== 0 ? { ...c, seq: 0 } : c;
}

// ---------------------------------------------------------------- log client (userspace_flush)

/** userspace_flush, first half: take both lists, plan the requests, send the first one. */
function startFlush(cfg: Cfg, c: Ctx, phase: 'u' | 'w'): { c: Ctx; done: boolean; r: number } {
  const marks = c.ml;
  const clears = c.cl;
  c = { ...c, ml: [], cl: [] };
  if (marks.length === 0 && clears.length === 0) return { c, done: true, r: 0 };
  if (cfg.cache && cfg.fixed && clears.length > 0) {
    // Proposed fix (not in 3.14): flush the legs' caches before persisting clears, as the disk log's
    // flush_callback_fn (mirror_flush) does.
    c = { ...c, vo: c.vo.map(() => 0) };
  }
  const plan: Flush['plan'][number][] = [];
  const clearReq = clears.length ? [{ t: 'C' as const, p: clears }] : [];
  if (!cfg.integrated) {
    const markReq = marks.length ? [{ t: 'M' as const, p: marks }] : [];
    if (cfg.mutant === 'marks-before-clears') plan.push(...markReq, ...clearReq);
    else plan.push(...clearReq, ...markReq);
    if (cfg.mutant !== 'no-final-flush') plan.push({ t: 'F', p: [] });
  } else {
    const markReq = marks.length ? [{ t: 'F' as const, p: marks }] : [];
    if (cfg.mutant === 'marks-before-clears') plan.push(...markReq, ...clearReq);
    else plan.push(...clearReq, ...markReq);
    if (marks.length === 0 && cfg.mutant === 'lazy-at-once') plan.push({ t: 'F', p: [] });
  }
  const f: Flush = { plan, nm: marks.length === 0, log: '' };
  return sendNext(cfg, { ...c, f, kp: phase });
}

/** Sends the next planned request, or finishes the call (lazy-flush decision) when none is left. */
function sendNext(cfg: Cfg, c: Ctx): { c: Ctx; done: boolean; r: number } {
  const f = c.f!;
  const next = f.plan[0];
  if (next !== undefined) {
    const sent = send(c, next.t, next.p, 'k');
    const nf: Flush = { ...f, plan: f.plan.slice(1), log: f.log + next.t };
    if (cfg.mutant === 'write-before-reply' && nf.plan.length === 0 && c.kp === 'w' && next.t === 'F') {
      // The mutant goes on as if the commit had been answered.
      return finishFlush(cfg, { ...sent, ws: -1, f: nf }, 0);
    }
    return { c: { ...sent, f: nf }, done: false, r: 0 };
  }
  return finishFlush(cfg, c, 0);
}

/** userspace_flush, end: lazy flush decision (integrated, success only), free entries, return r. */
function finishFlush(cfg: Cfg, c: Ctx, r: number): { c: Ctx; done: boolean; r: number } {
  const f = c.f!;
  let out: Ctx = { ...c, f: null, ws: -1 };
  if (cfg.integrated && r === 0 && cfg.mutant !== 'lazy-at-once') {
    if (f.nm && (cfg.fixed ? true : out.sf === 0)) {
      if (out.sf === 0 && cfg.mutant !== 'lazy-never') {
        out = { ...out, sf: 1, lz: out.lz === 'i' ? 'q' : out.lz === 's' ? 'sq' : out.lz };
      }
    } else {
      // cancel_delayed_work: a queued timer is removed; a running do_flush goes on.
      const lz = out.lz === 'q' ? 'i' : out.lz === 'sq' ? 's' : out.lz;
      out = { ...out, lz, sf: cfg.mutant === 'cancel-no-reset' ? out.sf : 0 };
    }
  }
  return { c: out, done: true, r };
}

// ---------------------------------------------------------------- dm-raid1 worker (do_mirror)

function logInSync(c: Ctx, r: number): boolean {
  return c.sy[r] === 1;
}

/** Effective region state as dm_rh_get_state reports it. */
function rhState(c: Ctx, r: number): 'CLEAN' | 'DIRTY' | 'NOSYNC' | 'RECOVERING' {
  const s = rhAt(c, r);
  if (s === 'A') return logInSync(c, r) ? 'CLEAN' : 'NOSYNC';
  if (s === 'L') return 'CLEAN';
  if (s === 'D') return 'DIRTY';
  if (s === 'N') return 'NOSYNC';
  return 'RECOVERING';
}

function clearRegion(cfg: Cfg, c: Ctx, r: number, drop: boolean): Ctx {
  // GFP_ATOMIC may fail: the clear is silently skipped (costs a resync later).
  if (drop && cfg.allocFail) return c;
  return { ...c, cl: [r, ...c.cl] };
}

/** dm_rh_update_states: recovered regions, then clean regions, then (not here) the flush. */
function updateStates(cfg: Cfg, c: Ctx, drop: boolean): Ctx {
  let out = c;
  for (let r = 0; r < cfg.n; r++) {
    if (rhAt(out, r) === 'R') {
      out = clearRegion(cfg, out, r, drop);
      // complete_resync_work(reg, 1) -> set_region_sync(R, 1): the server sets the sync bit
      // (log_set_bit marks the log touched, so the next FLUSH writes the device).
      out = { ...out, rh: setRh(out.rh, r, 'A'), sy: set(out.sy, r, 1), tc: out.sy[r] === 1 ? out.tc : 1 };
    }
  }
  for (let r = 0; r < cfg.n; r++) {
    if (rhAt(out, r) === 'L') {
      out = clearRegion(cfg, out, r, drop);
      out = { ...out, rh: setRh(out.rh, r, 'A') };
    }
  }
  return out;
}

/** do_recovery: one recovery slot; GET_RESYNC_WORK returns the lowest region not in sync. */
function doRecovery(cfg: Cfg, c: Ctx): Ctx {
  for (let r = 0; r < cfg.n; r++) if ('VQR'.includes(rhAt(c, r))) return c;
  for (let r = 0; r < cfg.n; r++) {
    if (c.sy[r] === 0) {
      const st: RhState = c.pd[r] === 0 ? 'Q' : 'V';
      return { ...c, rh: setRh(c.rh, r, st) };
    }
  }
  return c;
}

/** do_writes, first half: classify queued writes, rh_inc (marks), then the flush starts. */
function classifyWrites(cfg: Cfg, c: Ctx, drop: boolean): Ctx {
  let out = c;
  for (let r = 0; r < cfg.n; r++) {
    const n = out.bq[r]!;
    if (n === 0) continue;
    const st = rhState(out, r);
    if (st === 'RECOVERING') continue; // dm_rh_delay: held until the region is recovered
    out = { ...out, bq: set(out.bq, r, 0), pd: add(out.pd, r, n) };
    if (st === 'NOSYNC') {
      out = { ...out, rh: setRh(out.rh, r, 'N'), wn: add(out.wn, r, n) };
    } else {
      const wasClean = st === 'CLEAN';
      out = { ...out, rh: setRh(out.rh, r, 'D'), wq: add(out.wq, r, n) };
      if (wasClean && !(drop && cfg.mutant === 'mark-drop')) out = { ...out, ml: [r, ...out.ml] };
    }
  }
  return out;
}

/** do_writes, second half (after dm_rh_flush returned r): record failure, dispatch. */
function dispatchWrites(cfg: Cfg, c: Ctx, r: number): Ctx {
  const lf = cfg.mutant === 'log-failure-reset' ? (r ? 1 : 0) : r ? 1 : c.lf;
  let out: Ctx = { ...c, lf, lfe: r ? 1 : c.lfe };
  const holdSync = out.lf === 1 && cfg.handleErrors;
  for (let r2 = 0; r2 < cfg.n; r2++) {
    const s = out.wq[r2]!;
    if (s > 0) {
      out = holdSync ? { ...out, hb: add(out.hb, r2, s) } : { ...out, fly: add(out.fly, r2, s) };
    }
    const ns = out.wn[r2]!;
    if (ns > 0) out = { ...out, ns: add(out.ns, r2, ns), dv: set(out.dv, r2, 1) };
  }
  return { ...out, wq: out.wq.map(() => 0), wn: out.wn.map(() => 0), kp: 'i' };
}

/** Runs kmirrord from after the update_states flush to its next blocking point. */
function afterUpdateFlush(cfg: Cfg, c: Ctx, drop: boolean): Ctx {
  let out = doRecovery(cfg, c);
  out = classifyWrites(cfg, out, drop);
  const fl = startFlush(cfg, out, 'w');
  return fl.done ? dispatchWrites(cfg, fl.c, fl.r) : fl.c;
}

function hasWork(cfg: Cfg, c: Ctx): boolean {
  for (let r = 0; r < cfg.n; r++) {
    const s = rhAt(c, r);
    if (s === 'L' || s === 'R') return true;
    if (c.bq[r]! > 0 && !'VQR'.includes(s)) return true;
  }
  if (c.ml.length || c.cl.length) return true;
  const recovering = [...c.rh].some((s) => 'VQR'.includes(s));
  return !recovering && c.sy.some((x) => x === 0);
}

/** One do_mirror pass from idle. */
function pass(cfg: Cfg, c: Ctx, drop: boolean): Ctx | null {
  if (c.kp !== 'i' || !hasWork(cfg, c)) return null;
  let out = updateStates(cfg, c, drop);
  if (cfg.batch) return afterUpdateFlush(cfg, out, drop);
  const fl = startFlush(cfg, out, 'u');
  out = fl.c;
  // dm_rh_update_states ignores the flush result.
  return fl.done ? afterUpdateFlush(cfg, { ...out, kp: 'i' }, drop) : out;
}

/** dm_rh_dec: the pending count reaches zero -> next list (under region_lock in 3.14). */
function rhDecApply(c: Ctx, r: number): Ctx {
  const s = rhAt(c, r);
  if (s === 'V') return { ...c, rh: setRh(c.rh, r, 'Q') };
  if (s === 'D') return { ...c, rh: setRh(c.rh, r, 'L') };
  return c;
}

function rhDec(cfg: Cfg, c: Ctx, r: number): Ctx {
  const pd = c.pd[r]! - 1;
  const out = { ...c, pd: set(c.pd, r, pd) };
  if (pd !== 0) return out;
  if (cfg.mutant === 'rh-race') return { ...out, dz: set(out.dz, r, 1) }; // decided outside the lock
  return rhDecApply(out, r);
}

// ---------------------------------------------------------------- server (cmirrord)

function srvMark(c: Ctx, r: number, bit: number): Ctx {
  let out = c;
  if (out.sm[r] === 0) out = { ...out, mc: set(out.mc, r, 0), tc: 1 };
  return { ...out, sm: set(out.sm, r, out.sm[r]! | bit) };
}

function srvClear(cfg: Cfg, c: Ctx, r: number, bit: number): Ctx {
  const sm = set(c.sm, r, c.sm[r]! & ~bit);
  const othersMarked = cfg.mutant === 'server-clear-ignores-others' ? false : sm[r] !== 0;
  if (!othersMarked && c.sy[r] === 1) return { ...c, sm, mc: set(c.mc, r, 1), tc: 1 };
  return { ...c, sm };
}

/** clog_flush on the server: write the clean bits if touched. Returns the error (0 or EIO). */
function srvFlush(c: Ctx): { c: Ctx; e: number } {
  if (c.tc === 0) return { c, e: 0 };
  if (c.df === 1) return { c, e: EIO };
  return { c: { ...c, dc: c.mc.slice(), tc: 0 }, e: 0 };
}

/** One cluster round for the request at the head of the queue. */
function serve(cfg: Cfg, c: Ctx): Ctx | null {
  const req = c.rq[0];
  if (req === undefined) return null;
  let out: Ctx = { ...c, rq: c.rq.slice(1) };
  let e = 0;
  if (req.t === 'C') {
    for (const r of req.p) out = srvClear(cfg, out, r, 1);
  } else if (req.t === 'M') {
    for (const r of req.p) out = srvMark(out, r, 1);
  } else {
    if (req.p.length > 0) {
      if (cfg.aware) for (const r of req.p) out = srvMark(out, r, 1);
      else out = { ...out, lost: 1 }; // upstream clog_flush never looks at the payload
    }
    const fl = srvFlush(out);
    out = fl.c;
    e = fl.e;
  }
  return { ...out, rp: [...out.rp, { s: req.s, e }] };
}

// ---------------------------------------------------------------- kernel receiving replies

function reply(cfg: Cfg, c: Ctx): Ctx | null {
  const h = c.rp[0];
  if (h === undefined) return null;
  let out: Ctx = { ...c, rp: c.rp.slice(1) };
  if (h.s === c.ws && out.f !== null) {
    const phase = out.kp;
    const res = h.e !== 0 ? finishFlush(cfg, out, h.e) : sendNext(cfg, { ...out, ws: -1 });
    out = res.c;
    if (res.done) {
      if (phase === 'u') out = afterUpdateFlush(cfg, { ...out, kp: 'i' }, false);
      else out = dispatchWrites(cfg, out, res.r);
    }
  } else if (h.s === c.ls) {
    // do_flush finished (an error only raises a table event).
    out = { ...out, ls: -1, lz: out.lz === 'sq' ? 'q' : 'i' };
  }
  // Any other seq is a stale reply to a resent request: no receiving_pkg matches, it is dropped.
  return normSeq(out);
}

/** DM_ULOG_RETRY_TIMEOUT expired: resend the same request with a new seq. */
function timeout(c: Ctx, who: 'k' | 'l'): Ctx | null {
  const waited = who === 'k' ? c.ws : c.ls;
  if (c.rs === 0 || waited < 0) return null;
  const req = c.rq.find((q) => q.s === waited);
  if (req === undefined) return null; // already served: the reply is on its way
  const out = send({ ...c, rs: c.rs - 1 }, req.t, req.p, who);
  return out;
}

// ---------------------------------------------------------------- the event dispatcher

export function applyEvent(cfg: Cfg, c: Ctx, e: MirrorEv): Ctx | null {
  const r = e.r ?? 0;
  switch (e.type) {
    case 'bio':
      return c.bud > 0 ? { ...c, bud: c.bud - 1, bq: add(c.bq, r, 1) } : null;
    case 'pass':
      return pass(cfg, c, e.drop === 1);
    case 'srv':
      return serve(cfg, c);
    case 'reply':
      return reply(cfg, c);
    case 'timeout':
      return timeout(c, e.w === 'l' ? 'l' : 'k');
    case 'lazyfire':
      if (c.lz !== 'q') return null;
      return { ...send({ ...c, sf: 0 }, 'F', [], 'l'), lz: 's' };
    case 'done':
      if (c.fly[r]! === 0 || c.dz[r] === 1) return null;
      return rhDec(cfg, { ...c, fly: add(c.fly, r, -1), vo: cfg.cache ? set(c.vo, r, 1) : c.vo }, r);
    case 'nsdone':
      if (c.ns[r]! === 0 || c.dz[r] === 1) return null;
      return rhDec(cfg, { ...c, ns: add(c.ns, r, -1), vo: cfg.cache ? set(c.vo, r, 1) : c.vo }, r);
    case 'legerr': {
      // A write failed on one leg; do_failures marks the region nosync unless the log failed.
      if (c.fly[r]! === 0 || c.le === 0 || c.dz[r] === 1) return null;
      let out: Ctx = { ...c, fly: add(c.fly, r, -1), le: c.le - 1, dv: set(c.dv, r, 1) };
      // dm_rh_mark_nosync: set_region_sync(R, 0), state NOSYNC (a RECOVERING region gives up its
      // recovery slot; doRecovery picks the region again later).
      if (out.lf === 0) out = { ...out, rh: setRh(out.rh, r, 'N'), sy: set(out.sy, r, 0), tc: out.sy[r] === 0 ? out.tc : 1 };
      return rhDec(cfg, out, r);
    }
    case 'dec2':
      if (c.dz[r] !== 1) return null;
      return { ...rhDecApply(c, r), dz: set(c.dz, r, 0) };
    case 'copy':
      // kcopyd copies the region from the default leg; dm_rh_recovery_end(success).
      if (rhAt(c, r) !== 'Q') return null;
      return { ...c, rh: setRh(c.rh, r, 'R'), dv: set(c.dv, r, 0), vo: cfg.cache ? set(c.vo, r, 1) : c.vo };
    case 'legflush':
      return cfg.cache && any(c.vo) ? { ...c, vo: c.vo.map(() => 0) } : null;
    case 'pmark': {
      if (!cfg.peer || c.pb === 0 || c.pr[r] !== 0 || c.df === 1) return null;
      const fl = srvFlush(srvMark(c, r, 2));
      return { ...fl.c, pr: set(c.pr, r, 1), pb: c.pb - 1 };
    }
    case 'pwrite':
      return c.pr[r] === 1 && c.sy[r] === 1 ? { ...c, pr: set(c.pr, r, 2) } : null;
    case 'pdone':
      return c.pr[r] === 2 ? { ...c, pr: set(c.pr, r, 1), vo: cfg.cache ? set(c.vo, r, 1) : c.vo } : null;
    case 'pclear': {
      if (c.pr[r] !== 1) return null;
      // The peer runs the same kernel: under 'fixed' its userspace_flush also flushes the (shared)
      // legs' caches before it sends the clear, as node 1's startFlush does.
      if (cfg.cache && cfg.fixed) c = { ...c, vo: c.vo.map(() => 0) };
      const fl = srvFlush(srvClear(cfg, c, r, 2));
      return { ...fl.c, pr: set(c.pr, r, 0) };
    }
    default:
      return null;
  }
}

/** Machine crash keeping the listed in-flight writes (index order: see inFlightWrites). */
export function crashCtx(cfg: Cfg, c: Ctx, keep: readonly number[]): Ctx {
  const writes = inFlightWrites(cfg, c);
  const dv = c.dv.slice();
  writes.forEach((r, i) => {
    if (!keep.includes(i)) dv[r] = 1; // landed on some legs only
  });
  for (let r = 0; r < cfg.n; r++) if (c.vo[r] === 1 || c.rh[r] === 'Q') dv[r] = 1; // lost from one cache / copy cut
  const base = initialCtx(cfg);
  // clog_resume: the clean bits come from the log device and become the sync bits; every region
  // not clean is NOSYNC and will be recovered from the default leg.
  return {
    ...base,
    bud: c.bud,
    pb: 0,
    rs: c.rs,
    le: c.le,
    cr: c.cr - 1,
    mc: c.dc.slice(),
    dc: c.dc.slice(),
    sy: c.dc.slice(),
    dv,
    df: c.df,
    lost: c.lost,
  };
}

/** Writes that reach legs but have not completed, one entry (its region) per write. */
export function inFlightWrites(cfg: Cfg, c: Ctx): number[] {
  const out: number[] = [];
  for (let r = 0; r < cfg.n; r++) {
    for (let i = 0; i < c.fly[r]! + c.ns[r]!; i++) out.push(r);
    if (c.pr[r] === 2) out.push(r);
  }
  return out;
}

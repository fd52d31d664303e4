// Lockstep adapter for the mirror-log model: drives impl/mirror (dm-raid1 region hash, the
// dm-log-userspace client with and without integrated_flush, the cmirrord-like server) one machine
// event at a time and projects it onto the machine's observable state.
// Kernel sources the mapping follows (v3.14.1): drivers/md/dm-raid1.c (do_mirror, do_writes,
// write_callback), drivers/md/dm-region-hash.c (rh_inc, dm_rh_dec, dm_rh_update_states),
// drivers/md/dm-log-userspace-base.c (userspace_flush, do_flush), dm-log-userspace-transfer.c
// (dm_consult_userspace: seq, 15 s resend); lvm2 daemons/cmirrord/functions.c.
//
// Every machine event is issued by the engine through `apply` (awaitApply, checker/model.ts): the
// impl's internal steps are held by this adapter's own gate and released as the event names them —
// `srv` serves the request at the head of the server's queue, `reply` delivers the oldest
// reply, `done r` completes the oldest two-leg write to r on both legs, and so on. The RPCs the
// machine treats as atomic (IN_SYNC, GET_RESYNC_WORK, SET_REGION_SYNC, GET_SYNC_COUNT and the
// constructor's CTR/GET_REGION_SIZE/RESUME) are answered as soon as they are sent, ahead of queued
// flush requests. The impl only waits on gate steps (no timers), so once a released step's promise
// chain has run (one macrotask later) every thread is parked at its next step: that is the moment
// apply's promise settles and the engine compares projections.

import type { Bounds, Ev, Gate, ImplAdapter, ImplHandle, Json, Variant } from '../../checker/model.js';
import type { Cfg, Ctx, MirrorEv } from '../../machines/mirror-log/types.js';
import { buildStack, type Stack } from '../../impl/mirror/stack.js';
import { crashRule } from '../../impl/mirror/testkit.js';
import { ManualGate, settle } from '../../impl/mirror/sim.js';
import { decodeRegions, RequestType } from '../../impl/mirror/wire.js';
import { cfgsFrom } from './config.js';

/** Request types on the flush path: the machine has their `srv` and `reply` as events. */
const FLUSH_PATH: ReadonlySet<number> = new Set([RequestType.FLUSH, RequestType.MARK_REGION, RequestType.CLEAR_REGION]);
const ENVIRONMENT: ReadonlySet<string> = new Set(['bio', 'legflush', 'pmark', 'pwrite', 'pdone', 'pclear']);
const LETTER: Readonly<Record<number, string>> = { [RequestType.FLUSH]: 'F', [RequestType.MARK_REGION]: 'M', [RequestType.CLEAR_REGION]: 'C' };

const sorted = (a: readonly number[]): number[] => [...a].sort((x, y) => x - y);

/** The observable state both sides project to; top-level fields are what a mismatch names. */
export interface MirrorProjection {
  readonly [field: string]: Json;
}

/** The machine side (machines/mirror-log/types.ts Ctx). */
export function projectCtx(c: Ctx): MirrorProjection {
  const to = (s: number): string => (s === c.ws ? 'k' : s === c.ls ? 'l' : 'stale');
  return {
    rh: c.rh,
    pd: c.pd,
    bq: c.bq,
    fly: c.fly,
    ns: c.ns,
    hb: c.hb,
    dz: c.dz,
    lists: { marks: sorted(c.ml), clears: sorted(c.cl) },
    kp: c.kp,
    sf: c.sf,
    lz: c.lz,
    unc: c.unc,
    wire: c.rq.map((q) => ({ t: q.t, p: sorted(q.p), w: q.w, to: to(q.s) })),
    replies: c.rp.map((p) => ({ e: p.e, to: to(p.s) })),
    sm: c.sm,
    mc: c.mc,
    dc: c.dc,
    sy: c.sy,
    df: c.df,
    dv: c.dv,
    vo: c.vo,
    lf: c.lf,
    lfe: c.lfe,
  };
}

/** Which spec rules a disagreement on a projection field stands for (spec/mirror-log.md §4). */
export function projectionSpec(field: string): readonly string[] {
  switch (field) {
    case 'fly':
    case 'ns':
    case 'hb':
      return ['ULOG-1'];
    case 'rh':
    case 'pd':
    case 'bq':
    case 'dz':
      return ['ULOG-2'];
    case 'lists':
    case 'wire':
      return ['ULOG-3'];
    case 'kp':
    case 'sf':
    case 'lz':
    case 'unc':
      return ['ULOG-4'];
    case 'sm':
      return ['ULOG-5'];
    case 'dc':
    case 'dv':
    case 'vo':
      return ['ULOG-6'];
    case 'replies':
      return ['ULOG-7'];
    case 'mc':
    case 'sy':
      return ['ULOG-8'];
    case 'lf':
    case 'lfe':
      return ['ULOG-9'];
    default:
      return [];
  }
}

/** Why the adapter cannot drive this configuration (it says so instead of comparing something else). */
function unsupported(cfg: Cfg): string | null {
  if (cfg.batch) return 'the batching caller: dm-raid1 never batches clears and marks into one flush, and impl/mirror has no other caller';
  if (cfg.legErrors > 0) return 'legErrors > 0: impl/mirror holds a failed write for do_failures where the machine marks the region at once';
  if (cfg.crashes > 0) return 'crashes > 0: the power cut is checked by the explorer and by the impl/mirror crash tests, not in lockstep';
  return null;
}

class MirrorImpl implements ImplHandle<MirrorEv> {
  readonly ready: Promise<unknown>;
  private stack: Stack | null = null;
  /** Holds the impl's steps the machine has as events; answers the atomic RPCs at once. */
  private readonly gate = new ManualGate((e) => (e.type === 'srv' || e.type === 'reply') && !FLUSH_PATH.has(e['req'] as number));
  /** The `drop` of the pass being applied: clear_region's (and under mark-drop mark_region's) allocation fails. */
  private dropping = false;
  private peerVersion = 1 << 20;
  private readonly n: number;
  private readonly allocFail: boolean;
  private readonly handleErrors: boolean;

  constructor(variant: Variant, cfg: Cfg) {
    this.n = cfg.n;
    this.allocFail = cfg.allocFail;
    this.handleErrors = cfg.handleErrors;
    this.ready = buildStack({
      regions: cfg.n,
      integrated: cfg.integrated,
      aware: cfg.aware,
      gate: this.gate,
      variant,
      handleErrors: cfg.handleErrors,
      legCache: cfg.cache,
      resync: cfg.resync,
      serveBySeq: true,
      clearAllocFails: (kind) => this.dropping && (kind === 'mark' || this.allocFail),
    }).then((s) => {
      this.stack = s;
    });
  }

  private get s(): Stack {
    if (this.stack === null) throw new Error('impl/mirror has not finished its constructor RPCs');
    return this.stack;
  }

  /** Releases the held step `pred` picks, or says what the impl is waiting at instead. */
  private release(what: string, pred: (e: Ev) => boolean): void {
    if (this.gate.releaseNow(pred)) return;
    const waiting = this.gate.held.map((h) => JSON.stringify(h.e)).join(', ') || 'nothing';
    throw new Error(`the implementation has no step for ${what}; it waits at: ${waiting}`);
  }

  /** Releases every held leg write of the oldest in-flight write to r that goes to `of` legs. */
  private complete(r: number, of: number): void {
    const bios = this.gate.find((e) => e.type === 'legio' && e['r'] === r && e['of'] === of).map((e) => e['bio'] as number);
    if (bios.length === 0) this.release(`a ${of}-leg write to region ${r} completing`, () => false);
    const bio = Math.min(...bios);
    while (this.gate.releaseNow((e) => e.type === 'legio' && e['bio'] === bio));
  }

  apply = async (e: MirrorEv): Promise<void> => {
    const s = this.s;
    const r = typeof e['r'] === 'number' ? e['r'] : 0;
    switch (e.type) {
      case 'bio':
        void s.mirror.write(r);
        break;
      case 'pass':
        // The machine's pass runs up to the first flush-path request; drop only applies that far.
        this.dropping = e['drop'] === 1;
        this.release('a do_mirror pass (kmirrord was not woken)', (x) => x.type === 'pass');
        await settle();
        this.dropping = false;
        return;
      case 'srv': {
        const head = s.cluster.queued()[0];
        this.release('serving the request at the head of the queue', (x) => x.type === 'srv' && x['seq'] === head?.seq);
        break;
      }
      case 'reply':
        this.release('delivering the oldest reply', (x) => x.type === 'reply');
        break;
      case 'timeout':
        this.release(`a 15 s timeout of thread ${String(e['w'])}`, (x) => x.type === 'timeout' && x['w'] === e['w'] && FLUSH_PATH.has(x['req'] as number));
        break;
      case 'lazyfire':
        this.release('the lazy flush timer', (x) => x.type === 'lazyfire');
        break;
      case 'done':
        this.complete(r, 2);
        break;
      case 'nsdone':
        this.complete(r, 1);
        break;
      case 'dec2':
        this.release(`the deferred dm_rh_dec decision on region ${r}`, (x) => x.type === 'dec2' && x['r'] === r);
        break;
      case 'copy':
        this.release(`the recovery copy of region ${r}`, (x) => x.type === 'copy' && x['r'] === r);
        break;
      case 'legflush':
        s.mirror.flushLegs();
        break;
      case 'pmark':
        // Node 2 is the machine's abstract peer (impl/mirror/stack.ts PeerNode): its write lands on
        // the legs when it completes (pwrite only starts it).
        s.peer.mark(r);
        break;
      case 'pwrite':
        break;
      case 'pdone':
        s.peer.write(r, this.peerVersion++);
        break;
      case 'pclear':
        s.peer.clear(r);
        break;
      case '@fault':
        s.device.failing = true;
        break;
      default:
        throw new Error(`the lockstep adapter does not drive ${e.type}`);
    }
    await settle();
  };

  /**
   * ULOG-6 judged on the impl's own data: a region the log device records clean has the same
   * contents on every leg, durable and cached (impl/mirror/testkit.ts crashRule). Waived in
   * degraded mode (log failed, no handle_errors), as the spec waives it.
   */
  selfCheck = (): { readonly spec: readonly string[]; readonly message: string } | null => {
    const s = this.s;
    if (s.mirror.logFailure === 1 && !this.handleErrors) return null;
    const why = crashRule(s);
    return why === null ? null : { spec: ['ULOG-6'], message: `impl/mirror: ${why}` };
  };

  project = (): Json => {
    const s = this.s;
    const n = this.n;
    const v = s.mirror.view(n);
    const zeros = (): number[] => Array.from({ length: n }, () => 0);
    // In-flight writes are the held leg steps, grouped per bio: two legs = sync write, one = nosync.
    const fly = zeros();
    const ns = zeros();
    const seen = new Set<number>();
    for (const h of this.gate.find((e) => e.type === 'legio')) {
      const bio = h['bio'] as number;
      if (seen.has(bio)) continue;
      seen.add(bio);
      ((h['of'] as number) === 1 ? ns : fly)[h['r'] as number]!++;
    }
    const dz = zeros();
    for (const h of this.gate.find((e) => e.type === 'dec2')) dz[h['r'] as number] = 1;
    const waiting = new Set(s.transfer.waiting());
    const threadOf = (seq: number): string => s.transfer.sent.find((x) => x.seq === seq)?.thread ?? '?';
    const to = (seq: number): string => (waiting.has(seq) ? threadOf(seq) : 'stale');
    const lazySending = [...waiting].some((seq) => threadOf(seq) === 'l');
    const lazyQueued = s.log.lazyPending;
    // unc: a CLEAR from kmirrord with no FLUSH (from either thread) sent after it.
    let unc = 0;
    for (const x of s.transfer.sent) {
      if (x.type === RequestType.CLEAR_REGION && x.thread === 'k') unc = 1;
      if (x.type === RequestType.FLUSH) unc = 0;
    }
    const st = s.cluster.state;
    const sm = zeros();
    for (const m of st?.marks ?? []) sm[m.region]! |= m.node === 1 ? 1 : 2;
    const lists = s.log.lists();
    const differ = (r: number): number => {
      if (ns[r]! > 0) return 1; // a nosync write goes to the default leg only
      if (fly[r]! > 0) return 0; // a sync write may have reached one leg so far
      return new Set(s.legs.map((l) => l.read(r))).size > 1 ? 1 : 0;
    };
    return {
      rh: v.rh,
      pd: v.pending,
      bq: v.queued,
      fly,
      ns,
      hb: v.held,
      dz,
      lists: { marks: sorted(lists.marks), clears: sorted(lists.clears) },
      kp: s.mirror.phase,
      sf: s.log.schedFlush,
      lz: lazySending ? (lazyQueued ? 'sq' : 's') : lazyQueued ? 'q' : 'i',
      unc,
      wire: s.cluster.queued().map((q) => ({
        t: q.req ? (LETTER[q.req.requestType & 0xff] ?? `type ${q.req.requestType & 0xff}`) : 'malformed',
        p: q.req && q.req.data.length ? sorted(decodeRegions(q.req.data)) : [],
        w: threadOf(q.seq),
        to: to(q.seq),
      })),
      replies: this.gate.find((e) => e.type === 'reply').map((e) => ({ e: -(e['err'] as number), to: to(e['seq'] as number) })),
      sm,
      mc: st ? st.clean.slice(0, n) : zeros(),
      dc: s.device.clean.slice(0, n),
      sy: st ? st.sync.slice(0, n) : zeros(),
      df: s.device.failing ? 1 : 0,
      dv: Array.from({ length: n }, (_, r) => differ(r)),
      vo: Array.from({ length: n }, (_, r) => (s.legs.some((l) => l.cache.has(r)) ? 1 : 0)),
      lf: s.mirror.logFailure,
      lfe: s.mirror.logFailureEver,
    };
  };
}

export const mirrorImplAdapter: ImplAdapter<MirrorEv> = {
  async: true,
  awaitApply: true,
  // The lazy-flush states (ULOG-4) lie 10-15 machine events deep.
  longRuns: 40,
  // What the environment issues (writes, REQ_FLUSH, node 2); the rest are steps of kmirrord,
  // dmlogd, the server and the legs, which awaitApply also routes through apply.
  isExternal: (e: MirrorEv): boolean => ENVIRONMENT.has(e.type),
  // Every configuration the bounds explore except the batching caller (dm-raid1 never batches).
  initialStates: (bounds: Bounds, variant: Variant): number[] =>
    cfgsFrom(bounds, variant).flatMap((cfg, i) => (unsupported(cfg) === null ? [i] : [])),
  // The impl's own steps go through its ManualGate; the engine's gate is never needed.
  create: (variant: Variant, bounds: Bounds, _gate: Gate<MirrorEv>, initial = 0): ImplHandle<MirrorEv> => {
    const cfg = cfgsFrom(bounds, variant)[initial];
    if (cfg === undefined) throw new Error(`mirror-log lockstep: no initial state #${initial} at these bounds`);
    const why = unsupported(cfg);
    if (why) throw new Error(`mirror-log lockstep cannot drive ${why}`);
    return new MirrorImpl(variant, cfg);
  },
};

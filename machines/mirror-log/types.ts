// Abstract state of the cluster-mirror dirty log as Linux 3.14 runs it.
// Follows: drivers/md/dm-log-userspace-base.c (struct log_c, userspace_flush, do_flush,
// userspace_mark_region, userspace_clear_region), drivers/md/dm-log-userspace-transfer.c
// (dm_consult_userspace: seq numbers, 15 s resend), drivers/md/dm-region-hash.c (rh_inc, dm_rh_dec,
// dm_rh_update_states), drivers/md/dm-raid1.c (do_mirror, do_writes) and lvm2
// daemons/cmirrord/functions.c (mark_region, clear_region, clog_flush).
//
// The context is kept small on purpose (the explorer visits every reachable one): per-region data
// are short number arrays indexed by region, requests carry only type, payload and seq.

/** Region-hash state of one region on the modelled node (node 1). */
// A: not in the hash (CLEAN if the log says in sync, else NOSYNC) · L: CLEAN on clean_regions ·
// D: DIRTY · N: NOSYNC · V: RECOVERING with writes pending · Q: quiesced, kcopyd copying ·
// R: on recovered_regions, waiting for dm_rh_update_states.
export type RhState = 'A' | 'L' | 'D' | 'N' | 'V' | 'Q' | 'R';

/** Request on the wire. t: C = CLEAR_REGION, M = MARK_REGION, F = FLUSH (p = integrated payload). */
export interface Req {
  readonly s: number;
  readonly t: 'C' | 'M' | 'F';
  readonly p: readonly number[];
  /** Sender thread: k = kmirrord (userspace_flush), l = dmlogd (lazy do_flush). */
  readonly w: 'k' | 'l';
}

export interface Rep {
  readonly s: number;
  /** 0 or a positive errno (5 = EIO). */
  readonly e: number;
}

/** One userspace_flush call in progress on kmirrord. */
export interface Flush {
  /** Requests still to send, in order. */
  readonly plan: readonly { readonly t: 'C' | 'M' | 'F'; readonly p: readonly number[] }[];
  /** The mark list was empty when the call took the lists (decides the lazy flush). */
  readonly nm: boolean;
  /** Request types sent so far in this call (for ULOG-3 and ULOG-4). */
  readonly log: string;
}

/** kmirrord: i = idle, u = in the flush of dm_rh_update_states, w = in the flush of do_writes. */
export type KPhase = 'i' | 'u' | 'w';
/** dmlogd delayed work: i = idle, q = queued (3 s timer), s = do_flush waiting for its reply, sq = both. */
export type LPhase = 'i' | 'q' | 's' | 'sq';

export interface Ctx {
  /** Which configuration this state belongs to (several may share one exploration): cfgTag(cfg). */
  readonly cf: string;
  // --- node 1: dm-raid1 + region hash
  readonly rh: string; // one RhState char per region
  readonly pd: readonly number[]; // pending count
  readonly bq: readonly number[]; // write bios queued for kmirrord (ms->writes, including delayed ones)
  readonly wq: readonly number[]; // sync writes classified, waiting for the do_writes flush
  readonly wn: readonly number[]; // nosync writes classified, waiting for the do_writes flush
  readonly fly: readonly number[]; // sync writes dispatched to all legs, not completed
  readonly ns: readonly number[]; // nosync writes dispatched to the default leg, not completed
  readonly hb: readonly number[]; // writes held after a log failure with handle_errors
  readonly dz: readonly number[]; // mutant rh-race only: dm_rh_dec decided "pending hit 0" outside the lock
  readonly bud: number; // write bios node 1 may still submit
  // --- node 1: dm-log-userspace client
  readonly ml: readonly number[]; // mark_list, head first
  readonly cl: readonly number[]; // clear_list, head first
  readonly f: Flush | null;
  readonly kp: KPhase;
  readonly ws: number; // seq kmirrord waits for, -1 none
  readonly sf: number; // atomic sched_flush
  readonly lz: LPhase;
  readonly ls: number; // seq dmlogd waits for, -1 none
  readonly unc: number; // CLEARs sent by node 1 and not yet followed by a FLUSH request
  // --- transport (connector): FIFO both ways
  readonly rq: readonly Req[];
  readonly rp: readonly Rep[];
  readonly seq: number;
  readonly rs: number; // resends (15 s timeouts) still allowed
  // --- cluster log server (cmirrord on the lowest node id)
  readonly sm: readonly number[]; // per region: bit 0 = node 1 has it marked, bit 1 = node 2
  readonly mc: readonly number[]; // in-memory clean bits
  readonly dc: readonly number[]; // clean bits on the log device (durable)
  readonly sy: readonly number[]; // sync bits
  readonly tc: number; // touched
  readonly df: number; // the log device fails writes
  readonly lost: number; // a FLUSH payload was ignored by the server (ULOG-10)
  // --- node 2 (abstract peer): 0 idle, 1 marked (durably), 2 write in flight
  readonly pr: readonly number[];
  readonly pb: number;
  // --- mirror legs
  readonly dv: readonly number[]; // legs known to differ (nosync write, failed leg, crash)
  readonly vo: readonly number[]; // completed data still in a leg's volatile write cache
  readonly le: number; // leg write errors still allowed
  // --- failures
  readonly lf: number; // ms->log_failure
  readonly lfe: number; // log_failure was ever set (ULOG-9 history)
  readonly cr: number; // machine crashes still allowed
}

export interface MirrorEv {
  readonly type: string;
  readonly r?: number;
  readonly drop?: number;
  readonly w?: string;
  readonly [param: string]: string | number | undefined;
}

/** The configuration one machine is built for (from bounds and variant). */
export interface Cfg {
  readonly n: number; // regions
  readonly integrated: boolean; // table says integrated_flush
  readonly aware: boolean; // server applies FLUSH payload as marks (false = upstream lvm2 cmirrord)
  readonly peer: boolean; // a second node shares the log
  readonly batch: boolean; // dirty-log caller that batches clears and marks into one flush
  readonly cache: boolean; // legs have volatile write caches
  readonly handleErrors: boolean;
  readonly allocFail: boolean; // clear_region's GFP_ATOMIC allocation may fail
  readonly fixed: boolean; // profile 'fixed'
  readonly mutant: string | null;
  readonly writes: number;
  readonly peerWrites: number;
  readonly resends: number;
  readonly resync: boolean; // created with "sync": every region starts out of sync
  readonly legErrors: number;
  readonly logFaults: number;
  readonly crashes: number;
}

/** Two letters: p/i = plain or integrated_flush log, r/b = dm-raid1 or batching caller. */
export function cfgTag(cfg: Pick<Cfg, 'integrated' | 'batch'>): string {
  return (cfg.integrated ? 'i' : 'p') + (cfg.batch ? 'b' : 'r');
}

export const EIO = 5;
/** MAX_FLUSH_GROUP_COUNT: regions per MARK/CLEAR/FLUSH request (3.14 dm-log-userspace-base.c). */
export const MAX_FLUSH_GROUP_COUNT = 32;

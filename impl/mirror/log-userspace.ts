// Kernel dirty-log client for the userspace log ("userspace" dirty-log type).
// Follows drivers/md/dm-log-userspace-base.c (v3.14.1): userspace_ctr (argument checks,
// integrated_flush right after the UUID, ctr string without the keyword, GET_REGION_SIZE),
// userspace_do_request (-ESRCH: re-send CTR and RESUME, then retry), userspace_mark_region (never
// fails, head insert), userspace_clear_region (may fail), flush_by_group / flush_one_by_one,
// userspace_flush (clears first; plain: MARK groups + FLUSH; integrated: FLUSH groups with marks
// as payload; lazy 3 s flush for clears only), do_flush, userspace_postsuspend, userspace_dtr,
// userspace_status (TABLE), in_sync / is_clean / get_resync_work / set_region_sync / get_sync_count.
//
// Variant: profile 'fixed' only cancels the lazy flush when marks were sent; the mutants of
// properties/mirror-log/mutants.ts change the flush as their titles say.

import type { Ev, Gate, Variant } from '../../checker/model.js';
import { EINVAL, ESRCH, type UlogTransfer } from './transfer.js';
import { decodePair, decodeS64, DM_UUID_LEN, encodePair, encodeRegions, encodeU64, MAX_FLUSH_GROUP_COUNT, RequestType } from './wire.js';

/** The interface dm-raid1 uses (include/linux/dm-dirty-log.h), async where the kernel blocks. */
export interface DirtyLog {
  readonly regionCount: number;
  markRegion(region: number): void;
  clearRegion(region: number): void;
  /**
   * userspace_flush. `onCommitSent` (mutant write-before-reply only) is called once the commit
   * request of this flush is on the wire.
   */
  flush(onCommitSent?: () => void): Promise<number>;
  inSync(region: number): Promise<boolean>;
  getResyncWork(): Promise<number | null>;
  setRegionSync(region: number, inSync: boolean): Promise<void>;
  getSyncCount(): Promise<number>;
  /** The mirror legs' cache flush the log may call before committing clears (flush_callback_fn). */
  flushCallback?: () => Promise<number>;
}

interface FlushEntry {
  readonly type: number;
  readonly region: number;
}

export interface UserspaceLogOptions {
  readonly transfer: UlogTransfer;
  readonly gate: Gate<Ev>;
  /** Table arguments after "userspace <#args>": <UUID> [integrated_flush] <type> <#args> <args…>. */
  readonly argv: readonly string[];
  /** ti->len in sectors. */
  readonly tiLen: number;
  readonly luid: bigint;
  readonly variant: Variant;
  /** Decides whether the GFP_ATOMIC allocation in clear_region (or, under mark-drop, mark_region) fails (default: never). */
  readonly clearAllocFails?: (kind: 'mark' | 'clear') => boolean;
  /** dm_table_event. */
  readonly onTableEvent?: () => void;
}

export class CtrError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

export class UserspaceLog implements DirtyLog {
  readonly uuid: string;
  readonly integratedFlush: boolean;
  readonly usrArgc: number;
  /** "<ti->len> <args after the uuid and integrated_flush>" as sent in CTR. */
  readonly ctrString: string;
  regionSize = 0;
  regionCount = 0;
  logDevName: string | null = null;
  inSyncHint = 0;
  private markList: FlushEntry[] = [];
  private clearList: FlushEntry[] = [];
  /** atomic_t sched_flush */
  schedFlush = 0;
  /** The delayed work item: queued (pending timer) or not; generation tells cancelled timers apart. */
  private lazyQueued = false;
  private lazyGen = 0;
  private readonly o: UserspaceLogOptions;
  flushCallback?: () => Promise<number>;
  /** The running flush's onCommitSent (flush's argument), until it is called. */
  private onCommitSent: (() => void) | undefined;
  tableEvents = 0;
  /** One record per userspace_flush call that sent something (for the message-cost result). */
  readonly flushCalls: { marks: number; clears: number; requests: number[] }[] = [];

  private constructor(o: UserspaceLogOptions) {
    this.o = o;
    const argv = o.argv;
    if (argv.length < 3) throw new CtrError(EINVAL, `userspace log needs at least 3 arguments (<UUID> <log type> <#args>…), got ${argv.length}`);
    const uuid = argv[0]!;
    if (new TextEncoder().encode(uuid).length >= DM_UUID_LEN) {
      throw new CtrError(EINVAL, `log UUID is ${uuid.length} characters; the limit is ${DM_UUID_LEN - 1}`);
    }
    this.uuid = uuid;
    this.usrArgc = argv.length;
    // The keyword must come immediately after the UUID; strcasecmp.
    this.integratedFlush = argv[1]!.toLowerCase() === 'integrated_flush';
    const rest = argv.slice(this.integratedFlush ? 2 : 1);
    this.ctrString = `${o.tiLen} ${rest.join(' ')}`;
  }

  /** userspace_ctr: CTR (no reconnect loop), GET_REGION_SIZE, log device name. */
  static async create(o: UserspaceLogOptions): Promise<UserspaceLog> {
    const lc = new UserspaceLog(o);
    const ctr = await o.transfer.consult(lc.uuid, o.luid, RequestType.CTR, nulTerminated(lc.ctrString), 128);
    if (ctr.r !== 0) throw new CtrError(-ctr.r, `userspace log server refused CTR (${ctr.r})`);
    const rs = await o.transfer.consult(lc.uuid, o.luid, RequestType.GET_REGION_SIZE, new Uint8Array(0), 8);
    if (rs.r !== 0) throw new CtrError(-rs.r, `GET_REGION_SIZE failed (${rs.r})`);
    lc.regionSize = Number(decodeS64(rs.data));
    if (!(lc.regionSize > 0)) throw new CtrError(EINVAL, `server reported region size ${lc.regionSize}`);
    lc.regionCount = Math.ceil(o.tiLen / lc.regionSize);
    if (ctr.data.length > 0) {
      const nul = ctr.data.indexOf(0);
      if (nul < 0) throw new CtrError(EINVAL, 'CTR reply carries a device name that is not NUL-terminated');
      const name = new TextDecoder().decode(ctr.data.subarray(0, nul));
      lc.logDevName = name.length ? name : null;
    }
    return lc;
  }

  private get mutant(): string | null {
    return this.o.variant.mutant;
  }

  /** userspace_do_request: -ESRCH → re-send CTR, then RESUME, then retry the request. */
  private async doRequest(type: number, data: Uint8Array, rdataMax = 0, thread = 'k'): Promise<{ r: number; data: Uint8Array }> {
    for (;;) {
      const res = await this.o.transfer.consult(this.uuid, this.o.luid, type, data, rdataMax, thread);
      if (res.r !== -ESRCH) return res;
      // 2 s sleep, then reconnect until the CTR goes through.
      for (;;) {
        await this.o.gate.step({ type: 'reconnect' });
        const c = await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.CTR, nulTerminated(this.ctrString), 128, thread);
        if (c.r === 0) break;
      }
      const rr = await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.RESUME, new Uint8Array(0), 0, thread);
      if (rr.r !== 0) return { r: -ESRCH, data: new Uint8Array(0) };
    }
  }

  markRegion(region: number): void {
    if (this.mutant === 'mark-drop' && this.o.clearAllocFails?.('mark')) return; // seeded: GFP_ATOMIC mark
    this.markList.unshift({ type: RequestType.MARK_REGION, region });
  }

  clearRegion(region: number): void {
    if (this.o.clearAllocFails?.('clear')) return; // DMERR only: costs a resync later
    this.clearList.unshift({ type: RequestType.CLEAR_REGION, region });
  }

  /** flush_one_by_one: one request per entry, stop at the first failure. */
  private async flushOneByOne(list: FlushEntry[]): Promise<number> {
    for (const fe of list) {
      const r = (await this.doRequest(fe.type, encodeRegions([fe.region]))).r;
      if (r) return r;
    }
    return 0;
  }

  /** flush_by_group: groups of up to 32 from the head; plain groups fall back to one-by-one. */
  private async flushByGroup(list: FlushEntry[], withPayload: boolean): Promise<number> {
    let i = 0;
    while (i < list.length) {
      const group = list.slice(i, i + MAX_FLUSH_GROUP_COUNT);
      const regions = group.map((fe) => fe.region);
      if (withPayload) {
        const sending = this.doRequest(RequestType.FLUSH, encodeRegions(regions));
        if (i + group.length >= list.length) this.commitSent(); // the last group is the commit
        const r = (await sending).r;
        if (r) return r; // no fallback for the integrated flush
      } else {
        const r = (await this.doRequest(group[group.length - 1]!.type, encodeRegions(regions))).r;
        if (r) return this.flushOneByOne(list); // every entry again, including groups already sent
      }
      i += group.length;
    }
    return 0;
  }

  /** userspace_flush. Returns 0 or a negative errno; entries are freed either way. */
  async flush(onCommitSent?: () => void): Promise<number> {
    const before = this.o.transfer.sent.length;
    const nMarks = this.markList.length;
    const nClears = this.clearList.length;
    this.onCommitSent = onCommitSent;
    const r = await this.flushInner().finally(() => {
      this.onCommitSent = undefined;
    });
    if (nMarks + nClears > 0) {
      this.flushCalls.push({
        marks: nMarks,
        clears: nClears,
        requests: this.o.transfer.sent.slice(before).filter((x) => x.thread === 'k').map((x) => x.type),
      });
    }
    return r;
  }

  private async flushInner(): Promise<number> {
    const marks = this.markList;
    const clears = this.clearList;
    this.markList = [];
    this.clearList = [];
    if (marks.length === 0 && clears.length === 0) return 0;
    if (clears.length > 0 && this.o.variant.profile === 'fixed' && this.flushCallback) {
      // Proposed fix (not in 3.14): flush the legs' caches before clears are committed.
      const r = await this.flushCallback();
      if (r) return this.fail(r);
    }
    const sendClears = (): Promise<number> => this.flushByGroup(clears, false);
    let r: number;
    if (!this.integratedFlush) {
      if (this.mutant === 'marks-before-clears') {
        r = (await this.flushByGroup(marks, false)) || (await sendClears());
      } else {
        r = await sendClears();
        if (!r) r = await this.flushByGroup(marks, false);
      }
      if (!r && this.mutant !== 'no-final-flush') {
        const sending = this.doRequest(RequestType.FLUSH, new Uint8Array(0));
        this.commitSent();
        r = (await sending).r;
      }
      return r ? this.fail(r) : 0;
    }
    if (this.mutant === 'marks-before-clears') {
      r = (await this.flushByGroup(marks, true)) || (await sendClears());
    } else {
      r = await sendClears();
      if (!r) r = await this.flushByGroup(marks, true);
    }
    if (r) return this.fail(r);
    const fixed = this.o.variant.profile === 'fixed';
    if (marks.length === 0 && this.mutant === 'lazy-at-once') {
      r = (await this.doRequest(RequestType.FLUSH, new Uint8Array(0))).r;
      return r ? this.fail(r) : 0;
    }
    if (marks.length === 0 && (fixed || this.schedFlush === 0)) {
      if (this.schedFlush === 0 && this.mutant !== 'lazy-never') {
        this.queueLazy();
        this.schedFlush = 1;
      }
    } else {
      this.cancelLazy();
      if (this.mutant !== 'cancel-no-reset') this.schedFlush = 0;
    }
    return 0;
  }

  /** doRequest has put the request on the wire by the time it returns its promise. */
  private commitSent(): void {
    const f = this.onCommitSent;
    this.onCommitSent = undefined;
    f?.();
  }

  private fail(r: number): number {
    this.tableEvents++;
    this.o.onTableEvent?.();
    return r;
  }

  /** queue_delayed_work(flush_log_work, 3*HZ): the timer is a gate step {type:'lazyfire'}. */
  private queueLazy(): void {
    if (this.lazyQueued) return;
    this.lazyQueued = true;
    const gen = ++this.lazyGen;
    const live = (): boolean => this.lazyQueued && gen === this.lazyGen;
    void this.o.gate.step({ type: 'lazyfire' }, live).then((go) => {
      if (!go || !live()) return; // cancelled meanwhile
      this.lazyQueued = false;
      return this.doFlush();
    });
  }

  private cancelLazy(): void {
    this.lazyQueued = false;
    this.lazyGen++;
  }

  /** do_flush (the delayed work). */
  private async doFlush(): Promise<void> {
    this.schedFlush = 0;
    const r = (await this.doRequest(RequestType.FLUSH, new Uint8Array(0), 0, 'l')).r;
    if (r) this.fail(r);
  }

  /** Regions on mark_list and clear_list, head first (for the lockstep projection). */
  lists(): { readonly marks: number[]; readonly clears: number[] } {
    return { marks: this.markList.map((fe) => fe.region), clears: this.clearList.map((fe) => fe.region) };
  }

  get lazyPending(): boolean {
    return this.lazyQueued;
  }

  /** userspace_postsuspend: run a scheduled lazy flush now (flush_delayed_work), then POSTSUSPEND. */
  async postsuspend(): Promise<number> {
    if (this.integratedFlush && this.schedFlush && this.lazyQueued) {
      this.cancelLazy();
      await this.doFlush();
    }
    return (await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.POSTSUSPEND, new Uint8Array(0), 0)).r;
  }

  async presuspend(): Promise<number> {
    return (await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.PRESUSPEND, new Uint8Array(0), 0)).r;
  }

  async resume(): Promise<number> {
    this.inSyncHint = 0;
    return (await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.RESUME, new Uint8Array(0), 0)).r;
  }

  /** userspace_dtr: pending lazy flush first, then DTR. */
  async dtr(): Promise<void> {
    if (this.integratedFlush && this.schedFlush && this.lazyQueued) {
      this.cancelLazy();
      await this.doFlush();
    }
    await this.o.transfer.consult(this.uuid, this.o.luid, RequestType.DTR, new Uint8Array(0), 0);
  }

  async isClean(region: number): Promise<boolean> {
    const res = await this.doRequest(RequestType.IS_CLEAN, encodeU64(BigInt(region)), 8);
    return res.r === 0 && decodeS64(res.data) === 1n;
  }

  async inSync(region: number): Promise<boolean> {
    const res = await this.doRequest(RequestType.IN_SYNC, encodeU64(BigInt(region)), 8);
    return res.r === 0 && decodeS64(res.data) === 1n;
  }

  async getResyncWork(): Promise<number | null> {
    if (this.inSyncHint >= this.regionCount) return null;
    const res = await this.doRequest(RequestType.GET_RESYNC_WORK, new Uint8Array(0), 16);
    if (res.r !== 0) return null;
    const [i, r] = decodePair(res.data);
    return i === 1n ? Number(r) : null;
  }

  async setRegionSync(region: number, inSync: boolean): Promise<void> {
    await this.doRequest(RequestType.SET_REGION_SYNC, encodePair(BigInt(region), inSync ? 1n : 0n)); // error ignored
  }

  async getSyncCount(): Promise<number> {
    const res = await this.doRequest(RequestType.GET_SYNC_COUNT, new Uint8Array(0), 8);
    if (res.r !== 0) return 0;
    const n = Number(decodeS64(res.data));
    if (n >= this.regionCount) this.inSyncHint = this.regionCount;
    return n;
  }

  /** STATUSTYPE_TABLE as the kernel builds it itself. */
  statusTable(): string {
    const afterLen = this.ctrString.slice(this.ctrString.indexOf(' ') + 1);
    return `userspace ${this.usrArgc} ${this.uuid} ${this.integratedFlush ? 'integrated_flush ' : ''}${afterLen} `;
  }
}

function nulTerminated(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

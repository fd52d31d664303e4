// dm-raid1 with its region hash, over any DirtyLog.
// Follows drivers/md/dm-region-hash.c (v3.14.1): dm_rh_get_state, __rh_alloc (CLEAN if in sync
// else NOSYNC), rh_inc (CLEAN→DIRTY + mark_region), dm_rh_dec (pending 0: flush_failure→NOSYNC,
// RECOVERING→quiesced, DIRTY→CLEAN on clean_regions), dm_rh_update_states (recovered: clear +
// set_region_sync(1); failed-recovered: set_region_sync; clean: clear; then flush, result ignored),
// dm_rh_mark_nosync, dm_rh_recovery_prepare/start/end; and drivers/md/dm-raid1.c do_mirror
// (update states → recovery → reads → writes → failures), do_writes (classify, inc pending,
// sticky log_failure from dm_rh_flush, hold sync writes if log_failure ∧ handle_errors, nosync
// writes to the default leg), write_callback, do_failures, mirror_end_io, mirror_resume (wakes
// kmirrord through dm_rh_start_recovery), recovery by kcopyd from the default leg (MAX_RECOVERY = 1).
//
// Leg I/O, kcopyd copies and kmirrord passes are gate steps ({type:'legio'|'copy'|'pass'}) so a
// scheduler can interleave them and cut power between any two.

import type { Ev, Gate, Variant } from '../../checker/model.js';
import type { DirtyLog } from './log-userspace.js';
import { EIO } from './transfer.js';

/** A mirror leg: per-region content version, with an optional volatile write cache. */
export class Leg {
  durable: number[];
  readonly cache = new Map<number, number>();
  failNextWrite = false;
  constructor(
    regions: number,
    readonly writeCache: boolean,
    initial = 0,
  ) {
    this.durable = Array.from({ length: regions }, () => initial);
  }
  write(region: number, version: number): boolean {
    if (this.failNextWrite) {
      this.failNextWrite = false;
      return false;
    }
    if (this.writeCache) this.cache.set(region, version);
    else this.durable[region] = version;
    return true;
  }
  read(region: number): number {
    return this.cache.get(region) ?? this.durable[region]!;
  }
  flushCache(): void {
    for (const [r, v] of this.cache) this.durable[r] = v;
    this.cache.clear();
  }
  /** Power cut: the volatile cache is gone. */
  powerCut(): void {
    this.cache.clear();
  }
}

type State = 'CLEAN' | 'DIRTY' | 'NOSYNC' | 'RECOVERING';

interface Region {
  state: State;
  pending: number;
  list: 'none' | 'clean' | 'quiesced' | 'recovered' | 'failed';
  delayed: Bio[];
}

interface Bio {
  readonly region: number;
  readonly version: number;
  readonly done: (err: number) => void;
}

export interface MirrorOptions {
  readonly log: DirtyLog;
  readonly legs: readonly Leg[];
  readonly gate: Gate<Ev>;
  readonly variant: Variant;
  readonly handleErrors: boolean;
}

export class MirrorSet {
  private readonly hash = new Map<number, Region>();
  private writes: Bio[] = [];
  private failures: Bio[] = [];
  readonly held: Bio[] = [];
  logFailure = 0;
  logFailureEver = 0;
  private flushFailure = false;
  private recovering = 0;
  private passScheduled = false;
  private nextVersion = 1;
  /** Dispatched writes and use-after-free notes (bench/mirror-rounds.ts counts the writes). */
  readonly events: string[] = [];
  /** Which dm_rh_flush kmirrord waits in: i = none, u = dm_rh_update_states', w = do_writes'. */
  phase: 'i' | 'u' | 'w' = 'i';

  constructor(private readonly o: MirrorOptions) {
    o.log.flushCallback = async () => {
      for (const leg of o.legs) leg.flushCache();
      return 0;
    };
  }

  /** Submit a write to `region`; resolves 0 or -EIO when the bio completes. */
  write(region: number): Promise<number> {
    return new Promise<number>((done) => {
      this.writes.push({ region, version: this.nextVersion++, done });
      this.wake();
    });
  }

  /** An upper-layer REQ_FLUSH: every leg's cache reaches the media. */
  flushLegs(): void {
    for (const leg of this.o.legs) leg.flushCache();
  }

  /** mirror_resume: dm_rh_start_recovery ends with wakeup_workers, so kmirrord looks for recovery work. */
  resume(): void {
    this.wake();
  }

  /** wakeup_mirrord: one do_mirror pass per wake, run when the scheduler releases it. */
  wake(): void {
    if (this.passScheduled) return;
    this.passScheduled = true;
    void this.o.gate.step({ type: 'pass' }).then(async (go) => {
      this.passScheduled = false;
      if (go) await this.doMirror();
    });
  }

  private async doMirror(): Promise<void> {
    await this.updateStates();
    await this.doRecovery();
    const writes = this.writes;
    this.writes = [];
    await this.doWrites(writes);
    await this.doFailures();
  }

  private async getState(region: number): Promise<State> {
    const reg = this.hash.get(region);
    if (reg) return reg.state;
    return (await this.o.log.inSync(region)) ? 'CLEAN' : 'NOSYNC';
  }

  private async find(region: number): Promise<Region> {
    let reg = this.hash.get(region);
    if (!reg) {
      const inSync = await this.o.log.inSync(region);
      reg = this.hash.get(region); // another path may have allocated it meanwhile
      if (!reg) {
        reg = { state: inSync ? 'CLEAN' : 'NOSYNC', pending: 0, list: inSync ? 'clean' : 'none', delayed: [] };
        this.hash.set(region, reg);
      }
    }
    return reg;
  }

  private async updateStates(): Promise<void> {
    const recovered: number[] = [];
    const failed: number[] = [];
    const clean: number[] = [];
    for (const [r, reg] of this.hash) {
      if (reg.list === 'clean') clean.push(r);
      else if (reg.list === 'recovered') recovered.push(r);
      else if (reg.list === 'failed') failed.push(r);
    }
    // complete_resync_work hands a region's delayed bios back at once (dispatch_bios → queue_bio).
    let delayed = 0;
    for (const r of recovered) {
      const reg = this.hash.get(r)!;
      this.hash.delete(r);
      this.o.log.clearRegion(r);
      await this.o.log.setRegionSync(r, true);
      this.recovering--;
      this.writes.push(...reg.delayed);
      delayed += reg.delayed.length;
    }
    for (const r of failed) {
      const reg = this.hash.get(r)!;
      this.hash.delete(r);
      await this.o.log.setRegionSync(r, !this.o.handleErrors);
      this.recovering--;
      this.writes.push(...reg.delayed);
      delayed += reg.delayed.length;
    }
    for (const r of clean) {
      this.hash.delete(r);
      this.o.log.clearRegion(r);
    }
    this.phase = 'u';
    await this.o.log.flush(); // the result is ignored here
    this.phase = 'i';
    if (delayed) this.wake();
  }

  /** ms->in_sync: every region reported in sync (stops GET_RESYNC_WORK via in_sync_hint). */
  inSync = false;

  private async doRecovery(): Promise<void> {
    while (this.recovering < 1) {
      const r = await this.o.log.getResyncWork();
      if (r === null) break;
      const reg = await this.find(r);
      this.recovering++;
      reg.state = 'RECOVERING';
      if (reg.list === 'clean') reg.list = 'none';
      if (reg.pending === 0) this.startCopy(r);
    }
    if (!this.inSync && (await this.o.log.getSyncCount()) === this.o.log.regionCount) this.inSync = true; // dm_table_event
  }

  /** kcopyd: copy the region from the default leg to the others, then dm_rh_recovery_end. */
  private startCopy(region: number): void {
    const reg = this.hash.get(region)!;
    reg.list = 'quiesced';
    void this.o.gate.step({ type: 'copy', r: region }).then((go) => {
      if (!go) return;
      const [def, ...others] = this.o.legs;
      let ok = true;
      for (const leg of others) ok = leg.write(region, def!.read(region)) && ok;
      reg.list = ok || !this.o.handleErrors ? 'recovered' : 'failed';
      this.wake();
    });
  }

  private async doWrites(writes: Bio[]): Promise<void> {
    if (writes.length === 0) return;
    const sync: Bio[] = [];
    const nosync: Bio[] = [];
    for (const bio of writes) {
      const st = await this.getState(bio.region);
      if (st === 'RECOVERING') (await this.find(bio.region)).delayed.push(bio);
      else (st === 'NOSYNC' ? nosync : sync).push(bio);
    }
    for (const bio of [...sync, ...nosync]) await this.rhInc(bio.region);
    this.phase = 'w';
    // Seeded write-before-reply: the writes go out as soon as the commit request is sent, before its reply.
    const early =
      this.o.variant.mutant === 'write-before-reply'
        ? (): void => {
            for (const bio of sync) this.dispatch(bio, this.o.legs);
            sync.length = 0;
          }
        : undefined;
    const r = await this.o.log.flush(early);
    this.phase = 'i';
    this.logFailure = this.o.variant.mutant === 'log-failure-reset' ? (r ? 1 : 0) : r ? 1 : this.logFailure;
    if (r) this.logFailureEver = 1;
    if (this.logFailure && this.o.handleErrors) {
      this.failures.push(...sync);
      if (sync.length) this.wake();
    } else {
      for (const bio of sync) this.dispatch(bio, this.o.legs);
    }
    for (const bio of nosync) this.dispatch(bio, this.o.legs.slice(0, 1));
  }

  private async rhInc(region: number): Promise<void> {
    const reg = await this.find(region);
    reg.pending++;
    if (reg.state === 'CLEAN') {
      reg.state = 'DIRTY';
      if (reg.list === 'clean') reg.list = 'none';
      this.o.log.markRegion(region);
    }
  }

  /** do_write / map_bio: one leg I/O step per leg; end_io when all are done. */
  private dispatch(bio: Bio, legs: readonly Leg[]): void {
    let left = legs.length;
    let failed = false;
    this.events.push(`dispatch r${bio.region} v${bio.version} to ${legs.length} leg(s)`);
    legs.forEach((leg, i) => {
      // bio and of (legs written) tell the writes of one region apart, and sync from nosync ones.
      void this.o.gate.step({ type: 'legio', r: bio.region, leg: i, bio: bio.version, of: legs.length }).then((go) => {
        if (!go) return;
        if (!leg.write(bio.region, bio.version)) failed = true;
        if (--left > 0) return;
        if (failed) {
          this.failures.push(bio); // write_callback: DM_RAID1_WRITE_ERROR
          this.wake();
        } else this.endIo(bio, 0);
      });
    });
  }

  private endIo(bio: Bio, err: number): void {
    void this.rhDec(bio.region);
    bio.done(err);
  }

  private async rhDec(region: number): Promise<void> {
    const reg = this.hash.get(region);
    if (!reg) {
      // Only reachable with the rh-race mutant: the region was cleared and freed under the write.
      this.events.push(`rh_dec on region ${region}, which is no longer in the hash (use after free)`);
      return;
    }
    reg.pending--;
    if (reg.pending !== 0) return;
    if (this.o.variant.mutant === 'rh-race') {
      // Seeded: the decision is applied later, outside the lock.
      const go = await this.o.gate.step({ type: 'dec2', r: region });
      if (!go) return;
    }
    if (this.flushFailure) reg.state = 'NOSYNC';
    else if (reg.state === 'RECOVERING') this.startCopy(region);
    else if (reg.state === 'DIRTY') {
      reg.state = 'CLEAN';
      reg.list = 'clean';
    }
    this.wake();
  }

  private async doFailures(): Promise<void> {
    const failures = this.failures;
    this.failures = [];
    for (const bio of failures) {
      if (!this.logFailure) {
        // dm_rh_mark_nosync
        await this.o.log.setRegionSync(bio.region, false);
        const reg = this.hash.get(bio.region);
        if (reg) {
          if (reg.state === 'RECOVERING') this.recovering--;
          reg.state = 'NOSYNC';
          if (reg.list === 'clean') reg.list = 'none';
        }
      }
      if (this.o.handleErrors) this.held.push(bio);
      else this.endIo(bio, 0);
    }
  }

  /**
   * The region hash as the abstract model names it (machines/mirror-log/types.ts RhState): A not
   * in the hash, L CLEAN on clean_regions, D DIRTY, N NOSYNC, V RECOVERING with writes pending,
   * Q quiesced (copying), R recovered; C (CLEAN off the list) and F (failed recovery) have no
   * abstract name. Per region also pending, and write bios queued (ms->writes plus delayed ones).
   */
  view(regions: number): { readonly rh: string; readonly pending: number[]; readonly queued: number[]; readonly held: number[] } {
    const pending: number[] = [];
    const queued: number[] = [];
    const held: number[] = [];
    let rh = '';
    for (let r = 0; r < regions; r++) {
      const reg = this.hash.get(r);
      rh += reg ? rhLetter(reg) : 'A';
      pending.push(reg?.pending ?? 0);
      queued.push(this.writes.filter((b) => b.region === r).length + (reg?.delayed.length ?? 0));
      held.push(this.held.filter((b) => b.region === r).length);
    }
    return { rh, pending, queued, held };
  }

  /** Held bios end with -EIO at a (non-noflush) suspend. */
  releaseHeld(): void {
    for (const bio of this.held.splice(0)) this.endIo(bio, -EIO);
  }
}

function rhLetter(reg: Region): string {
  switch (reg.state) {
    case 'CLEAN':
      return reg.list === 'clean' ? 'L' : 'C';
    case 'DIRTY':
      return 'D';
    case 'NOSYNC':
      return 'N';
    case 'RECOVERING':
      return reg.list === 'quiesced' ? 'Q' : reg.list === 'recovered' ? 'R' : reg.list === 'failed' ? 'F' : 'V';
  }
}

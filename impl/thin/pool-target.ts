// The thin-pool target: modes, out-of-space handling, metadata failure, resize, messages, status.
// Follows drivers/md/dm-thin.c (Linux 3.14.1): set_pool_mode, abort_transaction,
// metadata_operation_failed, commit, check_low_water_mark, alloc_data_block,
// should_error_unserviceable_bio, handle_unserviceable_bio, retry_bios_on_resume, process_bio,
// process_bio_read_only, process_bio_fail, process_discard, issue, process_deferred_bios,
// bind_control_target, maybe_resize_data_dev, maybe_resize_metadata_dev, pool_preresume,
// pool_resume, pool_postsuspend, pool_message, pool_status, calc_metadata_threshold,
// metadata_low_callback. Under the `fixed` profile it applies the later fixes the model names
// (#15 commit in out-of-data-space, #16/#19 no_space_timeout, #17 ENOSPC, #18 block size check,
// #23 metadata reserve and out-of-metadata-space, message refusal in read-only/fail).
//
// Bios are handled synchronously, one at a time: the worker runs to completion for each submitted
// bio (prison cells and kcopyd are outside this target's protocol; see spec/thin-pool.md).

import type { Variant } from '../../checker/model.js';
import { MetadataError } from '../persistent-data/errors.js';
import type { MetadataReopen, PoolMetadataApi } from './target/metadata-api.js';

export type PoolMode = 'write' | 'out_of_data_space' | 'out_of_metadata_space' | 'read_only' | 'fail';
export type BioOp = 'read' | 'write' | 'flush' | 'discard';
/** remap = sent to the data device, zero = zero-filled read, queued = parked on retry_on_resume_list. */
export type BioResult = 'remap' | 'zero' | 'ok' | 'queued' | 'EIO' | 'ENOSPC';

export interface Bio {
  readonly id: number;
  readonly op: BioOp;
  /** Virtual block on thin 0 (a flush addresses block 0). */
  readonly vblock: number;
  /** Completion: called exactly once with the final result (never with 'queued'). */
  readonly endio: (result: BioResult) => void;
}

export interface PoolTable {
  /** Pool length in data blocks (ti->len / sectors_per_block). */
  readonly dataBlocks: number;
  /** Metadata device size in blocks. */
  readonly metadataBlocks: number;
  readonly errorIfNoSpace: boolean;
  /** Data block size in 64 KiB units. */
  readonly blockSize: number;
  readonly lowWaterBlocks: number;
}

export type MessageErrno = 'ok' | 'EINVAL' | 'EPERM' | 'EBUSY' | 'EEXIST' | 'ENODATA' | 'ENOSPC' | 'EIO' | 'EOPNOTSUPP';

/** Metadata blocks kept back in the fixed profile so a commit always fits (abstract min(4096, total/10)). */
export const METADATA_RESERVE = 1;

export function calcMetadataThreshold(metadataBlocks: number): number {
  return Math.min(1024, Math.floor(metadataBlocks / 4));
}

function errnoOf(e: unknown): MessageErrno {
  if (e instanceof MetadataError) {
    switch (e.errno) {
      case 'EEXIST':
      case 'EBUSY':
      case 'EINVAL':
      case 'ENOSPC':
      case 'ENODATA':
      case 'EPERM':
      case 'EIO':
        return e.errno;
      default:
        return 'EIO';
    }
  }
  throw e;
}

export class PoolTarget {
  private md: PoolMetadataApi;
  private modeValue: PoolMode = 'write';
  private adjustedMode: PoolMode = 'write';
  private errorIfNoSpace: boolean;
  private requestedErrorIfNoSpace: boolean;
  private readonly blockSize: number;
  private lowWaterBlocks: number;
  private lowWaterTriggered = false;
  private retryList: Bio[] = [];
  private noSpaceTimer = false;
  /** Module parameter no_space_timeout (fixed profile): 0 or 60 seconds. */
  noSpaceTimeoutSecs: number;
  private readonly fixed: boolean;
  /** dm_table_event reasons raised since the last `takeEvents()`. */
  private events: string[] = [];
  private readonly log: string[] = [];
  /** The live table (a plain resume runs preresume on it). */
  private table: PoolTable;
  /** The last resume failed in preresume: dm_resume left the device suspended with the new table live. */
  private suspendedFlag = false;

  constructor(
    readonly variant: Variant,
    md: PoolMetadataApi,
    private readonly reopen: MetadataReopen,
    table: PoolTable,
  ) {
    this.fixed = variant.profile === 'fixed';
    this.md = md;
    this.table = table;
    this.blockSize = table.blockSize;
    this.errorIfNoSpace = this.requestedErrorIfNoSpace = this.mutant('5-default-inverted') ? !table.errorIfNoSpace : table.errorIfNoSpace;
    this.lowWaterBlocks = table.lowWaterBlocks;
    this.noSpaceTimeoutSecs = this.fixed ? 60 : 0;
    this.md.openThin(0);
    this.registerThreshold(table.metadataBlocks);
    if (this.md.needsCheck() && !this.mutant('13-write-with-needs-check')) this.modeValue = this.adjustedMode = 'read_only';
    if (this.modeValue !== 'write') this.md.setReadOnly();
  }

  private mutant(id: string): boolean {
    return this.variant.mutant === id;
  }

  get mode(): PoolMode {
    return this.modeValue;
  }
  get queued(): number {
    return this.retryList.length;
  }
  get metadata(): PoolMetadataApi {
    return this.md;
  }
  get timerArmed(): boolean {
    return this.noSpaceTimer;
  }
  get suspended(): boolean {
    return this.suspendedFlag;
  }
  takeEvents(): string[] {
    const e = this.events;
    this.events = [];
    return e;
  }
  messages(): readonly string[] {
    return this.log;
  }

  private registerThreshold(metadataBlocks: number): void {
    const thr = this.mutant('6-max-threshold') ? Math.max(1024, Math.floor(metadataBlocks / 4)) : calcMetadataThreshold(metadataBlocks);
    // The level-triggered mutant lives in the space map's check_threshold (test hook of the abstract metadata).
    if (this.mutant('6-level')) (this.md as { levelTriggeredThreshold?: boolean }).levelTriggeredThreshold = true;
    this.md.registerMetadataThreshold(thr, () => {
      // metadata_low_callback; mutants change the edge into a level or drop it.
      if (!this.mutant('6-never')) this.events.push('md-threshold');
    });
    this.thresholdValue = thr;
  }
  private thresholdValue = 0;

  // ---------------------------------------------------------------- modes

  private setPoolMode(requested: PoolMode): void {
    const old = this.modeValue;
    let m = requested;
    if (m === 'write' && this.md.needsCheck() && !this.mutant('13-write-with-needs-check')) {
      this.log.push('unable to switch pool to write mode until repaired.');
      m = old !== 'write' ? old : 'read_only';
    }
    if (old === 'fail') m = 'fail';
    if (m !== old) {
      this.events.push(`mode:${m}`);
      this.log.push(`switching pool to ${m} mode`);
    }
    this.modeValue = m;
    switch (m) {
      case 'fail':
      case 'read_only':
        this.md.setReadOnly();
        this.errorRetryList('EIO');
        break;
      case 'out_of_data_space':
        if (this.fixed && old !== m && !this.errorIfNoSpace && (this.noSpaceTimeoutSecs > 0 || this.mutant('16-zero-not-disable'))) this.noSpaceTimer = true;
        break;
      case 'out_of_metadata_space':
        this.errorRetryList('EIO');
        break;
      case 'write':
        this.md.setReadWrite();
        if (this.fixed) this.errorIfNoSpace = this.requestedErrorIfNoSpace;
        break;
    }
    if (m !== 'out_of_data_space' && !this.mutant('16-timer-not-cancelled')) this.noSpaceTimer = false;
    // Keep adjusted_pf.mode in sync so a plain resume re-binds the same mode.
    if (!this.mutant('4-no-mode-sync')) this.adjustedMode = m;
  }

  private errorRetryList(code: BioResult): void {
    const bios = this.retryList;
    this.retryList = [];
    for (const b of bios) b.endio(code);
  }

  private abortTransaction(): void {
    this.log.push('aborting current metadata transaction');
    try {
      this.md.abort();
    } catch {
      this.log.push('failed to abort metadata transaction');
      this.setPoolMode('fail');
    }
    try {
      if (this.mutant('13-not-persisted')) (this.md as { needsCheckNotPersisted?: boolean }).needsCheckNotPersisted = true;
      this.md.setNeedsCheck();
    } catch {
      this.log.push("failed to set 'needs_check' flag in metadata");
      this.setPoolMode('fail');
    }
  }

  private metadataOperationFailed(op: string, r: MessageErrno): void {
    this.log.push(`metadata operation '${op}' failed: error = -${r}`);
    this.abortTransaction();
    this.setPoolMode('read_only');
  }

  private commitAllowed(): boolean {
    return this.modeValue === 'write' || (this.fixed && this.modeValue === 'out_of_data_space');
  }

  /** commit(): refused unless the mode allows it; a failure degrades the pool. */
  private commit(): MessageErrno {
    if (!this.commitAllowed()) return 'EINVAL';
    try {
      this.md.commit();
    } catch (e) {
      const r = errnoOf(e);
      this.metadataOperationFailed('dm_pool_commit_metadata', r);
      return r;
    }
    if (this.fixed) {
      if (this.modeValue === 'out_of_data_space' && this.md.freeDataBlocks() > 0) {
        this.setPoolMode('write');
        this.requeueBios();
      }
      if (!this.mutant('23-no-metadata-reserve') && this.md.freeMetadataBlocks() - METADATA_RESERVE <= 0) this.setPoolMode('out_of_metadata_space');
    }
    return 'ok';
  }

  /** fixed: commit early when the reported metadata free count cannot cover `need` blocks. */
  private ensureMetadataSpace(need: number): boolean {
    if (!this.fixed || this.mutant('23-no-metadata-reserve')) return true;
    if (this.md.freeMetadataBlocks() - METADATA_RESERVE >= need) return true;
    if (this.commit() !== 'ok') return false;
    if (this.md.freeMetadataBlocks() - METADATA_RESERVE >= need) return true;
    this.setPoolMode('out_of_metadata_space');
    return false;
  }

  // ---------------------------------------------------------------- data allocation

  private checkLowWaterMark(free: number): void {
    if (free <= this.lowWaterBlocks && !this.lowWaterTriggered) {
      this.lowWaterTriggered = true;
      this.log.push('reached low water mark for data device: sending event.');
      this.events.push('low-water');
    }
  }

  /** alloc_data_block: the block, or an errno. */
  private allocDataBlock(): { r: MessageErrno; block: number } {
    if (this.modeValue !== 'write') return { r: 'EINVAL', block: -1 };
    let free = this.md.freeDataBlocks();
    this.checkLowWaterMark(free);
    if (free === 0) {
      const r = this.commit();
      if (r !== 'ok') return { r, block: -1 };
      free = this.md.freeDataBlocks();
      if (free === 0) {
        if (this.mutant('14-oods-aborts')) {
          this.abortTransaction();
          this.setPoolMode('read_only');
        } else this.setPoolMode('out_of_data_space');
        return { r: 'ENOSPC', block: -1 };
      }
    }
    if (!this.ensureMetadataSpace(2)) return { r: (this.modeValue as PoolMode) === 'out_of_metadata_space' ? 'ENOSPC' : 'EIO', block: -1 };
    try {
      return { r: 'ok', block: this.md.allocDataBlock() };
    } catch (e) {
      const r = errnoOf(e);
      if (!this.mutant('3-alloc-no-escalate')) this.metadataOperationFailed('dm_pool_alloc_data_block', r);
      return { r, block: -1 };
    }
  }

  // ---------------------------------------------------------------- bios

  private unserviceableResult(): BioResult {
    if (this.modeValue === 'out_of_data_space') {
      let err = this.errorIfNoSpace;
      if (this.mutant('2-unserviceable-eio')) err = true;
      if (this.mutant('5-eins-ignored')) err = false;
      if (!err) return 'queued';
      return this.fixed ? 'ENOSPC' : 'EIO';
    }
    return 'EIO';
  }

  private finish(bio: Bio, r: BioResult): void {
    if (r === 'queued') this.retryList.push(bio);
    else bio.endio(r);
  }

  /** issue() for a remapped flush plus the worker's deferred-flush commit. */
  private issueFlush(): BioResult {
    if (!this.md.changedThisTransaction(0)) return 'ok';
    if (this.md.abortedWithChanges(0)) return 'EIO';
    return this.commit() === 'ok' ? 'ok' : 'EIO';
  }

  /** Provision (or break sharing of) a block: allocate, then insert the mapping. */
  private provision(vblock: number): BioResult {
    const a = this.allocDataBlock();
    if (a.r === 'ENOSPC') return this.unserviceableResult();
    if (a.r !== 'ok') return 'EIO';
    try {
      if (!this.ensureMetadataSpace(1)) throw new MetadataError('ENOSPC', 'metadata reserve reached');
      this.md.insertMapping(0, vblock, a.block);
    } catch (e) {
      const r = errnoOf(e);
      if (!this.mutant('3-alloc-no-escalate')) this.metadataOperationFailed('dm_thin_insert_block', r);
      return 'EIO';
    }
    return 'remap';
  }

  private processBio(bio: Bio): void {
    if (this.modeValue === 'fail') return this.finish(bio, 'EIO');
    const writeMode = this.modeValue === 'write';
    let look;
    try {
      look = this.md.lookup(0, bio.vblock);
    } catch {
      return this.finish(bio, 'EIO');
    }
    switch (bio.op) {
      case 'read':
        return this.finish(bio, look ? 'remap' : 'zero');
      case 'discard':
        if (look && writeMode && this.ensureMetadataSpace(1)) {
          try {
            this.md.removeMapping(0, bio.vblock);
          } catch (e) {
            this.log.push(`dm_thin_remove_block() failed: -${errnoOf(e)}`);
          }
        }
        return this.finish(bio, 'ok');
      case 'flush':
        if (!look && !writeMode) return this.finish(bio, this.unserviceableResult());
        return this.finish(bio, this.issueFlush());
      case 'write':
        if (look && !look.shared) return this.finish(bio, 'remap');
        if (!writeMode) return this.finish(bio, this.unserviceableResult());
        return this.finish(bio, this.provision(bio.vblock));
    }
  }

  /** A bio from thin 0 enters the pool (thin_bio_map + the worker, run to completion). */
  submit(bio: Bio): void {
    this.processBio(bio);
  }

  private requeueBios(): void {
    const bios = this.retryList;
    this.retryList = [];
    for (const b of bios) this.processBio(b);
  }

  // ---------------------------------------------------------------- messages, status, lifecycle

  message(argv: readonly string[]): MessageErrno {
    if (this.fixed && (this.modeValue === 'read_only' || this.modeValue === 'fail' || this.modeValue === 'out_of_metadata_space')) {
      this.log.push('unable to service pool target messages in READ_ONLY or FAIL mode');
      return 'EOPNOTSUPP';
    }
    if (this.md.isFailed()) return 'EINVAL';
    const id = Number(argv[1]);
    let r: MessageErrno = 'ok';
    try {
      switch (argv[0]) {
        case 'create_thin':
          if (argv.length !== 2) return 'EINVAL';
          if (this.md.devices().includes(id)) return 'EEXIST';
          if (!this.ensureMetadataSpace(1)) return 'ENOSPC';
          this.md.createThin(id);
          break;
        case 'create_snap':
          if (argv.length !== 3) return 'EINVAL';
          if (this.md.devices().includes(id)) return 'EEXIST';
          if (!this.md.devices().includes(Number(argv[2]))) return 'ENODATA';
          if (!this.ensureMetadataSpace(1)) return 'ENOSPC';
          this.md.createSnap(id, Number(argv[2]));
          break;
        case 'delete':
          if (argv.length !== 2) return 'EINVAL';
          if (!this.md.devices().includes(id)) return 'ENODATA';
          if (id === 0) return 'EBUSY';
          if (!this.ensureMetadataSpace(1)) return 'ENOSPC';
          this.md.deleteThin(id);
          break;
        default:
          this.log.push(`Unrecognised thin pool target message received: ${argv[0] ?? ''}`);
          return 'EINVAL';
      }
    } catch (e) {
      r = errnoOf(e);
    }
    if (r === 'ok') this.commit();
    return r;
  }

  /** The worker's periodic commit (COMMIT_PERIOD) when something changed. */
  tick(): void {
    // pool_postsuspend cancelled the waker; only pool_resume queues it again.
    if (this.suspendedFlag) return;
    if (this.md.changedThisTransaction() && this.commitAllowed()) this.commit();
  }

  /** pool_status INFO (commits first, as 3.14 does when not suspended). */
  status(): string {
    if (this.modeValue === 'fail') return 'Fail';
    if (!this.suspendedFlag) this.commit(); // no commit while dm_suspended(ti)
    return this.statusLine();
  }

  /** The INFO line without side effects. */
  statusLine(): string {
    if (this.modeValue === 'fail') return 'Fail';
    const mdTotal = this.md.metadataDevSize();
    const dataTotal = this.md.dataDevSize();
    const words = [
      '0',
      `${mdTotal - this.md.freeMetadataBlocks()}/${mdTotal}`,
      `${dataTotal - this.md.freeDataBlocks()}/${dataTotal}`,
      '-',
      this.modeValue === 'write' ? 'rw' : this.modeValue === 'out_of_data_space' ? 'out_of_data_space' : 'ro',
      'discard_passdown',
      this.errorIfNoSpace ? 'error_if_no_space' : 'queue_if_no_space',
    ];
    if (this.fixed) words.push(this.md.needsCheck() ? 'needs_check' : '-');
    return words.join(' ');
  }

  private preresume(table: PoolTable): MessageErrno {
    let needCommit = false;
    if (this.md.isFailed()) {
      this.log.push('failed to retrieve data device size');
      return 'EINVAL';
    }
    const sbData = this.md.dataDevSize();
    if (table.dataBlocks < sbData) {
      this.log.push(`pool target (${table.dataBlocks} blocks) too small: expected ${sbData}`);
      return 'EINVAL';
    }
    if (table.dataBlocks > sbData) {
      if (this.md.needsCheck() && !this.mutant('13-resize-with-needs-check')) {
        this.log.push('unable to grow the data device until repaired.');
      } else {
        try {
          this.md.resizeDataDevice(table.dataBlocks);
          needCommit = true;
        } catch (e) {
          const r = errnoOf(e);
          this.metadataOperationFailed('dm_pool_resize_data_dev', r);
          return r;
        }
      }
    }
    const sbMd = this.md.metadataDevSize();
    if (table.metadataBlocks < sbMd) {
      this.log.push(`metadata device (${table.metadataBlocks} blocks) too small: expected ${sbMd}`);
      return 'EINVAL';
    }
    if (table.metadataBlocks > sbMd) {
      if (this.md.needsCheck() && !this.mutant('13-resize-with-needs-check')) {
        this.log.push('unable to grow the metadata device until repaired.');
      } else {
        try {
          this.md.resizeMetadataDevice(table.metadataBlocks);
          needCommit = true;
        } catch (e) {
          const r = errnoOf(e);
          this.metadataOperationFailed('dm_pool_resize_metadata_dev', r);
          return r;
        }
      }
    }
    if (needCommit) this.commit();
    return 'ok';
  }

  private poolResume(): void {
    this.lowWaterTriggered = false;
    this.requeueBios();
  }

  /** dm_resume: pool_resume only after a successful preresume; otherwise the device stays suspended. */
  private endResume(r: MessageErrno): MessageErrno {
    this.suspendedFlag = r !== 'ok';
    if (r === 'ok') this.poolResume();
    return r;
  }

  /** Plain suspend + resume with the same table. */
  suspendResume(): MessageErrno {
    if (!this.suspendedFlag) this.commit(); // pool_postsuspend (do_resume only suspends a running device)
    this.setPoolMode(this.mutant('4-no-mode-sync') ? 'write' : this.adjustedMode);
    return this.endResume(this.preresume(this.table));
  }

  /** Suspend, load a new table, resume (pool_ctr on the existing pool object, then preresume/resume). */
  reload(table: PoolTable): MessageErrno {
    if (table.blockSize !== this.blockSize && !this.mutant('18-accept-block-size')) {
      if (this.fixed) {
        this.log.push('changing the data block size is not supported');
        return 'EINVAL';
      }
      // 3.14: the pool object is reused and the new block size silently ignored.
    }
    // pool_ctr (table load) registers the new threshold before the old table's postsuspend commit.
    this.registerThreshold(table.metadataBlocks);
    if (!this.suspendedFlag) this.commit(); // pool_postsuspend
    this.table = table; // dm_swap_table: live whether or not the preresume below succeeds
    this.requestedErrorIfNoSpace = this.mutant('5-default-inverted') ? !table.errorIfNoSpace : table.errorIfNoSpace;
    const degraded = this.modeValue !== 'write';
    const bindTo: PoolMode = this.mutant('1-no-rw-on-reload') && degraded ? this.modeValue : 'write';
    this.errorIfNoSpace = this.requestedErrorIfNoSpace;
    this.lowWaterBlocks = table.lowWaterBlocks;
    this.setPoolMode(bindTo);
    return this.endResume(this.preresume(table));
  }

  /** Remove the pool and create it again from its metadata (thins closed, nothing queued). */
  reactivate(clearNeedsCheck: boolean): void {
    if (this.retryList.length) throw new Error('reactivate: bios are still queued on the pool; resume it with more space or error them first');
    this.md.close();
    this.md = this.reopen(clearNeedsCheck);
    this.md.openThin(0);
    const mdBlocks = this.md.metadataDevSize();
    // A fresh pool device whose table matches the metadata.
    this.table = { ...this.table, dataBlocks: this.md.dataDevSize(), metadataBlocks: mdBlocks };
    this.suspendedFlag = false;
    this.registerThreshold(mdBlocks);
    const before = this.modeValue;
    this.modeValue = 'write';
    this.md.setReadWrite();
    if (before !== 'write') this.events.push('mode:write');
    this.lowWaterTriggered = false;
    this.noSpaceTimer = false;
    this.errorIfNoSpace = this.requestedErrorIfNoSpace;
    if (this.md.needsCheck() && !this.mutant('13-write-with-needs-check')) {
      this.modeValue = 'read_only';
      this.md.setReadOnly();
      this.events.push('mode:read_only');
    }
    this.adjustedMode = this.modeValue;
  }

  /** no_space_timeout expiry (fixed profile). */
  noSpaceTimeout(): void {
    if (!this.noSpaceTimer) throw new Error('no_space_timeout is not armed');
    this.noSpaceTimer = false;
    if (this.mutant('19-timeout-sets-ro')) {
      this.setPoolMode('read_only');
      return;
    }
    this.errorIfNoSpace = true;
    this.events.push('mode:out_of_data_space');
    this.errorRetryList('ENOSPC');
  }

  get threshold(): number {
    return this.thresholdValue;
  }
}

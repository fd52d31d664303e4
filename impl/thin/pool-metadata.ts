// Pool metadata of dm-thin: follows drivers/md/dm-thin-metadata.c (Linux 3.14):
// dm_pool_metadata_open/close (__create_persistent_data_objects, __format_metadata,
// __open_metadata, __begin_transaction), dm_pool_create_thin/create_snap/delete_thin_device,
// dm_thin_find_block, dm_thin_insert_block, dm_thin_remove_block, dm_pool_alloc_data_block,
// dm_pool_inc/dec_data_range, dm_pool_set/get_metadata_transaction_id,
// dm_pool_reserve/release_metadata_snap (__reserve_metadata_snap, __release_metadata_snap),
// dm_pool_commit_metadata (__commit_transaction), dm_pool_abort_metadata,
// dm_pool_resize_data_dev, dm_pool_resize_metadata_dev, dm_pool_get_free_block_count,
// dm_pool_get_free_metadata_block_count, dm_pool_metadata_set/needs_check.
//
// Later fixes are switched on by the 'fixed' profile (ThinBehaviour in ./mutants.ts), among them
// the held-root fix the conformance kernel (Debian 6.1.192) carries: stable 3dc9ae10 "dm thin
// metadata: fix metadata snapshot consistency on commit failure" keeps pmd->held_root in core and
// has __commit_transaction write it (confirmed on that kernel's dm-thin-pool.ko and its
// dm-log-writes log: no superblock write ever shares an epoch with other blocks).
//
// Everything is synchronous and byte-exact with the kernel's on-disk format (see impl/thin/format).

import type { Json, Variant } from '../../checker/model.js';
import type { BlockDevice } from '../block-device.js';
import { BlockManager } from '../persistent-data/block-manager.js';
import { MetadataError, type Errno } from '../persistent-data/errors.js';
import { getU64, putU32, putU64, type BtreeInfo, type ValueType } from '../persistent-data/btree-internal.js';
import { btreeDel, btreeEmpty, btreeForEach, btreeInsert, btreeLookup } from '../persistent-data/btree.js';
import { btreeRemove } from '../persistent-data/btree-remove.js';
import { DiskSpaceMap } from '../persistent-data/space-map-disk.js';
import { MetadataSpaceMap } from '../persistent-data/space-map-metadata.js';
import { SM_ROOT_SIZE } from '../persistent-data/space-map-common.js';
import { TransactionManager } from '../persistent-data/transaction-manager.js';
import {
  SB,
  THIN_METADATA_BLOCK_SIZE,
  THIN_METADATA_MAX_SECTORS,
  THIN_METADATA_NEEDS_CHECK_FLAG,
  THIN_SUPERBLOCK_LOCATION,
  THIN_SUPERBLOCK_MAGIC,
  THIN_VERSION,
  decodeDetails,
  decodeSuperblock,
  encodeDetails,
  packBlockTime,
  superblockValidator,
  unpackBlockTime,
  type DeviceDetails,
} from './format/superblock.js';
import { behaviourOf, checkVariant, type ThinBehaviour } from './mutants.js';

export { MetadataError, type Errno };

export const THIN_MAX_DEV_ID = (1 << 24) - 1;

export interface FormatOptions {
  readonly variant: Variant;
  /** Data block size in 512-byte sectors (128..2097152, multiple of 128). */
  readonly dataBlockSize: number;
  /** Number of data blocks in the pool. */
  readonly nrDataBlocks: number;
}

export interface OpenOptions {
  readonly variant: Variant;
  /** When given, must equal the superblock's data_block_size (else -EINVAL, as the kernel). */
  readonly dataBlockSize?: number;
  /** Data device size in blocks; if larger than the superblock says, nothing happens until resize. */
  readonly nrDataBlocks?: number;
}

export interface LookupResult {
  readonly dataBlock: number;
  readonly time: number;
  /** dm_thin_find_block's `shared`: the device's snapshotted_time is later than the mapping's time. */
  readonly shared: boolean;
}

export interface DeviceSummary {
  readonly id: number;
  readonly mappedBlocks: number;
  readonly transactionId: number;
  readonly creationTime: number;
  readonly snapshottedTime: number;
  /** Sorted [vblock, dataBlock, time] triples. */
  readonly mappings: readonly (readonly [number, number, number])[];
}

/** Observable state as plain JSON (what dump/lockstep compare). */
export interface PoolSummary {
  readonly transactionId: number;
  readonly time: number;
  readonly heldRoot: number;
  readonly needsCheck: boolean;
  readonly dataBlockSize: number;
  readonly nrDataBlocks: number;
  readonly freeDataBlocks: number;
  readonly nrMetadataBlocks: number;
  readonly freeMetadataBlocks: number;
  readonly devices: readonly DeviceSummary[];
}

export function summaryToJson(s: PoolSummary): Json {
  return s as unknown as Json;
}

/** An in-core thin device (struct dm_thin_device). */
interface ThinDevice {
  id: number;
  openCount: number;
  changed: boolean;
  abortedWithChanges: boolean;
  details: DeviceDetails;
}

const u64 = (v: number): Uint8Array => {
  const b = new Uint8Array(8);
  putU64(b, 0, v);
  return b;
};

function validDataBlockSize(s: number): boolean {
  return Number.isInteger(s) && s >= 128 && s <= 2097152 && s % 128 === 0;
}

/**
 * In-core handle on a pool's metadata device (the kernel's struct dm_pool_metadata). Every mutator
 * works on the open transaction; `commit` makes it durable with the kernel's write order; `abort`
 * drops it and reopens from the last commit.
 */
export class PoolMetadata {
  readonly variant: Variant;
  readonly behaviour: ThinBehaviour;
  private bm!: BlockManager;
  private tm!: TransactionManager;
  private metadataSm!: MetadataSpaceMap;
  private dataSm!: DiskSpaceMap;
  private info!: BtreeInfo; // 2 levels: dev → vblock → block/time
  private tlInfo!: BtreeInfo; // top level: dev → sub-tree root
  private blInfo!: BtreeInfo; // bottom level: vblock → block/time
  private detailsInfo!: BtreeInfo;
  private root = 0;
  /** pmd->held_root (the CVE-2026-72108 fix keeps it in core until __commit_transaction). */
  private heldRootValue = 0;
  private detailsRoot = 0;
  private timeValue = 0;
  private transId = 0;
  private flags = 0;
  private dataBlockSizeValue = 0;
  private readOnly = false;
  private failIo = false;
  private closed = false;
  private tds = new Map<number, ThinDevice>();

  private constructor(readonly dev: BlockDevice, variant: Variant) {
    checkVariant(variant);
    this.variant = variant;
    this.behaviour = behaviourOf(variant);
  }

  /**
   * Write a fresh, committed, empty pool onto `dev`: dm_pool_metadata_open on a zeroed superblock
   * (__format_metadata makes the data space map with 0 blocks), then what pool_preresume does next
   * (maybe_resize_data_dev: dm_pool_resize_data_dev and a commit). So the metadata device sees the
   * kernel's two commits, the format and the data-space-map resize, as in every golden log.
   */
  static format(dev: BlockDevice, opts: FormatOptions): PoolMetadata {
    if (!validDataBlockSize(opts.dataBlockSize)) {
      throw new MetadataError('EINVAL', `data block size ${opts.dataBlockSize} sectors is invalid: use a multiple of 128 between 128 and 2097152`);
    }
    if (!Number.isInteger(opts.nrDataBlocks) || opts.nrDataBlocks < 0) throw new MetadataError('EINVAL', `nrDataBlocks ${opts.nrDataBlocks} must be a whole number`);
    const pmd = new PoolMetadata(dev, opts.variant);
    pmd.dataBlockSizeValue = opts.dataBlockSize;
    pmd.formatMetadata();
    if (opts.nrDataBlocks > 0) {
      pmd.resizeDataDevice(opts.nrDataBlocks);
      pmd.commit();
    }
    return pmd;
  }

  /** Open existing metadata (kernel- or thin_restore-written). -EINVAL/-EILSEQ on a bad superblock. */
  static open(dev: BlockDevice, opts: OpenOptions): PoolMetadata {
    const pmd = new PoolMetadata(dev, opts.variant);
    pmd.createPersistentDataObjects(false);
    pmd.beginTransaction();
    if (opts.dataBlockSize !== undefined && opts.dataBlockSize !== pmd.dataBlockSizeValue) {
      throw new MetadataError('EINVAL', `data block size ${opts.dataBlockSize} does not match the ${pmd.dataBlockSizeValue} sectors the metadata was formatted with`);
    }
    return pmd;
  }

  /** Open if block 0 holds a superblock, else format (what pool_ctr does). */
  static openOrFormat(dev: BlockDevice, opts: FormatOptions): PoolMetadata {
    const b0 = dev.read(THIN_SUPERBLOCK_LOCATION);
    if (b0.every((x) => x === 0)) return PoolMetadata.format(dev, opts);
    return PoolMetadata.open(dev, { variant: opts.variant, dataBlockSize: opts.dataBlockSize });
  }

  // ---- setup (__create_persistent_data_objects, __format_metadata, __open_metadata) ----

  private setupBtreeDetails(): void {
    const tm = this.tm;
    const dataSm = (): DiskSpaceMap => this.dataSm;
    const dataVt: ValueType = {
      size: 8,
      inc: (v) => dataSm().incBlock(unpackBlockTime(v).block),
      dec: (v) => dataSm().decBlock(unpackBlockTime(v).block),
      equal: (a, b) => unpackBlockTime(a).block === unpackBlockTime(b).block,
    };
    const up = this.behaviour.upperLevelInc;
    const rb = this.behaviour.rebalance;
    this.info = { tm, levels: 2, vt: dataVt, upperLevelInc: up, rebalance: rb };
    this.blInfo = { tm, levels: 1, vt: dataVt, upperLevelInc: up, rebalance: rb };
    const bl = this.blInfo;
    this.tlInfo = {
      tm,
      levels: 1,
      vt: {
        size: 8,
        inc: (v) => tm.inc(getU64(v, 0)),
        dec: (v) => btreeDel(bl, getU64(v, 0)),
        equal: (a, b) => getU64(a, 0) === getU64(b, 0),
      },
      upperLevelInc: up,
      rebalance: rb,
    };
    this.detailsInfo = { tm, levels: 1, vt: { size: 24 }, upperLevelInc: up, rebalance: rb };
  }

  private formatMetadata(): void {
    this.bm = new BlockManager(this.dev);
    this.tm = new TransactionManager(this.bm);
    this.metadataSm = MetadataSpaceMap.create(this.tm, this.dev.nrBlocks, THIN_SUPERBLOCK_LOCATION, this.behaviour.sm);
    this.dataSm = DiskSpaceMap.create(this.tm, 0, this.behaviour.sm);
    this.setupBtreeDetails();
    this.root = btreeEmpty(this.info);
    this.detailsRoot = btreeEmpty(this.detailsInfo);
    // __write_initial_superblock
    this.dataSm.commit();
    this.tm.preCommit();
    const sb = this.bm.writeLockZero(THIN_SUPERBLOCK_LOCATION, superblockValidator, true);
    putU64(sb, SB.magic, THIN_SUPERBLOCK_MAGIC);
    putU32(sb, SB.version, THIN_VERSION);
    sb.set(this.metadataSm.copyRoot(), SB.metadataSmRoot);
    sb.set(this.dataSm.copyRoot(), SB.dataSmRoot);
    putU64(sb, SB.dataMappingRoot, this.root);
    putU64(sb, SB.deviceDetailsRoot, this.detailsRoot);
    putU32(sb, SB.metadataBlockSize, THIN_METADATA_BLOCK_SIZE);
    const sectors = Math.min(this.dev.nrBlocks * 8, THIN_METADATA_MAX_SECTORS);
    putU64(sb, SB.metadataNrBlocks, Math.floor(sectors / 8));
    putU32(sb, SB.dataBlockSize, this.dataBlockSizeValue);
    // dm_tm_commit: everything else is written and flushed before the superblock.
    this.tm.wipeShadows();
    this.bm.flushAndUnlock(THIN_SUPERBLOCK_LOCATION);
  }

  private ioGuard(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof MetadataError) throw e;
      if (e instanceof Error && e.name === 'IoError') throw new MetadataError('EIO', e.message);
      throw e;
    }
  }

  private createPersistentDataObjects(format: boolean): void {
    this.bm = new BlockManager(this.dev);
    this.tm = new TransactionManager(this.bm);
    if (format) throw new MetadataError('EINVAL', 'internal: format goes through formatMetadata');
    const b0 = this.ioRead(THIN_SUPERBLOCK_LOCATION);
    if (b0.every((x) => x === 0)) throw new MetadataError('EPERM', 'the metadata device is unformatted (block 0 is all zeroes)');
    const d = this.bm.readLock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
    const sb = decodeSuperblock(d);
    if (sb.incompatFlags) throw new MetadataError('EINVAL', `could not access metadata due to unsupported optional features (${sb.incompatFlags.toString(16)})`);
    if (sb.compatRoFlags) throw new MetadataError('EINVAL', `could not access metadata RDWR due to unsupported optional features (${sb.compatRoFlags.toString(16)})`);
    this.metadataSm = MetadataSpaceMap.open(this.tm, sb.metadataSmRoot, this.behaviour.sm);
    this.dataSm = DiskSpaceMap.open(this.tm, sb.dataSmRoot, this.behaviour.sm);
    this.setupBtreeDetails();
  }

  private ioRead(b: number): Uint8Array {
    try {
      return this.dev.read(b);
    } catch (e) {
      if (e instanceof Error && e.name === 'IoError') throw new MetadataError('EIO', e.message);
      throw e;
    }
  }

  /** __begin_transaction: load the in-core roots from the superblock. */
  private beginTransaction(): void {
    const sb = decodeSuperblock(this.bm.readLock(THIN_SUPERBLOCK_LOCATION, superblockValidator));
    this.timeValue = sb.time;
    this.root = sb.dataMappingRoot;
    this.detailsRoot = sb.deviceDetailsRoot;
    this.transId = sb.transId;
    this.heldRootValue = sb.heldRoot;
    this.flags = sb.flags;
    this.dataBlockSizeValue = sb.dataBlockSize;
  }

  private guard(): void {
    if (this.closed) throw new MetadataError('EINVAL', 'pool metadata is closed');
    if (this.failIo) throw new MetadataError('EINVAL', 'pool metadata failed (fail_io): every operation is refused');
  }

  /** dm_pool_metadata_close: -EBUSY if a thin device is open; commits unless read-only or failed. */
  close(): void {
    if (this.closed) return;
    let open = 0;
    for (const [id, td] of this.tds) {
      if (td.openCount) open++;
      else if (!td.changed) this.tds.delete(id);
    }
    if (open) throw new MetadataError('EBUSY', `attempt to close pool metadata with ${open} open thin device(s)`);
    if (!this.readOnly && !this.failIo) {
      try {
        this.commitTransaction();
      } catch {
        // The kernel only warns when the final commit fails.
      }
    }
    if (!this.failIo) this.destroyPersistentDataObjects();
    this.closed = true;
  }

  /** Teardown: bufio writes back every dirty buffer (no flush), then drops the cache. */
  private destroyPersistentDataObjects(): void {
    try {
      if (!this.bm.isReadOnly()) this.bm.writeDirty(null);
    } catch {
      // Write-back errors at teardown are lost, as in dm-bufio.
    }
    this.bm.dropCache();
  }

  // ---- thin devices ----

  private lookupDetails(dev: number): DeviceDetails | null {
    const v = btreeLookup(this.detailsInfo, this.detailsRoot, [dev]);
    return v ? decodeDetails(v) : null;
  }

  /** __open_device. */
  private openDevice(dev: number, create: boolean): ThinDevice {
    const td = this.tds.get(dev);
    if (td) {
      if (create) throw new MetadataError('EEXIST', `thin device ${dev} already exists`);
      td.openCount++;
      return td;
    }
    let details = this.lookupDetails(dev);
    let changed = false;
    if (!details) {
      if (!create) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
      changed = true;
      details = { mappedBlocks: 0, transactionId: this.transId, creationTime: this.timeValue, snapshottedTime: this.timeValue };
    }
    const n: ThinDevice = { id: dev, openCount: 1, changed, abortedWithChanges: false, details };
    this.tds.set(dev, n);
    return n;
  }

  private closeDevice(td: ThinDevice): void {
    td.openCount--;
  }

  private checkDevId(dev: number): void {
    if (!Number.isInteger(dev) || dev < 0 || dev > THIN_MAX_DEV_ID) {
      throw new MetadataError('EINVAL', `thin device id ${dev} is out of range 0..${THIN_MAX_DEV_ID}`);
    }
  }

  /** dm_pool_create_thin: -EEXIST if the id is in use; -EINVAL if above MAX_DEV_ID. */
  createThin(dev: number): void {
    this.guard();
    this.checkDevId(dev);
    if (this.lookupDetails(dev)) throw new MetadataError('EEXIST', `thin device ${dev} already exists`);
    const devRoot = btreeEmpty(this.blInfo);
    this.root = btreeInsert(this.tlInfo, this.root, [dev], u64(devRoot)).root;
    let td: ThinDevice;
    try {
      td = this.openDevice(dev, true);
    } catch (e) {
      // 3.14 removes the top-level entry it just inserted (which may be an existing device's: see
      // dm-thin.md Corrections 10) and frees the new root.
      const r = btreeRemove(this.tlInfo, this.root, [dev]);
      this.root = r.root;
      btreeDel(this.blInfo, devRoot);
      throw e;
    }
    this.closeDevice(td);
  }

  /** dm_pool_create_snap: shares the origin's mapping root; time++; -EEXIST, -ENODATA. */
  createSnap(dev: number, origin: number): void {
    this.guard();
    this.checkDevId(dev);
    if (this.lookupDetails(dev)) throw new MetadataError('EEXIST', `thin device ${dev} already exists`);
    const v = btreeLookup(this.tlInfo, this.root, [origin]);
    if (!v) throw new MetadataError('ENODATA', `origin thin device ${origin} does not exist`);
    const originRoot = getU64(v, 0);
    this.tm.inc(originRoot);
    this.root = btreeInsert(this.tlInfo, this.root, [dev], u64(originRoot)).root;
    this.timeValue++;
    try {
      const td = this.openDevice(dev, true);
      try {
        const o = this.openDevice(origin, false);
        o.changed = true;
        o.details.snapshottedTime = this.timeValue;
        td.details.mappedBlocks = o.details.mappedBlocks;
        td.details.snapshottedTime = this.timeValue;
        this.closeDevice(o);
      } finally {
        this.closeDevice(td);
      }
    } catch (e) {
      this.root = btreeRemove(this.tlInfo, this.root, [dev]).root;
      this.detailsRoot = btreeRemove(this.detailsInfo, this.detailsRoot, [dev]).root;
      throw e;
    }
  }

  /** dm_pool_delete_thin_device: -ENODATA if absent, -EBUSY if open; deep-deletes its mappings. */
  deleteThin(dev: number): void {
    this.guard();
    const td = this.openDevice(dev, false);
    if (td.openCount > 1) {
      this.closeDevice(td);
      throw new MetadataError('EBUSY', `thin device ${dev} is open`);
    }
    this.tds.delete(dev);
    const r1 = btreeRemove(this.detailsInfo, this.detailsRoot, [dev]);
    this.detailsRoot = r1.root;
    if (!r1.found) throw new MetadataError('ENODATA', `thin device ${dev} has no details entry`);
    const r2 = btreeRemove(this.tlInfo, this.root, [dev]);
    this.root = r2.root;
    if (!r2.found) throw new MetadataError('ENODATA', `thin device ${dev} has no mapping tree`);
  }

  /** dm_pool_open_thin_device (an active thin target); -ENODATA if absent. */
  openThin(dev: number): void {
    this.guard();
    this.openDevice(dev, false);
  }

  closeThin(dev: number): void {
    const td = this.tds.get(dev);
    if (!td || td.openCount <= 0) throw new MetadataError('EINVAL', `thin device ${dev} is not open`);
    this.closeDevice(td);
  }

  /** Ids in the open transaction, ascending. */
  devices(): number[] {
    this.guard();
    const ids: number[] = [];
    btreeForEach(this.tlInfo, this.root, (k) => ids.push(k));
    return ids;
  }

  private details(dev: number): DeviceDetails | null {
    return this.tds.get(dev)?.details ?? this.lookupDetails(dev);
  }

  // ---- mappings ----

  /** dm_thin_find_block: null when unmapped (-ENODATA in the kernel). */
  lookup(dev: number, vblock: number): LookupResult | null {
    this.guard();
    const d = this.details(dev);
    if (!d) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    const v = btreeLookup(this.info, this.root, [dev, vblock]);
    if (!v) return null;
    const { block, time } = unpackBlockTime(v);
    return { dataBlock: block, time, shared: d.snapshottedTime > time };
  }

  /**
   * dm_thin_insert_block: map vblock → dataBlock stamped with the current time. The caller must
   * already hold a reference on dataBlock (allocDataBlock); an overwritten mapping's old block is
   * decremented (breaking sharing is alloc + insert).
   */
  insertMapping(dev: number, vblock: number, dataBlock: number): void {
    this.guard();
    const td = this.openDevice(dev, false);
    try {
      const r = btreeInsert(this.info, this.root, [dev, vblock], packBlockTime(dataBlock, this.timeValue));
      this.root = r.root;
      td.changed = true;
      if (r.inserted) td.details.mappedBlocks++;
    } finally {
      this.closeDevice(td);
    }
  }

  /** dm_thin_remove_block: -ENODATA when unmapped; drops the data block's reference. */
  removeMapping(dev: number, vblock: number): void {
    this.guard();
    const td = this.openDevice(dev, false);
    try {
      const r = btreeRemove(this.info, this.root, [dev, vblock]);
      this.root = r.root;
      if (!r.found) throw new MetadataError('ENODATA', `thin device ${dev} has no mapping for block ${vblock}`);
      td.details.mappedBlocks--;
      td.changed = true;
    } finally {
      this.closeDevice(td);
    }
  }

  /** Number of mappings of a device (details mapped_blocks). */
  mappedBlocks(dev: number): number {
    this.guard();
    const d = this.details(dev);
    if (!d) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    return d.mappedBlocks;
  }

  // ---- data space map ----

  /** dm_pool_alloc_data_block: a block free at the last commit and now; -ENOSPC if none. */
  allocDataBlock(): number {
    this.guard();
    return this.dataSm.newBlock();
  }
  incDataBlock(b: number): void {
    this.guard();
    this.dataSm.incBlock(b);
  }
  decDataBlock(b: number): void {
    this.guard();
    this.dataSm.decBlock(b);
  }
  dataBlockRefCount(b: number): number {
    this.guard();
    return this.dataSm.getCount(b);
  }
  /** dm_pool_block_is_used. */
  dataBlockIsUsed(b: number): boolean {
    return this.dataBlockRefCount(b) !== 0;
  }
  freeDataBlocks(): number {
    this.guard();
    return this.dataSm.getNrFree();
  }
  dataDevSize(): number {
    this.guard();
    return this.dataSm.getNrBlocks();
  }
  freeMetadataBlocks(): number {
    this.guard();
    return this.metadataSm.getNrFree();
  }
  metadataDevSize(): number {
    this.guard();
    return this.metadataSm.getNrBlocks();
  }
  /** dm_pool_resize_data_dev: -EINVAL when shrinking; growth takes effect in the open transaction. */
  resizeDataDevice(nrBlocks: number): void {
    this.guard();
    const old = this.dataSm.getNrBlocks();
    if (nrBlocks === old) return;
    if (nrBlocks < old) throw new MetadataError('EINVAL', `pool target (${nrBlocks} blocks) is smaller than the data space map (${old} blocks); shrinking is not supported`);
    this.dataSm.extend(nrBlocks - old);
  }
  /** dm_pool_resize_metadata_dev (sm_metadata_extend); the device must already be that large. */
  resizeMetadataDevice(nrBlocks: number): void {
    this.guard();
    const old = this.metadataSm.getNrBlocks();
    if (nrBlocks === old) return;
    if (nrBlocks < old) throw new MetadataError('EINVAL', `metadata device (${nrBlocks} blocks) is smaller than the metadata space map (${old} blocks); shrinking is not supported`);
    if (nrBlocks > this.dev.nrBlocks) throw new MetadataError('EINVAL', `metadata device has only ${this.dev.nrBlocks} blocks; grow it before resizing to ${nrBlocks}`);
    this.metadataSm.extend(nrBlocks - old);
  }

  // ---- transaction ----
  get transactionId(): number {
    this.guard();
    return this.transId;
  }
  get time(): number {
    return this.timeValue;
  }
  /** dm_pool_set_metadata_transaction_id: -EINVAL unless current === old. */
  setTransactionId(old: number, next: number): void {
    this.guard();
    if (this.transId !== old) throw new MetadataError('EINVAL', `mismatched transaction id: current ${this.transId}, caller passed ${old}`);
    this.transId = next;
  }

  /**
   * reserve_metadata_snap (__reserve_metadata_snap). The commit first is dm-thin's in 3.14
   * (process_reserve_metadata_snap_mesg) and __reserve_metadata_snap's own since 49e99fc7; the
   * thin-21 mutant skips it. -EBUSY if a snapshot is held.
   * With heldRootInCore (the CVE-2026-72108 fix) the -EBUSY check comes first and the new held
   * root only goes to pmd->held_root, which the next __commit_transaction writes with the new
   * roots; before it, held_root was stored in the cached superblock, leaving block 0 dirty.
   */
  reserveMetadataSnap(): void {
    this.guard();
    const inCore = this.behaviour.heldRootInCore;
    if (inCore && this.heldRootValue) throw new MetadataError('EBUSY', 'pool metadata snapshot already exists: release this before taking another');
    if (!this.behaviour.reserveNoCommit) this.commit();
    this.metadataSm.incBlock(THIN_SUPERBLOCK_LOCATION);
    const copy = this.tm.shadowBlock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
    const heldRoot = copy.block;
    const d = copy.data;
    if (!inCore && getU64(d, SB.heldRoot)) {
      this.tm.dec(heldRoot);
      throw new MetadataError('EBUSY', 'pool metadata snapshot already exists: release this before taking another');
    }
    d.fill(0, SB.dataSmRoot, SB.dataSmRoot + 128);
    d.fill(0, SB.metadataSmRoot, SB.metadataSmRoot + 128);
    this.tm.inc(getU64(d, SB.dataMappingRoot));
    this.tm.inc(getU64(d, SB.deviceDetailsRoot));
    this.heldRootValue = heldRoot;
    if (inCore) return;
    const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
    putU64(sb, SB.heldRoot, heldRoot);
  }

  /**
   * __release_metadata_snap: -EINVAL if none held. Without heldRootInCore the superblock buffer's
   * held_root is cleared before it is checked, so even the -EINVAL path leaves block 0 dirty.
   */
  releaseMetadataSnap(): void {
    this.guard();
    let heldRoot: number;
    if (this.behaviour.heldRootInCore) {
      heldRoot = this.heldRootValue;
      if (!heldRoot) throw new MetadataError('EINVAL', 'no pool metadata snapshot found: nothing to release');
    } else {
      const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
      heldRoot = getU64(sb, SB.heldRoot);
      putU64(sb, SB.heldRoot, 0);
      if (!heldRoot) throw new MetadataError('EINVAL', 'no pool metadata snapshot found: nothing to release');
    }
    const copy = decodeSuperblock(this.tm.readLock(heldRoot, superblockValidator));
    this.heldRootValue = 0;
    if (this.behaviour.releaseShallow) {
      this.metadataSm.decBlock(copy.dataMappingRoot);
      this.metadataSm.decBlock(copy.deviceDetailsRoot);
    } else {
      btreeDel(this.tlInfo, copy.dataMappingRoot);
      btreeDel(this.detailsInfo, copy.deviceDetailsRoot);
    }
    this.metadataSm.decBlock(heldRoot);
  }

  /**
   * Block of the held metadata snapshot superblock, 0 if none (dm_pool_get_metadata_snap): the
   * in-core pmd->held_root with the fix, else the cached superblock's field.
   */
  heldRoot(): number {
    this.guard();
    if (this.behaviour.heldRootInCore) return this.heldRootValue;
    return getU64(this.bm.readLock(THIN_SUPERBLOCK_LOCATION, superblockValidator), SB.heldRoot);
  }

  /** __write_changed_details. */
  private writeChangedDetails(): void {
    for (const [id, td] of [...this.tds]) {
      if (!td.changed) continue;
      this.detailsRoot = btreeInsert(this.detailsInfo, this.detailsRoot, [id], encodeDetails(td.details)).root;
      if (td.openCount) td.changed = false;
      else this.tds.delete(id);
    }
  }

  /** __commit_transaction, in the order of the profile. */
  private commitTransaction(): void {
    this.writeChangedDetails();
    this.dataSm.commit();
    let mdRoot: Uint8Array | null = null;
    let dataRoot: Uint8Array | null = null;
    if (this.behaviour.rootsBeforePrecommit) {
      mdRoot = this.metadataSm.copyRoot();
      dataRoot = this.dataSm.copyRoot();
    }
    this.tm.preCommit();
    if (this.behaviour.atomicCommit) {
      // a9d45396: pre-commit writes and flushes every dirty block; 5a32083d: roots are taken
      // before the superblock is locked, so no error can leave a half-written superblock dirty.
      this.bm.writeDirtyAndFlush();
      mdRoot ??= this.metadataSm.copyRoot();
      dataRoot ??= this.dataSm.copyRoot();
      const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator, true);
      this.fillSuperblock(sb, mdRoot, dataRoot);
      this.tm.wipeShadows();
      this.bm.unlockAndFlushSuperblock(THIN_SUPERBLOCK_LOCATION);
      return;
    }
    const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator, true);
    try {
      mdRoot ??= this.metadataSm.copyRoot();
      dataRoot ??= this.dataSm.copyRoot();
    } catch (e) {
      this.bm.unlock(THIN_SUPERBLOCK_LOCATION);
      throw e;
    }
    this.fillSuperblock(sb, mdRoot, dataRoot);
    this.tm.wipeShadows();
    this.bm.flushAndUnlock(THIN_SUPERBLOCK_LOCATION);
  }

  private fillSuperblock(sb: Uint8Array, mdRoot: Uint8Array, dataRoot: Uint8Array): void {
    putU32(sb, SB.time, this.timeValue);
    putU64(sb, SB.dataMappingRoot, this.root);
    putU64(sb, SB.deviceDetailsRoot, this.detailsRoot);
    putU64(sb, SB.transId, this.transId);
    // With the fix the held root travels with the roots; without it the buffer already holds it.
    if (this.behaviour.heldRootInCore) putU64(sb, SB.heldRoot, this.heldRootValue);
    putU32(sb, SB.flags, this.flags);
    sb.set(mdRoot.subarray(0, SM_ROOT_SIZE), SB.metadataSmRoot);
    sb.set(dataRoot.subarray(0, SM_ROOT_SIZE), SB.dataSmRoot);
  }

  /** dm_pool_commit_metadata: __commit_transaction in kernel order; IO errors propagate. */
  commit(): void {
    this.guard();
    this.commitTransaction();
  }

  /**
   * dm_pool_abort_metadata: drop the open transaction and reopen from the last commit. The
   * teardown writes back dirty buffers (without a flush), as dm-bufio does. If reopening fails the
   * pool metadata is failed (fail_io) and every later call gets -EINVAL.
   *
   * Deviation: open thin devices are reloaded from the committed details (the kernel keeps their
   * stale in-core counters).
   */
  abort(): void {
    this.guard();
    for (const td of this.tds.values()) td.abortedWithChanges = td.changed;
    this.destroyPersistentDataObjects();
    try {
      this.createPersistentDataObjects(false);
      this.beginTransaction();
    } catch (e) {
      this.failIo = true;
      throw e;
    }
    for (const [id, td] of [...this.tds]) {
      const d = this.lookupDetails(id);
      if (!d || !td.openCount) this.tds.delete(id);
      else {
        td.details = d;
        td.changed = false;
      }
    }
    if (this.readOnly) this.bm.setReadOnly(true);
  }

  /** dm_thin_aborted_changes for an open device. */
  abortedWithChanges(dev: number): boolean {
    return this.tds.get(dev)?.abortedWithChanges ?? false;
  }

  /** dm_thin_changed_this_transaction / dm_pool_changed_this_transaction. */
  changedThisTransaction(dev?: number): boolean {
    if (dev !== undefined) return this.tds.get(dev)?.changed ?? false;
    for (const td of this.tds.values()) if (td.changed) return true;
    return false;
  }

  needsCheck(): boolean {
    return (this.flags & THIN_METADATA_NEEDS_CHECK_FLAG) !== 0;
  }
  /** dm_pool_metadata_set_needs_check: sets the flag in the in-core and on-disk superblock. */
  setNeedsCheck(): void {
    this.flags |= THIN_METADATA_NEEDS_CHECK_FLAG;
    const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
    putU32(sb, SB.flags, this.flags);
  }
  /** dm_pool_metadata_read_only: further writes give -EPERM. */
  setReadOnly(): void {
    this.readOnly = true;
    this.bm.setReadOnly(true);
  }
  /** dm_pool_metadata_read_write. */
  setReadWrite(): void {
    this.readOnly = false;
    this.bm.setReadOnly(false);
  }
  isReadOnly(): boolean {
    return this.readOnly;
  }
  isFailed(): boolean {
    return this.failIo;
  }
  /** dm_pool_register_metadata_threshold. */
  registerMetadataThreshold(threshold: number, fn: () => void): void {
    this.metadataSm.registerThreshold(threshold, fn);
  }

  /** Observable state of the open transaction as plain JSON. */
  /**
   * Whether the superblock buffer holds changes outside a commit: reserve/release_metadata_snap
   * with the held root kept in the buffer (3.14 and kernels before stable 3dc9ae10).
   */
  superblockDirty(): boolean {
    return this.bm.isDirty(THIN_SUPERBLOCK_LOCATION);
  }

  /**
   * Every mapping of thin device `dev` in ascending virtual block order, without building a list
   * (a lockstep projection walks ~10^5 mappings a step).
   */
  forEachMapping(dev: number, f: (vblock: number, dataBlock: number, time: number) => void): void {
    this.guard();
    const top = btreeLookup(this.tlInfo, this.root, [dev]);
    if (!top) return;
    btreeForEach(this.blInfo, getU64(top, 0), (k, v) => {
      const { block, time } = unpackBlockTime(v);
      f(k, block, time);
    });
  }

  /** The pool as JSON; `mappings: false` leaves every device's mapping list empty (forEachMapping). */
  summary(opts: { readonly mappings?: boolean } = {}): PoolSummary {
    this.guard();
    const devices: DeviceSummary[] = [];
    const tops: [number, number][] = [];
    btreeForEach(this.tlInfo, this.root, (k, v) => tops.push([k, getU64(v, 0)]));
    for (const [id, sub] of tops) {
      const d = this.details(id);
      const mappings: [number, number, number][] = [];
      if (opts.mappings !== false) {
        btreeForEach(this.blInfo, sub, (k, v) => {
          const { block, time } = unpackBlockTime(v);
          mappings.push([k, block, time]);
        });
      }
      devices.push({
        id,
        mappedBlocks: d?.mappedBlocks ?? -1,
        transactionId: d?.transactionId ?? -1,
        creationTime: d?.creationTime ?? -1,
        snapshottedTime: d?.snapshottedTime ?? -1,
        mappings,
      });
    }
    return {
      transactionId: this.transId,
      time: this.timeValue,
      heldRoot: this.heldRoot(),
      needsCheck: this.needsCheck(),
      dataBlockSize: this.dataBlockSizeValue,
      nrDataBlocks: this.dataSm.getNrBlocks(),
      freeDataBlocks: this.dataSm.getNrFree(),
      nrMetadataBlocks: this.metadataSm.getNrBlocks(),
      freeMetadataBlocks: this.metadataSm.getNrFree(),
      devices,
    };
  }

  // ---- restore hooks (impl/thin/tools/xml.ts builds thin_restore-style images with these) ----

  /** Set superblock fields a restore carries over (time, transaction id, flags, version). */
  restoreSuperblockFields(f: { time: number; transId: number; flags: number; version: number }): void {
    this.guard();
    this.timeValue = f.time;
    this.transId = f.transId;
    this.flags = f.flags;
    const sb = this.bm.writeLock(THIN_SUPERBLOCK_LOCATION, superblockValidator);
    putU32(sb, SB.version, f.version);
  }

  /** Create a device with the given details (as thin_restore does). */
  restoreDevice(dev: number, details: DeviceDetails): void {
    this.createThin(dev);
    const td = this.openDevice(dev, false);
    td.details = { ...details, mappedBlocks: 0 };
    td.changed = true;
    this.closeDevice(td);
  }

  /** Map vblock → dataBlock with an explicit time, taking a data reference for it. */
  restoreMapping(dev: number, vblock: number, dataBlock: number, time: number): void {
    this.guard();
    if (dataBlock >= this.dataSm.getNrBlocks()) {
      throw new MetadataError('EINVAL', `mapping beyond end of data device: data block ${dataBlock} >= ${this.dataSm.getNrBlocks()}`);
    }
    const td = this.openDevice(dev, false);
    try {
      this.dataSm.incBlock(dataBlock);
      const r = btreeInsert(this.info, this.root, [dev, vblock], packBlockTime(dataBlock, time));
      this.root = r.root;
      td.changed = true;
      if (r.inserted) td.details.mappedBlocks++;
    } finally {
      this.closeDevice(td);
    }
  }

  /** Internals for tests and the crash bench (not for protocol code). */
  get internals(): { bm: BlockManager; tm: TransactionManager; metadataSm: MetadataSpaceMap; dataSm: DiskSpaceMap } {
    return { bm: this.bm, tm: this.tm, metadataSm: this.metadataSm, dataSm: this.dataSm };
  }
}

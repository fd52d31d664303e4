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
// Everything is synchronous and byte-exact with the kernel's on-disk format (see impl/thin/format).

import type { Json, Variant } from '../../checker/model.js';
import type { BlockDevice } from '../block-device.js';

/** Errno names the kernel returns from dm-thin-metadata.c and persistent-data. */
export type Errno = 'EEXIST' | 'EBUSY' | 'EINVAL' | 'ENOSPC' | 'ENODATA' | 'EPERM' | 'EIO' | 'EILSEQ' | 'ENOMEM';

/** A metadata operation failed the way the kernel's would: `errno` is the negative errno's name. */
export class MetadataError extends Error {
  override readonly name = 'MetadataError';
  constructor(
    readonly errno: Errno,
    message: string,
  ) {
    super(`-${errno}: ${message}`);
  }
}

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

/**
 * In-core handle on a pool's metadata device (the kernel's struct dm_pool_metadata). Every mutator
 * works on the open transaction; `commit` makes it durable with the kernel's write order; `abort`
 * drops it and reopens from the last commit.
 */
export class PoolMetadata {
  private constructor() {
    throw new Error('not yet');
  }

  /** Write a fresh, committed, empty pool onto `dev` (dm_pool_metadata_open on a zeroed superblock). */
  static format(_dev: BlockDevice, _opts: FormatOptions): PoolMetadata {
    throw new Error('not yet');
  }

  /** Open existing metadata (kernel- or thin_restore-written). -EINVAL/-EILSEQ on a bad superblock. */
  static open(_dev: BlockDevice, _opts: OpenOptions): PoolMetadata {
    throw new Error('not yet');
  }

  /** Open if block 0 holds a superblock, else format (what pool_ctr does). */
  static openOrFormat(_dev: BlockDevice, _opts: FormatOptions): PoolMetadata {
    throw new Error('not yet');
  }

  /** dm_pool_metadata_close: -EBUSY if a thin device is open; commits unless read-only or failed. */
  close(): void {
    throw new Error('not yet');
  }

  // ---- thin devices ----
  /** dm_pool_create_thin: -EEXIST if the id is in use; -EINVAL if above MAX_DEV_ID. */
  createThin(_dev: number): void {
    throw new Error('not yet');
  }
  /** dm_pool_create_snap: shares the origin's mapping root; time++; -EEXIST, -ENODATA. */
  createSnap(_dev: number, _origin: number): void {
    throw new Error('not yet');
  }
  /** dm_pool_delete_thin_device: -ENODATA if absent, -EBUSY if open; deep-deletes its mappings. */
  deleteThin(_dev: number): void {
    throw new Error('not yet');
  }
  /** dm_pool_open_thin_device (an active thin target); -ENODATA if absent. */
  openThin(_dev: number): void {
    throw new Error('not yet');
  }
  closeThin(_dev: number): void {
    throw new Error('not yet');
  }
  /** Ids in the open transaction, ascending. */
  devices(): number[] {
    throw new Error('not yet');
  }

  // ---- mappings ----
  /** dm_thin_find_block: null when unmapped (-ENODATA in the kernel). */
  lookup(_dev: number, _vblock: number): LookupResult | null {
    throw new Error('not yet');
  }
  /**
   * dm_thin_insert_block: map vblock → dataBlock stamped with the current time. The caller must
   * already hold a reference on dataBlock (allocDataBlock); an overwritten mapping's old block is
   * decremented (breaking sharing is alloc + insert).
   */
  insertMapping(_dev: number, _vblock: number, _dataBlock: number): void {
    throw new Error('not yet');
  }
  /** dm_thin_remove_block: -ENODATA when unmapped; drops the data block's reference. */
  removeMapping(_dev: number, _vblock: number): void {
    throw new Error('not yet');
  }
  /** Number of mappings of a device (details mapped_blocks). */
  mappedBlocks(_dev: number): number {
    throw new Error('not yet');
  }

  // ---- data space map ----
  /** dm_pool_alloc_data_block: a block free at the last commit and now; -ENOSPC if none. */
  allocDataBlock(): number {
    throw new Error('not yet');
  }
  incDataBlock(_b: number): void {
    throw new Error('not yet');
  }
  decDataBlock(_b: number): void {
    throw new Error('not yet');
  }
  dataBlockRefCount(_b: number): number {
    throw new Error('not yet');
  }
  /** dm_pool_block_is_used. */
  dataBlockIsUsed(_b: number): boolean {
    throw new Error('not yet');
  }
  freeDataBlocks(): number {
    throw new Error('not yet');
  }
  dataDevSize(): number {
    throw new Error('not yet');
  }
  freeMetadataBlocks(): number {
    throw new Error('not yet');
  }
  metadataDevSize(): number {
    throw new Error('not yet');
  }
  /** dm_pool_resize_data_dev: -EINVAL when shrinking; growth takes effect in the open transaction. */
  resizeDataDevice(_nrBlocks: number): void {
    throw new Error('not yet');
  }
  /** dm_pool_resize_metadata_dev (sm_metadata_extend); the device must already be that large. */
  resizeMetadataDevice(_nrBlocks: number): void {
    throw new Error('not yet');
  }

  // ---- transaction ----
  get transactionId(): number {
    throw new Error('not yet');
  }
  get time(): number {
    throw new Error('not yet');
  }
  /** dm_pool_set_metadata_transaction_id: -EINVAL unless current === old. */
  setTransactionId(_old: number, _new: number): void {
    throw new Error('not yet');
  }
  /** __reserve_metadata_snap (the 'fixed' profile commits first, under the lock): -EBUSY if held. */
  reserveMetadataSnap(): void {
    throw new Error('not yet');
  }
  /** __release_metadata_snap: -EINVAL if none held. */
  releaseMetadataSnap(): void {
    throw new Error('not yet');
  }
  /** Block of the held metadata snapshot superblock, 0 if none (dm_pool_get_metadata_snap). */
  heldRoot(): number {
    throw new Error('not yet');
  }
  /** dm_pool_commit_metadata: __commit_transaction in kernel order; IO errors propagate. */
  commit(): void {
    throw new Error('not yet');
  }
  /** dm_pool_abort_metadata: drop the open transaction and reopen from the last commit. */
  abort(): void {
    throw new Error('not yet');
  }
  needsCheck(): boolean {
    throw new Error('not yet');
  }
  /** dm_pool_metadata_set_needs_check: sets the flag in the in-core and on-disk superblock. */
  setNeedsCheck(): void {
    throw new Error('not yet');
  }
  /** dm_pool_metadata_read_only: further writes give -EPERM. */
  setReadOnly(): void {
    throw new Error('not yet');
  }
  /** Observable state of the open transaction as plain JSON. */
  summary(): PoolSummary {
    throw new Error('not yet');
  }
}

// Block manager: follows drivers/md/persistent-data/dm-block-manager.c (Linux 3.14):
// dm_bm_read_lock, dm_bm_write_lock, dm_bm_write_lock_zero, dm_bm_unlock, dm_bm_flush_and_unlock,
// dm_bm_set_read_only, dm_bm_checksum; the buffer cache below it is drivers/md/dm-bufio.c
// (dirty buffers stay cached until dm_bufio_write_dirty_buffers writes them all and FLUSHes).
//
// Checksummed 4 KiB blocks with one validator per block type. Write locks hand out the cached
// buffer; a write-locked block becomes dirty when unlocked (as dm_bm_unlock marks it dirty).

import { BLOCK_SIZE, IoError, type BlockDevice } from '../block-device.js';
import { MetadataError } from './errors.js';

export { BLOCK_SIZE };

/** A per-block-type validator (struct dm_block_validator). */
export interface Validator {
  readonly name: string;
  /** Fill in the checksum/blocknr before the block goes to disk. */
  readonly prepareForWrite: (data: Uint8Array, blocknr: number) => void;
  /** Throw MetadataError (EILSEQ / ENOTBLK-as-EILSEQ) if the block is not valid at `blocknr`. */
  readonly check: (data: Uint8Array, blocknr: number) => void;
}

interface CacheEntry {
  data: Uint8Array;
  /** Validator that last accepted or prepares this block. */
  v: Validator | null;
  dirty: boolean;
  /** Write-locked buffers are not written by a flush until unlocked (the superblock in commit). */
  writeLocked: number;
  /** The cached data came from the device unchanged (so the device's array is shared). */
  shared: boolean;
}

export class BlockManager {
  private cache = new Map<number, CacheEntry>();
  private readOnly = false;
  /** Counts of IO the manager issued (for benches). */
  blocksWritten = 0;

  constructor(readonly dev: BlockDevice) {}

  get nrBlocks(): number {
    return this.dev.nrBlocks;
  }

  setReadOnly(ro: boolean): void {
    this.readOnly = ro;
  }

  isReadOnly(): boolean {
    return this.readOnly;
  }

  private load(b: number, v: Validator): CacheEntry {
    let e = this.cache.get(b);
    if (!e) {
      let data: Uint8Array;
      try {
        data = this.dev.read(b);
      } catch (err) {
        if (err instanceof IoError) throw new MetadataError('EIO', `${err.message} (metadata ${v.name} block ${b})`);
        throw err;
      }
      v.check(data, b);
      e = { data, v, dirty: false, writeLocked: 0, shared: true };
      this.cache.set(b, e);
    } else if (e.v !== v) {
      // Same block read as another type: re-validate as the kernel does when the validator changes.
      if (e.v !== null && !e.dirty) v.check(e.data, b);
      else if (e.v === null) v.check(e.data, b);
      e.v = v;
    }
    return e;
  }

  /** dm_bm_read_lock: the validated contents; do not mutate. */
  readLock(b: number, v: Validator): Uint8Array {
    this.rangeCheck(b);
    const e = this.load(b, v);
    if (e.writeLocked) throw new MetadataError('EINVAL', `block ${b} is write-locked; cannot read-lock it (lock order bug)`);
    return e.data;
  }

  /**
   * dm_bm_write_lock: a mutable buffer holding the block. Callers here never hold write locks across
   * calls, so the buffer is marked dirty at once (what dm_bm_unlock would do), except with `held`:
   * then it stays locked, is skipped by flushes, and becomes dirty on `unlock` (the superblock
   * during commit).
   */
  writeLock(b: number, v: Validator, held = false): Uint8Array {
    this.rangeCheck(b);
    if (this.readOnly) throw new MetadataError('EPERM', `metadata is read-only; cannot write block ${b}`);
    const e = this.load(b, v);
    if (e.shared) {
      e.data = e.data.slice();
      e.shared = false;
    }
    if (held) e.writeLocked++;
    else e.dirty = true;
    return e.data;
  }

  /** dm_bm_write_lock_zero: like writeLock but the buffer starts zeroed without a read. */
  writeLockZero(b: number, v: Validator, held = false): Uint8Array {
    this.rangeCheck(b);
    if (this.readOnly) throw new MetadataError('EPERM', `metadata is read-only; cannot write block ${b}`);
    const e: CacheEntry = { data: new Uint8Array(BLOCK_SIZE), v, dirty: !held, writeLocked: held ? 1 : 0, shared: false };
    const old = this.cache.get(b);
    if (old?.writeLocked) throw new MetadataError('EINVAL', `block ${b} is already write-locked`);
    this.cache.set(b, e);
    return e.data;
  }

  /** dm_bm_unlock of a held write lock: marks the buffer dirty. */
  unlock(b: number): void {
    const e = this.cache.get(b);
    if (!e || e.writeLocked <= 0) throw new MetadataError('EINVAL', `unlock of block ${b} that is not write-locked`);
    e.writeLocked--;
    e.dirty = true;
  }

  /** Blocks with unwritten changes, ascending. */
  dirtyBlocks(): number[] {
    return [...this.cache].filter(([, e]) => e.dirty).map(([b]) => b).sort((a, b) => a - b);
  }

  /** Whether the block has unwritten changes in the cache. */
  isDirty(b: number): boolean {
    return this.cache.get(b)?.dirty ?? false;
  }

  /**
   * dm_bufio_write_dirty_buffers: write every dirty, unlocked buffer (ascending block order), then
   * FLUSH. IO errors surface as -EIO; blocks not yet written stay dirty.
   */
  writeDirtyAndFlush(): void {
    if (this.readOnly) throw new MetadataError('EPERM', 'metadata is read-only; cannot flush');
    this.writeDirty(null);
    try {
      this.dev.flush();
    } catch (err) {
      if (err instanceof IoError) throw new MetadataError('EIO', `${err.message} (metadata flush)`);
      throw err;
    }
  }

  /** Write dirty unlocked buffers, except `skip`, without a flush (also the teardown path). */
  writeDirty(skip: number | null): void {
    const blocks = [...this.cache.keys()].sort((a, b) => a - b);
    for (const b of blocks) {
      const e = this.cache.get(b);
      // dm-bufio writes every dirty buffer, even one that is currently locked (the 3.14 superblock
      // hazard): a held lock only delays marking the buffer dirty.
      if (!e || !e.dirty || b === skip) continue;
      if (e.v) e.v.prepareForWrite(e.data, b);
      try {
        this.dev.write(b, e.data);
      } catch (err) {
        if (err instanceof IoError) throw new MetadataError('EIO', `${err.message} (metadata ${e.v?.name ?? 'block'} ${b})`);
        throw err;
      }
      this.blocksWritten++;
      e.dirty = false;
    }
  }

  /**
   * dm_bm_flush_and_unlock (3.14): write + flush every other dirty buffer, then unlock the
   * superblock (marking it dirty) and write + flush again. On an error in the first step the
   * superblock is still unlocked, and so left dirty (the 3.14 flaw fixed by a9d45396).
   */
  flushAndUnlock(sb: number): void {
    if (this.readOnly) throw new MetadataError('EPERM', 'metadata is read-only; cannot commit');
    try {
      this.writeDirtyAndFlush();
    } catch (err) {
      this.unlock(sb);
      throw err;
    }
    this.unlock(sb);
    this.writeDirtyAndFlush();
  }

  /** The fixed commit: unlock the superblock, write it alone and flush (a9d45396 dm_tm_commit). */
  unlockAndFlushSuperblock(sb: number): void {
    this.unlock(sb);
    this.writeDirtyAndFlush();
  }

  /** Drop every cached buffer (dm_block_manager_destroy after a teardown write). */
  dropCache(): void {
    this.cache.clear();
  }

  private rangeCheck(b: number): void {
    if (!Number.isInteger(b) || b < 0 || b >= this.dev.nrBlocks) {
      throw new MetadataError('EINVAL', `metadata block ${b} is beyond the end of the metadata device (${this.dev.nrBlocks} blocks)`);
    }
  }
}

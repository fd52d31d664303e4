// Transaction manager: follows drivers/md/persistent-data/dm-transaction-manager.c (Linux 3.14):
// dm_tm_new_block, dm_tm_shadow_block (__shadow_block), dm_tm_read_lock, dm_tm_inc/dec/ref,
// dm_tm_pre_commit, dm_tm_commit. A block is copied on its first write in a transaction (and again
// if it is shared); a block reachable from the committed superblock is never overwritten, because
// the space maps only hand out blocks that were free at the last commit.

import type { BlockManager, Validator } from './block-manager.js';
import { MetadataError } from './errors.js';
import type { SpaceMap } from './space-map-common.js';

export interface Shadowed {
  readonly block: number;
  readonly data: Uint8Array;
  /** The original was shared (count > 1): the caller must take references on its children. */
  readonly incChildren: boolean;
}

export class TransactionManager {
  /** Blocks already shadowed (or newly made) in this transaction (the kernel's hash table). */
  private shadows = new Set<number>();
  sm!: SpaceMap;

  constructor(readonly bm: BlockManager) {}

  /** dm_tm_new_block: allocate, zero, write-lock. Counts as a shadow. */
  newBlock(v: Validator): { block: number; data: Uint8Array } {
    const b = this.sm.newBlock();
    const data = this.bm.writeLockZero(b, v);
    this.shadows.add(b);
    return { block: b, data };
  }

  /** dm_tm_shadow_block: write access to a copy of `orig` that this transaction owns. */
  shadowBlock(orig: number, v: Validator): Shadowed {
    const incChildren = this.sm.countIsMoreThanOne(orig);
    if (this.shadows.has(orig) && !incChildren) {
      return { block: orig, data: this.bm.writeLock(orig, v), incChildren };
    }
    // __shadow_block: allocate first, then drop the original's count, then copy.
    const nb = this.sm.newBlock();
    this.sm.decBlock(orig);
    const src = this.bm.readLock(orig, v);
    const data = this.bm.writeLockZero(nb, v);
    data.set(src);
    this.shadows.add(nb);
    return { block: nb, data, incChildren };
  }

  isShadow(b: number): boolean {
    return this.shadows.has(b);
  }

  readLock(b: number, v: Validator): Uint8Array {
    return this.bm.readLock(b, v);
  }

  unlock(b: number): void {
    this.bm.unlock(b);
  }

  /**
   * Errors dm_tm_inc/dm_tm_dec swallowed (they return void in the kernel; the space map only logs
   * with DMERR). Tests read this to see e.g. a count decremented below zero.
   */
  readonly swallowed: string[] = [];

  inc(b: number): void {
    try {
      this.sm.incBlock(b);
    } catch (e) {
      if (!(e instanceof MetadataError)) throw e;
      this.swallowed.push(`dm_tm_inc(${b}): ${e.message}`);
    }
  }

  dec(b: number): void {
    try {
      this.sm.decBlock(b);
    } catch (e) {
      if (!(e instanceof MetadataError)) throw e;
      this.swallowed.push(`dm_tm_dec(${b}): ${e.message}`);
    }
  }

  ref(b: number): number {
    return this.sm.getCount(b);
  }

  /** dm_tm_pre_commit: commit the metadata space map (may shadow its index block). */
  preCommit(): void {
    this.sm.commit();
  }

  /** Forget this transaction's shadows (wipe_shadow_table). */
  wipeShadows(): void {
    this.shadows.clear();
  }
}

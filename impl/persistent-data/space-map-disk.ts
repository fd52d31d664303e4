// Data space map: follows drivers/md/persistent-data/dm-space-map-disk.c (Linux 3.14):
// sm_disk_create/open, sm_disk_get_nr_blocks (from old_ll), sm_disk_get_nr_free,
// sm_disk_get_count, sm_disk_inc/dec_block, sm_disk_set_count, sm_disk_new_block (searches old_ll
// from `begin`), sm_disk_commit (old_ll := ll), sm_disk_copy_root, sm_disk_extend.

import { MetadataError } from './errors.js';
import { DiskLl, AllocEvent, type LlDisk, type SmBehaviour, type SpaceMap } from './space-map-common.js';
import type { TransactionManager } from './transaction-manager.js';

export class DiskSpaceMap implements SpaceMap {
  ll: DiskLl;
  oldLl: DiskLl;
  begin = 0;
  nrAllocatedThisTransaction = 0;

  private constructor(ll: DiskLl) {
    this.ll = ll;
    this.oldLl = ll.clone();
  }

  /** dm_sm_disk_create. */
  static create(tm: TransactionManager, nrBlocks: number, behaviour: SmBehaviour): DiskSpaceMap {
    const ll = new DiskLl(tm, behaviour);
    ll.initIndex();
    ll.refCountRoot = ll.refCountRootEmpty();
    ll.extend(nrBlocks);
    const sm = new DiskSpaceMap(ll);
    sm.commit();
    return sm;
  }

  /** dm_sm_disk_open from a 32-byte root. */
  static open(tm: TransactionManager, root: { nrBlocks: number; nrAllocated: number; bitmapRoot: number; refCountRoot: number }, behaviour: SmBehaviour): DiskSpaceMap {
    const ll = new DiskLl(tm, behaviour);
    ll.nrBlocks = root.nrBlocks;
    ll.nrAllocated = root.nrAllocated;
    ll.bitmapRoot = root.bitmapRoot;
    ll.refCountRoot = root.refCountRoot;
    const sm = new DiskSpaceMap(ll);
    sm.commit();
    return sm;
  }

  extend(extra: number): void {
    this.ll.extend(extra);
  }

  getNrBlocks(): number {
    return this.oldLl.nrBlocks;
  }

  getNrFree(): number {
    return this.oldLl.nrBlocks - this.oldLl.nrAllocated - this.nrAllocatedThisTransaction;
  }

  getCount(b: number): number {
    return this.ll.lookup(b);
  }

  countIsMoreThanOne(b: number): boolean {
    return this.getCount(b) > 1;
  }

  setCount(b: number, count: number): void {
    const ev = this.ll.insert(b, count);
    if (ev === AllocEvent.Alloc) this.nrAllocatedThisTransaction++;
    else if (ev === AllocEvent.Free && b < this.oldLl.nrBlocks && this.oldLl.lookup(b) === 0) this.nrAllocatedThisTransaction--;
  }

  incBlock(b: number): void {
    const ev = this.ll.inc(b);
    if (ev === AllocEvent.Alloc) this.nrAllocatedThisTransaction++;
  }

  decBlock(b: number): void {
    const ev = this.ll.dec(b);
    // 3.14 leaves the free count alone here (it drifts low until the commit); the 4.12 fix gives a
    // block allocated in this transaction back to the count.
    if (this.ll.behaviour.freeCountFixed && ev === AllocEvent.Free && (b >= this.oldLl.nrBlocks || this.oldLl.lookup(b) === 0)) {
      this.nrAllocatedThisTransaction--;
    }
  }

  newBlock(): number {
    const b = findAllocatable(this.oldLl, this.ll, this.begin, this.oldLl.nrBlocks);
    if (b < 0) throw new MetadataError('ENOSPC', 'no free data block (all blocks in use, or freed only in this transaction)');
    if (!this.ll.behaviour.allocStaleCursor) this.begin = b + 1;
    const ev = this.ll.inc(b);
    if (ev !== AllocEvent.Alloc && !this.ll.behaviour.allocStaleCursor) {
      throw new MetadataError('EINVAL', `allocated data block ${b} was already in use`);
    }
    this.nrAllocatedThisTransaction++;
    return b;
  }

  commit(): void {
    this.ll.commit();
    this.oldLl = this.ll.clone();
    this.begin = 0;
    this.nrAllocatedThisTransaction = 0;
  }

  copyRoot(): Uint8Array {
    return this.ll.writeRoot();
  }
}

/**
 * Find a block free at the last commit, searching from `begin`. With allocCheckCurrent (later
 * kernels' sm_ll_find_common_free_block) it must also be free in the current map.
 */
export function findAllocatable(oldLl: LlDisk, ll: LlDisk, begin: number, end: number): number {
  let from = begin;
  for (;;) {
    const b = oldLl.findFreeBlock(from, end);
    if (b < 0) return -1;
    if (!ll.behaviour.allocCheckCurrent || ll.lookup(b) === 0) return b;
    from = b + 1;
  }
}

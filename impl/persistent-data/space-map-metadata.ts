// Metadata space map: follows drivers/md/persistent-data/dm-space-map-metadata.c (Linux 3.14):
// the bop ring buffer (brb_push/brb_pop, add_bop, commit_bop, in/out, recursing), sm_metadata_*
// (get_nr_blocks from ll, get_nr_free from old_ll, get_count and count_is_more_than_one with the
// queued adjustments, inc/dec/new_block, commit, copy_root, extend), the bootstrap allocator used
// while the space map builds itself (sm_bootstrap_*), dm_sm_metadata_create and _open.
//
// The metadata space map stores its own bitmaps and ref-count tree in the blocks it manages, so
// changing a count can allocate or free blocks. While such a change is in progress (recursion
// depth > 0) further inc/dec requests are queued, and applied in FIFO order when the outermost
// operation finishes.

import { MetadataError } from './errors.js';
import { findAllocatable } from './space-map-disk.js';
import { MetadataLl, DM_SM_METADATA_MAX_BLOCKS, type SmBehaviour, type SpaceMap } from './space-map-common.js';
import type { TransactionManager } from './transaction-manager.js';

export const MAX_RECURSIVE_ALLOCATIONS = 1024;

type Bop = { readonly inc: boolean; readonly block: number };

export class MetadataSpaceMap implements SpaceMap {
  ll: MetadataLl;
  oldLl: MetadataLl;
  begin = 0;
  recursionCount = 0;
  allocatedThisTransaction = 0;
  uncommitted: Bop[] = [];
  /** While true, the bootstrap ops are in force (sm_bootstrap_*). */
  bootstrap = false;
  private thresholdFn: (() => void) | null = null;
  private threshold = 0;
  private thresholdValue: number | null = null;

  private constructor(readonly tm: TransactionManager, readonly behaviour: SmBehaviour) {
    this.ll = new MetadataLl(tm, behaviour);
    this.oldLl = this.ll.clone();
  }

  /** dm_sm_metadata_create: format a fresh metadata space map over nrBlocks blocks; the superblock is block `superblock`. */
  static create(tm: TransactionManager, nrBlocks: number, superblock: number, behaviour: SmBehaviour): MetadataSpaceMap {
    const sm = new MetadataSpaceMap(tm, behaviour);
    tm.sm = sm;
    sm.begin = superblock + 1;
    sm.bootstrap = true;
    sm.ll.initIndex();
    sm.ll.refCountRoot = sm.ll.refCountRootEmpty();
    sm.ll.extend(Math.min(nrBlocks, DM_SM_METADATA_MAX_BLOCKS));
    sm.bootstrap = false;
    // Count the blocks the structures above were built from.
    for (let i = superblock; i < sm.begin; i++) sm.ll.inc(i);
    sm.commit();
    return sm;
  }

  /** dm_sm_metadata_open from the superblock's root. */
  static open(tm: TransactionManager, root: { nrBlocks: number; nrAllocated: number; bitmapRoot: number; refCountRoot: number }, behaviour: SmBehaviour): MetadataSpaceMap {
    const sm = new MetadataSpaceMap(tm, behaviour);
    tm.sm = sm;
    sm.ll.nrBlocks = root.nrBlocks;
    sm.ll.nrAllocated = root.nrAllocated;
    sm.ll.bitmapRoot = root.bitmapRoot;
    sm.ll.refCountRoot = root.refCountRoot;
    sm.ll.openIndex();
    sm.oldLl = sm.ll.clone();
    return sm;
  }

  private addBop(inc: boolean, block: number): void {
    if (this.uncommitted.length >= MAX_RECURSIVE_ALLOCATIONS) throw new MetadataError('ENOMEM', 'too many recursive allocations in the metadata space map');
    this.uncommitted.push({ inc, block });
  }

  private in(): void {
    this.recursionCount++;
  }

  private out(): void {
    if (!this.recursionCount) throw new MetadataError('ENOMEM', 'lost track of recursion depth');
    try {
      if (this.recursionCount === 1) {
        while (this.uncommitted.length) {
          // FIFO since cebc2de4; the LIFO mutant applies the newest op first.
          const op = this.behaviour.bopLifo ? this.uncommitted.pop()! : this.uncommitted.shift()!;
          if (op.inc) this.ll.inc(op.block);
          else this.ll.dec(op.block);
        }
      }
    } finally {
      this.recursionCount--;
    }
  }

  /** Run a count change on ll at depth+1, applying queued ops when back at the top. */
  private guarded(f: () => void): void {
    this.in();
    let err: unknown = null;
    try {
      f();
    } catch (e) {
      err = e;
    }
    try {
      this.out();
    } catch (e) {
      if (err === null) err = e;
    }
    if (err !== null) throw err;
  }

  private adjustment(b: number): number {
    let a = 0;
    for (const op of this.uncommitted) if (op.block === b) a += op.inc ? 1 : -1;
    return a;
  }

  getNrBlocks(): number {
    return this.ll.nrBlocks;
  }

  getNrFree(): number {
    if (this.bootstrap) return this.ll.nrBlocks - this.begin;
    return this.oldLl.nrBlocks - this.oldLl.nrAllocated - this.allocatedThisTransaction;
  }

  getCount(b: number): number {
    if (this.bootstrap) return b < this.begin ? 1 : 0;
    return this.ll.lookup(b) + this.adjustment(b);
  }

  countIsMoreThanOne(b: number): boolean {
    if (this.bootstrap) return false;
    const adj = this.adjustment(b);
    if (adj > 1) return true;
    const rc = this.ll.lookupBitmap(b);
    if (rc === 3) return true; // errs on the side of caution, as the kernel does
    return rc + adj > 1;
  }

  setCount(b: number, count: number): void {
    if (this.bootstrap) throw new MetadataError('EINVAL', "bootstrap space map doesn't support set_count");
    if (this.recursionCount) throw new MetadataError('EINVAL', 'cannot recurse set_count()');
    this.guarded(() => void this.ll.insert(b, count));
  }

  incBlock(b: number): void {
    if (this.bootstrap || this.recursionCount) return this.addBop(true, b);
    this.guarded(() => void this.ll.inc(b));
  }

  decBlock(b: number): void {
    if (this.bootstrap || this.recursionCount) return this.addBop(false, b);
    this.guarded(() => void this.ll.dec(b));
  }

  newBlock(): number {
    if (this.bootstrap) {
      // The whole new area is unused: hand out blocks in order.
      // The kernel tests equality only (at create nr_blocks is still 0 while the index is made).
      if (this.begin === this.ll.nrBlocks) throw new MetadataError('ENOSPC', `metadata space map bootstrap is out of space at block ${this.begin}`);
      return this.begin++;
    }
    let b = findAllocatable(this.oldLl, this.ll, this.begin, this.oldLl.nrBlocks);
    // Later kernels search again below `begin` (after an extend 3.14 leaves begin past old_ll's end).
    if (b < 0 && this.behaviour.allocCheckCurrent) b = findAllocatable(this.oldLl, this.ll, 0, Math.min(this.begin, this.oldLl.nrBlocks));
    if (b < 0) throw new MetadataError('ENOSPC', 'unable to allocate new metadata block');
    // (The thin-26 mutant is seeded in the data space map only, where the scenario is readable.)
    this.begin = b + 1;
    if (this.recursionCount) this.addBop(true, b);
    else this.guarded(() => void this.ll.inc(b));
    this.allocatedThisTransaction++;
    this.checkThreshold();
    return b;
  }

  commit(): void {
    if (this.bootstrap) return;
    this.ll.commit();
    this.oldLl = this.ll.clone();
    this.begin = 0;
    this.allocatedThisTransaction = 0;
  }

  copyRoot(): Uint8Array {
    if (this.bootstrap) throw new MetadataError('EINVAL', "bootstrap space map doesn't support copy_root");
    return this.ll.writeRoot();
  }

  /**
   * sm_metadata_extend: allocate the new bitmaps from the new area with the bootstrap allocator,
   * then count the blocks used, repeating inc + commit until a pass allocates nothing new.
   * (3.14 leaves old_ll stale and begin past the old end until the next commit.)
   */
  extend(extra: number): void {
    let oldLen = this.ll.nrBlocks;
    this.begin = oldLen;
    this.bootstrap = true;
    try {
      this.ll.extend(extra);
      do {
        if (this.behaviour.extendAppliesBops) {
          // Later kernels (6096d91a): queue the incs and apply every queued op before each commit.
          for (let i = oldLen; i < this.begin; i++) this.addBop(true, i);
          oldLen = this.begin;
          this.applyBops();
        } else {
          for (let i = oldLen; i < this.begin; i++) this.ll.inc(i);
          oldLen = this.begin;
        }
        this.ll.commit();
        if (this.behaviour.extendSinglePass) break;
      } while (oldLen !== this.begin);
    } finally {
      this.bootstrap = false;
    }
    // 3.14 leaves ops queued in bootstrap mode (e.g. the DEC of a shadowed bitmap) until a later
    // inc/dec, so a commit right after the resize records a leaked block (fixed by 6096d91a).
  }

  /** apply_bops: run queued ops until none are left (more may be queued while applying). */
  private applyBops(): void {
    while (this.uncommitted.length) {
      const op = this.behaviour.bopLifo ? this.uncommitted.pop()! : this.uncommitted.shift()!;
      if (op.inc) this.ll.inc(op.block);
      else this.ll.dec(op.block);
    }
  }

  registerThreshold(threshold: number, fn: () => void): void {
    this.threshold = threshold;
    this.thresholdFn = fn;
  }

  private checkThreshold(): void {
    if (!this.thresholdFn) return;
    const v = this.getNrFree();
    const below = (x: number): boolean => x <= this.threshold;
    if (below(v) && !(this.thresholdValue !== null && below(this.thresholdValue))) this.thresholdFn();
    this.thresholdValue = v;
  }
}

// Space-map low level: follows drivers/md/persistent-data/dm-space-map-common.c and .h (Linux 3.14):
// bitmap blocks of 2-bit counts (sm_lookup_bitmap, sm_set_bitmap, sm_find_free), bitmap and index
// validators, struct ll_disk (sm_ll_init, sm_ll_extend, sm_ll_lookup(_bitmap), sm_ll_find_free_block,
// sm_ll_mutate/inc/dec/insert, sm_ll_commit), the metadata flavour with an in-core index block
// (metadata_ll_*) and the disk flavour with an index btree (disk_ll_*). Also the struct dm_space_map
// interface (drivers/md/persistent-data/dm-space-map.h).

import { dmBlockChecksum } from './crc32c.js';
import { MetadataError } from './errors.js';
import type { Validator } from './block-manager.js';
import { getU32, getU64, putU32, putU64, type BtreeInfo, type RebalancePolicy } from './btree-internal.js';
import { btreeEmpty, btreeInsert, btreeLookup } from './btree.js';
import { btreeRemove } from './btree-remove.js';
import type { TransactionManager } from './transaction-manager.js';

export const ENTRIES_PER_BLOCK = (4096 - 16) * 4; // 16320
export const MAX_METADATA_BITMAPS = 255;
export const DM_SM_METADATA_MAX_BLOCKS = MAX_METADATA_BITMAPS * ENTRIES_PER_BLOCK;
export const BITMAP_CSUM_XOR = 240779;
export const INDEX_CSUM_XOR = 160478;
export const SM_ROOT_SIZE = 32;

/** struct dm_space_map: reference counts for a range of blocks. */
export interface SpaceMap {
  getNrBlocks(): number;
  getNrFree(): number;
  getCount(b: number): number;
  countIsMoreThanOne(b: number): boolean;
  setCount(b: number, count: number): void;
  incBlock(b: number): void;
  decBlock(b: number): void;
  newBlock(): number;
  commit(): void;
  extend(extra: number): void;
  /** The 32-byte struct disk_sm_root. */
  copyRoot(): Uint8Array;
}

/**
 * Which kernel behaviour (and which seeded bugs) the space maps follow; built from a Variant by the
 * owner (impl/thin/mutants.ts).
 */
export interface SmBehaviour {
  /** 4feaef83 (later kernels): a new block must be free in both the old and the current map. */
  readonly allocCheckCurrent: boolean;
  /** Mutant thin-26: the allocation cursor is not advanced, so a block in use can be handed out. */
  readonly allocStaleCursor: boolean;
  /** Mutant thin-09: sm_ll_extend sets nr_blocks after allocating the new bitmaps. */
  readonly extendNrBlocksLate: boolean;
  /** Mutant thin-08: sm_metadata_extend does a single inc + commit pass. */
  readonly extendSinglePass: boolean;
  /** Mutant thin-10: the recursive block-op queue is applied LIFO. */
  readonly bopLifo: boolean;
  /** "dm space map disk: fix some book keeping" (4.12): freeing a block allocated this transaction gives it back to the free count. */
  readonly freeCountFixed: boolean;
  /** 6096d91a "fix occasional leak of a metadata block on resize": apply the queued ops when extend leaves bootstrap mode. */
  readonly extendAppliesBops: boolean;
  /** How the reference-count btree's removals rebalance (474e5595 or not; BtreeInfo.rebalance). */
  readonly rebalance: RebalancePolicy;
}

export const KERNEL_3_14_SM: SmBehaviour = {
  allocCheckCurrent: false,
  allocStaleCursor: false,
  extendNrBlocksLate: false,
  extendSinglePass: false,
  bopLifo: false,
  freeCountFixed: false,
  extendAppliesBops: false,
  rebalance: 'linux-3.14',
};

// ---- bitmap blocks ----

export const bitmapValidator: Validator = {
  name: 'sm_bitmap',
  prepareForWrite(d, b) {
    putU64(d, 8, b);
    putU32(d, 0, dmBlockChecksum(d, 4, BITMAP_CSUM_XOR));
  },
  check(d, b) {
    if (getU64(d, 8) !== b) throw new MetadataError('EILSEQ', `space map bitmap block ${b} has blocknr ${getU64(d, 8)}`);
    const c = dmBlockChecksum(d, 4, BITMAP_CSUM_XOR);
    if (c !== getU32(d, 0)) throw new MetadataError('EILSEQ', `space map bitmap block ${b} has a bad checksum (wanted ${c}, found ${getU32(d, 0)})`);
  },
};

export const indexValidator: Validator = {
  name: 'sm_index',
  prepareForWrite(d, b) {
    putU64(d, 8, b);
    putU32(d, 0, dmBlockChecksum(d, 4, INDEX_CSUM_XOR));
  },
  check(d, b) {
    if (getU64(d, 8) !== b) throw new MetadataError('EILSEQ', `metadata space map index block ${b} has blocknr ${getU64(d, 8)}`);
    const c = dmBlockChecksum(d, 4, INDEX_CSUM_XOR);
    if (c !== getU32(d, 0)) throw new MetadataError('EILSEQ', `metadata space map index block ${b} has a bad checksum (wanted ${c}, found ${getU32(d, 0)})`);
  },
};

/** sm_lookup_bitmap: the 2-bit count of entry e (bit 2k is the high bit, 2k+1 the low bit). */
export function lookupBitmap(d: Uint8Array, e: number): number {
  const byte = d[16 + (e >> 2)]!;
  const s = (e & 3) << 1;
  return (((byte >> s) & 1) << 1) | ((byte >> (s + 1)) & 1);
}

export function setBitmap(d: Uint8Array, e: number, v: number): void {
  const o = 16 + (e >> 2);
  const s = (e & 3) << 1;
  let byte = d[o]! & ~(3 << s);
  byte |= ((v >> 1) & 1) << s;
  byte |= (v & 1) << (s + 1);
  d[o] = byte;
}

/** sm_find_free: first zero entry in [begin, end), or -1. */
export function findFreeInBitmap(d: Uint8Array, begin: number, end: number): number {
  let e = begin;
  while (e < end) {
    if ((e & 3) === 0 && e + 4 <= end) {
      const byte = d[16 + (e >> 2)]!;
      // Each entry is free iff its two bits are 0; a byte with no 00 pair can be skipped.
      if ((byte & 0x03) && (byte & 0x0c) && (byte & 0x30) && (byte & 0xc0)) {
        e += 4;
        continue;
      }
    }
    if (lookupBitmap(d, e) === 0) return e;
    e++;
  }
  return -1;
}

// ---- index entries ----

export interface IndexEntry {
  blocknr: number;
  nrFree: number;
  noneFreeBefore: number;
}

export function decodeIndexEntry(d: Uint8Array, off: number): IndexEntry {
  return { blocknr: getU64(d, off), nrFree: getU32(d, off + 8), noneFreeBefore: getU32(d, off + 12) };
}

export function encodeIndexEntry(ie: IndexEntry, d: Uint8Array = new Uint8Array(16), off = 0): Uint8Array {
  putU64(d, off, ie.blocknr);
  putU32(d, off + 8, ie.nrFree);
  putU32(d, off + 12, ie.noneFreeBefore);
  return d;
}

export const enum AllocEvent {
  None = 0,
  Alloc = 1,
  Free = 2,
}

// ---- struct ll_disk ----

export abstract class LlDisk {
  nrBlocks = 0;
  nrAllocated = 0;
  bitmapRoot = 0;
  refCountRoot = 0;
  bitmapIndexChanged = false;
  readonly refCountInfo: BtreeInfo;

  constructor(
    readonly tm: TransactionManager,
    readonly behaviour: SmBehaviour,
  ) {
    this.refCountInfo = { tm, levels: 1, vt: { size: 4 }, upperLevelInc: false, rebalance: behaviour.rebalance };
  }

  /** dm_btree_empty for the ref-count tree. */
  refCountRootEmpty(): number {
    return btreeEmpty(this.refCountInfo);
  }

  abstract loadIE(index: number): IndexEntry;
  abstract saveIE(index: number, ie: IndexEntry): void;
  abstract maxEntries(): number;
  abstract commitIndex(): void;
  /** A copy for old_ll (memcpy of struct ll_disk). */
  abstract clone(): LlDisk;

  protected copyInto(o: LlDisk): void {
    o.nrBlocks = this.nrBlocks;
    o.nrAllocated = this.nrAllocated;
    o.bitmapRoot = this.bitmapRoot;
    o.refCountRoot = this.refCountRoot;
    o.bitmapIndexChanged = this.bitmapIndexChanged;
  }

  writeRoot(d: Uint8Array = new Uint8Array(SM_ROOT_SIZE), off = 0): Uint8Array {
    putU64(d, off, this.nrBlocks);
    putU64(d, off + 8, this.nrAllocated);
    putU64(d, off + 16, this.bitmapRoot);
    putU64(d, off + 24, this.refCountRoot);
    return d;
  }

  /** sm_ll_extend: grow by `extra` blocks, allocating (zeroed) bitmaps for new index entries. */
  extend(extra: number): void {
    const nrBlocks = this.nrBlocks + extra;
    const oldBlocks = Math.ceil(this.nrBlocks / ENTRIES_PER_BLOCK);
    const blocks = Math.ceil(nrBlocks / ENTRIES_PER_BLOCK);
    if (blocks > this.maxEntries()) throw new MetadataError('EINVAL', `space map too large: ${nrBlocks} blocks need ${blocks} bitmaps, at most ${this.maxEntries()}`);
    // The kernel sets nr_blocks before allocating so the new space can hold the new bitmaps.
    if (!this.behaviour.extendNrBlocksLate) this.nrBlocks = nrBlocks;
    for (let i = oldBlocks; i < blocks; i++) {
      const { block } = this.tm.newBlock(bitmapValidator);
      this.saveIE(i, { blocknr: block, nrFree: ENTRIES_PER_BLOCK, noneFreeBefore: 0 });
    }
    this.nrBlocks = nrBlocks;
  }

  lookupBitmap(b: number): number {
    const index = Math.floor(b / ENTRIES_PER_BLOCK);
    const ie = this.loadIE(index);
    const d = this.tm.readLock(ie.blocknr, bitmapValidator);
    return lookupBitmap(d, b - index * ENTRIES_PER_BLOCK);
  }

  lookupBigRefCount(b: number): number {
    const v = btreeLookup(this.refCountInfo, this.refCountRoot, [b]);
    if (!v) throw new MetadataError('ENODATA', `block ${b} is marked 3+ in its bitmap but has no entry in the ref-count tree`);
    return getU32(v, 0);
  }

  /** sm_ll_lookup: the full reference count. */
  lookup(b: number): number {
    if (b >= this.nrBlocks) throw new MetadataError('EINVAL', `block ${b} is beyond the space map (${this.nrBlocks} blocks)`);
    const r = this.lookupBitmap(b);
    return r === 3 ? this.lookupBigRefCount(b) : r;
  }

  /** sm_ll_find_free_block: first free block in [begin, end), or -1 (the kernel's -ENOSPC). */
  findFreeBlock(begin: number, end: number): number {
    const indexBegin = Math.floor(begin / ENTRIES_PER_BLOCK);
    const indexEnd = Math.ceil(end / ENTRIES_PER_BLOCK);
    let bitBegin = begin - indexBegin * ENTRIES_PER_BLOCK;
    const lastEnd = end - (indexEnd - 1) * ENTRIES_PER_BLOCK;
    for (let i = indexBegin; i < indexEnd; i++, bitBegin = 0) {
      const ie = this.loadIE(i);
      if (ie.nrFree === 0) continue;
      const d = this.tm.readLock(ie.blocknr, bitmapValidator);
      const bitEnd = i === indexEnd - 1 ? lastEnd : ENTRIES_PER_BLOCK;
      const pos = findFreeInBitmap(d, Math.max(bitBegin, ie.noneFreeBefore), bitEnd);
      if (pos < 0) continue;
      return i * ENTRIES_PER_BLOCK + pos;
    }
    return -1;
  }

  /** sm_ll_mutate: change one count; shadows the bitmap; overflow counts live in the ref-count tree. */
  mutate(b: number, mutator: (old: number) => number): AllocEvent {
    if (b >= this.nrBlocks) throw new MetadataError('EINVAL', `block ${b} is beyond the space map (${this.nrBlocks} blocks)`);
    const index = Math.floor(b / ENTRIES_PER_BLOCK);
    const bit = b - index * ENTRIES_PER_BLOCK;
    const ie = { ...this.loadIE(index) };
    const nb = this.tm.shadowBlock(ie.blocknr, bitmapValidator);
    ie.blocknr = nb.block;
    let old = lookupBitmap(nb.data, bit);
    if (old > 2) old = this.lookupBigRefCount(b);
    const refCount = mutator(old);
    if (refCount <= 2) {
      setBitmap(nb.data, bit, refCount);
      if (old > 2) this.refCountRoot = btreeRemove(this.refCountInfo, this.refCountRoot, [b]).root;
    } else {
      setBitmap(nb.data, bit, 3);
      const v = new Uint8Array(4);
      putU32(v, 0, refCount);
      this.refCountRoot = btreeInsert(this.refCountInfo, this.refCountRoot, [b], v).root;
    }
    let ev = AllocEvent.None;
    if (refCount && !old) {
      ev = AllocEvent.Alloc;
      this.nrAllocated++;
      ie.nrFree--;
      if (ie.noneFreeBefore === bit) ie.noneFreeBefore = bit + 1;
    } else if (old && !refCount) {
      ev = AllocEvent.Free;
      this.nrAllocated--;
      ie.nrFree++;
      ie.noneFreeBefore = Math.min(ie.noneFreeBefore, bit);
    }
    this.saveIE(index, ie);
    return ev;
  }

  insert(b: number, count: number): AllocEvent {
    return this.mutate(b, () => count);
  }

  inc(b: number): AllocEvent {
    return this.mutate(b, (old) => old + 1);
  }

  dec(b: number): AllocEvent {
    return this.mutate(b, (old) => {
      if (!old) throw new MetadataError('EINVAL', `unable to decrement the reference count of block ${b} below 0`);
      return old - 1;
    });
  }

  /** sm_ll_commit. */
  commit(): void {
    if (this.bitmapIndexChanged) {
      this.commitIndex();
      this.bitmapIndexChanged = false;
    }
  }
}

/** The metadata flavour: up to 255 index entries held in core, saved to one index block. */
export class MetadataLl extends LlDisk {
  mi: IndexEntry[] = [];

  loadIE(index: number): IndexEntry {
    return this.mi[index] ?? { blocknr: 0, nrFree: 0, noneFreeBefore: 0 };
  }

  saveIE(index: number, ie: IndexEntry): void {
    this.bitmapIndexChanged = true;
    this.mi[index] = { ...ie };
  }

  maxEntries(): number {
    return MAX_METADATA_BITMAPS;
  }

  private fillIndex(d: Uint8Array): void {
    d.fill(0, 16);
    for (let i = 0; i < this.mi.length; i++) {
      const ie = this.mi[i];
      if (ie) encodeIndexEntry(ie, d, 16 + 16 * i);
    }
  }

  /** metadata_ll_init_index. */
  initIndex(): void {
    const { block, data } = this.tm.newBlock(indexValidator);
    this.fillIndex(data);
    this.bitmapRoot = block;
  }

  /** metadata_ll_open: read the index block into core. */
  openIndex(): void {
    const d = this.tm.readLock(this.bitmapRoot, indexValidator);
    this.mi = [];
    for (let i = 0; i < MAX_METADATA_BITMAPS; i++) this.mi.push(decodeIndexEntry(d, 16 + 16 * i));
  }

  /** metadata_ll_commit: shadow the index block and write the in-core index into it. */
  commitIndex(): void {
    const s = this.tm.shadowBlock(this.bitmapRoot, indexValidator);
    this.fillIndex(s.data);
    this.bitmapRoot = s.block;
  }

  clone(): MetadataLl {
    const o = new MetadataLl(this.tm, this.behaviour);
    this.copyInto(o);
    o.mi = this.mi.map((e) => ({ ...e }));
    return o;
  }
}

/** The disk flavour (data space map): index entries in a btree keyed by bitmap number. */
export class DiskLl extends LlDisk {
  readonly bitmapInfo: BtreeInfo;

  constructor(tm: TransactionManager, behaviour: SmBehaviour) {
    super(tm, behaviour);
    this.bitmapInfo = { tm, levels: 1, vt: { size: 16 }, upperLevelInc: false };
  }

  loadIE(index: number): IndexEntry {
    const v = btreeLookup(this.bitmapInfo, this.bitmapRoot, [index]);
    if (!v) throw new MetadataError('ENODATA', `data space map has no index entry for bitmap ${index}`);
    return decodeIndexEntry(v, 0);
  }

  saveIE(index: number, ie: IndexEntry): void {
    this.bitmapRoot = btreeInsert(this.bitmapInfo, this.bitmapRoot, [index], encodeIndexEntry(ie)).root;
  }

  maxEntries(): number {
    return Number.MAX_SAFE_INTEGER;
  }

  initIndex(): void {
    this.bitmapRoot = btreeEmpty(this.bitmapInfo);
  }

  commitIndex(): void {}

  clone(): DiskLl {
    const o = new DiskLl(this.tm, this.behaviour);
    this.copyInto(o);
    return o;
  }
}

export function readSmRoot(d: Uint8Array, off: number): { nrBlocks: number; nrAllocated: number; bitmapRoot: number; refCountRoot: number } {
  return { nrBlocks: getU64(d, off), nrAllocated: getU64(d, off + 8), bitmapRoot: getU64(d, off + 16), refCountRoot: getU64(d, off + 24) };
}

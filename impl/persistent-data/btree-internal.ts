// On-disk btree node layout and helpers: follows drivers/md/persistent-data/dm-btree-internal.h
// (struct node_header, struct btree_node, value_ptr, value64, calc_max_entries in dm-btree.c,
// lower_bound/bsearch in dm-btree.c). All integers little-endian; 64-bit values are JS numbers
// (block numbers and keys here stay below 2^53).

import type { TransactionManager } from './transaction-manager.js';

export const INTERNAL_NODE = 1;
export const LEAF_NODE = 2;
export const NODE_HEADER_SIZE = 32;
export const BTREE_CSUM_XOR = 121107;

export function getU32(d: Uint8Array, off: number): number {
  return (d[off]! | (d[off + 1]! << 8) | (d[off + 2]! << 16) | (d[off + 3]! << 24)) >>> 0;
}

export function putU32(d: Uint8Array, off: number, v: number): void {
  d[off] = v & 0xff;
  d[off + 1] = (v >>> 8) & 0xff;
  d[off + 2] = (v >>> 16) & 0xff;
  d[off + 3] = (v >>> 24) & 0xff;
}

export function getU64(d: Uint8Array, off: number): number {
  return getU32(d, off) + getU32(d, off + 4) * 0x100000000;
}

export function putU64(d: Uint8Array, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`64-bit field value ${v} is not a non-negative safe integer`);
  putU32(d, off, v >>> 0);
  putU32(d, off + 4, Math.floor(v / 0x100000000) >>> 0);
}

// node_header: csum(4) flags(4) blocknr(8) nr_entries(4) max_entries(4) value_size(4) padding(4)
export const nodeFlags = (n: Uint8Array): number => getU32(n, 4);
export const setNodeFlags = (n: Uint8Array, f: number): void => putU32(n, 4, f);
export const nrEntries = (n: Uint8Array): number => getU32(n, 16);
export const setNrEntries = (n: Uint8Array, v: number): void => putU32(n, 16, v);
export const maxEntries = (n: Uint8Array): number => getU32(n, 20);
export const setMaxEntries = (n: Uint8Array, v: number): void => putU32(n, 20, v);
export const valueSize = (n: Uint8Array): number => getU32(n, 24);
export const setValueSize = (n: Uint8Array, v: number): void => putU32(n, 24, v);
export const isLeaf = (n: Uint8Array): boolean => (nodeFlags(n) & LEAF_NODE) !== 0;
export const isInternal = (n: Uint8Array): boolean => (nodeFlags(n) & INTERNAL_NODE) !== 0;

export const keyOffset = (i: number): number => NODE_HEADER_SIZE + 8 * i;
export const keyAt = (n: Uint8Array, i: number): number => getU64(n, NODE_HEADER_SIZE + 8 * i);
export const setKeyAt = (n: Uint8Array, i: number, k: number): void => putU64(n, NODE_HEADER_SIZE + 8 * i, k);
/** Byte offset of value i (value_base + i*value_size). */
export const valueOffset = (n: Uint8Array, i: number): number => NODE_HEADER_SIZE + 8 * maxEntries(n) + valueSize(n) * i;
export const value64 = (n: Uint8Array, i: number): number => getU64(n, valueOffset(n, i));
export const setValue64 = (n: Uint8Array, i: number, v: number): void => putU64(n, valueOffset(n, i), v);
export const valueBytes = (n: Uint8Array, i: number): Uint8Array => {
  const o = valueOffset(n, i);
  return n.subarray(o, o + valueSize(n));
};

/** calc_max_entries: the largest multiple of 3 entries that fits in a block. */
export function calcMaxEntries(valueSize: number, blockSize = 4096): number {
  const total = Math.floor((blockSize - NODE_HEADER_SIZE) / (8 + valueSize));
  return 3 * Math.floor(total / 3);
}

/** bsearch(n, key, want_hi=0): index of key or the entry just below it (-1 if none). */
export function lowerBound(n: Uint8Array, key: number): number {
  let lo = -1;
  let hi = nrEntries(n);
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >> 1);
    const mk = keyAt(n, mid);
    if (mk === key) return mid;
    if (mk < key) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** A value type (struct dm_btree_value_type): size and optional reference callbacks. */
export interface ValueType {
  readonly size: number;
  readonly inc?: (value: Uint8Array) => void;
  readonly dec?: (value: Uint8Array) => void;
  readonly equal?: (a: Uint8Array, b: Uint8Array) => boolean;
}

/**
 * dm_btree_remove's rebalancing. 'linux-3.14': `__rebalance2` merges two children below
 * 2 · (max/3) + 1 entries, so the removal after a rebalance can leave one at max/3 − 1.
 * 'keeps-third': 474e5595 "dm btree: increase rebalance threshold in __rebalance2()" (v5.5) merges
 * below 2 · (max/3 + 1). 'none': seeded mutant, no rebalancing (nodes may drop below a third full).
 */
export type RebalancePolicy = 'linux-3.14' | 'keeps-third' | 'none';

/** struct dm_btree_info. */
export interface BtreeInfo {
  readonly tm: TransactionManager;
  readonly levels: number;
  readonly vt: ValueType;
  /**
   * Whether the le64 value type of the upper levels of a multi-level tree counts references to
   * sub-tree roots when a shared node is shadowed. 3.14 does not (its le64_type has inc = NULL);
   * later kernels do (init_le64_type, "dm btree: add ref counting ops for the leaves of top level
   * btrees").
   */
  readonly upperLevelInc: boolean;
  /** How dm_btree_remove rebalances children before a removal (default 'linux-3.14'). */
  readonly rebalance?: RebalancePolicy;
}

/** The le64 value type for upper levels (sub-tree roots). */
export function le64Type(info: BtreeInfo): ValueType {
  if (!info.upperLevelInc) return { size: 8 };
  const tm = info.tm;
  return { size: 8, inc: (v) => tm.inc(getU64(v, 0)), dec: (v) => tm.dec(getU64(v, 0)) };
}

export const MAX_SPINE_DEPTH = 64;

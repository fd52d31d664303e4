// Btree: follows drivers/md/persistent-data/dm-btree.c (Linux 3.14): dm_btree_empty,
// dm_btree_lookup (btree_lookup_raw), dm_btree_insert/_notify (insert, btree_insert_raw,
// btree_split_sibling, btree_split_beneath, insert_at), dm_btree_del (the del_stack walk),
// dm_btree_find_highest_key. Removal is in btree-remove.ts.
//
// Multi-level trees (levels > 1) store sub-tree roots as le64 values in the upper levels.

import { MetadataError } from './errors.js';
import {
  INTERNAL_NODE,
  LEAF_NODE,
  MAX_SPINE_DEPTH,
  calcMaxEntries,
  isInternal,
  isLeaf,
  keyAt,
  keyOffset,
  le64Type,
  lowerBound,
  maxEntries,
  nrEntries,
  putU64,
  setKeyAt,
  setMaxEntries,
  setNodeFlags,
  setNrEntries,
  setValue64,
  setValueSize,
  value64,
  valueBytes,
  valueOffset,
  valueSize,
  type BtreeInfo,
  type ValueType,
} from './btree-internal.js';
import { ShadowSpine, btreeNodeValidator, type SpineNode } from './btree-spine.js';

export { btreeNodeValidator };

/** dm_btree_empty: a new empty leaf root for a tree of this value size. */
export function btreeEmpty(info: BtreeInfo): number {
  const { block, data } = info.tm.newBlock(btreeNodeValidator);
  setNodeFlags(data, LEAF_NODE);
  setNrEntries(data, 0);
  setMaxEntries(data, calcMaxEntries(info.vt.size));
  setValueSize(data, info.vt.size);
  return block;
}

/** dm_btree_lookup: the value bytes (a copy), or null for -ENODATA. */
export function btreeLookup(info: BtreeInfo, root: number, keys: readonly number[]): Uint8Array | null {
  let block = root;
  for (let level = 0; level < info.levels; level++) {
    const key = keys[level]!;
    for (;;) {
      const n = info.tm.readLock(block, btreeNodeValidator);
      const i = lowerBound(n, key);
      if (i < 0 || i >= nrEntries(n)) return null;
      if (isInternal(n)) {
        block = value64(n, i);
        continue;
      }
      if (keyAt(n, i) !== key) return null;
      if (level === info.levels - 1) return valueBytes(n, i).slice();
      block = value64(n, i);
      break;
    }
  }
  return null;
}

/** insert_at: put (key, value) at index, shifting later entries right. */
export function insertAt(n: Uint8Array, index: number, key: number, value: Uint8Array): void {
  const nr = nrEntries(n);
  const max = maxEntries(n);
  if (index > nr || index >= max) throw new MetadataError('ENOMEM', 'too many entries in btree node for insert');
  const vs = valueSize(n);
  if (index < nr) {
    n.copyWithin(keyOffset(index + 1), keyOffset(index), keyOffset(nr));
    const vo = valueOffset(n, index);
    n.copyWithin(vo + vs, vo, valueOffset(n, nr));
  }
  setKeyAt(n, index, key);
  n.set(value.subarray(0, vs), valueOffset(n, index));
  setNrEntries(n, nr + 1);
}

function copyHeader(dst: Uint8Array, src: Uint8Array): void {
  dst.set(src.subarray(4, 8), 4); // flags
  dst.set(src.subarray(20, 28), 20); // max_entries, value_size
}

/** btree_split_sibling: split a full non-root node into itself and a new right sibling. */
function splitSibling(s: ShadowSpine, parentIndex: number, key: number): void {
  const left = s.current();
  const right = s.info.tm.newBlock(btreeNodeValidator);
  const ln = left.data;
  const rn = right.data;
  const nr = nrEntries(ln);
  const nrLeft = nr >> 1;
  const nrRight = nr - nrLeft;
  setNrEntries(ln, nrLeft);
  copyHeader(rn, ln);
  setNrEntries(rn, nrRight);
  rn.set(ln.subarray(keyOffset(nrLeft), keyOffset(nr)), keyOffset(0));
  const vs = valueSize(ln);
  rn.set(ln.subarray(valueOffset(ln, nrLeft), valueOffset(ln, nrLeft) + vs * nrRight), valueOffset(rn, 0));
  const parent = s.parent();
  if (!parent) throw new MetadataError('EINVAL', 'btree split of a non-root node without a parent');
  const pn = parent.data;
  setValue64(pn, parentIndex, left.block);
  const loc = new Uint8Array(8);
  putU64(loc, 0, right.block);
  insertAt(pn, parentIndex + 1, keyAt(rn, 0), loc);
  s.nodes[1] = key < keyAt(rn, 0) ? left : { block: right.block, data: rn };
}

/** btree_split_beneath: the root is full; move its halves into two new children. */
function splitBeneath(s: ShadowSpine, key: number): void {
  const parent = s.current();
  const pn = parent.data;
  const left = s.info.tm.newBlock(btreeNodeValidator);
  const right = s.info.tm.newBlock(btreeNodeValidator);
  const ln = left.data;
  const rn = right.data;
  const nr = nrEntries(pn);
  const nrLeft = nr >> 1;
  const nrRight = nr - nrLeft;
  copyHeader(ln, pn);
  setNrEntries(ln, nrLeft);
  copyHeader(rn, pn);
  setNrEntries(rn, nrRight);
  ln.set(pn.subarray(keyOffset(0), keyOffset(nrLeft)), keyOffset(0));
  rn.set(pn.subarray(keyOffset(nrLeft), keyOffset(nr)), keyOffset(0));
  const vs = valueSize(pn);
  ln.set(pn.subarray(valueOffset(pn, 0), valueOffset(pn, 0) + nrLeft * vs), valueOffset(ln, 0));
  rn.set(pn.subarray(valueOffset(pn, nrLeft), valueOffset(pn, nrLeft) + nrRight * vs), valueOffset(rn, 0));
  // The root becomes an internal node pointing at the two halves (stale bytes beyond stay).
  setNodeFlags(pn, INTERNAL_NODE);
  setNrEntries(pn, 2);
  setMaxEntries(pn, calcMaxEntries(8));
  setValueSize(pn, 8);
  setKeyAt(pn, 0, keyAt(ln, 0));
  setValue64(pn, 0, left.block);
  setKeyAt(pn, 1, keyAt(rn, 0));
  setValue64(pn, 1, right.block);
  const child: SpineNode = key < keyAt(rn, 0) ? left : right;
  s.nodes = [parent, child];
}

/** btree_insert_raw: shadow down to the leaf for `key`, splitting full nodes; returns the index. */
function insertRaw(s: ShadowSpine, root: number, vt: ValueType, key: number, index: number): number {
  let i = index;
  let top = true;
  let block = root;
  let n: Uint8Array;
  for (;;) {
    s.step(block, vt);
    const parent = s.parent();
    if (parent && i >= 0) setValue64(parent.data, i, s.current().block);
    n = s.current().data;
    if (nrEntries(n) === maxEntries(n)) {
      if (top) splitBeneath(s, key);
      else splitSibling(s, i, key);
    }
    n = s.current().data;
    i = lowerBound(n, key);
    if (isLeaf(n)) break;
    if (i < 0) {
      // The new key is below every key: lower the first key's bound.
      setKeyAt(n, 0, key);
      i = 0;
    }
    block = value64(n, i);
    top = false;
  }
  if (i < 0 || keyAt(n, i) !== key) i++;
  return i;
}

/**
 * dm_btree_insert_notify: insert or overwrite; returns the new root and whether a new key was
 * added. Overwriting calls the value type's dec on the old value unless `equal` says they match.
 */
export function btreeInsert(
  info: BtreeInfo,
  root: number,
  keys: readonly number[],
  value: Uint8Array,
): { root: number; inserted: boolean } {
  const s = new ShadowSpine(info);
  const upper = le64Type(info);
  let block = root;
  let index = -1;
  const last = info.levels - 1;
  for (let level = 0; level < last; level++) {
    index = insertRaw(s, block, upper, keys[level]!, index);
    const n = s.current().data;
    const needInsert = index >= nrEntries(n) || keyAt(n, index) !== keys[level];
    if (needInsert) {
      const sub = btreeEmpty({ ...info, levels: 1 });
      const v = new Uint8Array(8);
      putU64(v, 0, sub);
      insertAt(n, index, keys[level]!, v);
    }
    block = value64(n, index);
  }
  index = insertRaw(s, block, info.vt, keys[last]!, index);
  const n = s.current().data;
  const needInsert = index >= nrEntries(n) || keyAt(n, index) !== keys[last];
  if (needInsert) {
    insertAt(n, index, keys[last]!, value);
  } else {
    const old = valueBytes(n, index);
    if (info.vt.dec && !(info.vt.equal && info.vt.equal(old, value))) info.vt.dec(old.slice());
    n.set(value.subarray(0, info.vt.size), valueOffset(n, index));
  }
  return { root: s.root, inserted: needInsert };
}

/**
 * dm_btree_del: drop a reference to a whole tree. Unshared nodes are walked and freed; leaves of
 * the last level run the value type's dec; shared nodes just lose one reference.
 */
export function btreeDel(info: BtreeInfo, root: number): void {
  interface Frame {
    block: number;
    n: Uint8Array;
    level: number;
    nr: number;
    cur: number;
  }
  const tm = info.tm;
  const stack: Frame[] = [];
  const push = (b: number, level: number): void => {
    if (stack.length >= MAX_SPINE_DEPTH - 1) throw new MetadataError('ENOMEM', 'btree deletion stack out of memory');
    if (tm.ref(b) > 1) {
      tm.dec(b);
      return;
    }
    const n = tm.readLock(b, btreeNodeValidator);
    stack.push({ block: b, n, level, nr: nrEntries(n), cur: 0 });
  };
  const pop = (): void => {
    const f = stack.pop()!;
    tm.dec(f.block);
  };
  push(root, 0);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.cur >= f.nr) {
      pop();
      continue;
    }
    if (isInternal(f.n)) {
      const b = value64(f.n, f.cur++);
      push(b, f.level);
    } else if (f.level < info.levels - 1) {
      const b = value64(f.n, f.cur++);
      push(b, f.level + 1);
    } else {
      if (info.vt.dec) for (let i = 0; i < f.nr; i++) info.vt.dec(valueBytes(f.n, i).slice());
      pop();
    }
  }
}

/** dm_btree_find_highest_key for a single-level tree: null if empty. */
export function btreeFindHighestKey(info: BtreeInfo, root: number): number | null {
  let block = root;
  for (;;) {
    const n = info.tm.readLock(block, btreeNodeValidator);
    const nr = nrEntries(n);
    if (!nr) return null;
    if (isLeaf(n)) return keyAt(n, nr - 1);
    block = value64(n, nr - 1);
  }
}

/** Visit every (key, value) of a single-level tree in key order (read-only). */
export function btreeForEach(info: BtreeInfo, root: number, fn: (key: number, value: Uint8Array) => void): void {
  const n = info.tm.readLock(root, btreeNodeValidator);
  const nr = nrEntries(n);
  if (isInternal(n)) {
    for (let i = 0; i < nr; i++) btreeForEach(info, value64(n, i), fn);
  } else {
    for (let i = 0; i < nr; i++) fn(keyAt(n, i), valueBytes(n, i));
  }
}

export { maxEntries };

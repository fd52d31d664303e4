// Btree removal with rebalancing: follows drivers/md/persistent-data/dm-btree-remove.c (Linux 3.14):
// dm_btree_remove, remove_raw, rebalance_children, rebalance2/__rebalance2, rebalance3/__rebalance3,
// delete_center_node, redistribute3, shift, node_shift, node_copy, delete_at, init_child.
// On the way down every child about to be entered is merged with or refilled from a sibling, so no
// non-root node ends up below max_entries/3 entries.

import { MetadataError } from './errors.js';
import {
  isLeaf,
  keyAt,
  keyOffset,
  le64Type,
  lowerBound,
  maxEntries,
  nrEntries,
  setKeyAt,
  setNrEntries,
  setValue64,
  value64,
  valueBytes,
  valueOffset,
  valueSize,
  type BtreeInfo,
  type ValueType,
} from './btree-internal.js';
import { ShadowSpine, btreeNodeValidator, incChildren } from './btree-spine.js';

/** node_shift: shift>0 moves entries right by shift; shift<0 drops the first -shift entries. */
function nodeShift(n: Uint8Array, shift: number): void {
  const nr = nrEntries(n);
  const vs = valueSize(n);
  if (shift < 0) {
    const s = -shift;
    if (s > nr) throw new MetadataError('EINVAL', 'btree node_shift beyond entries');
    n.copyWithin(keyOffset(0), keyOffset(s), keyOffset(nr));
    n.copyWithin(valueOffset(n, 0), valueOffset(n, s), valueOffset(n, nr));
  } else if (shift > 0) {
    if (nr + shift > maxEntries(n)) throw new MetadataError('EINVAL', 'btree node_shift overflows the node');
    n.copyWithin(keyOffset(shift), keyOffset(0), keyOffset(nr));
    n.copyWithin(valueOffset(n, 0) + shift * vs, valueOffset(n, 0), valueOffset(n, nr));
  }
}

/** node_copy: shift<0 appends right's first -shift entries to left; shift>0 copies left's last shift entries to right's front. */
function nodeCopy(left: Uint8Array, right: Uint8Array, shift: number): void {
  const nrLeft = nrEntries(left);
  const vs = valueSize(left);
  if (vs !== valueSize(right)) throw new MetadataError('EINVAL', 'btree siblings with different value sizes');
  if (shift < 0) {
    const s = -shift;
    if (nrLeft + s > maxEntries(left)) throw new MetadataError('EINVAL', 'btree node_copy overflows the left node');
    left.set(right.subarray(keyOffset(0), keyOffset(s)), keyOffset(nrLeft));
    left.set(right.subarray(valueOffset(right, 0), valueOffset(right, s)), valueOffset(left, nrLeft));
  } else {
    if (shift > maxEntries(right)) throw new MetadataError('EINVAL', 'btree node_copy overflows the right node');
    right.set(left.subarray(keyOffset(nrLeft - shift), keyOffset(nrLeft)), keyOffset(0));
    right.set(left.subarray(valueOffset(left, nrLeft - shift), valueOffset(left, nrLeft)), valueOffset(right, 0));
  }
}

/** delete_at. */
export function deleteAt(n: Uint8Array, index: number): void {
  const nr = nrEntries(n);
  if (index >= nr) throw new MetadataError('EINVAL', `btree delete_at index ${index} >= ${nr}`);
  const toCopy = nr - (index + 1);
  if (toCopy) {
    n.copyWithin(keyOffset(index), keyOffset(index + 1), keyOffset(nr));
    n.copyWithin(valueOffset(n, index), valueOffset(n, index + 1), valueOffset(n, nr));
  }
  setNrEntries(n, nr - 1);
}

const mergeThreshold = (n: Uint8Array): number => Math.floor(maxEntries(n) / 3);

interface Child {
  index: number;
  block: number;
  n: Uint8Array;
}

/** init_child: shadow the child at `index` of the (already shadowed) parent and re-point the parent. */
function initChild(info: BtreeInfo, vt: ValueType, parent: Uint8Array, index: number): Child {
  const root = value64(parent, index);
  const s = info.tm.shadowBlock(root, btreeNodeValidator);
  if (s.incChildren) incChildren(info.tm, s.data, vt);
  setValue64(parent, index, s.block);
  return { index, block: s.block, n: s.data };
}

/** shift(left, right, count): count>0 moves left's tail to right; count<0 moves right's head to left. */
function shift(left: Uint8Array, right: Uint8Array, count: number): void {
  const nrLeft = nrEntries(left);
  const nrRight = nrEntries(right);
  const max = maxEntries(left);
  if (max !== maxEntries(right)) throw new MetadataError('EINVAL', 'btree siblings with different max_entries');
  if (nrLeft - count > max || nrRight + count > max) throw new MetadataError('EINVAL', 'btree shift overflows a node');
  if (!count) return;
  if (count > 0) {
    nodeShift(right, count);
    nodeCopy(left, right, count);
  } else {
    nodeCopy(left, right, count);
    nodeShift(right, count);
  }
  setNrEntries(left, nrLeft - count);
  setNrEntries(right, nrRight + count);
}

function rebalance2Nodes(info: BtreeInfo, parent: Uint8Array, l: Child, r: Child): void {
  const left = l.n;
  const right = r.n;
  const nrLeft = nrEntries(left);
  const nrRight = nrEntries(right);
  // 3.14 merges below 2·t + 1 (t = max/3): at exactly 2·t + 1 it rebalances to t / t + 1 and the
  // removal may then take the left child to t − 1. 474e5595 merges below 2·(t + 1).
  const threshold = info.rebalance === 'keeps-third' ? 2 * (mergeThreshold(left) + 1) : 2 * mergeThreshold(left) + 1;
  if (nrLeft + nrRight < threshold) {
    // Merge right into left; right's children stay referenced through left.
    nodeCopy(left, right, -nrRight);
    setNrEntries(left, nrLeft + nrRight);
    deleteAt(parent, r.index);
    info.tm.dec(r.block);
  } else {
    const targetLeft = Math.floor((nrLeft + nrRight) / 2);
    shift(left, right, nrLeft - targetLeft);
    setKeyAt(parent, r.index, keyAt(right, 0));
  }
}

function rebalance2(s: ShadowSpine, info: BtreeInfo, vt: ValueType, leftIndex: number): void {
  const parent = s.current().data;
  const left = initChild(info, vt, parent, leftIndex);
  const right = initChild(info, vt, parent, leftIndex + 1);
  rebalance2Nodes(info, parent, left, right);
}

function deleteCenterNode(info: BtreeInfo, parent: Uint8Array, l: Child, c: Child, r: Child): void {
  const left = l.n;
  const center = c.n;
  const right = r.n;
  const nrLeft = nrEntries(left);
  const nrCenter = nrEntries(center);
  const nrRight = nrEntries(right);
  const max = maxEntries(left);
  let sh = Math.min(max - nrLeft, nrCenter);
  nodeCopy(left, center, -sh);
  setNrEntries(left, nrLeft + sh);
  if (sh !== nrCenter) {
    sh = nrCenter - sh;
    if (nrRight + sh > max) throw new MetadataError('EINVAL', 'btree delete_center_node overflows the right node');
    nodeShift(right, sh);
    nodeCopy(center, right, sh);
    setNrEntries(right, nrRight + sh);
  }
  setKeyAt(parent, r.index, keyAt(right, 0));
  deleteAt(parent, c.index);
  r.index--;
  info.tm.dec(c.block);
  rebalance2Nodes(info, parent, l, r);
}

function redistribute3(parent: Uint8Array, c: Child, r: Child, left: Uint8Array, center: Uint8Array, right: Uint8Array): void {
  let nrLeft = nrEntries(left);
  const nrCenter = nrEntries(center);
  let nrRight = nrEntries(right);
  const target = Math.floor((nrLeft + nrCenter + nrRight) / 3);
  if (nrLeft < nrRight) {
    let s = nrLeft - target;
    if (s < 0 && nrCenter < -s) {
      shift(left, center, nrCenter);
      s = nrCenter - target;
      shift(left, right, s);
      nrRight += s;
    } else shift(left, center, s);
    shift(center, right, target - nrRight);
  } else {
    let s = target - nrRight;
    if (s > 0 && nrCenter < s) {
      shift(center, right, nrCenter);
      s = target - nrCenter;
      shift(left, right, s);
      nrLeft -= s;
    } else shift(center, right, s);
    shift(left, center, nrLeft - target);
  }
  setKeyAt(parent, c.index, keyAt(center, 0));
  setKeyAt(parent, r.index, keyAt(right, 0));
}

function rebalance3(s: ShadowSpine, info: BtreeInfo, vt: ValueType, leftIndex: number): void {
  const parent = s.current().data;
  const l = initChild(info, vt, parent, leftIndex);
  const c = initChild(info, vt, parent, leftIndex + 1);
  const r = initChild(info, vt, parent, leftIndex + 2);
  const threshold = mergeThreshold(l.n) * 4 + 1;
  if (nrEntries(l.n) + nrEntries(c.n) + nrEntries(r.n) < threshold) deleteCenterNode(info, parent, l, c, r);
  else redistribute3(parent, c, r, l.n, c.n, r.n);
}

/** rebalance_children: make the child we are about to enter safe to delete from. */
function rebalanceChildren(s: ShadowSpine, info: BtreeInfo, vt: ValueType, key: number): void {
  const n = s.current().data;
  if (nrEntries(n) === 1) {
    // A single child: pull it up into this node (the tree loses a level).
    const b = value64(n, 0);
    const child = info.tm.readLock(b, btreeNodeValidator);
    n.set(child);
    info.tm.dec(b);
    return;
  }
  const i = lowerBound(n, key);
  if (i < 0) throw new MetadataError('ENODATA', `key ${key} not found in btree`);
  const hasLeft = i > 0;
  const hasRight = i < nrEntries(n) - 1;
  if (!hasLeft) rebalance2(s, info, vt, i);
  else if (!hasRight) rebalance2(s, info, vt, i - 1);
  else rebalance3(s, info, vt, i - 1);
}

function doLeaf(n: Uint8Array, key: number): number {
  const i = lowerBound(n, key);
  if (i < 0 || i >= nrEntries(n) || keyAt(n, i) !== key) throw new MetadataError('ENODATA', `key ${key} not found in btree`);
  return i;
}

function removeRaw(s: ShadowSpine, info: BtreeInfo, vt: ValueType, root: number, key: number, index: number): number {
  let i = index;
  let block = root;
  for (;;) {
    s.step(block, vt);
    const parent = s.parent();
    if (parent) setValue64(parent.data, i, s.current().block);
    let n = s.current().data;
    if (isLeaf(n)) return doLeaf(n, key);
    if (info.rebalance !== 'none') rebalanceChildren(s, info, vt, key);
    n = s.current().data;
    if (isLeaf(n)) return doLeaf(n, key);
    i = lowerBound(n, key);
    if (i < 0) throw new MetadataError('ENODATA', `key ${key} not found in btree`);
    block = value64(n, i);
  }
}

/**
 * dm_btree_remove: delete `keys`. Like the kernel, the new (shadowed) root is returned even when
 * the key is absent (`found` false, the kernel's -ENODATA): the nodes on the path were already
 * copied, so callers must adopt the returned root either way.
 */
export function btreeRemove(info: BtreeInfo, root: number, keys: readonly number[]): { root: number; found: boolean } {
  const s = new ShadowSpine(info);
  const last = info.levels - 1;
  const upper = le64Type(info);
  let block = root;
  let index = 0;
  try {
    for (let level = 0; level < info.levels; level++) {
      index = removeRaw(s, info, level === last ? info.vt : upper, block, keys[level]!, index);
      const n = s.current().data;
      if (level !== last) {
        block = value64(n, index);
        continue;
      }
      if (info.vt.dec) info.vt.dec(valueBytes(n, index).slice());
      deleteAt(n, index);
    }
  } catch (e) {
    if (e instanceof MetadataError && e.errno === 'ENODATA') return { root: s.root >= 0 ? s.root : root, found: false };
    throw e;
  }
  return { root: s.root, found: true };
}

// Btree node validator and the shadow spine: follows drivers/md/persistent-data/dm-btree-spine.c
// (node_prepare_for_write, node_check, bn_shadow, shadow_step, shadow_current/parent/root) and
// inc_children from dm-btree.c.

import { dmBlockChecksum } from './crc32c.js';
import { MetadataError } from './errors.js';
import type { Validator } from './block-manager.js';
import {
  BTREE_CSUM_XOR,
  INTERNAL_NODE,
  LEAF_NODE,
  NODE_HEADER_SIZE,
  getU32,
  getU64,
  isInternal,
  maxEntries,
  nodeFlags,
  nrEntries,
  putU32,
  putU64,
  value64,
  valueBytes,
  valueSize,
  type BtreeInfo,
  type ValueType,
} from './btree-internal.js';
import type { TransactionManager } from './transaction-manager.js';

export const btreeNodeValidator: Validator = {
  name: 'btree_node',
  prepareForWrite(d, b) {
    putU64(d, 8, b);
    putU32(d, 0, dmBlockChecksum(d, 4, BTREE_CSUM_XOR));
  },
  check(d, b) {
    const at = getU64(d, 8);
    if (at !== b) throw new MetadataError('EILSEQ', `btree node block ${b} has blocknr ${at} (misplaced or not a btree node)`);
    const csum = dmBlockChecksum(d, 4, BTREE_CSUM_XOR);
    if (csum !== getU32(d, 0)) {
      throw new MetadataError('EILSEQ', `btree node block ${b} has a bad checksum (wanted ${csum}, found ${getU32(d, 0)})`);
    }
    const vs = valueSize(d);
    if (NODE_HEADER_SIZE + (8 + vs) * maxEntries(d) > d.length) {
      throw new MetadataError('EILSEQ', `btree node block ${b}: max_entries ${maxEntries(d)} × (8+${vs}) does not fit a block`);
    }
    if (nrEntries(d) > maxEntries(d)) throw new MetadataError('EILSEQ', `btree node block ${b}: nr_entries ${nrEntries(d)} > max_entries ${maxEntries(d)}`);
    const f = nodeFlags(d);
    if (!(f & INTERNAL_NODE) && !(f & LEAF_NODE)) throw new MetadataError('EILSEQ', `btree node block ${b}: flags ${f} are neither INTERNAL nor LEAF`);
  },
};

/** inc_children: a shared node was copied, so everything it points at gains a reference. */
export function incChildren(tm: TransactionManager, n: Uint8Array, vt: ValueType): void {
  const nr = nrEntries(n);
  if (isInternal(n)) for (let i = 0; i < nr; i++) tm.inc(value64(n, i));
  else if (vt.inc) for (let i = 0; i < nr; i++) vt.inc(valueBytes(n, i));
}

export interface SpineNode {
  block: number;
  data: Uint8Array;
}

/** bn_shadow: shadow a node and, if it was shared, take references on its children. */
export function bnShadow(info: BtreeInfo, orig: number, vt: ValueType): SpineNode {
  const s = info.tm.shadowBlock(orig, btreeNodeValidator);
  if (s.incChildren) incChildren(info.tm, s.data, vt);
  return { block: s.block, data: s.data };
}

/** struct shadow_spine: the last two shadowed nodes on the way down, and the new root. */
export class ShadowSpine {
  nodes: SpineNode[] = [];
  root = -1;

  constructor(readonly info: BtreeInfo) {}

  step(b: number, vt: ValueType): void {
    if (this.nodes.length === 2) this.nodes.shift();
    const n = bnShadow(this.info, b, vt);
    if (this.nodes.length === 0 && this.root < 0) this.root = n.block;
    else if (this.nodes.length === 0) this.root = n.block;
    this.nodes.push(n);
  }

  current(): SpineNode {
    const n = this.nodes[this.nodes.length - 1];
    if (!n) throw new MetadataError('EINVAL', 'btree spine is empty');
    return n;
  }

  parent(): SpineNode | null {
    return this.nodes.length === 2 ? this.nodes[0]! : null;
  }

  hasParent(): boolean {
    return this.nodes.length === 2;
  }
}

export { getU64 };

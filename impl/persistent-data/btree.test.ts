// The persistent-data btree (drivers/md/persistent-data/dm-btree.c, dm-btree-remove.c) through a
// transaction manager and metadata space map: random inserts and removes agree with a Map, and the
// committed tree keeps every non-root node at least a third full (what thin_check requires).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BlockDevice } from '../block-device.js';
import { BlockManager } from './block-manager.js';
import { TransactionManager } from './transaction-manager.js';
import { MetadataSpaceMap } from './space-map-metadata.js';
import { KERNEL_3_14_SM } from './space-map-common.js';
import { btreeEmpty, btreeForEach, btreeInsert, btreeLookup, btreeNodeValidator } from './btree.js';
import { btreeRemove } from './btree-remove.js';
import { getU64, isInternal, maxEntries, nrEntries, putU64, value64, type BtreeInfo } from './btree-internal.js';

function setup(noRebalance = false): { info: BtreeInfo; tm: TransactionManager } {
  const dev = new BlockDevice(4096);
  const tm = new TransactionManager(new BlockManager(dev));
  MetadataSpaceMap.create(tm, dev.nrBlocks, 0, KERNEL_3_14_SM);
  return { tm, info: { tm, levels: 1, vt: { size: 8 }, upperLevelInc: false, rebalance: noRebalance ? 'none' : 'linux-3.14' } };
}

function minFill(info: BtreeInfo, root: number): number {
  let min = Infinity;
  const rec = (b: number, isRoot: boolean): void => {
    const n = info.tm.readLock(b, btreeNodeValidator);
    if (!isRoot) min = Math.min(min, nrEntries(n) / (maxEntries(n) / 3));
    if (isInternal(n)) for (let i = 0; i < nrEntries(n); i++) rec(value64(n, i), false);
  };
  rec(root, true);
  return min;
}

const v64 = (x: number): Uint8Array => {
  const b = new Uint8Array(8);
  putU64(b, 0, x);
  return b;
};

describe('btree', () => {
  it('random inserts/removes agree with a Map and keep nodes at least a third full', () => {
    const seed = 8128;
    console.log(`fast-check seed ${seed} (btree model)`);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 1500 }), (ops) => {
        const { info } = setup();
        let root = btreeEmpty(info);
        const model = new Map<number, number>();
        for (const [ins, k] of ops) {
          if (ins) {
            root = btreeInsert(info, root, [k], v64(k * 7)).root;
            model.set(k, k * 7);
          } else {
            const r = btreeRemove(info, root, [k]);
            root = r.root;
            expect(r.found).toBe(model.delete(k));
          }
        }
        const got: [number, number][] = [];
        btreeForEach(info, root, (k, v) => got.push([k, getU64(v, 0)]));
        expect(got).toEqual([...model].sort((a, b) => a[0] - b[0]));
        for (const k of [...model.keys()].slice(0, 20)) expect(getU64(btreeLookup(info, root, [k])!, 0)).toBe(k * 7);
        expect(minFill(info, root)).toBeGreaterThanOrEqual(1);
      }),
      { seed, numRuns: 25 },
    );
  });

  it('without rebalancing (the btree-remove-no-rebalance mutant) nodes drop below a third', () => {
    const { info } = setup(true);
    let root = btreeEmpty(info);
    for (let k = 0; k < 800; k++) root = btreeInsert(info, root, [k], v64(k)).root;
    for (let k = 0; k < 700; k++) root = btreeRemove(info, root, [k]).root;
    expect(minFill(info, root)).toBeLessThan(1);
  });
});

// Test helpers for dm-thin metadata (not a test file): random pool operation sequences driving
// impl/thin/pool-metadata.ts the way drivers/md/dm-thin.c does (messages commit, provisioning is
// alloc + insert).

import fc from 'fast-check';
import { MetadataError, type PoolMetadata } from './pool-metadata.js';


export type Op =
  | { k: 'create'; dev: number }
  | { k: 'snap'; dev: number; origin: number }
  | { k: 'delete'; dev: number }
  | { k: 'map'; dev: number; v: number; n: number }
  | { k: 'unmap'; dev: number; v: number; n: number }
  | { k: 'commit' }
  | { k: 'abort' }
  | { k: 'txid' }
  | { k: 'reserve' }
  | { k: 'release' };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('create' as const), dev: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ k: fc.constant('snap' as const), dev: fc.integer({ min: 0, max: 3 }), origin: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ k: fc.constant('delete' as const), dev: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ k: fc.constant('map' as const), dev: fc.integer({ min: 0, max: 3 }), v: fc.integer({ min: 0, max: 2000 }), n: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ k: fc.constant('unmap' as const), dev: fc.integer({ min: 0, max: 3 }), v: fc.integer({ min: 0, max: 2000 }), n: fc.integer({ min: 1, max: 300 }) }),
  fc.constant({ k: 'commit' as const }),
  fc.constant({ k: 'abort' as const }),
  fc.constant({ k: 'txid' as const }),
  fc.constant({ k: 'reserve' as const }),
  fc.constant({ k: 'release' as const }),
);

/** dm-thin's pool_message commits after every successful message. */
export function message(pmd: PoolMetadata, st: { heldDirty: boolean; committed?: boolean }): void {
  pmd.commit();
  st.heldDirty = false;
  st.committed = true;
}

/**
 * Apply one op (pool messages are followed by a commit, as pool_message does); kernel errors (MetadataError) are expected outcomes, not failures. Two 3.14 paths
 * that corrupt metadata by design are avoided: re-creating an id created in the open transaction
 * (Corrections 10) and aborting with a held-root change still dirty in the cache (Corrections 1).
 */
export function applyOp(pmd: PoolMetadata, op: Op, st: { heldDirty: boolean; committed?: boolean } = { heldDirty: false }): void {
  try {
    switch (op.k) {
      case 'create':
        pmd.createThin(op.dev);
        return message(pmd, st);
      case 'snap':
        pmd.createSnap(op.dev, op.origin);
        return message(pmd, st);
      case 'delete':
        pmd.deleteThin(op.dev);
        return message(pmd, st);
      case 'map':
        if (!pmd.devices().includes(op.dev)) return;
        for (let i = 0; i < op.n; i++) {
          const b = pmd.allocDataBlock();
          pmd.insertMapping(op.dev, op.v + i * 3, b);
        }
        return;
      case 'unmap':
        for (let i = 0; i < op.n; i++) {
          try {
            pmd.removeMapping(op.dev, op.v + i);
          } catch (e) {
            if (!(e instanceof MetadataError) || e.errno !== 'ENODATA') throw e;
          }
        }
        return;
      case 'commit':
        pmd.commit();
        st.heldDirty = false;
        st.committed = true;
        return;
      case 'abort':
        if (st.heldDirty) return;
        return pmd.abort();
      case 'txid':
        pmd.setTransactionId(pmd.transactionId, pmd.transactionId + 1);
        return message(pmd, st);
      case 'reserve':
        st.heldDirty = true;
        pmd.reserveMetadataSnap();
        return message(pmd, st);
      case 'release':
        st.heldDirty = true;
        pmd.releaseMetadataSnap();
        return message(pmd, st);
    }
  } catch (e) {
    if (!(e instanceof MetadataError) || !['EEXIST', 'ENODATA', 'EBUSY', 'EINVAL', 'ENOSPC'].includes(e.errno)) throw e;
  }
}


// The conformance cases: each is one pool's life as dmcheck events, run on the real kernel
// (guest.ts) and through the reference implementation (model-run.ts). Sizes are small so that a
// whole batch runs in one or two boots of the emulated VM (record.ts packs them). Data block = 128 sectors (64 KiB).

import type { KCase, KEvent, PoolTable } from './scenario.js';

const BS = 128;

function pool(dataBlocks: number, metaBlocks: number, features: string[] = [], lowWater = 16): PoolTable {
  return { dataBlocks, metaBlocks, lowWater, features };
}

const create = (t: PoolTable): KEvent => ({ type: 'pool_create', ...t });
const reload = (t: PoolTable): KEvent => ({ type: 'pool_reload', ...t });
const msg = (text: string): KEvent => ({ type: 'message', text });
const activate = (dev: number, blocks: number): KEvent => ({ type: 'thin_activate', dev, blocks });
const write = (dev: number, block: number, count = 1, flush = false): KEvent => ({ type: 'write', dev, block, count, flush });

export const CASES: readonly KCase[] = [
  {
    name: 'oods-error',
    title: 'error_if_no_space: running out of data space fails new allocations at once; a grow returns the pool to write mode',
    blockSectors: BS, maxDataBlocks: 128, maxMetaBlocks: 256, limitSec: 120,
    events: [
      create(pool(64, 256, ['error_if_no_space'])),
      msg('create_thin 0'),
      activate(0, 128),
      write(0, 0, 64),
      write(0, 64),          // unprovisioned, pool full: ENOSPC, mode out_of_data_space
      write(0, 3),           // provisioned: still serviced
      { type: 'read', dev: 0, block: 100 },
      reload(pool(128, 256, ['error_if_no_space'])),
      write(0, 64, 1, true),
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'oods-queue-grow',
    title: 'queue_if_no_space: a write past the end of data space is held until a grow releases it',
    blockSectors: BS, maxDataBlocks: 64, maxMetaBlocks: 256, limitSec: 120,
    events: [
      create(pool(32, 256)),
      msg('create_thin 0'),
      activate(0, 128),
      write(0, 0, 32),
      { type: 'write_async', dev: 0, block: 40, id: 'a' },
      { type: 'await', ids: ['a'], seconds: 2 },       // still held
      reload(pool(64, 256)),
      { type: 'await', ids: ['a'], seconds: 10 },      // released by the grow
      write(0, 41, 1, true),
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'oods-timeout',
    title: 'queue_if_no_space ended by no_space_timeout: the held write fails with ENOSPC and later ones fail at once',
    blockSectors: BS, maxDataBlocks: 64, maxMetaBlocks: 256, limitSec: 120,
    events: [
      { type: 'set_no_space_timeout', seconds: 2 },
      create(pool(32, 256)),
      msg('create_thin 0'),
      activate(0, 128),
      write(0, 0, 32),
      { type: 'write_async', dev: 0, block: 40, id: 'a' },
      { type: 'await', ids: ['a'], seconds: 8 },
      write(0, 41),
      reload(pool(64, 256)),
      write(0, 41, 1, true),
      { type: 'set_no_space_timeout', seconds: 0 },
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'oom-meta',
    title: 'metadata exhaustion: the commit fails, the pool goes read-only with needs_check; repair offline, then grow',
    // 16 metadata blocks fill after a few hundred mappings, which keeps the emulated IO small
    blockSectors: BS, maxDataBlocks: 2048, maxMetaBlocks: 1024, limitSec: 120,
    events: [
      create(pool(2048, 16, ['skip_block_zeroing', 'error_if_no_space'], 16)),
      msg('create_thin 0'),
      activate(0, 2048),
      write(0, 0, 2048),     // EIO part way: metadata space runs out
      write(0, 0),           // provisioned: fine
      write(0, 2047),        // unprovisioned in read-only mode: error
      { type: 'read', dev: 0, block: 0 },
      msg('create_thin 1'),  // refused in read-only mode
      reload(pool(2048, 1024, ['skip_block_zeroing', 'error_if_no_space'], 16)),
      { type: 'pool_remove' },
      { type: 'thin_check' },
      { type: 'thin_check', clear: true },
      create(pool(2048, 1024, ['skip_block_zeroing', 'error_if_no_space'], 16)),
      activate(0, 2048),
      write(0, 2000, 1, true),
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'resize',
    title: 'metadata and data resize by table reload; a data shrink is refused at resume',
    blockSectors: BS, maxDataBlocks: 128, maxMetaBlocks: 1024, limitSec: 120,
    events: [
      create(pool(64, 256)),
      msg('create_thin 0'),
      activate(0, 256),
      write(0, 0, 16, true),
      reload(pool(128, 512)),
      write(0, 16, 16, true),
      reload(pool(128, 1024)),
      reload(pool(64, 1024)),   // shrink: table loads, resume fails
      reload(pool(128, 1024)),
      write(0, 32, 1, true),
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'snapshots',
    title: 'snapshots share blocks until written; delete frees only unshared blocks; message errors',
    blockSectors: BS, maxDataBlocks: 128, maxMetaBlocks: 256, limitSec: 120,
    events: [
      create(pool(128, 256)),
      msg('create_thin 0'),
      activate(0, 64),
      write(0, 0, 20, true),
      { type: 'thin_suspend', dev: 0 },
      msg('create_snap 1 0'),
      { type: 'thin_resume', dev: 0 },
      activate(1, 64),
      write(0, 0, 5, true),    // breaks sharing: 5 new blocks
      write(1, 10, 2, true),   // and 2 more in the snapshot
      { type: 'read', dev: 1, block: 3 },
      msg('create_thin 0'),    // exists
      msg('create_snap 2 7'),  // no such origin
      { type: 'thin_remove', dev: 1 },
      msg('delete 1'),
      msg('delete 0'),         // still open
      { type: 'thin_remove', dev: 0 },
      msg('delete 0'),
      msg('delete 0'),         // already gone
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'txid-metasnap',
    title: 'set_transaction_id checks the old id; reserve/release_metadata_snap holds a metadata root',
    blockSectors: BS, maxDataBlocks: 64, maxMetaBlocks: 256, limitSec: 120,
    events: [
      create(pool(64, 256)),
      msg('set_transaction_id 0 1'),
      msg('set_transaction_id 0 2'),   // wrong old id
      msg('create_thin 0'),
      activate(0, 64),
      write(0, 0, 10, true),
      msg('reserve_metadata_snap'),
      msg('reserve_metadata_snap'),    // already held
      write(0, 10, 10, true),
      msg('release_metadata_snap'),
      msg('release_metadata_snap'),    // none held
      msg('set_transaction_id 1 2'),
      { type: 'pool_remove' },
    ],
  },
  {
    name: 'meta-write-error',
    title: 'a metadata write error (dm-flakey error_writes) during commit aborts the transaction',
    blockSectors: BS, maxDataBlocks: 64, maxMetaBlocks: 256, limitSec: 120,
    events: [
      create(pool(64, 256)),
      msg('create_thin 0'),
      activate(0, 64),
      write(0, 0, 4, true),
      { type: 'meta_fail_writes' },
      write(0, 4, 4, true),
      msg('create_thin 1'),
      write(0, 0, 1),
      write(0, 20, 1),
      { type: 'meta_heal' },
      { type: 'pool_remove' },
      { type: 'thin_check' },
    ],
  },
];

export function findCases(names: readonly string[] | undefined): KCase[] {
  if (!names || names.length === 0) return [...CASES];
  return names.map((n) => {
    const c = CASES.find((x) => x.name === n);
    if (!c) throw new Error(`unknown conformance scenario '${n}'; known: ${CASES.map((x) => x.name).join(', ')}`);
    return c;
  });
}

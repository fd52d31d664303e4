// The pool target (impl/thin/pool-target.ts, drivers/md/dm-thin.c behaviour) over the byte-exact
// metadata (impl/thin/pool-metadata.ts) with IO errors injected on the metadata device: after each
// failure (commit failure → abort + needs_check + read-only; abort failure → fail; metadata space
// exhausted) the metadata image left behind passes impl/thin/tools/check.ts, and thin_check when it
// is installed, and dumps to the last committed transaction (plus the needs_check flag).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlockDevice } from '../../impl/block-device.js';
import { PoolMetadata } from '../../impl/thin/pool-metadata.js';
import { checkMetadata, formatFindings } from '../../impl/thin/tools/check.js';
import { readXmlModel } from '../../impl/thin/tools/dump.js';
import { oracleStatus, oracleTempDir, thinCheck } from '../../impl/thin/tools/oracle.js';
import { PoolTarget, type BioOp, type BioResult, type PoolTable } from '../../impl/thin/pool-target.js';
import type { PoolMetadataApi } from '../../impl/thin/target/metadata-api.js';

type Prof = 'linux-3.14' | 'fixed';

function setup(mdBlocks: number, dataBlocks: number, profile: Prof = 'linux-3.14') {
  const variant = { profile, mutant: null };
  const dev = new BlockDevice(mdBlocks);
  const pmd = PoolMetadata.format(dev, { variant, dataBlockSize: 128, nrDataBlocks: dataBlocks });
  pmd.createThin(0);
  pmd.commit();
  let md: PoolMetadataApi = pmd;
  const reopen = () => {
    md = PoolMetadata.open(dev, { variant });
    return md;
  };
  const table: PoolTable = { dataBlocks, metadataBlocks: mdBlocks, errorIfNoSpace: false, blockSize: 1, lowWaterBlocks: 0 };
  const pool = new PoolTarget(variant, pmd, reopen, table);
  let id = 0;
  const io = (op: BioOp, vblock: number): BioResult | 'queued' => {
    let r: BioResult | 'queued' = 'queued';
    pool.submit({ id: id++, op, vblock, endio: (x) => (r = x) });
    return r;
  };
  /** Pool teardown: the thin closes, then the metadata (writes back dirty buffers). */
  const teardown = () => {
    (md as PoolMetadata).closeThin(0);
    md.close();
  };
  return { dev, pool, io, md: () => md, teardown };
}

/** Devices and mappings as the image's superblock names them. */
function dumpModel(dev: BlockDevice): string {
  const m = readXmlModel(dev);
  return JSON.stringify({ devices: m.devices, nrDataBlocks: m.nrDataBlocks });
}

/** The dump of the failed transaction of these tests: blocks 0 and 1 mapped to data 0 and 1. */
function failedDump(dev: BlockDevice): string {
  const m = readXmlModel(dev);
  const d = m.devices[0];
  const ok = d && d.mappings.length === 2 && d.mappings[1]?.vblock === 1 && d.mappings[1]?.dataBlock === 1;
  return ok ? dumpModel(dev) : 'not the failed transaction';
}

function checkImage(dev: BlockDevice, label: string): void {
  const r = checkMetadata(dev);
  expect(r.ok, `${label}: ${formatFindings(r)}`).toBe(true);
  const oracle = oracleStatus();
  if (oracle.mode === 'fail') throw new Error(oracle.message);
  if (oracle.mode === 'run') {
    const t = oracleTempDir();
    try {
      const f = join(t.dir, 'meta.bin');
      writeFileSync(f, dev.toBuffer());
      expect(thinCheck(f, ['-q']).rc, `${label}: thin_check`).toBe(0);
    } finally {
      t.cleanup();
    }
  }
}

describe('thin-pool: metadata images after failures', () => {
  for (const profile of ['linux-3.14', 'fixed'] as Prof[]) {
    it(`commit failure: abort, needs_check, read-only; image = last commit (${profile})`, () => {
      const p = setup(64, 16, profile);
      expect(p.io('write', 0)).toBe('remap');
      expect(p.io('flush', 0)).toBe('ok');
      const committed = dumpModel(p.dev);
      expect(p.io('write', 1)).toBe('remap');
      p.dev.armFault({ op: 'flush' });
      expect(p.io('flush', 0)).toBe('EIO');
      expect(p.pool.mode).toBe('read_only');
      expect(p.md().needsCheck()).toBe(true);
      expect(p.io('write', 2)).toBe('EIO');
      expect(p.io('read', 0)).toBe('remap');
      p.teardown();
      checkImage(p.dev, 'after commit failure');
      if (profile === 'fixed') {
        expect(dumpModel(p.dev)).toBe(committed);
      } else {
        // 3.14 (#22, a9d45396): the failed commit's superblock stays dirty in the cache and reaches
        // the disk at teardown, so the image may name the failed transaction (still consistent).
        expect([committed, failedDump(p.dev)]).toContain(dumpModel(p.dev));
        expect(readXmlModel(p.dev).devices[0]?.mappings[0]?.dataBlock).toBe(0);
        // Not asserted: the needs_check flag on disk after teardown (dm-thin.md Correction 3 says the
        // dirty superblock reaches disk then; impl/thin/pool-metadata.ts currently leaves it 0; reported).
      }
    });

    it(`abort failure: fail mode; image passes the checker (${profile})`, () => {
      const p = setup(64, 16, profile);
      expect(p.io('write', 0)).toBe('remap');
      expect(p.io('flush', 0)).toBe('ok');
      const committed = dumpModel(p.dev);
      expect(p.io('write', 1)).toBe('remap');
      p.dev.armFault({ op: 'flush' });
      p.dev.armFault({ op: 'read', block: 0, sticky: true });
      expect(p.io('flush', 0)).toBe('EIO');
      expect(p.pool.mode).toBe('fail');
      expect(p.pool.statusLine()).toBe('Fail');
      expect(p.io('read', 0)).toBe('EIO');
      p.dev.clearFaults();
      checkImage(p.dev, 'after abort failure');
      if (profile === 'fixed') {
        expect(dumpModel(p.dev)).toBe(committed);
      } else {
        // 3.14 (#22, a9d45396): the abort's teardown may write the failed commit's dirty superblock.
        expect([committed, failedDump(p.dev)]).toContain(dumpModel(p.dev));
      }
    });
  }

  for (const profile of ['linux-3.14', 'fixed'] as Prof[]) {
    it(`resize failure: the post-grow commit fails; abort, needs_check, read-only; image = last commit (${profile})`, () => {
      // pool_preresume: maybe_resize_data_dev extends the data space map in core, then commit() fails
      // → metadata_operation_failed → abort (back to the old size) → needs_check → read-only.
      const p = setup(64, 16, profile);
      expect(p.io('write', 0)).toBe('remap');
      expect(p.io('flush', 0)).toBe('ok');
      const committed = dumpModel(p.dev);
      p.dev.armFault({ op: 'flush' });
      const table: PoolTable = { dataBlocks: 32, metadataBlocks: 64, errorIfNoSpace: false, blockSize: 1, lowWaterBlocks: 0 };
      expect(p.pool.reload(table)).toBe('ok'); // pool_preresume ignores commit()'s result
      expect(p.pool.mode).toBe('read_only');
      expect(p.md().needsCheck()).toBe(true);
      expect(p.md().dataDevSize()).toBe(16);
      // A second resume with the big table is refused a grow while needs_check is set, and succeeds.
      expect(p.pool.suspendResume()).toBe('ok');
      expect(p.md().dataDevSize()).toBe(16);
      p.teardown();
      checkImage(p.dev, 'after resize failure');
      expect(JSON.parse(dumpModel(p.dev)).nrDataBlocks).toBe(16);
      if (profile === 'fixed') expect(dumpModel(p.dev)).toBe(committed);
      // 3.14: as above, #22 may let the failed commit's superblock through; the mapping part is the
      // same here (the failed transaction only grew the space map, which the dump shows as 16).
      else expect(JSON.parse(dumpModel(p.dev)).devices).toEqual(JSON.parse(committed).devices);
    });
  }

  it('metadata space exhausted: read-only with needs_check; image = last commit', () => {
    const p = setup(16, 4096);
    let last = 'remap';
    let v = 0;
    let committed = dumpModel(p.dev);
    for (; v < 4000 && last === 'remap'; v += 1) {
      last = p.io('write', v * 97) as string;
      if (last === 'remap' && v % 25 === 0) {
        if (p.io('flush', 0) === 'ok') committed = dumpModel(p.dev);
      }
    }
    expect(p.pool.mode).toBe('read_only');
    expect(p.md().needsCheck()).toBe(true);
    p.teardown();
    checkImage(p.dev, 'after metadata exhaustion');
    expect(dumpModel(p.dev)).toBe(committed);
  });
});

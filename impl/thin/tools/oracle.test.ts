// Real-tool oracle tests (thin-provisioning-tools 0.9.0): thin_check accepts what the reference
// implementation (impl/thin/pool-metadata.ts, after drivers/md/dm-thin-metadata.c) commits and a
// sample of its crash images; thin_dump agrees with the implementation's state; thin_restore-made
// images decode to their XML and can be opened, changed and committed; damaged images that
// thin_check rejects are rejected by the project's checker too. SKIPs without the tools unless
// CI=true (then it fails).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlockDevice } from '../../block-device.js';
import { dmBlockChecksum } from '../../persistent-data/crc32c.js';
import { putU32 } from '../../persistent-data/btree-internal.js';
import { PoolMetadata } from '../pool-metadata.js';
import { applyOp, opArb } from '../testing.js';
import { checkMetadata, formatFindings } from './check.js';
import { crashSubsets } from './crash.js';
import { dumpXml, emitXml, type XmlSuperblock } from './dump.js';
import { detectOracle, oracleStatus, oracleTempDir, pool, runToolAsync, thinCheck, thinDump, thinRestore } from './oracle.js';
import { parseXml, restoreXml } from './xml.js';

const status = oracleStatus();
if (status.mode === 'skip') console.warn(`SKIP thin oracle tests: ${status.message}`);

describe('oracle detection', () => {
  it('absent tools skip with the package name, and fail under CI=true', () => {
    const skip = detectOracle('thin_check_not_installed_here', {});
    expect(skip.mode).toBe('skip');
    expect(skip.message).toContain('thin-provisioning-tools');
    expect(detectOracle('thin_check_not_installed_here', { CI: 'true' }).mode).toBe('fail');
  });
});

describe('thin-provisioning-tools oracle', () => {
  if (status.mode === 'fail') {
    it('thin-provisioning-tools must be installed under CI=true', () => {
      throw new Error(status.message);
    });
    return;
  }
  const maybe = status.mode === 'run' ? it : it.skip;

  maybe('thin_check accepts every commit of random operation sequences and thin_dump matches the implementation', async () => {
    const t = oracleTempDir();
    try {
      const seed = 90210;
      console.log(`fast-check seed ${seed} (oracle commit property)`);
      const samples = fc.sample(fc.array(opArb, { minLength: 2, maxLength: 14 }), { seed, numRuns: 12 });
      const jobs: (() => Promise<void>)[] = [];
      let n = 0;
      for (const [si, ops] of samples.entries()) {
        for (const profile of ['linux-3.14', 'fixed']) {
          const dev = new BlockDevice(512);
          const pmd = PoolMetadata.format(dev, { variant: { profile, mutant: null }, dataBlockSize: 128, nrDataBlocks: 4096 });
          const st = { heldDirty: false, committed: false };
          for (const op of ops) {
            if (profile === 'linux-3.14' && (op.k === 'reserve' || op.k === 'release')) continue;
            applyOp(pmd, op, st);
          }
          pmd.commit();
          const img = dev.snapshot();
          const ours = checkMetadata(img);
          expect(ours.ok, formatFindings(ours)).toBe(true);
          const path = join(t.dir, `c${si}-${profile}.bin`);
          writeFileSync(path, img.toBuffer());
          const xml = dumpXml(img);
          n++;
          jobs.push(async () => {
            const c = await runToolAsync('thin_check', ['-q', path]);
            expect(c.rc, `thin_check on ${JSON.stringify(ops)} (${profile}): ${c.stderr}`).toBe(0);
            const d = await runToolAsync('thin_dump', [path]);
            expect(d.rc).toBe(0);
            expect(d.stdout).toBe(xml);
          });
        }
      }
      await pool(jobs, 8);
      expect(n).toBeGreaterThan(10);
    } finally {
      t.cleanup();
    }
  });

  maybe('thin_check accepts a sample of crash images and thin_dump shows the old or the new transaction', async () => {
    const t = oracleTempDir();
    try {
      const dev = new BlockDevice(256);
      const pmd = PoolMetadata.format(dev, { variant: { profile: 'fixed', mutant: null }, dataBlockSize: 128, nrDataBlocks: 1024 });
      pmd.createThin(1);
      for (let i = 0; i < 200; i++) pmd.insertMapping(1, i, pmd.allocDataBlock());
      pmd.commit();
      const before = dumpXml(dev.snapshot());
      pmd.createSnap(2, 1);
      for (let i = 0; i < 20; i++) pmd.insertMapping(2, i, pmd.allocDataBlock());
      for (let i = 100; i < 150; i++) pmd.removeMapping(1, i);
      const images: BlockDevice[] = [];
      dev.beforeFlush = (d) => {
        const pend = d.volatileWrites();
        for (const s of crashSubsets(pend.length, 4, 12, 7)) images.push(d.crashImage(s.keep, null));
        const sb = pend.findIndex((w) => w.block === 0);
        if (sb >= 0) images.push(d.crashImage([sb], sb));
      };
      pmd.commit();
      dev.beforeFlush = null;
      const after = dumpXml(dev.snapshot());
      expect(after).not.toBe(before);
      expect(images.length).toBeGreaterThan(10);
      await pool(
        images.map((img, i) => async () => {
          const p = join(t.dir, `crash${i}.bin`);
          writeFileSync(p, img.toBuffer());
          const c = await runToolAsync('thin_check', ['-q', p]);
          expect(c.rc, `crash image ${i}: ${c.stderr}`).toBe(0);
          const d = await runToolAsync('thin_dump', [p]);
          expect([before, after]).toContain(d.stdout);
          expect(checkMetadata(img).ok).toBe(true);
        }),
        8,
      );
    } finally {
      t.cleanup();
    }
  });

  const xmlArb: fc.Arbitrary<XmlSuperblock> = fc
    .record({
      time: fc.integer({ min: 0, max: 20 }),
      transaction: fc.integer({ min: 0, max: 1000 }),
      devs: fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { minLength: 0, maxLength: 5 }),
      blocks: fc.array(fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 3 })), { maxLength: 700 }),
    })
    .map(({ time, transaction, devs, blocks }) => {
      let next = 0;
      const devices = [...devs].sort((a, b) => a - b).map((devId, di) => {
        const seen = new Set<number>();
        const mappings: { vblock: number; dataBlock: number; time: number }[] = [];
        for (const [vb, t] of blocks.slice(di * 140, di * 140 + 140)) {
          if (seen.has(vb)) continue;
          seen.add(vb);
          mappings.push({ vblock: vb, dataBlock: next++, time: Math.min(t, time) });
        }
        mappings.sort((a, b) => a.vblock - b.vblock);
        return { devId, mappedBlocks: mappings.length, transaction: di, creationTime: 0, snapTime: time, mappings };
      });
      return { uuid: '', time, transaction, flags: 0, version: 2, dataBlockSize: 128, nrDataBlocks: 8192, devices };
    });

  maybe('thin_restore round trip: restored images decode to their XML, open, take operations and commit cleanly', () => {
    const t = oracleTempDir();
    try {
      const seed = 31337;
      console.log(`fast-check seed ${seed} (thin_restore round trip)`);
      for (const [i, model] of fc.sample(xmlArb, { seed, numRuns: 8 }).entries()) {
        const xmlPath = join(t.dir, `m${i}.xml`);
        const out = join(t.dir, `m${i}.bin`);
        writeFileSync(xmlPath, emitXml(model));
        const r = thinRestore(xmlPath, out, 256);
        expect(r.rc, r.stderr).toBe(0);
        const dev = BlockDevice.fromBuffer(readFileSync(out));
        expect(dumpXml(dev)).toBe(emitXml(model));
        const pmd = PoolMetadata.open(dev, { variant: { profile: 'fixed', mutant: null }, dataBlockSize: 128 });
        pmd.createThin(99);
        pmd.commit();
        for (let k = 0; k < 30; k++) pmd.insertMapping(99, k, pmd.allocDataBlock());
        const first = model.devices[0];
        if (first && first.mappings[0]) pmd.removeMapping(first.devId, first.mappings[0].vblock);
        pmd.commit();
        const ours = checkMetadata(dev);
        expect(ours.ok, formatFindings(ours)).toBe(true);
        writeFileSync(out, dev.toBuffer());
        expect(thinCheck(out, ['-q']).rc).toBe(0);
        // and our own restore of the same XML is accepted and dumps identically
        const mine = new BlockDevice(256);
        restoreXml(mine, parseXml(emitXml(model)), { profile: 'fixed', mutant: null });
        const minePath = join(t.dir, `mine${i}.bin`);
        writeFileSync(minePath, mine.toBuffer());
        expect(thinCheck(minePath, ['-q']).rc).toBe(0);
        expect(thinDump(minePath).stdout).toBe(emitXml(model));
      }
    } finally {
      t.cleanup();
    }
  });

  maybe('gate: every re-checksummed single-byte corruption that thin_check rejects, the project checker rejects too', async () => {
    const t = oracleTempDir();
    try {
      const dev = new BlockDevice(128);
      const pmd = PoolMetadata.format(dev, { variant: { profile: 'fixed', mutant: null }, dataBlockSize: 128, nrDataBlocks: 2048 });
      pmd.createThin(1);
      for (let i = 0; i < 400; i++) pmd.insertMapping(1, i * 2, pmd.allocDataBlock());
      pmd.createSnap(2, 1);
      for (let i = 0; i < 10; i++) pmd.insertMapping(2, i * 2, pmd.allocDataBlock());
      pmd.commit();
      const base = dev.snapshot();
      const used = [...base.durableImage().keys()];
      const seed = 2718;
      console.log(`fast-check seed ${seed} (corruption gate)`);
      const flips = fc.sample(fc.tuple(fc.constantFrom(...used), fc.integer({ min: 4, max: 4095 }), fc.integer({ min: 1, max: 255 })), { seed, numRuns: 120 });
      let rejected = 0;
      await pool(
        flips.map(([b, off, x], i) => async () => {
          const img = base.snapshot();
          const d = img.read(b).slice();
          d[off] = d[off]! ^ x;
          // re-checksum with the block's own salt so the damage is semantic, not a checksum error
          const salt = guessSalt(base.read(b));
          putU32(d, 0, dmBlockChecksum(d, 4, salt));
          img.write(b, d, true);
          const p = join(t.dir, `flip${i}.bin`);
          writeFileSync(p, img.toBuffer());
          const c = await runToolAsync('thin_check', ['-q', p]);
          if (c.rc !== 0) {
            rejected++;
            const ours = checkMetadata(img);
            expect(ours.ok, `block ${b} byte ${off} ^ ${x}: thin_check rejected it, our checker accepted it`).toBe(false);
          }
        }),
        8,
      );
      expect(rejected).toBeGreaterThan(5);
    } finally {
      t.cleanup();
    }
  });
});

/** Which checksum salt a valid block uses (superblock, btree node, bitmap, index). */
function guessSalt(d: Uint8Array): number {
  for (const salt of [121107, 240779, 160478, 160774]) {
    if ((dmBlockChecksum(d, 4, salt) >>> 0) === (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0) return salt;
  }
  return 121107;
}

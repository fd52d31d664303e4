// Golden-image tests: the kernel-written images of thin-provisioning-tools' test data and the
// thin-samples corpus (see their READMEs) against the project's reader (dump.ts), checker
// (check.ts) and writer (pool-metadata.ts on a thin_restore-made image).

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BlockDevice } from '../../block-device.js';
import { PoolMetadata } from '../pool-metadata.js';
import { checkMetadata, formatFindings } from './check.js';
import { MetadataDamagedError, dumpXml, emitXml } from './dump.js';
import { parseXml } from './xml.js';

import { corpusDir } from '../../../properties/shared-corpus.js';

const kernelCorpus = corpusDir('thin-kernel-images');
const samplesCorpus = corpusDir('thin-samples');
const KERNEL = 'dir' in kernelCorpus ? kernelCorpus.dir : '';
const SAMPLES = 'dir' in samplesCorpus ? samplesCorpus.dir : '';
if ('skip' in kernelCorpus) console.warn(`skipping the thin metadata corpus tests: ${kernelCorpus.skip}`);

const load = (path: string): BlockDevice => BlockDevice.fromBuffer(gunzipSync(readFileSync(path)));

describe.skipIf(KERNEL === '')('kernel-written images (thin-kernel-images)', () => {
  const good = [
    'tmeta',
    'tmeta_with_metadata_snap',
    'tmeta_with_shared_internal_root',
    'tmeta_with_shared_internals_and_leaves',
    'tmeta_with_deleted_snapshot',
    'tmeta_with_empty_roots',
    'tmeta_device_id_reuse',
  ];
  for (const name of good) {
    it(`${name}: decodes to exactly its thin_dump XML and passes the checker`, () => {
      const dev = load(`${KERNEL}/${name}.bin.gz`);
      const expected = gunzipSync(readFileSync(`${KERNEL}/${name}.dump.xml.gz`)).toString();
      expect(dumpXml(dev)).toBe(expected);
      const r = checkMetadata(dev);
      expect(r.ok, formatFindings(r)).toBe(true);
    });
  }
  const bad = ['tmeta_device_id_reuse_with_corrupted_thins', 'tmeta_with_corrupted_metadata_snap', 'corrupted_tmeta_with_metadata_snap'];
  for (const name of bad) {
    it(`${name}: refused by the checker and by dump with a reason`, () => {
      const dev = load(`${KERNEL}/${name}.bin.gz`);
      const r = checkMetadata(dev);
      expect(r.ok).toBe(false);
      expect(r.findings.find((f) => f.severity === 'error')?.message).toMatch(/checksum|missing|reference counts/);
      expect(() => dumpXml(dev)).toThrow(MetadataDamagedError);
    });
  }
  it('tmeta_with_metadata_snap: the held snapshot reads back too (thin_dump -m)', () => {
    const dev = load(`${KERNEL}/tmeta_with_metadata_snap.bin.gz`);
    const xml = dumpXml(dev, { metadataSnap: true });
    expect(xml).toMatch(/nr_data_blocks="0"/);
    expect(xml.split('<device ').length - 1).toBeGreaterThan(0);
  });
});

describe.skipIf(SAMPLES === '')('thin-samples corpus', () => {
  // expected checker verdict: false where thin_check rejects, and for the two 0.9.0 blind spots
  const verdict: Record<string, boolean> = {
    'small.restore': true,
    'small.writer': true,
    'crash-a-old-sb-new-blocks': true,
    'crash-b-new-sb': true,
    'crash-c-new-sb-missing-node': false,
    'crash-d-torn-sb': false,
    'crash-e-old-sb-garbage': true,
    'crash-f-sector0-only': true,
    'corrupt-sb-checksum': false,
    'corrupt-leaf-zeroed': false,
    'corrupt-meta-leak': false,
    'corrupt-meta-underref': false,
    'corrupt-data-underref': false,
    'corrupt-keys-unordered': false,
    'corrupt-sb-bad-magic': false,
    'corrupt-underfull-node': false,
    'share.writer': true,
    'bigtree.writer': true,
  };
  const model: Record<string, string> = {
    'small.restore': 'small.xml',
    'small.writer': 'small.xml',
    'crash-a-old-sb-new-blocks': 'small.xml',
    'crash-b-new-sb': 'small2.xml',
    'crash-e-old-sb-garbage': 'small.xml',
    'crash-f-sector0-only': 'small2.xml',
    'share.writer': 'share.xml',
    'bigtree.writer': 'bigtree.xml',
  };
  for (const [name, ok] of Object.entries(verdict)) {
    it(`${name}: checker says ${ok ? 'ok' : 'damaged'}${model[name] ? ` and it reads as ${model[name]}` : ''}`, () => {
      const dev = load(`${SAMPLES}/${name}.bin.gz`);
      const r = checkMetadata(dev);
      expect(r.ok, formatFindings(r)).toBe(ok);
      const m = model[name];
      if (m) expect(dumpXml(dev)).toBe(emitXml(parseXml(readFileSync(`${SAMPLES}/${m}`, 'utf8'))));
    });
  }
  it('the checker names the 0.9.0 blind spots: data refcount and superblock magic', () => {
    const a = checkMetadata(load(`${SAMPLES}/corrupt-data-underref.bin.gz`));
    expect(a.findings.map((f) => f.code)).toContain('data-refcount');
    const b = checkMetadata(load(`${SAMPLES}/corrupt-sb-bad-magic.bin.gz`));
    expect(b.findings.map((f) => f.code)).toContain('sb-magic');
  });
  it('opens a thin_restore-made image, applies operations and commits cleanly', () => {
    const dev = load(`${SAMPLES}/small.restore.bin.gz`);
    for (const profile of ['linux-3.14', 'fixed']) {
      const d = dev.snapshot();
      const pmd = PoolMetadata.open(d, { variant: { profile, mutant: null }, dataBlockSize: 128 });
      expect(pmd.transactionId).toBe(7);
      // thin_restore sized the file to fit: grow the metadata device first (resize + commit).
      d.resize(256);
      pmd.resizeMetadataDevice(256);
      pmd.commit();
      pmd.createSnap(5, 2);
      pmd.commit();
      pmd.insertMapping(5, 0, pmd.allocDataBlock());
      pmd.removeMapping(1, 100);
      pmd.deleteThin(1);
      pmd.setTransactionId(7, 8);
      pmd.commit();
      const r = checkMetadata(d);
      expect(r.ok, formatFindings(r)).toBe(true);
      expect(PoolMetadata.open(d.snapshot(), { variant: { profile, mutant: null } }).devices()).toEqual([2, 5]);
    }
  });
  it('parseXml refuses unknown tags, duplicate ids and out-of-range data blocks', () => {
    expect(() => parseXml('<superblock uuid="" time="0" transaction="0" data_block_size="128" nr_data_blocks="4"><foo/></superblock>')).toThrow(/unknown tag/);
    expect(() =>
      parseXml('<superblock uuid="" time="0" transaction="0" data_block_size="128" nr_data_blocks="4"><device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0"/><device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0"/></superblock>'),
    ).toThrow(/duplicate/);
    expect(() =>
      parseXml('<superblock uuid="" time="0" transaction="0" data_block_size="128" nr_data_blocks="4"><device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0"><single_mapping origin_block="0" data_block="4" time="0"/></device></superblock>'),
    ).toThrow(/beyond end of data device/);
  });
});

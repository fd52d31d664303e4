// Unit tests of the thin write path (impl/thin/data-path.ts) over the byte-exact pool metadata:
// provisioning, in-place overwrite, breaking sharing, discard, FLUSH/commit ordering per profile,
// and FUA superseding cached writes in a crash image.
import { describe, expect, it } from 'vitest';
import { BlockDevice } from '../block-device.js';
import { JUNK, ThinDataPath, dataCrashImage, decodeValue } from './data-path.js';
import { PoolMetadata } from './pool-metadata.js';

function pool(profile: string, dataBlocks = 4): ThinDataPath {
  const variant = { profile, mutant: null };
  const pmd = PoolMetadata.format(new BlockDevice(256), { variant, dataBlockSize: 128, nrDataBlocks: dataBlocks });
  const p = new ThinDataPath(pmd, new BlockDevice(dataBlocks), variant);
  expect(p.poolMessage({ type: 'create', dev: 0 })).toBe('ok');
  p.open(0);
  return p;
}

describe('thin data path', () => {
  it('provisions, overwrites in place, and reads back; unmapped reads zeroes', () => {
    const p = pool('fixed');
    expect(p.read(0, 1)).toBe(0);
    p.write(0, 1, 7, false);
    const b = p.pmd.lookup(0, 1)!.dataBlock;
    p.write(0, 1, 8, false);
    expect(p.pmd.lookup(0, 1)!.dataBlock).toBe(b);
    expect(p.read(0, 1)).toBe(8);
  });

  it('a write to a snapshot breaks sharing: new block for the writer, origin unchanged', () => {
    const p = pool('fixed');
    p.write(0, 0, 1, false);
    p.commit();
    expect(p.poolMessage({ type: 'snap', dev: 1, origin: 0 })).toBe('ok');
    p.open(1);
    expect(p.pmd.lookup(1, 0)!.shared).toBe(true);
    p.write(1, 0, 2, false);
    expect(p.pmd.lookup(1, 0)!.dataBlock).not.toBe(p.pmd.lookup(0, 0)!.dataBlock);
    expect([p.read(0, 0), p.read(1, 0)]).toEqual([1, 2]);
  });

  it('messages report errno names and change nothing on error', () => {
    const p = pool('fixed');
    expect(p.message({ type: 'create', dev: 0 })).toBe('-EEXIST');
    expect(p.message({ type: 'delete', dev: 0 })).toBe('-EBUSY');
    expect(p.message({ type: 'set_tid', cur: 5, next: 6 })).toBe('-EINVAL');
    expect(p.message({ type: 'release' })).toBe('-EINVAL');
    expect(p.pmd.transactionId).toBe(0);
  });

  it('fixed: commit flushes the data device first; linux-3.14 leaves the data cached (#24)', () => {
    for (const [profile, cached] of [['fixed', 0], ['linux-3.14', 1]] as const) {
      const p = pool(profile);
      p.write(0, 0, 3, false);
      p.commit();
      expect(p.data.volatileWrites().length, profile).toBe(cached);
      const b = p.pmd.lookup(0, 0)!.dataBlock;
      // A power cut now: the committed mapping reads what reached the disk.
      expect(decodeValue(dataCrashImage(p, []).read(b)), profile).toBe(profile === 'fixed' ? 3 : JUNK);
    }
  });

  it('fixed: a FUA write that provisions waits for the commit; linux-3.14 completes it at once (#25)', () => {
    const fixed = pool('fixed');
    fixed.write(0, 0, 4, true);
    expect(fixed.fuaPending()).toEqual([{ dev: 0, vblock: 0, value: 4 }]);
    fixed.commit();
    expect(fixed.fuaPending()).toEqual([]);
    const old = pool('linux-3.14');
    old.write(0, 0, 4, true);
    expect(old.fuaPending()).toEqual([]);
  });

  it('a FUA write supersedes an older cached write to the same block in crash images', () => {
    const p = pool('fixed');
    p.write(0, 0, 1, false);
    p.commit();
    p.write(0, 0, 2, false);
    expect(p.liveDataWrites().length).toBe(1);
    p.write(0, 0, 3, true);
    expect(p.liveDataWrites()).toEqual([]);
    expect(decodeValue(dataCrashImage(p, []).read(p.pmd.lookup(0, 0)!.dataBlock))).toBe(3);
  });

  it('FLUSH on a changed device commits first', () => {
    const p = pool('linux-3.14');
    p.write(0, 0, 5, false);
    expect(p.pmd.changedThisTransaction(0)).toBe(true);
    p.flush(0);
    expect(p.pmd.changedThisTransaction(0)).toBe(false);
    expect(p.data.volatileWrites()).toEqual([]);
  });
});

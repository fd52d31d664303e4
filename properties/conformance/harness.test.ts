// Unit tests of the real-kernel harness pieces that need no VM: status-line parsing, the cpio
// writer, the guest script renderer, the dm-log-writes reader, crash rebuilds and the commit shape.

import { describe, expect, it } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { buildCpio, buildCpioGz } from '../../kernel/cpio.js';
import { layoutCases, renderCase } from '../../kernel/guest.js';
import { commitShape, crashImages, epochs, LW_FLUSH, LW_MAGIC, LW_MARK, parseLogWrites } from '../../kernel/logwrites.js';
import { errnoOf, parseCaseLog, parsePoolStatus } from '../../kernel/parse.js';
import { CASES } from '../../kernel/scenarios.js';
import { batches, estimateSeconds } from '../../kernel/record.js';
import { hostWatchdog } from '../../kernel/vm.js';
import { INIT_SCRIPT } from '../../kernel/guest.js';
import { readTar } from '../../kernel/tar.js';

describe('pool status parsing (dm-thin pool_status field order)', () => {
  it('parses a 6.1 line with the metadata low-water field', () => {
    const p = parsePoolStatus('0 8192 thin-pool 3 35/256 64/64 17 out_of_data_space discard_passdown error_if_no_space needs_check 64 ');
    expect(p).toEqual({ kind: 'ok', txid: 3, metaUsed: 35, metaTotal: 256, dataUsed: 64, dataTotal: 64, heldRoot: 17, mode: 'out_of_data_space', discard: 'discard_passdown', noSpace: 'error_if_no_space', needsCheck: true, metaLowWater: 64 });
  });
  it('parses Fail and rejects garbage', () => {
    expect(parsePoolStatus('0 8192 thin-pool Fail')).toEqual({ kind: 'fail' });
    expect(parsePoolStatus('Device does not exist.').kind).toBe('error');
  });
  it('maps strerror texts to errno names', () => {
    expect(errnoOf("dd: error writing '/dev/mapper/c0-t0': No space left on device")).toBe('ENOSPC');
    expect(errnoOf('device-mapper: message ioctl on c3-pool  failed: Operation not supported')).toBe('EOPNOTSUPP');
    expect(errnoOf('all fine')).toBeNull();
  });
  it('parses a case log into steps', () => {
    const events = [{ type: 'write', dev: 0, block: 0, count: 32, flush: false }] as const;
    const log = ['@0 ev write 12.5 {}', '@0 rc 1', "@0 out dd: error writing 'x': No space left on device", '@0 out 1+0 records in', '@0 out 1+0 records out',
      '@0 status pool: 0 8192 thin-pool 0 35/256 64/64 - rw discard_passdown queue_if_no_space - 64 ', '@0 status t0: 0 16384 thin 8192 8191', '@teardown rc 0', '@teardown done 40'].join('\n');
    const r = parseCaseLog(log, events);
    expect(r.steps[0]?.ok).toBe(false);
    expect(r.steps[0]?.errno).toBe('ENOSPC');
    expect(r.steps[0]?.blocksWritten).toBe(16); // one record of 16 blocks (aligned chunk)
    expect(r.steps[0]?.thins['t0']?.mappedSectors).toBe(8192);
    expect(r.teardownOk).toBe(true);
  });
});

describe('initramfs and results transport', () => {
  it('writes newc cpio records with 4-byte alignment and a trailer', () => {
    const a = buildCpio([{ kind: 'dir', path: 'cases' }, { kind: 'file', path: 'cases/x.sh', data: Buffer.from('echo hi\n') }]);
    expect(a.subarray(0, 6).toString()).toBe('070701');
    expect(a.length % 4).toBe(0);
    expect(a.includes(Buffer.from('TRAILER!!!'))).toBe(true);
    expect(gunzipSync(buildCpioGz([{ kind: 'symlink', path: 'bin/sh', target: 'busybox' }])).subarray(0, 6).toString()).toBe('070701');
  });
  it('reads a ustar stream', () => {
    const h = Buffer.alloc(512);
    h.write('./c0/rc', 0);
    h.write('0000002\0', 124);
    h.write('0', 156);
    h.write('ustar', 257);
    const data = Buffer.alloc(512);
    data.write('0\n');
    const files = readTar(Buffer.concat([h, data, Buffer.alloc(1024)]));
    expect(files).toEqual([{ path: 'c0/rc', data: Buffer.from('0\n') }]);
  });
  it('renders every case to a script that uses its own device names and disk slices', () => {
    const layout = layoutCases(CASES);
    CASES.forEach((c, i) => {
      const slot = layout.slots[i];
      if (!slot) throw new Error('no slot');
      const sh = renderCase(c, slot);
      expect(sh).toContain(`${slot.prefix}-pool`);
      expect(sh).toContain(`log-writes /dev/mapper/${slot.prefix}-mslice`);
      expect(sh.split('\n').filter((l) => l.startsWith('I=')).length).toBe(c.events.length + 2);
    });
    for (let i = 1; i < layout.slots.length; i++) {
      const a = layout.slots[i - 1], b = layout.slots[i];
      if (!a || !b) continue;
      expect(b.metaOffset).toBe(a.metaOffset + a.metaSectors);
      expect(b.dataOffset).toBe(a.dataOffset + a.dataSectors);
    }
  });
});

describe('packing cases into parallel VMs and the watchdogs', () => {
  it('splits the cases into balanced batches, each case once, in a deterministic order', () => {
    const two = batches(CASES, 2);
    expect(two.length).toBe(2);
    expect(two.flat().map((c) => c.name).sort()).toEqual(CASES.map((c) => c.name).sort());
    expect(batches(CASES, 2).map((b) => b.map((c) => c.name))).toEqual(two.map((b) => b.map((c) => c.name)));
    const [a = 0, b = 0] = two.map((bt) => bt.reduce((s, c) => s + estimateSeconds(c), 0));
    const biggest = Math.max(...CASES.map(estimateSeconds));
    expect(Math.abs(a - b)).toBeLessThanOrEqual(biggest);
    // within a batch the cases keep the suite's order
    for (const bt of two) expect(bt.map((c) => CASES.indexOf(c))).toEqual([...bt.map((c) => CASES.indexOf(c))].sort((x, y) => x - y));
    expect(batches(CASES, 1)).toEqual([[...CASES]]);
  });
  it('bounds a hung guest: a host deadline per phase, never the sum over the batch', () => {
    const w = hostWatchdog(CASES);
    expect(w.bootSec).toBeGreaterThan(0);
    CASES.forEach((c, i) => expect(w.caseSec(i)).toBe(c.limitSec + w.slackSec));
  });
  it('the guest init waits for each case without a polling loop and marks a case that overran', () => {
    // each read waits only for what is left of the case's deadline (a late name cannot restart it)
    expect(INIT_SCRIPT).toContain('read -t $((dl - ${UP%.*})) x <&3');
    expect(INIT_SCRIPT).toContain('echo watchdog > /out/$c/rc');
    expect(INIT_SCRIPT).not.toMatch(/sleep 0\.1/);
  });
});

/** Build a dm-log-writes log: entries are [block, kind] with kind 'W' (4 KiB write of `fill`), 'F' (flush) or a mark. */
function makeLog(entries: readonly (readonly [number, 'W' | 'F' | 'M', number?])[]): Buffer {
  const ss = 512;
  const parts: Buffer[] = [];
  const sb = Buffer.alloc(ss);
  sb.writeBigUInt64LE(LW_MAGIC, 0);
  sb.writeBigUInt64LE(1n, 8);
  sb.writeBigUInt64LE(BigInt(entries.length), 16);
  sb.writeUInt32LE(ss, 24);
  parts.push(sb);
  for (const [block, kind, fill] of entries) {
    const h = Buffer.alloc(ss);
    if (kind === 'W') {
      h.writeBigUInt64LE(BigInt(block * 8), 0);
      h.writeBigUInt64LE(8n, 8);
      parts.push(h, Buffer.alloc(4096, fill ?? 1));
    } else if (kind === 'F') {
      h.writeBigUInt64LE(BigInt(LW_FLUSH), 16);
      parts.push(h);
    } else {
      h.writeBigUInt64LE(BigInt(LW_MARK), 16);
      h.writeBigUInt64LE(3n, 24);
      h.write('abc', 32);
      parts.push(h);
    }
  }
  return Buffer.concat(parts);
}

describe('dm-log-writes reader and crash rebuilds', () => {
  const good = makeLog([[1, 'W'], [2, 'W'], [0, 'M'], [0, 'F'], [0, 'W', 7], [0, 'F'], [3, 'W'], [0, 'F'], [0, 'W', 8], [0, 'F']]);
  it('parses entries, marks and epochs', () => {
    const log = parseLogWrites(good);
    expect(log.entries.length).toBe(10);
    expect(log.entries[2]?.mark).toBe('abc');
    expect(epochs(log).map((e) => e.writes.length)).toEqual([2, 1, 1, 1]);
  });
  it('accepts the kernel commit shape: dirty blocks, FLUSH, superblock, FLUSH (THIN-META-2)', () => {
    const s = commitShape(parseLogWrites(good));
    expect(s.violations).toEqual([]);
    expect(s.commits).toBe(2);
  });
  it('rejects a superblock written in the same epoch as other blocks, also in the unflushed tail (THIN-META-2)', () => {
    const bad = commitShape(parseLogWrites(makeLog([[1, 'W'], [0, 'F'], [2, 'W'], [0, 'W'], [0, 'F'], [0, 'W'], [4, 'W']])));
    expect(bad.violations.length).toBe(2);
    const loneTail = commitShape(parseLogWrites(makeLog([[1, 'W'], [0, 'F'], [0, 'W'], [0, 'F'], [0, 'W']])));
    expect(loneTail.violations).toEqual([]);
  });
  it('rebuilds images at flush points and subsets; a dropped epoch changes later images', () => {
    const log = parseLogWrites(good);
    const pts = [...crashImages(log, { imageBytes: 4 * 4096 })];
    expect(pts.map((p) => p.label)).toEqual(['flush point 1 (entry #5)', 'flush point 2 (entry #7)', 'flush point 3 (entry #9)']);
    expect(pts[2]?.image[0]).toBe(8);
    const subsets = [...crashImages(log, { imageBytes: 4 * 4096, subsetsPerEpoch: 4, seed: 5 })].filter((p) => p.label.includes('subset'));
    for (const s of subsets) expect(s.image[0]).not.toBe(0); // epoch 0 subsets are unformatted and skipped
    const dropped = [...crashImages(log, { imageBytes: 4 * 4096, dropEpoch: 2 })];
    expect(dropped.find((p) => !p.faithful)?.image[3 * 4096]).toBe(0);
  });
  it('refuses a buffer that is not a log', () => {
    expect(() => parseLogWrites(Buffer.alloc(4096))).toThrow(/not a dm-log-writes log/);
  });
});

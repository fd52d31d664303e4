// The volatile-write-cache block device (impl/block-device.ts): what survives a crash, torn
// sector writes, FUA, and injected IO errors.

import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, BlockDevice, IoError } from './block-device.js';

const blk = (v: number): Uint8Array => new Uint8Array(BLOCK_SIZE).fill(v);

describe('BlockDevice', () => {
  it('writes are volatile until a flush; FUA writes are durable at once', () => {
    const d = new BlockDevice(8);
    d.write(1, blk(1));
    d.write(2, blk(2), true);
    expect(d.read(1)[0]).toBe(1);
    expect(d.volatileWrites().map((w) => w.block)).toEqual([1]);
    const lost = d.crashImage([], null);
    expect(lost.read(1)[0]).toBe(0);
    expect(lost.read(2)[0]).toBe(2);
    d.flush();
    expect(d.volatileWrites()).toEqual([]);
    expect(d.crashImage([], null).read(1)[0]).toBe(1);
    expect(d.log()).toEqual([
      { kind: 'write', block: 1, fua: false },
      { kind: 'write', block: 2, fua: true },
      { kind: 'flush' },
    ]);
  });

  it('a crash keeps exactly the chosen volatile writes, in issue order', () => {
    const d = new BlockDevice(8);
    d.write(3, blk(1));
    d.write(3, blk(2));
    d.write(4, blk(3));
    expect(d.crashImage([0], null).read(3)[0]).toBe(1);
    expect(d.crashImage([1, 0], null).read(3)[0]).toBe(2);
    expect(d.crashImage([2], null).read(3)[0]).toBe(0);
    expect(() => d.crashImage([5], null)).toThrow(/no volatile write/);
  });

  it('a torn write lands only its first 512-byte sector', () => {
    const d = new BlockDevice(4);
    d.write(0, blk(7));
    d.flush();
    d.write(0, blk(9));
    const t = d.crashImage([0], 0).read(0);
    expect(t[0]).toBe(9);
    expect(t[511]).toBe(9);
    expect(t[512]).toBe(7);
    expect(() => d.crashImage([], 0)).toThrow(/must also be listed/);
  });

  it('armed faults raise IoError once (or every time when sticky)', () => {
    const d = new BlockDevice(4);
    d.armFault({ op: 'write', block: 2 });
    expect(() => d.write(2, blk(1))).toThrow(IoError);
    d.write(2, blk(1));
    d.armFault({ op: 'read', block: 1, sticky: true });
    expect(() => d.read(1)).toThrow(IoError);
    expect(() => d.read(1)).toThrow(IoError);
    d.clearFaults();
    d.armFault({ op: 'flush' });
    expect(() => d.flush()).toThrow(/FLUSH/);
    expect(d.volatileWrites().length).toBe(1);
  });

  it('round-trips through a buffer and rejects out-of-range blocks', () => {
    const d = new BlockDevice(3);
    d.write(1, blk(5));
    const e = BlockDevice.fromBuffer(d.toBuffer());
    expect(e.nrBlocks).toBe(3);
    expect(e.read(1)[100]).toBe(5);
    expect(() => e.read(3)).toThrow(/beyond the end/);
  });
});

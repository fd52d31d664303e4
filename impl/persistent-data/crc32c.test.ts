// CRC-32C as the kernel's crc32c() and dm_bm_checksum use it (lib/libcrc32c.c,
// drivers/md/persistent-data/dm-block-manager.c).

import { describe, expect, it } from 'vitest';
import { crc32c, crc32cRaw, dmBlockChecksum } from './crc32c.js';

describe('crc32c', () => {
  it('has the CRC-32C check value 0xE3069283 for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });
  it('slicing-by-8 agrees with the bytewise update at every length and offset', () => {
    const d = new Uint8Array(100).map((_, i) => (i * 37 + 11) & 0xff);
    const bytewise = (from: number, to: number): number => {
      let c = 0xffffffff;
      for (let i = from; i < to; i++) {
        c ^= d[i]!;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return c >>> 0;
    };
    for (let from = 0; from < 9; from++) for (let to = from; to <= 100; to += 7) expect(crc32cRaw(0xffffffff, d, from, to)).toBe(bytewise(from, to));
  });
  it('the block checksum is the raw CRC from byte 4 xor the salt', () => {
    const b = new Uint8Array(4096);
    expect(dmBlockChecksum(b, 4, 160774)).toBe((crc32cRaw(0xffffffff, b, 4) ^ 160774) >>> 0);
  });
});

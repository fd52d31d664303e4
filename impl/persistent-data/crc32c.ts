// CRC-32C (Castagnoli) as the kernel's crc32c() primitive computes it: reflected polynomial
// 0x82F63B78, caller-supplied seed, no final inversion. Follows lib/libcrc32c.c as used by
// drivers/md/persistent-data/dm-block-manager.c (dm_bm_checksum).

const TABLE: Uint32Array = (() => {
  // Slicing-by-8 tables: 8 × 256 entries.
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let s = 1; s < 8; s++) {
      c = (t[c & 0xff]! ^ (c >>> 8)) >>> 0;
      t[s * 256 + i] = c;
    }
  }
  return t;
})();

/** The raw CRC update: crc32c(seed, bytes) with no final XOR, like the kernel's crc32c(). */
export function crc32cRaw(seed: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = seed >>> 0;
  let i = start;
  const T = TABLE;
  for (; i + 8 <= end; i += 8) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c =
      T[7 * 256 + (c & 0xff)]! ^
      T[6 * 256 + ((c >>> 8) & 0xff)]! ^
      T[5 * 256 + ((c >>> 16) & 0xff)]! ^
      T[4 * 256 + (c >>> 24)]! ^
      T[3 * 256 + data[i + 4]!]! ^
      T[2 * 256 + data[i + 5]!]! ^
      T[256 + data[i + 6]!]! ^
      T[data[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** Standard CRC-32C (init ~0, final inversion); "123456789" gives 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  return (crc32cRaw(0xffffffff, data) ^ 0xffffffff) >>> 0;
}

/**
 * dm_bm_checksum: the block checksum stored in persistent-data blocks, crc32c(~0, data) ^ salt.
 * `data` is the block from byte 4 (the checksummed region).
 */
export function dmBlockChecksum(block: Uint8Array, from: number, salt: number): number {
  return (crc32cRaw(0xffffffff, block, from, block.length) ^ salt) >>> 0;
}

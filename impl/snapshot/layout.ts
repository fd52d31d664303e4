// Follows drivers/md/dm-snap-persistent.c (Linux 3.14.1): struct disk_header, struct disk_exception,
// area_location, skip_metadata, read_exception/write_exception, insert_exceptions' terminator test.
// Little-endian on disk. One chunk = one 4 KiB block of impl/block-device.ts (chunk_size 8 sectors).

import { BLOCK_SIZE } from '../block-device.js';

export const SNAP_MAGIC = 0x70416e53; // "SnAp"
export const SNAPSHOT_DISK_VERSION = 1;
export const NUM_SNAPSHOT_HDR_CHUNKS = 1;
export const CHUNK_SECTORS = BLOCK_SIZE / 512;
export const DISK_EXCEPTION_SIZE = 16;
/** Exceptions per area for a 4 KiB chunk. Bounded checking may use fewer slots (see `epa`). */
export const KERNEL_EPA = BLOCK_SIZE / DISK_EXCEPTION_SIZE;

export interface Header {
  readonly magic: number;
  readonly valid: number;
  readonly version: number;
  readonly chunkSize: number;
}

export function encodeHeader(h: Header): Uint8Array {
  const b = new Uint8Array(BLOCK_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, h.magic, true);
  v.setUint32(4, h.valid, true);
  v.setUint32(8, h.version, true);
  v.setUint32(12, h.chunkSize, true);
  return b;
}

export function decodeHeader(b: Uint8Array): Header {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { magic: v.getUint32(0, true), valid: v.getUint32(4, true), version: v.getUint32(8, true), chunkSize: v.getUint32(12, true) };
}

export type Rec = readonly [oldChunk: number, newChunk: number];

export function readRecord(area: Uint8Array, i: number): Rec {
  const v = new DataView(area.buffer, area.byteOffset, area.byteLength);
  return [Number(v.getBigUint64(i * 16, true)), Number(v.getBigUint64(i * 16 + 8, true))];
}

export function writeRecord(area: Uint8Array, i: number, r: Rec): void {
  const v = new DataView(area.buffer, area.byteOffset, area.byteLength);
  v.setBigUint64(i * 16, BigInt(r[0]), true);
  v.setBigUint64(i * 16 + 8, BigInt(r[1]), true);
}

/**
 * Metadata area k lives at chunk 1 + (epa + 1) * k; the mutant 'area-off-by-one' drops the +1 so
 * areas land on data chunks that skip_metadata hands out.
 */
export function areaLocation(epa: number, k: number, mutant: string | null = null): number {
  const stride = mutant === 'area-off-by-one' ? epa : epa + 1;
  return NUM_SNAPSHOT_HDR_CHUNKS + stride * k;
}

/** skip_metadata: a chunk with chunk mod (epa + 1) == 1 is a metadata area; step over it. */
export function skipMetadata(epa: number, nextFree: number): number {
  return nextFree % (epa + 1) === NUM_SNAPSHOT_HDR_CHUNKS ? nextFree + 1 : nextFree;
}

export function isMetadataChunk(epa: number, chunk: number): boolean {
  return chunk === 0 || chunk % (epa + 1) === NUM_SNAPSHOT_HDR_CHUNKS;
}

/** A data block standing for "origin chunk `o` as of version `v`" (or a snapshot write). */
export function dataBlock(kind: 'copy' | 'snapw', o: number, v: number): Uint8Array {
  const b = new Uint8Array(BLOCK_SIZE);
  const dv = new DataView(b.buffer);
  // Non-zero in every 16-byte record slot, so a data chunk misread as an area never looks empty.
  for (let i = 0; i < BLOCK_SIZE; i += 16) {
    dv.setUint32(i, kind === 'copy' ? 0x434f5059 : 0x534e4150, true);
    dv.setUint32(i + 4, o, true);
    dv.setUint32(i + 8, v, true);
    dv.setUint32(i + 12, 0xdada, true);
  }
  return b;
}

export function parseDataBlock(b: Uint8Array): { kind: 'copy' | 'snapw' | 'zero' | 'other'; o: number; v: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = dv.getUint32(0, true);
  if (b.every((x) => x === 0)) return { kind: 'zero', o: 0, v: 0 };
  const kind = tag === 0x434f5059 ? 'copy' : tag === 0x534e4150 ? 'snapw' : 'other';
  return { kind, o: dv.getUint32(4, true), v: dv.getUint32(8, true) };
}

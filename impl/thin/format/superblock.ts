// dm-thin on-disk superblock, device details and mapping values: follows
// drivers/md/dm-thin-metadata.c (Linux 3.14): struct thin_disk_superblock, struct
// disk_device_details, sb_prepare_for_write, sb_check, pack_block_time/unpack_block_time.

import { dmBlockChecksum } from '../../persistent-data/crc32c.js';
import { MetadataError } from '../../persistent-data/errors.js';
import type { Validator } from '../../persistent-data/block-manager.js';
import { getU32, getU64, putU32, putU64 } from '../../persistent-data/btree-internal.js';
import { readSmRoot } from '../../persistent-data/space-map-common.js';

export const THIN_SUPERBLOCK_MAGIC = 27022010;
export const THIN_SUPERBLOCK_LOCATION = 0;
export const THIN_VERSION = 2;
export const SUPERBLOCK_CSUM_XOR = 160774;
export const THIN_METADATA_BLOCK_SIZE = 8; // sectors
export const THIN_METADATA_NEEDS_CHECK_FLAG = 1;
export const THIN_METADATA_MAX_SECTORS = 255 * (1 << 14) * 8;
export const SUPERBLOCK_STRUCT_SIZE = 364;

export const SB = {
  csum: 0x000,
  flags: 0x004,
  blocknr: 0x008,
  uuid: 0x010,
  magic: 0x020,
  version: 0x028,
  time: 0x02c,
  transId: 0x030,
  heldRoot: 0x038,
  dataSmRoot: 0x040,
  metadataSmRoot: 0x0c0,
  dataMappingRoot: 0x140,
  deviceDetailsRoot: 0x148,
  dataBlockSize: 0x150,
  metadataBlockSize: 0x154,
  metadataNrBlocks: 0x158,
  compatFlags: 0x160,
  compatRoFlags: 0x164,
  incompatFlags: 0x168,
} as const;

export const superblockValidator: Validator = {
  name: 'superblock',
  prepareForWrite(d, b) {
    putU64(d, SB.blocknr, b);
    putU32(d, SB.csum, dmBlockChecksum(d, 4, SUPERBLOCK_CSUM_XOR));
  },
  check(d, b) {
    const at = getU64(d, SB.blocknr);
    if (at !== b) throw new MetadataError('EILSEQ', `superblock check failed: blocknr ${at}, wanted ${b}`);
    const magic = getU64(d, SB.magic);
    if (magic !== THIN_SUPERBLOCK_MAGIC) throw new MetadataError('EILSEQ', `superblock check failed: magic ${magic}, wanted ${THIN_SUPERBLOCK_MAGIC}`);
    const c = dmBlockChecksum(d, 4, SUPERBLOCK_CSUM_XOR);
    if (c !== getU32(d, SB.csum)) throw new MetadataError('EILSEQ', `superblock check failed: checksum ${getU32(d, SB.csum)}, wanted ${c}`);
  },
};

export interface SmRoot {
  readonly nrBlocks: number;
  readonly nrAllocated: number;
  readonly bitmapRoot: number;
  readonly refCountRoot: number;
}

export interface Superblock {
  readonly flags: number;
  readonly blocknr: number;
  readonly magic: number;
  readonly version: number;
  readonly time: number;
  readonly transId: number;
  readonly heldRoot: number;
  readonly dataSmRoot: SmRoot;
  readonly metadataSmRoot: SmRoot;
  readonly dataMappingRoot: number;
  readonly deviceDetailsRoot: number;
  readonly dataBlockSize: number;
  readonly metadataBlockSize: number;
  readonly metadataNrBlocks: number;
  readonly compatFlags: number;
  readonly compatRoFlags: number;
  readonly incompatFlags: number;
}

export function decodeSuperblock(d: Uint8Array): Superblock {
  return {
    flags: getU32(d, SB.flags),
    blocknr: getU64(d, SB.blocknr),
    magic: getU64(d, SB.magic),
    version: getU32(d, SB.version),
    time: getU32(d, SB.time),
    transId: getU64(d, SB.transId),
    heldRoot: getU64(d, SB.heldRoot),
    dataSmRoot: readSmRoot(d, SB.dataSmRoot),
    metadataSmRoot: readSmRoot(d, SB.metadataSmRoot),
    dataMappingRoot: getU64(d, SB.dataMappingRoot),
    deviceDetailsRoot: getU64(d, SB.deviceDetailsRoot),
    dataBlockSize: getU32(d, SB.dataBlockSize),
    metadataBlockSize: getU32(d, SB.metadataBlockSize),
    metadataNrBlocks: getU64(d, SB.metadataNrBlocks),
    compatFlags: getU32(d, SB.compatFlags),
    compatRoFlags: getU32(d, SB.compatRoFlags),
    incompatFlags: getU32(d, SB.incompatFlags),
  };
}

// ---- device details (24 bytes) ----

export interface DeviceDetails {
  mappedBlocks: number;
  transactionId: number;
  creationTime: number;
  snapshottedTime: number;
}

export const DEVICE_DETAILS_SIZE = 24;

export function encodeDetails(d: DeviceDetails): Uint8Array {
  const v = new Uint8Array(DEVICE_DETAILS_SIZE);
  putU64(v, 0, d.mappedBlocks);
  putU64(v, 8, d.transactionId);
  putU32(v, 16, d.creationTime);
  putU32(v, 20, d.snapshottedTime);
  return v;
}

export function decodeDetails(v: Uint8Array): DeviceDetails {
  return { mappedBlocks: getU64(v, 0), transactionId: getU64(v, 8), creationTime: getU32(v, 16), snapshottedTime: getU32(v, 20) };
}

// ---- mapping value: (data_block << 24) | time ----

export const TIME_MASK = (1 << 24) - 1;

export function packBlockTime(block: number, time: number): Uint8Array {
  const v = new Uint8Array(8);
  // low 32 bits: (block low 8 bits << 24) | time; high 32 bits: block >> 8
  putU32(v, 0, (((block & 0xff) << 24) | (time & TIME_MASK)) >>> 0);
  putU32(v, 4, Math.floor(block / 256) >>> 0);
  return v;
}

export function unpackBlockTime(v: Uint8Array, off = 0): { block: number; time: number } {
  const lo = getU32(v, off);
  const hi = getU32(v, off + 4);
  return { block: hi * 256 + (lo >>> 24), time: lo & TIME_MASK };
}

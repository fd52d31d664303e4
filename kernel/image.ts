// The kernel's metadata image seen two ways: decoded by the project's own reader
// (impl/thin/pool-metadata.ts, which follows dm-thin-metadata.c __open_metadata) and as printed by
// thin_dump (thin-provisioning-tools XML). Both must describe the same pool.

import { BLOCK_SIZE, BlockDevice } from '../impl/block-device.js';
import { PoolMetadata, type PoolSummary } from '../impl/thin/pool-metadata.js';

/** A BlockDevice holding exactly the image's bytes (as durable contents). */
export function deviceFromImage(image: Buffer): BlockDevice {
  if (image.length % BLOCK_SIZE !== 0) throw new Error(`metadata image of ${image.length} bytes is not a whole number of 4 KiB blocks`);
  const blocks = new Map<number, Uint8Array>();
  for (let b = 0; b < image.length / BLOCK_SIZE; b++) {
    const chunk = image.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    if (!chunk.every((x) => x === 0)) blocks.set(b, new Uint8Array(chunk));
  }
  return new BlockDevice(image.length / BLOCK_SIZE, blocks);
}

/** Open the image with the impl's reader (read-only use) and return its committed view. */
export function decodeWithImpl(image: Buffer, profile = 'fixed'): PoolSummary {
  const pmd = PoolMetadata.open(deviceFromImage(image), { variant: { profile, mutant: null } });
  return pmd.summary();
}

export interface DumpDevice {
  readonly id: number;
  readonly mappedBlocks: number;
  readonly transaction: number;
  readonly creationTime: number;
  readonly snapTime: number;
  /** [vblock, dataBlock, time], sorted by vblock */
  readonly mappings: readonly (readonly [number, number, number])[];
}

export interface ThinDump {
  readonly transaction: number;
  readonly time: number;
  readonly dataBlockSize: number;
  readonly nrDataBlocks: number;
  readonly flags: number;
  readonly devices: readonly DumpDevice[];
}

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/(\w+)="([^"]*)"/g)) if (m[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  return out;
}

/** Parse thin_dump's XML (superblock, device, range_mapping, single_mapping elements). */
export function parseThinDump(xml: string): ThinDump {
  const sbTag = /<superblock\b[^>]*>/.exec(xml)?.[0];
  if (!sbTag) throw new Error('thin_dump output has no <superblock> element');
  const sb = attrs(sbTag);
  type Building = { id: number; mappedBlocks: number; transaction: number; creationTime: number; snapTime: number; mappings: [number, number, number][] };
  const devices: Building[] = [];
  let cur: { id: number; mappedBlocks: number; transaction: number; creationTime: number; snapTime: number; mappings: [number, number, number][] } | null = null;
  for (const m of xml.matchAll(/<(device|range_mapping|single_mapping)\b[^>]*>|<\/device>/g)) {
    const tag = m[0];
    if (tag === '</device>') {
      if (cur) devices.push(cur);
      cur = null;
      continue;
    }
    const a = attrs(tag);
    if (m[1] === 'device') {
      cur = { id: Number(a['dev_id']), mappedBlocks: Number(a['mapped_blocks']), transaction: Number(a['transaction']), creationTime: Number(a['creation_time']), snapTime: Number(a['snap_time']), mappings: [] };
    } else if (cur && m[1] === 'range_mapping') {
      const o = Number(a['origin_begin']), d = Number(a['data_begin']), n = Number(a['length']), t = Number(a['time']);
      for (let i = 0; i < n; i++) cur.mappings.push([o + i, d + i, t]);
    } else if (cur && m[1] === 'single_mapping') {
      cur.mappings.push([Number(a['origin_block']), Number(a['data_block']), Number(a['time'])]);
    }
  }
  for (const d of devices) d.mappings.sort((x, y) => x[0] - y[0]);
  return {
    transaction: Number(sb['transaction']),
    time: Number(sb['time']),
    dataBlockSize: Number(sb['data_block_size']),
    nrDataBlocks: Number(sb['nr_data_blocks']),
    flags: Number(sb['flags'] ?? 0),
    devices: devices.sort((a, b) => a.id - b.id),
  };
}

/** Differences between the impl's decoding and thin_dump's, as sentences (empty = same pool). */
export function compareWithDump(s: PoolSummary, d: ThinDump): string[] {
  const diffs: string[] = [];
  const eq = (what: string, a: number | boolean, b: number | boolean): void => {
    if (a !== b) diffs.push(`${what}: impl reads ${String(a)}, thin_dump says ${String(b)}`);
  };
  eq('transaction id', s.transactionId, d.transaction);
  eq('time', s.time, d.time);
  eq('data block size', s.dataBlockSize, d.dataBlockSize);
  eq('nr data blocks', s.nrDataBlocks, d.nrDataBlocks);
  eq('needs_check flag', s.needsCheck, (d.flags & 1) === 1);
  eq('number of devices', s.devices.length, d.devices.length);
  for (const dd of d.devices) {
    const sd = s.devices.find((x) => x.id === dd.id);
    if (!sd) {
      diffs.push(`device ${dd.id}: thin_dump lists it, the impl does not`);
      continue;
    }
    eq(`device ${dd.id} mapped_blocks`, sd.mappedBlocks, dd.mappedBlocks);
    eq(`device ${dd.id} transaction`, sd.transactionId, dd.transaction);
    eq(`device ${dd.id} creation_time`, sd.creationTime, dd.creationTime);
    eq(`device ${dd.id} snap_time`, sd.snapshottedTime, dd.snapTime);
    const a = JSON.stringify(sd.mappings), b = JSON.stringify(dd.mappings);
    if (a !== b) diffs.push(`device ${dd.id} mappings differ: impl ${sd.mappings.length} entries, thin_dump ${dd.mappings.length}`);
  }
  return diffs;
}

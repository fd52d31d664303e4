// thin_dump for the project: decode dm-thin metadata (drivers/md/dm-thin-metadata.c on-disk format)
// into the thin_dump XML model and print it exactly as thin-provisioning-tools 0.9.0 does
// (thin-metadata-format.md §3: attribute order, 2-space indent, range/single mappings).
// Damaged metadata is refused with the reason.

import type { BlockDevice } from '../../block-device.js';
import { checkMetadata, type Finding, type MappingEntry } from './check.js';

export interface XmlDevice {
  readonly devId: number;
  readonly mappedBlocks: number;
  readonly transaction: number;
  readonly creationTime: number;
  readonly snapTime: number;
  /** Sorted by vblock, one entry per mapped block. */
  readonly mappings: readonly MappingEntry[];
}

export interface XmlSuperblock {
  readonly uuid: string;
  readonly time: number;
  readonly transaction: number;
  readonly flags: number;
  readonly version: number;
  readonly dataBlockSize: number;
  readonly nrDataBlocks: number;
  readonly devices: readonly XmlDevice[];
}

/** The metadata cannot be decoded; `findings` says why. */
export class MetadataDamagedError extends Error {
  override readonly name = 'MetadataDamagedError';
  constructor(readonly findings: readonly Finding[]) {
    super(`metadata contains errors (run the checker for details): ${findings.map((f) => f.message).join('; ')}`);
  }
}

/** Findings that make the trees unreadable (what thin_dump fails on, plus a bad magic/blocknr). */
const FATAL_FOR_DUMP = new Set([
  'too-small',
  'io',
  'block-range',
  'sb-checksum',
  'sb-magic',
  'sb-blocknr',
  'sb-incompat',
  'btree-checksum',
  'btree-blocknr',
  'btree-flags',
  'btree-value-size',
  'btree-max-entries',
  'btree-nr-entries',
  'btree-key-order',
  'missing-mappings',
  'missing-devices',
  'no-metadata-snap',
]);

/** Decode the live trees (or, with metadataSnap, the held snapshot) into the XML model. */
export function readXmlModel(dev: BlockDevice, opts: { metadataSnap?: boolean } = {}): XmlSuperblock {
  const r = checkMetadata(dev, { skipSpaceMaps: true, metadataSnap: opts.metadataSnap ?? false });
  const fatal = r.findings.filter(
    (f) => FATAL_FOR_DUMP.has(f.code) || (f.code === 'device-sets' && f.message.includes('has no device details')),
  );
  const sb = opts.metadataSnap ? r.snapshot : r.superblock;
  if (fatal.length || !sb) throw new MetadataDamagedError(fatal.length ? fatal : r.findings);
  return {
    uuid: '',
    time: sb.time,
    transaction: sb.transId,
    flags: sb.flags,
    version: sb.version,
    dataBlockSize: sb.dataBlockSize,
    nrDataBlocks: sb.dataSmRoot.nrBlocks,
    devices: r.devices.map((d) => ({
      devId: d.id,
      mappedBlocks: d.details?.mappedBlocks ?? 0,
      transaction: d.details?.transactionId ?? 0,
      creationTime: d.details?.creationTime ?? 0,
      snapTime: d.details?.snapshottedTime ?? 0,
      mappings: d.mappings ?? [],
    })),
  };
}

/** Print the model as thin_dump 0.9.0's XML. */
export function emitXml(m: XmlSuperblock): string {
  const out: string[] = [];
  out.push(
    `<superblock uuid="${m.uuid}" time="${m.time}" transaction="${m.transaction}" flags="${m.flags}" version="${m.version}" data_block_size="${m.dataBlockSize}" nr_data_blocks="${m.nrDataBlocks}">`,
  );
  for (const d of m.devices) {
    out.push(`  <device dev_id="${d.devId}" mapped_blocks="${d.mappedBlocks}" transaction="${d.transaction}" creation_time="${d.creationTime}" snap_time="${d.snapTime}">`);
    const ms = d.mappings;
    let i = 0;
    while (i < ms.length) {
      const a = ms[i]!;
      let j = i + 1;
      while (j < ms.length) {
        const p = ms[j - 1]!;
        const q = ms[j]!;
        if (q.vblock !== p.vblock + 1 || q.dataBlock !== p.dataBlock + 1 || q.time !== a.time) break;
        j++;
      }
      if (j - i >= 2) out.push(`    <range_mapping origin_begin="${a.vblock}" data_begin="${a.dataBlock}" length="${j - i}" time="${a.time}"/>`);
      else out.push(`    <single_mapping origin_block="${a.vblock}" data_block="${a.dataBlock}" time="${a.time}"/>`);
      i = j;
    }
    out.push('  </device>');
  }
  out.push('</superblock>');
  return out.join('\n') + '\n';
}

/** thin_dump: the XML text of a metadata image; throws MetadataDamagedError when damaged. */
export function dumpXml(dev: BlockDevice, opts: { metadataSnap?: boolean } = {}): string {
  return emitXml(readXmlModel(dev, opts));
}

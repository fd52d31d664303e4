// thin_restore-style XML import for the project: parse thin_dump XML (the 0.9.0 schema of
// thin-metadata-format.md §3) and build metadata with the reference implementation
// (impl/thin/pool-metadata.ts, which follows drivers/md/dm-thin-metadata.c).

import type { Variant } from '../../../checker/model.js';
import type { BlockDevice } from '../../block-device.js';
import { PoolMetadata } from '../pool-metadata.js';
import type { XmlDevice, XmlSuperblock } from './dump.js';

export class XmlParseError extends Error {
  override readonly name = 'XmlParseError';
}

const TAG = /<\s*(\/?)\s*([a-z_]+)((?:\s+[a-z_]+\s*=\s*"[^"]*")*)\s*(\/?)\s*>/gy;
const ATTR = /([a-z_]+)\s*=\s*"([^"]*)"/g;

function attrs(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of s.matchAll(ATTR)) m.set(a[1]!, a[2]!);
  return m;
}

function num(a: Map<string, string>, k: string, tag: string, dflt?: number): number {
  const v = a.get(k);
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new XmlParseError(`<${tag}> is missing the attribute ${k}`);
  }
  if (!/^\d+$/.test(v)) throw new XmlParseError(`<${tag}> attribute ${k}="${v}" is not a natural number`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new XmlParseError(`<${tag}> attribute ${k}="${v}" is too large`);
  return n;
}

/** Parse thin_dump XML into the model (ranges expanded, mappings sorted). */
export function parseXml(text: string): XmlSuperblock {
  let sb: Omit<XmlSuperblock, 'devices'> | null = null;
  const devices: { devId: number; mappedBlocks: number; transaction: number; creationTime: number; snapTime: number; mappings: { vblock: number; dataBlock: number; time: number }[] }[] = [];
  let cur: (typeof devices)[number] | null = null;
  let pos = 0;
  const skipWs = (): void => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  skipWs();
  if (text.startsWith('<?xml', pos)) pos = text.indexOf('?>', pos) + 2;
  for (;;) {
    skipWs();
    if (pos >= text.length) break;
    TAG.lastIndex = pos;
    const m = TAG.exec(text);
    if (!m) throw new XmlParseError(`cannot parse XML near offset ${pos}: ${JSON.stringify(text.slice(pos, pos + 40))}`);
    pos = TAG.lastIndex;
    const [, close, name, rawAttrs, selfClose] = m;
    const a = attrs(rawAttrs ?? '');
    if (close) {
      if (name === 'device') cur = null;
      continue;
    }
    switch (name) {
      case 'superblock':
        sb = {
          uuid: '',
          time: num(a, 'time', name),
          transaction: num(a, 'transaction', name),
          flags: num(a, 'flags', name, 0),
          version: num(a, 'version', name, 1),
          dataBlockSize: num(a, 'data_block_size', name),
          nrDataBlocks: num(a, 'nr_data_blocks', name),
        };
        break;
      case 'device': {
        if (!sb) throw new XmlParseError('<device> outside <superblock>');
        const id = num(a, 'dev_id', name);
        if (devices.some((d) => d.devId === id)) throw new XmlParseError(`duplicate dev_id ${id}`);
        cur = {
          devId: id,
          mappedBlocks: 0,
          transaction: num(a, 'transaction', name),
          creationTime: num(a, 'creation_time', name),
          snapTime: num(a, 'snap_time', name),
          mappings: [],
        };
        devices.push(cur);
        if (selfClose) cur = null;
        break;
      }
      case 'range_mapping': {
        if (!cur) throw new XmlParseError('<range_mapping> outside <device>');
        const o = num(a, 'origin_begin', name);
        const d = num(a, 'data_begin', name);
        const len = num(a, 'length', name);
        const t = num(a, 'time', name);
        for (let i = 0; i < len; i++) cur.mappings.push({ vblock: o + i, dataBlock: d + i, time: t });
        break;
      }
      case 'single_mapping': {
        if (!cur) throw new XmlParseError('<single_mapping> outside <device>');
        cur.mappings.push({ vblock: num(a, 'origin_block', name), dataBlock: num(a, 'data_block', name), time: num(a, 'time', name) });
        break;
      }
      default:
        throw new XmlParseError(`unknown tag type <${name}>`);
    }
  }
  if (!sb) throw new XmlParseError('no <superblock> element');
  for (const d of devices) {
    d.mappings.sort((x, y) => x.vblock - y.vblock);
    for (let i = 1; i < d.mappings.length; i++) {
      if (d.mappings[i]!.vblock === d.mappings[i - 1]!.vblock) throw new XmlParseError(`device ${d.devId} maps block ${d.mappings[i]!.vblock} twice`);
    }
    for (const m of d.mappings) {
      if (m.dataBlock >= sb.nrDataBlocks) throw new XmlParseError(`mapping beyond end of data device: device ${d.devId} block ${m.vblock} → ${m.dataBlock} (nr_data_blocks ${sb.nrDataBlocks})`);
    }
    d.mappedBlocks = d.mappings.length;
  }
  devices.sort((x, y) => x.devId - y.devId);
  return { ...sb, devices };
}

/**
 * Build committed metadata for `model` on `dev` (thin_restore): format, create every device with
 * its details, insert every mapping with its time, set time/transaction/flags/version, commit.
 */
export function restoreXml(dev: BlockDevice, model: XmlSuperblock, variant: Variant): PoolMetadata {
  const pmd = PoolMetadata.format(dev, { variant, dataBlockSize: model.dataBlockSize, nrDataBlocks: model.nrDataBlocks });
  for (const d of model.devices) {
    pmd.restoreDevice(d.devId, { mappedBlocks: 0, transactionId: d.transaction, creationTime: d.creationTime, snapshottedTime: d.snapTime });
    for (const m of d.mappings) pmd.restoreMapping(d.devId, m.vblock, m.dataBlock, m.time);
  }
  pmd.restoreSuperblockFields({ time: model.time, transId: model.transaction, flags: model.flags, version: model.version });
  pmd.commit();
  return pmd;
}

export type { XmlDevice, XmlSuperblock };

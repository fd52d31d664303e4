// What the machine and the implementation are compared on in lockstep: the open transaction as
// dm-thin-metadata.c reports it (transaction id, held root, per-device mappings with
// dm_thin_find_block's `shared` flag, mapped_blocks), the last message's result, and what each
// virtual block reads through the thin target's data path.

import type { Json } from '../../checker/model.js';
import { META_BLOCKS, META_BLOCKS_GROWN, freeDataBlocks, readCore, type ThinCfg, type ThinCtx } from '../../machines/thin/pool-txn.js';

export interface ThinProjection {
  readonly tid: number;
  readonly held: boolean;
  readonly reply: string | null;
  /** sm_disk_get_nr_free of the data space map. */
  readonly freeData: number;
  /** One entry per existing device, ascending id. */
  readonly devices: readonly {
    readonly id: number;
    readonly mappedBlocks: number;
    /** [vblock, dataBlock, shared 0/1] for every mapped vblock, ascending. */
    readonly mappings: readonly (readonly [number, number, number])[];
    /** Per vblock: the value a read returns (0 = zeroes, -1 = never-written disk contents). */
    readonly reads: readonly number[];
  }[];
  /** Blocks the in-core metadata space map covers (dm_pool_get_metadata_dev_size). */
  readonly metaBlocks: number;
  /** The view the durable superblock names (read back from the metadata image on the impl side). */
  readonly committed: {
    readonly tid: number;
    readonly held: boolean;
    readonly devices: readonly { readonly id: number; readonly mappings: readonly (readonly [number, number])[] }[];
  };
  /** The durable held metadata snapshot's devices (thin_dump -m), null when none is held. */
  readonly snapshot: readonly { readonly id: number; readonly mappings: readonly (readonly [number, number])[] }[] | null;
}

/** The rules a disagreement on each projection field breaks (Instance.projectionSpec). */
export function thinProjectionSpec(field: string): readonly string[] {
  switch (field) {
    case 'tid':
      return ['THIN-META-9'];
    case 'held':
      return ['THIN-META-10'];
    case 'reply':
      return ['THIN-META-9', 'THIN-META-10', 'THIN-META-11', 'THIN-META-12'];
    case 'freeData':
    case 'metaBlocks':
      return ['THIN-META-17'];
    case 'devices':
      // Which data block a mapping names is the allocator's choice (THIN-META-3); reads and counts.
      return ['THIN-META-3', 'THIN-META-14', 'THIN-META-15'];
    case 'committed':
      return ['THIN-META-1', 'THIN-META-13'];
    case 'snapshot':
      return ['THIN-META-18'];
    default:
      return [];
  }
}

function pairs(map: readonly number[]): [number, number][] {
  return map.flatMap((b, v) => (b >= 0 ? [[v, b] as [number, number]] : []));
}

export function thinProjection(c: ThinCtx, cfg: ThinCfg): Json {
  const devices: ThinProjection['devices'][number][] = [];
  c.core.devs.forEach((d, id) => {
    if (d === null) return;
    const mappings: [number, number, number][] = [];
    d.map.forEach((b, v) => {
      if (b >= 0) mappings.push([v, b, d.sh[v] ?? 0]);
    });
    const reads = Array.from({ length: cfg.vblocks }, (_, v) => readCore(c, id, v));
    devices.push({ id, mappedBlocks: mappings.length, mappings, reads });
  });
  const committed = {
    tid: c.disk.tid,
    held: c.disk.held,
    devices: c.disk.devs.flatMap((d, id) => (d === null ? [] : [{ id, mappings: pairs(d.map) }])),
  };
  const snapshot = c.disk.held && c.disk.snap !== null ? c.disk.snap.flatMap((m, id) => (m === null ? [] : [{ id, mappings: pairs(m) }])) : null;
  const p: ThinProjection = {
    tid: c.core.tid,
    held: c.core.held,
    reply: c.reply,
    freeData: freeDataBlocks(c, cfg),
    metaBlocks: c.core.mgrown ? META_BLOCKS_GROWN : META_BLOCKS,
    devices,
    committed,
    snapshot,
  };
  return p as unknown as Json;
}

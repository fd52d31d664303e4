// What the machine and the implementation are compared on in lockstep: the open transaction as
// dm-thin-metadata.c reports it (transaction id, held root, per-device mappings with
// dm_thin_find_block's `shared` flag, mapped_blocks), the last message's result, and what each
// virtual block reads through the thin target's data path.

import type { Json } from '../../checker/model.js';
import { freeDataBlocks, readCore, type ThinCfg, type ThinCtx } from '../../machines/thin/pool-txn.js';

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
  /** The view the durable superblock names (read back from the metadata image on the impl side). */
  readonly committed: {
    readonly tid: number;
    readonly held: boolean;
    readonly devices: readonly { readonly id: number; readonly mappings: readonly (readonly [number, number])[] }[];
    /** The held metadata snapshot's devices (thin_dump -m), null when none is held. */
    readonly snapshot: readonly { readonly id: number; readonly mappings: readonly (readonly [number, number])[] }[] | null;
  };
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
    snapshot: c.disk.held && c.disk.snap !== null ? c.disk.snap.flatMap((m, id) => (m === null ? [] : [{ id, mappings: pairs(m) }])) : null,
  };
  const p: ThinProjection = { tid: c.core.tid, held: c.core.held, reply: c.reply, freeData: freeDataBlocks(c, cfg), devices, committed };
  return p as unknown as Json;
}

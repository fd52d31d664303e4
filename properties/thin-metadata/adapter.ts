// Lockstep/replay adapter: drives the byte-exact pool metadata (impl/thin/pool-metadata.ts, the
// kernel's drivers/md/dm-thin-metadata.c) through the thin write path (impl/thin/data-path.ts,
// drivers/md/dm-thin.c) with the machine's events, and projects it to the machine's JSON summary.
//
// The commit is one call in the implementation (dm_pool_commit_metadata). To give the machine's
// four commit steps a meaning on real bytes, the metadata device is a HoldingDevice: while a
// commit runs it holds every write and records each FLUSH as a barrier; `meta_flush` releases the
// writes before the first barrier and flushes, `sb_write`/`sb_flush` do the same for the rest (the
// superblock). A crash maps the machine's pending-write indices onto these groups and onto the data
// device's cached writes, builds both crash images, and reopens the pool from them
// (__open_metadata), so recovery is judged on what the implementation actually wrote.

import type { Bounds, Ev, Gate, ImplAdapter, ImplHandle, Json, Variant } from '../../checker/model.js';
import { BLOCK_SIZE, BlockDevice, SECTOR_SIZE } from '../../impl/block-device.js';
import { ThinDataPath, dataCrashImage } from '../../impl/thin/data-path.js';
import { THIN_METADATA_MUTANT_IDS } from '../../impl/thin/mutants.js';
import { PoolMetadata } from '../../impl/thin/pool-metadata.js';
import { checkMetadata } from '../../impl/thin/tools/check.js';
import { heldRootInBuffer, type ThinEv } from '../../machines/thin/pool-txn.js';
import { thinBounds } from './bounds.js';

/** Metadata device size for lockstep pools (4 KiB blocks); plenty for a handful of devices. */
export const LOCKSTEP_METADATA_BLOCKS = 256;

interface Held {
  readonly block: number;
  readonly data: Uint8Array;
}

/** A block device that can hold writes and flushes back (see the file comment). */
export class HoldingDevice extends BlockDevice {
  private holding = false;
  /** Writes in issue order, split at each FLUSH the holder saw. */
  private groups: Held[][] = [[]];

  hold(): void {
    this.holding = true;
    this.groups = [[]];
  }

  /** Stop holding: returns the write groups (group i ends with the i-th held FLUSH). */
  release(): Held[][] {
    this.holding = false;
    const g = this.groups;
    this.groups = [[]];
    return g;
  }

  override write(block: number, data: Uint8Array, fua = false): void {
    if (!this.holding) {
      super.write(block, data, fua);
      return;
    }
    this.groups[this.groups.length - 1]!.push({ block, data: data.slice() });
  }

  override flush(): void {
    if (!this.holding) {
      super.flush();
      return;
    }
    this.groups.push([]);
  }

  override read(block: number): Uint8Array {
    if (this.holding) {
      for (let g = this.groups.length - 1; g >= 0; g--) {
        const grp = this.groups[g]!;
        for (let i = grp.length - 1; i >= 0; i--) if (grp[i]!.block === block) return grp[i]!.data;
      }
    }
    return super.read(block);
  }
}

/** Mirrors the machine's pending-write list, so crash indices can be mapped onto real writes. */
type Entry = { readonly k: 'data'; readonly block: number } | { readonly k: 'meta' } | { readonly k: 'sb' } | { readonly k: 'sbheld' };

type Phase = 'idle' | 'nodesIssued' | 'nodesDurable' | 'sbIssued';

function implVariant(v: Variant): Variant {
  // Machine-only mutants leave the implementation correct; implementation mutants pass through.
  return v.mutant !== null && THIN_METADATA_MUTANT_IDS.includes(v.mutant) ? v : { profile: v.profile, mutant: null };
}

export class ThinImplHandle implements ImplHandle<Ev> {
  private meta: HoldingDevice;
  private path: ThinDataPath;
  private readonly variant: Variant;
  private readonly machineVariant: Variant;
  private readonly dblocks: number;
  private readonly vblocks: number;
  private readonly devices: number;
  private entries: Entry[] = [];
  private phase: Phase = 'idle';
  /** Held commit IO: groups[0] = btree/space-map blocks, groups[1] = the superblock. */
  private groups: Held[][] = [];
  private seq = 0;
  /** The superblock buffer was dirtied outside a commit (reserve/release), as the machine's sbDirty. */
  private sbDirty = false;
  private reply: string | null = null;
  private broken: { spec: string[]; message: string } | null = null;
  private durableCache: { key: number; json: Json; finding: { spec: string[]; message: string } | null } | null = null;
  private durableVersion = 0;

  constructor(variant: Variant, bounds: Bounds) {
    this.machineVariant = variant;
    this.variant = implVariant(variant);
    const get = (k: string): number => bounds[k] ?? thinBounds[k]!.default;
    this.dblocks = get('dblocks');
    this.vblocks = get('vblocks');
    this.devices = get('devices');
    this.meta = new HoldingDevice(LOCKSTEP_METADATA_BLOCKS);
    const pmd = PoolMetadata.format(this.meta, { variant: this.variant, dataBlockSize: 128, nrDataBlocks: this.dblocks });
    this.path = new ThinDataPath(pmd, new BlockDevice(this.dblocks), this.variant);
  }

  apply(ev: Ev): void {
    // Messages (reserve commits) and commits change the durable image: re-read it after any step.
    this.durableVersion++;
    const e = ev as Ev & ThinEv;
    if (ev.type === '@crash') {
      this.crash((ev['keep'] as number[] | undefined) ?? [], (ev['torn'] as number | null | undefined) ?? null);
      return;
    }
    switch (e.type) {
      case 'create':
      case 'snap':
      case 'delete':
      case 'set_tid':
      case 'reserve':
      case 'release':
        this.reply = this.path.message(e);
        // As the machine: only with the held root kept in the superblock buffer (heldRootInBuffer).
        if (heldRootInBuffer(this.machineVariant) && ((e.type === 'reserve' && this.reply === 'ok') || e.type === 'release')) this.sbDirty = true;
        return;
      case 'open':
        this.path.open(e.dev);
        return;
      case 'close':
        this.path.close(e.dev);
        return;
      case 'write':
      case 'write_fua': {
        const fua = e.type === 'write_fua';
        const look = this.path.pmd.lookup(e.dev, e.vb);
        const target = look !== null && !look.shared ? look.dataBlock : -1;
        this.path.write(e.dev, e.vb, ++this.seq, fua);
        const b = target >= 0 ? target : this.path.pmd.lookup(e.dev, e.vb)!.dataBlock;
        if (fua) this.entries = this.entries.filter((x) => !(x.k === 'data' && x.block === b));
        else this.entries.push({ k: 'data', block: b });
        return;
      }
      case 'discard':
        this.path.discard(e.dev, e.vb);
        return;
      case 'flush':
        this.path.flush(e.dev);
        this.entries = this.entries.filter((x) => x.k !== 'data');
        return;
      case 'commit':
        this.path.commit();
        this.sbDirty = false;
        this.afterDataFlushByCommit();
        this.durableVersion++;
        return;
      case 'commit_begin':
        this.path.preCommit();
        this.afterDataFlushByCommit();
        this.meta.hold();
        this.path.pmd.commit();
        this.groups = this.meta.release();
        this.entries.push({ k: 'meta' });
        if (this.machineVariant.mutant === 'sb-before-flush' || (this.sbDirty && this.variant.profile === 'linux-3.14')) this.entries.push({ k: 'sb' });
        else if (this.sbDirty) this.entries.push({ k: 'sbheld' });
        this.sbDirty = false;
        this.phase = 'nodesIssued';
        return;
      case 'meta_flush':
        for (const w of this.groups[0] ?? []) this.meta.write(w.block, w.data);
        this.meta.flush();
        this.entries = this.entries.filter((x) => x.k === 'data');
        this.phase = 'nodesDurable';
        return;
      case 'sb_write':
        this.entries.push({ k: 'sb' });
        this.phase = 'sbIssued';
        return;
      case 'sb_flush':
        // With the sb-before-flush machine mutant no meta_flush came first: everything lands now.
        for (const g of this.phase === 'nodesIssued' ? this.groups : this.groups.slice(1)) {
          for (const w of g) this.meta.write(w.block, w.data);
        }
        this.meta.flush();
        this.groups = [];
        this.entries = this.entries.filter((x) => x.k === 'data');
        this.phase = 'idle';
        this.durableVersion++;
        return;
      default:
        throw new Error(`thin-metadata adapter: unknown event ${JSON.stringify(ev)}`);
    }
  }

  private afterDataFlushByCommit(): void {
    if (this.variant.profile !== 'linux-3.14') this.entries = this.entries.filter((x) => x.k !== 'data');
  }

  /**
   * Power cut keeping the machine's pending writes `keep` (and `torn` landing torn), then reopen.
   * Data entries map in order onto the data path's live cached writes; the 'meta' entry onto every
   * held write before the first barrier; the 'sb' entry onto the superblock write after it.
   */
  private crash(keep: readonly number[], torn: number | null): void {
    const dataKeep: number[] = [];
    let metaLands = false;
    let heldLands = false;
    let sbLands: 'no' | 'whole' | 'torn' = 'no';
    let dataIdx = 0;
    this.entries.forEach((x, i) => {
      const kept = keep.includes(i);
      if (x.k === 'data') {
        if (kept) dataKeep.push(dataIdx);
        dataIdx++;
      } else if (x.k === 'meta') metaLands = kept;
      else if (x.k === 'sbheld') heldLands = kept;
      else if (kept) sbLands = 'whole';
      else if (torn === i) sbLands = 'torn';
    });
    const img = new Map(this.meta.crashImage([], null).durableImage());
    const put = (w: Held, tornWrite: boolean): void => {
      if (!tornWrite) {
        img.set(w.block, w.data);
        return;
      }
      const t = (img.get(w.block) ?? new Uint8Array(BLOCK_SIZE)).slice();
      t.set(w.data.subarray(0, SECTOR_SIZE), 0);
      img.set(w.block, t);
    };
    const [g0 = [], ...rest] = this.groups;
    const later = rest.flat();
    // 'meta' is every block of the first write-back but the superblock; 'sbheld' is the superblock
    // in it (mutant held-root-in-buffer); 'sb' is the last superblock write of the commit.
    if (this.phase === 'nodesIssued') {
      for (const w of g0) if ((w.block !== 0 && metaLands) || (w.block === 0 && heldLands)) put(w, false);
    }
    if (sbLands !== 'no') {
      const sbw = [...g0, ...later].filter((w) => w.block === 0).pop();
      if (sbw) put(sbw, sbLands === 'torn');
    }
    const dataDev = dataCrashImage(this.path, dataKeep);
    const metaDev = new HoldingDevice(LOCKSTEP_METADATA_BLOCKS, img);
    this.meta = metaDev;
    this.entries = [];
    this.groups = [];
    this.phase = 'idle';
    this.reply = null;
    this.sbDirty = false;
    this.durableVersion++;
    try {
      const pmd = PoolMetadata.open(metaDev, { variant: this.variant });
      this.path = new ThinDataPath(pmd, dataDev, this.variant);
    } catch (err) {
      this.broken = {
        spec: ['THIN-META-1'],
        message: `after the crash the pool metadata cannot be reopened: ${(err as Error).message}`,
      };
    }
  }

  /** The committed view as read from the durable metadata image, with the checker's findings. */
  private durable(): { json: Json; finding: { spec: string[]; message: string } | null } {
    if (this.durableCache?.key === this.durableVersion) return this.durableCache;
    const r = checkMetadata(this.meta.crashImage([], null));
    const errors = r.findings.filter((f) => f.severity === 'error');
    const finding =
      errors.length === 0
        ? null
        : {
            spec: errors.some((f) => f.code.endsWith('-refcount') || f.code.endsWith('-leak')) ? ['THIN-META-4', 'THIN-META-16'] : ['THIN-META-16'],
            message: `the committed metadata image fails the checker: ${errors.map((f) => f.message).slice(0, 3).join('; ')}`,
          };
    const devices = r.devices
      .filter((d) => d.id < this.devices)
      .map((d) => ({ id: d.id, mappings: (d.mappings ?? []).map((m) => [m.vblock, m.dataBlock] as [number, number]) }));
    const held = (r.superblock?.heldRoot ?? 0) !== 0;
    let snapshot: Json = null;
    if (held) {
      const rs = checkMetadata(this.meta.crashImage([], null), { metadataSnap: true, skipSpaceMaps: true });
      snapshot = rs.devices
        .filter((d) => d.id < this.devices)
        .map((d) => ({ id: d.id, mappings: (d.mappings ?? []).map((m) => [m.vblock, m.dataBlock] as [number, number]) }));
    }
    const json: Json = { tid: r.superblock?.transId ?? -1, held, devices, snapshot };
    this.durableCache = { key: this.durableVersion, json, finding };
    return this.durableCache;
  }

  project(): Json {
    if (this.broken) return { broken: this.broken.message };
    const pmd = this.path.pmd;
    const s = pmd.summary();
    const devices = s.devices.map((d) => {
      const mappings = d.mappings.map(([v, b]) => {
        const look = pmd.lookup(d.id, v);
        return [v, b, look?.shared ? 1 : 0] as [number, number, number];
      });
      const reads = Array.from({ length: this.vblocks }, (_, v) => this.path.read(d.id, v));
      return { id: d.id, mappedBlocks: d.mappedBlocks, mappings, reads };
    });
    return { tid: s.transactionId, held: s.heldRoot !== 0, reply: this.reply, freeData: s.freeDataBlocks, devices, committed: this.durable().json };
  }

  selfCheck(): { readonly spec: readonly string[]; readonly message: string } | null {
    if (this.broken) return this.broken;
    return this.durable().finding;
  }
}

export const thinImplAdapter: ImplAdapter<Ev> = {
  create: (variant: Variant, bounds: Bounds, _gate: Gate<Ev>) => new ThinImplHandle(variant, bounds),
  isExternal: () => true,
};

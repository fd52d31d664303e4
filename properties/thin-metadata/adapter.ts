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
//
// The events the implementation mutants of impl/thin/mutants.ts need: `resize_meta`
// (dm_pool_resize_metadata_dev), `commit_fail` (a metadata write error inside
// dm_pool_commit_metadata, then dm_pool_abort_metadata), `reserve_race` (a provisioning write
// between dm-thin's commit() and dm_pool_reserve_metadata_snap), pool_message's commit after a
// message (bound `autocommit`), and `run` kernel blocks per modelled block so a few modelled blocks
// fill multi-level btrees. Implementation-only rules (selfCheck): the checker on the durable image
// (THIN-META-16), a refused resize (THIN-META-17), a reserve that leaves changes uncommitted
// (THIN-META-18), a failed commit's superblock on the device (THIN-META-1, -2).

import type { Bounds, Ev, Gate, ImplAdapter, ImplHandle, Json, Variant } from '../../checker/model.js';
import { BLOCK_SIZE, BlockDevice, IoError, SECTOR_SIZE } from '../../impl/block-device.js';
import { ThinDataPath, dataCrashImage, decodeValue } from '../../impl/thin/data-path.js';
import { THIN_METADATA_MUTANT_IDS } from '../../impl/thin/mutants.js';
import { MetadataError, PoolMetadata } from '../../impl/thin/pool-metadata.js';
import { checkMetadata, formatFindings } from '../../impl/thin/tools/check.js';
import { META_BLOCKS, META_BLOCKS_GROWN, type ThinEv } from '../../machines/thin/pool-txn.js';
import { thinBounds } from './bounds.js';

/** An implementation-only violation found by the adapter (selfCheck reports it). */
export interface ImplFinding {
  readonly spec: readonly string[];
  readonly message: string;
  /** The metadata image that shows it, when it is on-disk damage (thin_check gets this image). */
  readonly image: BlockDevice | null;
}

interface Held {
  readonly block: number;
  readonly data: Uint8Array;
}

/** A block device that can hold writes and flushes back (see the file comment). */
export class HoldingDevice extends BlockDevice {
  private holding = false;
  /** Writes in issue order, split at each FLUSH the holder saw. */
  private groups: Held[][] = [[]];
  /** Injected write error: armed, then sticky on the first block written (and every retry of it). */
  private failing: 'off' | 'armed' | number = 'off';

  /** Fail the next write, and every later write to the same block. */
  armWriteError(): void {
    this.failing = 'armed';
  }

  disarmWriteError(): void {
    this.failing = 'off';
  }

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
    if (this.failing === 'armed') this.failing = block;
    if (this.failing === block) throw new IoError('write', block, `injected metadata write error on block ${block}`);
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

/** What a modelled block reads, or a mapping shows, when the kernel blocks of its run disagree. */
const TORN_RUN = -2;

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
  private readonly autocommit: boolean;
  /** Kernel blocks per modelled block: a modelled write, discard or data block is a run of them. */
  private readonly run: number;
  private entries: Entry[] = [];
  private phase: Phase = 'idle';
  /** Held commit IO: groups[0] = btree/space-map blocks, groups[1] = the superblock. */
  private groups: Held[][] = [];
  private seq = 0;
  private reply: string | null = null;
  private broken: { spec: string[]; message: string } | null = null;
  /** The first implementation-only violation a step showed (resize refused, failed-commit damage). */
  private finding: ImplFinding | null = null;
  /**
   * The committed view is re-read only when the durable metadata image can have changed: a write
   * or flush reached the metadata device, or the device was replaced (crash, abort).
   */
  private durableCache: { dev: HoldingDevice; writes: number; flushes: number; json: Json; finding: { spec: string[]; message: string } | null } | null = null;

  constructor(variant: Variant, bounds: Bounds) {
    this.machineVariant = variant;
    this.variant = implVariant(variant);
    const get = (k: string): number => bounds[k] ?? thinBounds[k]!.default;
    this.dblocks = get('dblocks');
    this.vblocks = get('vblocks');
    this.devices = get('devices');
    this.autocommit = get('autocommit') === 1;
    this.run = get('run');
    // META_BLOCKS (4 KiB blocks): plenty for a handful of devices; resize_meta grows it.
    this.meta = new HoldingDevice(META_BLOCKS);
    const pmd = PoolMetadata.format(this.meta, { variant: this.variant, dataBlockSize: 128, nrDataBlocks: this.dblocks * this.run });
    this.path = new ThinDataPath(pmd, new BlockDevice(this.dblocks * this.run), this.variant);
  }

  apply(ev: Ev): void {
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
        if (e.type === 'reserve') this.checkReserveCommitted(e);
        this.afterMessage();
        return;
      case 'open':
        this.path.open(e.dev);
        return;
      case 'close':
        this.path.close(e.dev);
        return;
      case 'write':
      case 'write_fua':
        this.dataPathOp(ev, () => this.write(e.dev, e.vb, e.type === 'write_fua'));
        return;
      case 'reserve_race':
        // dm-thin's commit(), the racing worker's provisioning write, then the reserve itself.
        this.path.commit();
        this.afterDataFlushByCommit();
        this.dataPathOp(ev, () => this.write(e.dev, e.vb, false));
        this.path.preCommit();
        this.afterDataFlushByCommit();
        this.reply = this.errno(() => this.path.pmd.reserveMetadataSnap());
        this.checkReserveCommitted(e);
        this.afterMessage();
        return;
      case 'resize_meta':
        if (this.meta.nrBlocks < META_BLOCKS_GROWN) this.meta.resize(META_BLOCKS_GROWN);
        this.reply = this.errno(() => this.path.pmd.resizeMetadataDevice(META_BLOCKS_GROWN));
        if (this.reply !== 'ok') {
          this.finding ??= {
            spec: ['THIN-META-17'],
            message: `growing the metadata space map from ${META_BLOCKS} to ${META_BLOCKS_GROWN} blocks failed (${this.reply}) although the device has room`,
            image: null,
          };
        }
        this.afterMessage();
        return;
      case 'commit_fail':
        this.commitFail();
        return;
      case 'discard':
        this.dataPathOp(ev, () => {
          for (let i = 0; i < this.run; i++) this.path.discard(e.dev, e.vb * this.run + i);
        });
        return;
      case 'flush':
        this.path.flush(e.dev);
        this.entries = this.entries.filter((x) => x.k !== 'data');
        return;
      case 'commit':
        this.path.commit();
        this.afterDataFlushByCommit();
        return;
      case 'commit_begin': {
        // The machine's sbDirty: reserve/release left the superblock buffer dirty outside a commit
        // (the held root kept in the buffer: linux-3.14, mutant held-root-in-buffer).
        const sbDirty = this.path.pmd.superblockDirty();
        this.path.preCommit();
        this.afterDataFlushByCommit();
        this.meta.hold();
        this.path.pmd.commit();
        this.groups = this.meta.release();
        this.entries.push({ k: 'meta' });
        if (this.machineVariant.mutant === 'sb-before-flush' || (sbDirty && this.variant.profile === 'linux-3.14')) this.entries.push({ k: 'sb' });
        else if (sbDirty) this.entries.push({ k: 'sbheld' });
        this.phase = 'nodesIssued';
        return;
      }
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
        return;
      default:
        throw new Error(`thin-metadata adapter: unknown event ${JSON.stringify(ev)}`);
    }
  }

  /**
   * A write or discard whose metadata update fails. The machine never fails one (it enables a
   * provisioning write only when a data block is free), so the failure is the implementation's: in
   * the kernel, process_bio → metadata_operation_failed aborts the transaction and sets the pool
   * read-only. A space map asked to drop a count below zero (-EINVAL, sm_ll_dec) means the
   * reference counts already disagree with the trees (THIN-META-4); anything else but running out
   * of metadata space is damaged metadata (THIN-META-16). Metadata space is not modelled (the device
   * has META_BLOCKS blocks, or META_BLOCKS_GROWN after resize_meta): a full device is reported
   * with no rule, as bounds this model cannot judge.
   */
  private dataPathOp(ev: Ev, f: () => void): void {
    try {
      f();
    } catch (err) {
      if (!(err instanceof MetadataError)) throw err;
      const full = err.errno === 'ENOSPC';
      this.finding ??= {
        spec: full ? [] : err.errno === 'EINVAL' ? ['THIN-META-4'] : ['THIN-META-16'],
        message: full
          ? `the metadata device (${this.meta.nrBlocks} blocks) is full at ${JSON.stringify(ev)}: the model does not cover metadata space; grow it first (resize_meta) or use a smaller 'run'`
          : `the metadata update of ${JSON.stringify(ev)} failed (${err.message}); dm-thin would abort the transaction and set the pool read-only`,
        image: null,
      };
    }
  }

  /** A whole-block write through the data path; records the cached data write a crash may keep. */
  private write(dev: number, vb: number, fua: boolean): void {
    const first = vb * this.run;
    const look = this.path.pmd.lookup(dev, first);
    const target = look !== null && !look.shared ? look.dataBlock : -1;
    const value = ++this.seq;
    for (let i = 0; i < this.run; i++) this.path.write(dev, first + i, value, fua);
    // The modelled data block: the run the first kernel block lands in.
    const b = Math.floor((target >= 0 ? target : this.path.pmd.lookup(dev, first)!.dataBlock) / this.run);
    if (fua) this.entries = this.entries.filter((x) => !(x.k === 'data' && x.block === b));
    else this.entries.push({ k: 'data', block: b });
  }

  /**
   * THIN-META-18: a successful reserve_metadata_snap commits the open transaction under the pool
   * lock (49e99fc7), so no device may have uncommitted changes afterwards; otherwise the held root
   * pins the trees of an older commit than the in-core view the message was sent against.
   */
  private checkReserveCommitted(e: Ev): void {
    if (this.reply !== 'ok' || !this.path.pmd.changedThisTransaction()) return;
    this.finding ??= {
      spec: ['THIN-META-18'],
      message: `${e.type} left uncommitted metadata changes: the held snapshot pins the roots of the previous commit, not the view the message was sent against`,
      image: null,
    };
  }

  /** With autocommit, pool_message's commit after a successful message. */
  private afterMessage(): void {
    if (!this.autocommit || this.reply !== 'ok') return;
    this.path.commit();
    this.afterDataFlushByCommit();
  }

  /** Run a metadata call; a MetadataError becomes its '-ERRNO' reply. */
  private errno(f: () => void): string {
    try {
      f();
      return 'ok';
    } catch (err) {
      if (err instanceof MetadataError) return `-${err.errno}`;
      throw err;
    }
  }

  /**
   * commit_fail: the commit's first metadata write fails (and every retry of that block): a btree
   * or space-map block when the transaction changed any, else the superblock itself. dm-thin
   * aborts (dm_pool_abort_metadata: the teardown writes back the dirty buffers, then the metadata
   * is reopened from disk). THIN-META-2: the failed transaction's superblock must not reach the
   * device, so block 0 must be what it was before the commit.
   */
  private commitFail(): void {
    this.path.data.flush();
    this.entries = [];
    this.reply = null;
    const sbBefore = this.meta.read(0).slice();
    const pmd = this.path.pmd;
    this.meta.armWriteError();
    let committed = false;
    let reopenError: string | null = null;
    try {
      pmd.commit();
      committed = true;
    } catch {
      try {
        pmd.abort();
      } catch (err) {
        reopenError = (err as Error).message;
      }
    }
    this.meta.disarmWriteError();
    if (committed) throw new Error('thin-metadata adapter: commit_fail armed a write error but the commit wrote nothing');
    const sbAfter = this.meta.read(0);
    const image = this.meta.snapshot();
    if (!sbBefore.every((x, i) => sbAfter[i] === x)) {
      const r = checkMetadata(image);
      this.finding ??= {
        spec: ['THIN-META-1', 'THIN-META-2'],
        message: `the failed commit's superblock reached the metadata device (written back by the abort) although a block it names was never written${
          r.ok ? '' : `; the image fails the checker: ${formatFindings(r).split('\n').slice(0, 2).join('; ')}`
        }`,
        image,
      };
    }
    if (reopenError !== null) {
      this.broken = { spec: ['THIN-META-1'], message: `after the failed commit the pool metadata cannot be reopened: ${reopenError}` };
      return;
    }
    this.path = new ThinDataPath(pmd, this.path.data, this.variant);
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
        // One modelled data write is `run` consecutive cached kernel writes.
        if (kept) for (let r = 0; r < this.run; r++) dataKeep.push(dataIdx * this.run + r);
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
    const metaDev = new HoldingDevice(this.meta.nrBlocks, img);
    this.meta = metaDev;
    this.entries = [];
    this.groups = [];
    this.phase = 'idle';
    this.reply = null;
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
    const c = this.durableCache;
    if (c !== null && c.dev === this.meta && c.writes === this.meta.writesIssued && c.flushes === this.meta.flushesIssued) return c;
    const image = this.meta.crashImage([], null);
    const r = checkMetadata(image);
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
      .map((d) => ({ id: d.id, mappings: this.runsOf(d.mappings ?? []) }));
    const held = (r.superblock?.heldRoot ?? 0) !== 0;
    let snapshot: Json = null;
    if (held) {
      const rs = checkMetadata(image, { metadataSnap: true, skipSpaceMaps: true });
      snapshot = rs.devices
        .filter((d) => d.id < this.devices)
        .map((d) => ({ id: d.id, mappings: this.runsOf(d.mappings ?? []) }));
    }
    const json: Json = { tid: r.superblock?.transId ?? -1, held, devices, snapshot };
    this.durableCache = { dev: this.meta, writes: this.meta.writesIssued, flushes: this.meta.flushesIssued, json, finding };
    return this.durableCache;
  }

  /**
   * Kernel-block mappings (ascending vblock vs[i] → dataBlock bs[i], with an optional flag each) as
   * the model's runs: [v, b] or [v, b, flag] when kernel blocks v*run+k map to b*run+k for every k
   * with equal flags; anything else shows as [v, TORN_RUN], which no machine state projects to.
   * Typed arrays, no per-mapping objects: long lockstep traces project ~10^5 mappings a step.
   */
  private runs(vs: ArrayLike<number>, bs: ArrayLike<number>, flags: ArrayLike<number> | null): number[][] {
    const R = this.run;
    const out: number[][] = [];
    const n = vs.length;
    for (let i = 0; i < n; ) {
      const v0 = vs[i]!;
      const b0 = bs[i]!;
      const f0 = flags === null ? 0 : flags[i]!;
      const v = Math.floor(v0 / R);
      let whole = v0 % R === 0 && b0 % R === 0;
      let j = i;
      for (; j < n && Math.floor(vs[j]! / R) === v; j++) {
        if (vs[j] !== v0 + (j - i) || bs[j] !== b0 + (j - i) || (flags !== null && flags[j] !== f0)) whole = false;
      }
      if (j - i !== R) whole = false;
      out.push(!whole ? [v, TORN_RUN] : flags === null ? [v, b0 / R] : [v, b0 / R, f0]);
      i = j;
    }
    return out;
  }

  /** runs() over a checker device's mappings (no flags). */
  private runsOf(maps: readonly { readonly vblock: number; readonly dataBlock: number }[]): number[][] {
    return this.runs(
      maps.map((m) => m.vblock),
      maps.map((m) => m.dataBlock),
      null,
    );
  }

  project(): Json {
    if (this.broken) return { broken: this.broken.message };
    const pmd = this.path.pmd;
    const s = pmd.summary({ mappings: false });
    const span = this.vblocks * this.run;
    const devices = s.devices.map((d) => {
      // One walk of the device's tree gives both the mappings and what every block reads:
      // dm_thin_find_block's `shared` is time < snapshotted_time, and a read is the mapped data
      // block's content (zero when unmapped). Lockstep runs with long traces project after every
      // step, so per-block btree lookups would cost more than the step itself.
      const vs: number[] = [];
      const bs: number[] = [];
      const sh: number[] = [];
      const where = new Int32Array(span).fill(-1);
      pmd.forEachMapping(d.id, (v, b, t) => {
        vs.push(v);
        bs.push(b);
        sh.push(d.snapshottedTime > t ? 1 : 0);
        if (v < span) where[v] = b;
      });
      const mappings = this.runs(vs, bs, sh);
      const reads = Array.from({ length: this.vblocks }, (_, v) => {
        let val: number | null = null;
        for (let i = 0; i < this.run; i++) {
          const b = where[v * this.run + i]!;
          const x = b < 0 ? 0 : decodeValue(this.path.data.read(b));
          if (val === null) val = x;
          else if (x !== val) return TORN_RUN;
        }
        return val!;
      });
      return { id: d.id, mappedBlocks: d.mappedBlocks / this.run, mappings, reads };
    });
    const { snapshot, ...committed } = this.durable().json as { readonly snapshot: Json; readonly [k: string]: Json };
    return {
      tid: s.transactionId,
      held: s.heldRoot !== 0,
      reply: this.reply,
      freeData: s.freeDataBlocks / this.run,
      metaBlocks: pmd.metadataDevSize(),
      devices,
      committed,
      snapshot,
    };
  }

  selfCheck(): { readonly spec: readonly string[]; readonly message: string } | null {
    // A finding explains a later breakage (a failed commit's superblock is why reopening fails).
    return this.finding ?? this.broken ?? this.durable().finding;
  }

  /** The metadata device as a read sees it now (durable contents overlaid with cached writes). */
  metadataImage(): BlockDevice {
    return this.meta.snapshot();
  }

  /** The finding selfCheck reports, with the image that shows it (for thin_check in tests). */
  implFinding(): ImplFinding | null {
    if (this.finding) return this.finding;
    if (this.broken) return { ...this.broken, image: this.meta.snapshot() };
    const f = this.durable().finding;
    return f === null ? null : { ...f, image: this.meta.crashImage([], null) };
  }
}

export const thinImplAdapter: ImplAdapter<Ev> = {
  create: (variant: Variant, bounds: Bounds, _gate: Gate<Ev>) => new ThinImplHandle(variant, bounds),
  isExternal: () => true,
};

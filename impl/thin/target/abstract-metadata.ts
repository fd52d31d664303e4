// Pool metadata with abstract block accounting, for driving the pool target in lockstep with the
// machine. Follows the transaction rules of drivers/md/dm-thin-metadata.c (Linux 3.14.1):
// dm_pool_commit_metadata / dm_pool_abort_metadata (roll back to the last commit, fail_io if the
// reopen fails), dm_pool_metadata_set_needs_check (in-core flag + dirty superblock), the data space
// map allocating only blocks free at the last commit (sm_disk_new_block on old_ll), and the metadata
// space map's edge-triggered threshold (dm-space-map-metadata.c check_threshold). Metadata blocks are
// counted, not laid out: one block per btree mutation, one for a dirty commit; usage after a commit is
// 2 + one per thin + one per distinct mapping (see spec/thin-pool.md, "Abstraction").

import { MetadataError } from '../../persistent-data/errors.js';
import type { MappingLookup, PoolMetadataApi } from './metadata-api.js';

type Maps = Map<number, number[]>;

const copyMaps = (m: Maps): Maps => new Map([...m].map(([k, v]) => [k, v.slice()]));

/** Persistent part: what survives a teardown (the "disk"). */
export interface AbstractDisk {
  maps: Maps;
  dataNr: number;
  mdNr: number;
  mdUsed: number;
  needsCheck: boolean;
}

export type AbstractFault = 'none' | 'md-io' | 'md-io-abort' | 'abort-pending';

export class AbstractMetadata implements PoolMetadataApi {
  private maps: Maps;
  private dataNrNew: number;
  private mdNrNew: number;
  private mdTx = 0;
  private allocTx: number[] = [];
  private flagsNeedsCheck: boolean;
  private readOnly = false;
  private failIo = false;
  private changed = new Set<number>();
  private aborted = new Set<number>();
  private open = new Set<number>();
  private threshold: { value: number; fn: () => void } | null = null;
  private lastObserved = -1;
  fault: AbstractFault = 'none';
  /** Test hook: set_needs_check forgets to dirty the superblock (mutant 13-not-persisted). */
  needsCheckNotPersisted = false;
  /** Test hook: check_threshold fires on every observation below the threshold (mutant 6-level, before ac8c3f3d). */
  levelTriggeredThreshold = false;

  constructor(
    private readonly disk: AbstractDisk,
    private readonly vblocks: number,
  ) {
    this.maps = copyMaps(disk.maps);
    this.dataNrNew = disk.dataNr;
    this.mdNrNew = disk.mdNr;
    this.flagsNeedsCheck = disk.needsCheck;
  }

  static format(vblocks: number, dataBlocks: number, mdBlocks: number): AbstractDisk {
    const maps: Maps = new Map([[0, new Array<number>(vblocks).fill(-1)]]);
    return { maps, dataNr: dataBlocks, mdNr: mdBlocks, mdUsed: usage(maps), needsCheck: false };
  }

  private guard(): void {
    if (this.failIo) throw new MetadataError('EINVAL', 'pool metadata failed (fail_io): repair it offline');
  }

  /** One metadata block for a btree / space-map mutation. */
  private newBlock(): void {
    this.guard();
    if (this.readOnly) throw new MetadataError('EPERM', 'metadata is read-only');
    if (this.fault === 'md-io' || this.fault === 'md-io-abort') {
      this.fault = this.fault === 'md-io-abort' ? 'abort-pending' : 'none';
      throw new MetadataError('EIO', 'injected IO error on the metadata device');
    }
    const free = this.freeMetadataBlocks();
    if (free <= 0) throw new MetadataError('ENOSPC', 'unable to allocate new metadata block');
    this.mdTx++;
    this.observe(free - 1);
  }

  private observe(free: number): void {
    const t = this.threshold;
    if (t) {
      const already = this.lastObserved >= 0 && this.lastObserved <= t.value;
      if (free <= t.value && (this.levelTriggeredThreshold || !already)) t.fn();
    }
    this.lastObserved = free;
  }

  private dataRefs(maps: Maps): Set<number> {
    const s = new Set<number>();
    for (const m of maps.values()) for (const b of m) if (b >= 0) s.add(b);
    return s;
  }

  lookup(dev: number, vblock: number): MappingLookup | null {
    this.guard();
    const m = this.maps.get(dev);
    if (!m) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    const b = m[vblock] ?? -1;
    if (b < 0) return null;
    let shared = false;
    for (const [id, o] of this.maps) if (id !== dev && o[vblock] === b) shared = true;
    return { dataBlock: b, shared };
  }

  insertMapping(dev: number, vblock: number, dataBlock: number): void {
    const m = this.maps.get(dev);
    if (!m) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    this.newBlock();
    m[vblock] = dataBlock;
    this.changed.add(dev);
  }

  removeMapping(dev: number, vblock: number): void {
    const m = this.maps.get(dev);
    if (!m) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    if ((m[vblock] ?? -1) < 0) throw new MetadataError('ENODATA', `no mapping for block ${vblock}`);
    this.newBlock();
    m[vblock] = -1;
    this.changed.add(dev);
  }

  allocDataBlock(): number {
    this.guard();
    const used = this.dataRefs(this.disk.maps);
    let b = -1;
    for (let i = 0; i < this.disk.dataNr; i++) {
      if (!used.has(i) && !this.allocTx.includes(i)) {
        b = i;
        break;
      }
    }
    if (b < 0) throw new MetadataError('ENOSPC', 'no free data block');
    this.newBlock();
    this.allocTx.push(b);
    return b;
  }

  freeDataBlocks(): number {
    this.guard();
    return this.disk.dataNr - this.dataRefs(this.disk.maps).size - this.allocTx.length;
  }
  dataDevSize(): number {
    this.guard();
    return this.disk.dataNr;
  }
  freeMetadataBlocks(): number {
    this.guard();
    return this.disk.mdNr - this.disk.mdUsed - this.mdTx;
  }
  metadataDevSize(): number {
    this.guard();
    return this.mdNrNew;
  }

  createThin(dev: number): void {
    this.guard();
    if (this.maps.has(dev)) throw new MetadataError('EEXIST', `thin device ${dev} already exists`);
    this.newBlock();
    this.maps.set(dev, new Array<number>(this.vblocks).fill(-1));
  }
  createSnap(dev: number, origin: number): void {
    this.guard();
    if (this.maps.has(dev)) throw new MetadataError('EEXIST', `thin device ${dev} already exists`);
    const o = this.maps.get(origin);
    if (!o) throw new MetadataError('ENODATA', `origin ${origin} does not exist`);
    this.newBlock();
    this.maps.set(dev, o.slice());
    this.changed.add(origin);
  }
  deleteThin(dev: number): void {
    this.guard();
    if (!this.maps.has(dev)) throw new MetadataError('ENODATA', `thin device ${dev} does not exist`);
    if (this.open.has(dev)) throw new MetadataError('EBUSY', `thin device ${dev} is open`);
    this.newBlock();
    this.maps.delete(dev);
  }
  openThin(dev: number): void {
    this.open.add(dev);
  }
  devices(): number[] {
    return [...this.maps.keys()].sort((a, b) => a - b);
  }

  resizeDataDevice(nrBlocks: number): void {
    this.guard();
    if (nrBlocks < this.disk.dataNr) throw new MetadataError('EINVAL', 'cannot reduce size of space map');
    if (this.fault === 'md-io' || this.fault === 'md-io-abort') {
      this.fault = this.fault === 'md-io-abort' ? 'abort-pending' : 'none';
      throw new MetadataError('EIO', 'injected IO error on the metadata device');
    }
    this.dataNrNew = nrBlocks;
  }
  resizeMetadataDevice(nrBlocks: number): void {
    this.guard();
    if (nrBlocks < this.mdNrNew) throw new MetadataError('EINVAL', 'cannot reduce size of space map');
    if (this.fault === 'md-io' || this.fault === 'md-io-abort') {
      this.fault = this.fault === 'md-io-abort' ? 'abort-pending' : 'none';
      throw new MetadataError('EIO', 'injected IO error on the metadata device');
    }
    this.mdNrNew = nrBlocks;
  }

  commit(): void {
    this.guard();
    if (this.readOnly) throw new MetadataError('EPERM', 'metadata is read-only');
    if (this.fault === 'md-io' || this.fault === 'md-io-abort') {
      this.fault = this.fault === 'md-io-abort' ? 'abort-pending' : 'none';
      throw new MetadataError('EIO', 'injected IO error while committing');
    }
    const dirty = this.mdTx > 0 || this.dataNrNew !== this.disk.dataNr || this.mdNrNew !== this.disk.mdNr;
    if (dirty) {
      const free = this.freeMetadataBlocks();
      if (free <= 0) throw new MetadataError('ENOSPC', 'unable to allocate new metadata block');
      this.observe(free - 1);
    }
    this.disk.maps = copyMaps(this.maps);
    this.disk.dataNr = this.dataNrNew;
    this.disk.mdNr = this.mdNrNew;
    this.disk.mdUsed = usage(this.maps);
    this.disk.needsCheck = this.flagsNeedsCheck;
    this.mdTx = 0;
    this.allocTx = [];
    this.changed.clear();
  }

  abort(): void {
    this.guard();
    this.aborted = new Set(this.changed);
    if (this.fault === 'abort-pending') {
      this.fault = 'none';
      this.failIo = true;
      throw new MetadataError('EIO', 'could not re-open the metadata device');
    }
    this.maps = copyMaps(this.disk.maps);
    this.dataNrNew = this.disk.dataNr;
    this.mdNrNew = this.disk.mdNr;
    this.mdTx = 0;
    this.allocTx = [];
    // The re-created metadata space map has no threshold callback until the next table load.
    this.threshold = null;
    this.lastObserved = -1;
  }

  needsCheck(): boolean {
    return this.flagsNeedsCheck;
  }
  setNeedsCheck(): void {
    this.flagsNeedsCheck = true;
    if (this.failIo) throw new MetadataError('EINVAL', 'cannot write needs_check: metadata failed');
    // The dirty superblock reaches the disk at teardown at the latest.
    if (!this.needsCheckNotPersisted) this.disk.needsCheck = true;
  }
  setReadOnly(): void {
    this.readOnly = true;
  }
  setReadWrite(): void {
    this.readOnly = false;
  }
  isFailed(): boolean {
    return this.failIo;
  }
  changedThisTransaction(dev?: number): boolean {
    if (dev === undefined) return this.mdTx > 0 || this.changed.size > 0;
    return this.changed.has(dev);
  }
  abortedWithChanges(dev: number): boolean {
    return this.aborted.has(dev) && this.changed.has(dev);
  }
  registerMetadataThreshold(threshold: number, fn: () => void): void {
    this.threshold = { value: threshold, fn };
  }
  close(): void {
    if (!this.readOnly && !this.failIo) {
      try {
        this.commit();
      } catch {
        // the committed state on disk stays as it was
      }
    }
  }
  /** Committed mapping of a device (for tests). */
  committedMapping(dev: number): readonly number[] | null {
    return this.disk.maps.get(dev) ?? null;
  }
}

function usage(maps: Maps): number {
  let n = 2;
  const t0 = maps.get(0);
  for (const [id, m] of maps) {
    n += 1;
    m.forEach((b, v) => {
      if (b < 0) return;
      if (id !== 0 && t0 && t0[v] === b) return;
      n += 1;
    });
  }
  return n;
}

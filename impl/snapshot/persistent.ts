// Follows drivers/md/dm-snap-persistent.c (Linux 3.14.1): read_header, write_header,
// insert_exceptions, read_exceptions (dm-bufio with DM_PREFETCH_CHUNKS prefetch, the 2c945820
// memcpy into ps->area), persistent_read_metadata, persistent_prepare_exception,
// persistent_commit_exception (batching, zero the next area, WRITE_FLUSH_FUA area write),
// persistent_drop_snapshot; and the 385277bfb57f change (commit with a `valid` flag) for the
// 'fixed' profile.

import { BLOCK_SIZE, BlockDevice, IoError } from '../block-device.js';
import { BufioClient, type BufioStats } from './bufio.js';
import {
  CHUNK_SECTORS, KERNEL_EPA, SNAPSHOT_DISK_VERSION, SNAP_MAGIC, areaLocation, decodeHeader, encodeHeader, readRecord,
  skipMetadata, writeRecord, type Rec,
} from './layout.js';

export const DM_PREFETCH_CHUNKS = 12;
export const ENOSPC = 28;
export const ENXIO = 6;
export const EINVAL = 22;
export const EIO = 5;

export interface StoreOptions {
  /** Exceptions per area; the kernel's is chunk bytes / 16 (256 here). Smaller = bounded checking. */
  readonly epa?: number;
  readonly mutant?: string | null;
  /** Prefetch window (DM_PREFETCH_CHUNKS); 0 gives the plain sequential read. */
  readonly prefetch?: number;
  /** 'fixed' applies 385277bfb57f: a failed copy still goes through commit (with valid = 0). */
  readonly commitOnCopyError?: boolean;
  /** Proposed (not in any kernel): write the invalid header with FLUSH+FUA. */
  readonly durableInvalidation?: boolean;
}

type Callback = (success: boolean) => void;

export class PersistentStore {
  readonly epa: number;
  private readonly mutant: string | null;
  private readonly prefetchWindow: number;
  readonly commitOnCopyError: boolean;
  readonly durableInvalidation: boolean;
  valid = 1;
  version = SNAPSHOT_DISK_VERSION;
  nextFree = 2;
  currentArea = 0;
  currentCommitted = 0;
  pendingCount = 0;
  private area = new Uint8Array(BLOCK_SIZE);
  private callbacks: Callback[] = [];
  /** Bufio counters of the last activation, and whether the client released everything. */
  lastActivation: { stats: BufioStats; heldAtEnd: number; areasRead: number[] } | null = null;

  constructor(
    readonly dev: BlockDevice,
    o: StoreOptions = {},
  ) {
    this.epa = o.epa ?? KERNEL_EPA;
    if (!Number.isInteger(this.epa) || this.epa < 1 || this.epa > KERNEL_EPA) {
      throw new Error(`snapshot store: exceptions per area must be 1..${KERNEL_EPA}, got ${this.epa}`);
    }
    this.mutant = o.mutant ?? null;
    this.prefetchWindow = o.prefetch ?? DM_PREFETCH_CHUNKS;
    this.commitOnCopyError = o.commitOnCopyError ?? false;
    this.durableInvalidation = o.durableInvalidation ?? false;
  }

  private areaLoc(k: number): number {
    return areaLocation(this.epa, k, this.mutant);
  }

  private writeHeader(durable = false): void {
    // 3.14 issues a plain WRITE (chunk_io with WRITE): durable only after a later FLUSH. `durable`
    // is the proposed fix for invalidation (FLUSH then FUA), used by the 'fixed' profile only.
    if (durable) this.dev.flush();
    this.dev.write(0, encodeHeader({ magic: SNAP_MAGIC, valid: this.valid, version: this.version, chunkSize: CHUNK_SECTORS }), durable);
  }

  private zeroDiskArea(k: number): boolean {
    try {
      this.dev.write(this.areaLoc(k), new Uint8Array(BLOCK_SIZE));
      return true;
    } catch (err) {
      if (err instanceof IoError) return false;
      throw err;
    }
  }

  /** area_io(WRITE_FLUSH_FUA): flush earlier writes (the copied data), then a durable area write. */
  private areaWriteFlushFua(): boolean {
    try {
      this.dev.flush();
      this.dev.write(this.areaLoc(this.currentArea), this.area, true);
      return true;
    } catch (err) {
      if (err instanceof IoError) return false;
      throw err;
    }
  }

  private insertExceptions(buf: Uint8Array, cb: (old: number, nw: number) => number): { r: number; full: boolean } {
    for (let i = 0; i < this.epa; i++) {
      const [o, n] = readRecord(buf, i);
      const end = this.mutant === 'terminator-old-chunk' ? o === 0 : n === 0;
      if (end) {
        this.currentCommitted = i;
        return { r: 0, full: false };
      }
      if (this.nextFree <= n) this.nextFree = n + 1;
      const r = cb(o, n);
      if (r) return { r, full: true };
    }
    return { r: 0, full: true };
  }

  private readExceptions(cb: (old: number, nw: number) => number): number {
    const client = new BufioClient(this.dev, 1);
    client.setMinimumBuffers(1 + this.prefetchWindow);
    const areasRead: number[] = [];
    let prefetchArea = 0;
    let full = true;
    let r = 0;
    for (this.currentArea = 0; full; this.currentArea++) {
      if (prefetchArea < this.currentArea) prefetchArea = this.currentArea;
      if (this.prefetchWindow) {
        do {
          const pf = this.areaLoc(prefetchArea);
          if (pf >= client.deviceSize()) break;
          client.prefetch(pf, 1);
          prefetchArea++;
        } while (prefetchArea <= this.currentArea + this.prefetchWindow);
      }
      const chunk = this.areaLoc(this.currentArea);
      const got = client.read(chunk);
      if (typeof got === 'number') {
        r = got;
        break;
      }
      areasRead.push(chunk);
      const ins = this.insertExceptions(got.data, cb);
      full = ins.full;
      // 2c945820: keep the partly filled area so the next commit rewrites it with its records.
      if (!full && this.mutant !== 'no-area-copy') this.area = got.data.slice();
      got.release();
      client.forget(chunk);
      if (ins.r) {
        r = ins.r;
        break;
      }
    }
    if (r === 0) {
      this.currentArea--;
      this.nextFree = skipMetadata(this.epa, this.nextFree);
    }
    const heldAtEnd = client.held();
    this.lastActivation = { stats: { ...client.stats }, heldAtEnd, areasRead };
    client.destroy();
    return r;
  }

  /**
   * persistent_read_metadata: 0 when loaded, 1 when the header says invalid, a negative errno when
   * the device is not a snapshot store or the read failed. `cb` receives every exception on disk.
   */
  readMetadata(cb: (old: number, nw: number) => number): number {
    let hdr;
    try {
      hdr = decodeHeader(this.dev.read(0));
    } catch (err) {
      if (err instanceof IoError) return -EIO;
      throw err;
    }
    if (hdr.magic === 0) {
      this.valid = 1;
      this.writeHeader();
      this.currentArea = 0;
      this.area = new Uint8Array(BLOCK_SIZE);
      return this.zeroDiskArea(0) ? 0 : -EIO;
    }
    if (hdr.magic !== SNAP_MAGIC) return -ENXIO;
    this.valid = hdr.valid;
    this.version = hdr.version;
    if (this.version !== SNAPSHOT_DISK_VERSION) return -EINVAL;
    if (!this.valid) return 1;
    return this.readExceptions(cb);
  }

  /** persistent_prepare_exception: the next free COW chunk, or -ENOSPC. */
  prepareException(): number {
    if (this.dev.nrBlocks < this.nextFree + 1) return -ENOSPC;
    const n = this.nextFree;
    this.nextFree = skipMetadata(this.epa, this.nextFree + 1);
    this.pendingCount++;
    return n;
  }

  /** persistent_commit_exception (3.14; with `valid` as in 385277bfb57f when that fix is on). */
  commitException(e: Rec, valid: boolean, cb: Callback): void {
    if (!valid) this.valid = 0;
    if (valid) writeRecord(this.area, this.currentCommitted++, e);
    this.callbacks.push(cb);
    this.pendingCount--;
    if (this.pendingCount !== 0 && this.currentCommitted !== this.epa) return;
    const full = this.currentCommitted === this.epa;
    if (this.mutant === 'area-before-zero') {
      if (this.valid && !this.areaWriteFlushFua()) this.valid = 0;
      if (full && !this.zeroDiskArea(this.currentArea + 1)) this.valid = 0;
    } else {
      if (full && !this.zeroDiskArea(this.currentArea + 1)) this.valid = 0;
      if (this.valid && !this.areaWriteFlushFua()) this.valid = 0;
    }
    if (full) {
      this.currentCommitted = 0;
      this.currentArea++;
      this.area = new Uint8Array(BLOCK_SIZE);
    }
    const cbs = this.callbacks;
    this.callbacks = [];
    for (const c of cbs) c(this.valid !== 0);
  }

  /** persistent_drop_snapshot: invalid in memory and in the header (plain write). */
  dropSnapshot(): void {
    this.valid = 0;
    try {
      this.writeHeader(this.durableInvalidation);
    } catch (err) {
      if (!(err instanceof IoError)) throw err;
    }
  }

  waitingCallbacks(): number {
    return this.callbacks.length;
  }
}

// A block device with a volatile write cache, for crash-consistency testing.
// Models the contract the kernel's block layer gives drivers/md (see drivers/md/dm-bufio.c
// dm_bufio_write_dirty_buffers / dm_bufio_issue_flush, and drivers/md/persistent-data/
// dm-block-manager.c dm_bm_flush): a completed write may sit in a volatile cache until a FLUSH
// completes (or it was issued with FUA); after a power cut any subset of the volatile writes may
// have landed, and a write may be torn at a 512-byte sector boundary.
//
// Every write and flush is recorded in issue order so that any crash state can be rebuilt.

export const BLOCK_SIZE = 4096;
export const SECTOR_SIZE = 512;

export type IoOp = 'read' | 'write' | 'flush';

/** An injected or simulated IO failure; carries the block (or -1 for a flush) and the op. */
export class IoError extends Error {
  override readonly name = 'IoError';
  constructor(
    readonly op: IoOp,
    readonly block: number,
    message: string,
  ) {
    super(message);
  }
}

export interface VolatileWrite {
  /** Index in issue order among the writes since the last completed flush (0-based). */
  readonly index: number;
  readonly block: number;
  readonly data: Uint8Array;
}

export type LogEntry =
  | { readonly kind: 'write'; readonly block: number; readonly fua: boolean }
  | { readonly kind: 'flush' };

export interface FaultSpec {
  readonly op: IoOp;
  /** Block the fault fires on; ignored for 'flush'. */
  readonly block?: number;
  /** Fire once and disarm (default), or on every matching IO. */
  readonly sticky?: boolean;
}

const ZERO_BLOCK = new Uint8Array(BLOCK_SIZE);

/**
 * 4 KiB-block device. Block contents handed to `write` are copied; arrays returned by `read` are the
 * device's own and must not be mutated (callers copy before changing them).
 */
export class BlockDevice {
  private nrBlocksValue: number;
  /** Contents that survive any crash. */
  private durable: Map<number, Uint8Array>;
  /** Writes since the last completed flush, in issue order. */
  private pending: VolatileWrite[] = [];
  /** What a read sees now: durable overlaid with pending. */
  private current: Map<number, Uint8Array>;
  private readonly history: LogEntry[] = [];
  private faults: FaultSpec[] = [];
  /**
   * Called at the start of every flush, before the pending writes become durable: the moment to
   * take crash images of the window that is closing (see impl/thin/tools/crash.ts).
   */
  beforeFlush: ((dev: BlockDevice) => void) | null = null;
  /** Record the log of every write/flush (turn off for long benchmarks). */
  recordLog = true;
  readsIssued = 0;
  writesIssued = 0;
  flushesIssued = 0;

  constructor(nrBlocks: number, durable?: Map<number, Uint8Array>) {
    if (!Number.isInteger(nrBlocks) || nrBlocks <= 0) {
      throw new RangeError(`block device size must be a positive whole number of 4 KiB blocks, got ${nrBlocks}`);
    }
    this.nrBlocksValue = nrBlocks;
    this.durable = durable ?? new Map();
    // Reads see durable contents until a volatile write makes the views differ (copied lazily).
    this.current = this.durable;
  }

  get nrBlocks(): number {
    return this.nrBlocksValue;
  }

  /** Grow or shrink the device (a table reload onto a bigger LV). Blocks past the end are dropped. */
  resize(nrBlocks: number): void {
    if (!Number.isInteger(nrBlocks) || nrBlocks <= 0) throw new RangeError(`bad device size ${nrBlocks}`);
    this.nrBlocksValue = nrBlocks;
    for (const m of [this.durable, this.current]) for (const b of [...m.keys()]) if (b >= nrBlocks) m.delete(b);
    this.pending = this.pending.filter((w) => w.block < nrBlocks);
  }

  /** Arm an IO error. */
  armFault(f: FaultSpec): void {
    this.faults.push(f);
  }

  clearFaults(): void {
    this.faults = [];
  }

  private fault(op: IoOp, block: number): void {
    const i = this.faults.findIndex((f) => f.op === op && (op === 'flush' || f.block === undefined || f.block === block));
    if (i < 0) return;
    const f = this.faults[i];
    if (f && !f.sticky) this.faults.splice(i, 1);
    throw new IoError(op, block, op === 'flush' ? 'injected IO error on FLUSH' : `injected IO error on ${op} of block ${block}`);
  }

  private checkRange(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.nrBlocksValue) {
      throw new IoError('read', block, `block ${block} is beyond the end of the device (${this.nrBlocksValue} blocks)`);
    }
  }

  /** The block as the device returns it now (zeroes if never written). Do not mutate the result. */
  read(block: number): Uint8Array {
    this.checkRange(block);
    if (this.faults.length) this.fault('read', block);
    this.readsIssued++;
    return this.current.get(block) ?? ZERO_BLOCK;
  }

  /** Issue a write. With `fua` it is durable on completion; otherwise volatile until a flush. */
  write(block: number, data: Uint8Array, fua = false): void {
    this.checkRange(block);
    if (data.length !== BLOCK_SIZE) throw new RangeError(`writes are whole 4 KiB blocks, got ${data.length} bytes`);
    if (this.faults.length) this.fault('write', block);
    this.writesIssued++;
    const copy = data.slice();
    if (!fua && this.current === this.durable) this.current = new Map(this.durable);
    this.current.set(block, copy);
    if (fua) this.durable.set(block, copy);
    else this.pending.push({ index: this.pending.length, block, data: copy });
    if (this.recordLog) this.history.push({ kind: 'write', block, fua });
  }

  /** FLUSH: every completed write becomes durable. */
  flush(): void {
    if (this.beforeFlush) this.beforeFlush(this);
    if (this.faults.length) this.fault('flush', -1);
    this.flushesIssued++;
    for (const w of this.pending) this.durable.set(w.block, w.data);
    this.pending = [];
    if (this.recordLog) this.history.push({ kind: 'flush' });
  }

  /** Writes issued since the last completed flush (may or may not survive a crash). */
  volatileWrites(): readonly VolatileWrite[] {
    return this.pending;
  }

  /** The image that survives any crash. Do not mutate. */
  durableImage(): ReadonlyMap<number, Uint8Array> {
    return this.durable;
  }

  log(): readonly LogEntry[] {
    return this.history;
  }

  /**
   * The device after a power cut now: the durable image plus exactly the volatile writes whose
   * indices are in `keep` (applied in issue order); if `torn` is one of them, only its first 512-byte
   * sector lands (the rest of the block keeps what the image had before that write).
   */
  crashImage(keep: readonly number[], torn: number | null): BlockDevice {
    const img = new Map(this.durable);
    const kept = [...keep].sort((a, b) => a - b);
    for (const i of kept) {
      const w = this.pending[i];
      if (!w) throw new RangeError(`crashImage: no volatile write #${i} (there are ${this.pending.length})`);
      if (i === torn) {
        const before = img.get(w.block) ?? ZERO_BLOCK;
        const t = before.slice();
        t.set(w.data.subarray(0, SECTOR_SIZE), 0);
        img.set(w.block, t);
      } else {
        img.set(w.block, w.data);
      }
    }
    if (torn !== null && !kept.includes(torn)) {
      throw new RangeError(`crashImage: torn write #${torn} must also be listed in keep`);
    }
    return new BlockDevice(this.nrBlocksValue, img);
  }

  /** A copy of the device as it reads now, with everything durable (a clean shutdown). */
  snapshot(): BlockDevice {
    return new BlockDevice(this.nrBlocksValue, new Map(this.current));
  }

  /** The whole device as one buffer (e.g. to hand a file to thin_check). */
  toBuffer(): Uint8Array {
    const out = new Uint8Array(this.nrBlocksValue * BLOCK_SIZE);
    for (const [b, d] of this.current) out.set(d, b * BLOCK_SIZE);
    return out;
  }

  /** A device holding `buf` (length rounded up to whole blocks), all durable; zero blocks stay sparse. */
  static fromBuffer(buf: Uint8Array): BlockDevice {
    const n = Math.max(1, Math.ceil(buf.length / BLOCK_SIZE));
    const m = new Map<number, Uint8Array>();
    for (let b = 0; b < n; b++) {
      const start = b * BLOCK_SIZE;
      const end = Math.min(buf.length, start + BLOCK_SIZE);
      let nonZero = false;
      for (let i = start; i < end; i++) {
        if (buf[i] !== 0) {
          nonZero = true;
          break;
        }
      }
      if (!nonZero) continue;
      const d = new Uint8Array(BLOCK_SIZE);
      d.set(buf.subarray(start, end));
      m.set(b, d);
    }
    return new BlockDevice(n, m);
  }
}

// Follows drivers/md/dm-bufio.c (Linux 3.14.1) as used by dm-snap-persistent.c read_exceptions:
// dm_bufio_client_create, dm_bufio_set_minimum_buffers, dm_bufio_prefetch, dm_bufio_read,
// dm_bufio_release, dm_bufio_forget, dm_bufio_get_device_size, dm_bufio_client_destroy.
//
// A read-only buffer cache over impl/block-device.ts: prefetch issues reads without waiting (here:
// the read happens at prefetch time and the buffer is kept), read returns a held buffer, release
// drops the hold, forget frees an unheld buffer. Counters let tests check the buffer discipline.

import { BlockDevice, IoError } from '../block-device.js';

export const EIO = 5;

export interface BufioStats {
  readsIssued: number;
  prefetches: number;
  hits: number;
  maxCached: number;
  pastEnd: number;
}

export class BufioClient {
  private readonly cache = new Map<number, { data: Uint8Array; holds: number }>();
  private destroyed = false;
  minimumBuffers = 1;
  readonly stats: BufioStats = { readsIssued: 0, prefetches: 0, hits: 0, maxCached: 0, pastEnd: 0 };

  constructor(
    private readonly dev: BlockDevice,
    readonly reserved: number,
  ) {}

  /** Device size in blocks (dm_bufio_get_device_size). */
  deviceSize(): number {
    return this.dev.nrBlocks;
  }

  setMinimumBuffers(n: number): void {
    this.minimumBuffers = n;
  }

  private live(): void {
    if (this.destroyed) throw new Error('bufio: client used after dm_bufio_client_destroy');
  }

  private load(block: number): Uint8Array {
    if (block >= this.dev.nrBlocks) {
      this.stats.pastEnd++;
      throw new IoError('read', block, `bufio: read of block ${block} past the device end (${this.dev.nrBlocks} blocks)`);
    }
    this.stats.readsIssued++;
    return this.dev.read(block).slice();
  }

  /** Start reads of blocks [block, block+n) that are not cached; errors are only seen by a later read. */
  prefetch(block: number, n: number): void {
    this.live();
    for (let b = block; b < block + n; b++) {
      if (this.cache.has(b)) continue;
      this.stats.prefetches++;
      try {
        this.cache.set(b, { data: this.load(b), holds: 0 });
      } catch (err) {
        if (!(err instanceof IoError)) throw err;
      }
      this.stats.maxCached = Math.max(this.stats.maxCached, this.cache.size);
    }
  }

  /** dm_bufio_read: the block, held until release; an IO error returns -EIO. */
  read(block: number): { data: Uint8Array; release: () => void } | number {
    this.live();
    let b = this.cache.get(block);
    if (b) this.stats.hits++;
    else {
      try {
        b = { data: this.load(block), holds: 0 };
      } catch (err) {
        if (err instanceof IoError) return -EIO;
        throw err;
      }
      this.cache.set(block, b);
      this.stats.maxCached = Math.max(this.stats.maxCached, this.cache.size);
    }
    b.holds++;
    const buf = b;
    let released = false;
    return {
      data: buf.data,
      release: () => {
        if (released) throw new Error(`bufio: block ${block} released twice`);
        released = true;
        buf.holds--;
      },
    };
  }

  /** dm_bufio_forget: drop the block if nobody holds it. */
  forget(block: number): void {
    this.live();
    const b = this.cache.get(block);
    if (b && b.holds === 0) this.cache.delete(block);
  }

  held(): number {
    let n = 0;
    for (const b of this.cache.values()) n += b.holds;
    return n;
  }

  cached(): number {
    return this.cache.size;
  }

  /** dm_bufio_client_destroy: every buffer must have been released (the kernel BUGs otherwise). */
  destroy(): void {
    this.live();
    if (this.held() > 0) throw new Error(`bufio: client destroyed with ${this.held()} buffer(s) still held`);
    this.destroyed = true;
    this.cache.clear();
  }
}

// The thin target's write path on top of the pool metadata, reduced to whole-block bios.
// Follows drivers/md/dm-thin.c (Linux 3.14): process_bio (mapped and unshared → remap), provision_block
// and break_sharing (alloc_data_block → whole-block overwrite → overwrite_endio →
// process_prepared_mapping → dm_thin_insert_block), process_discard / process_prepared_discard
// (dm_thin_remove_block), issue + process_deferred_bios (a FLUSH on a changed thin waits for
// commit), commit, pool_message (create_thin, create_snap, delete, set_transaction_id,
// reserve_metadata_snap, release_metadata_snap), thin_ctr/thin_dtr (dm_pool_open_thin_device).
//
// Profiles: 'fixed' flushes the data device before every metadata commit (694cfe7f, later kernels'
// metadata_pre_commit_callback) and completes a FUA overwrite of a newly provisioned block only
// after the commit that makes its mapping durable (4ae280b4, deferred_flush_completions);
// 'linux-3.14' does neither.
//
// A data block holds one value: a 4-byte tag and the write's sequence number. A block that was
// never written reads as JUNK (whatever the disk held), an unmapped virtual block as 0 (zero fill).

import type { Variant } from '../../checker/model.js';
import { BLOCK_SIZE, BlockDevice } from '../block-device.js';
import { getU32, putU32 } from '../persistent-data/btree-internal.js';
import { MetadataError } from './pool-metadata.js';
import type { PoolMetadata } from './pool-metadata.js';

export const JUNK = -1;
const TAG = 0x7468696e; // 'thin'

export function encodeValue(v: number): Uint8Array {
  const b = new Uint8Array(BLOCK_SIZE);
  putU32(b, 0, TAG);
  putU32(b, 4, v);
  return b;
}

export function decodeValue(b: Uint8Array): number {
  return getU32(b, 0) === TAG ? getU32(b, 4) : JUNK;
}

/** The result a pool message reports: 'ok' or the negative errno's name, e.g. '-EEXIST'. */
export type MessageResult = string;

export type PoolMessage =
  | { readonly type: 'create'; readonly dev: number }
  | { readonly type: 'snap'; readonly dev: number; readonly origin: number }
  | { readonly type: 'delete'; readonly dev: number }
  | { readonly type: 'set_tid'; readonly cur: number; readonly next: number }
  | { readonly type: 'reserve' }
  | { readonly type: 'release' };

export class ThinDataPath {
  /** FUA writes whose completion waits for the next commit (fixed profile). */
  private fuaWaiting: { dev: number; vblock: number; value: number }[] = [];
  /**
   * Indices (into the data device's volatile writes) of cached writes that can still land: a later
   * FUA write to the same block supersedes a cached one, as a real drive's cache does.
   */
  private live: number[] = [];

  constructor(
    readonly pmd: PoolMetadata,
    readonly data: BlockDevice,
    readonly variant: Variant,
  ) {}

  private get fixed(): boolean {
    return this.variant.profile !== 'linux-3.14';
  }

  /**
   * pool_message without the commit that follows a success: the caller commits (so a crash can be
   * placed between the message and its commit). Errors come back as '-ERRNO', never thrown.
   */
  message(m: PoolMessage): MessageResult {
    try {
      switch (m.type) {
        case 'create':
          this.pmd.createThin(m.dev);
          break;
        case 'snap':
          this.pmd.createSnap(m.dev, m.origin);
          break;
        case 'delete':
          this.pmd.deleteThin(m.dev);
          break;
        case 'set_tid':
          this.pmd.setTransactionId(m.cur, m.next);
          break;
        case 'reserve':
          // process_reserve_metadata_snap commits first (through dm-thin's commit(), so the fixed
          // profile flushes the data device too).
          this.commit();
          this.pmd.reserveMetadataSnap();
          break;
        case 'release':
          this.pmd.releaseMetadataSnap();
          break;
      }
      return 'ok';
    } catch (e) {
      if (e instanceof MetadataError) return `-${e.errno}`;
      throw e;
    }
  }

  /** pool_message as the kernel runs it: the message, then a commit when it succeeded. */
  poolMessage(m: PoolMessage): MessageResult {
    const r = this.message(m);
    if (r === 'ok') this.commit();
    return r;
  }

  /** thin_ctr / thin_dtr. */
  open(dev: number): void {
    this.pmd.openThin(dev);
  }
  close(dev: number): void {
    this.pmd.closeThin(dev);
  }

  /**
   * A whole-block write of `value` to (dev, vblock). Mapped and unshared: in place. Otherwise
   * provision or break sharing: allocate, write the new block, then insert the mapping.
   * With FUA the data is durable when this returns; whether the write is *acknowledged* then
   * depends on the profile (see `fuaPending`).
   */
  write(dev: number, vblock: number, value: number, fua: boolean): void {
    const look = this.pmd.lookup(dev, vblock);
    if (look !== null && !look.shared) {
      this.writeBlock(look.dataBlock, value, fua);
      return;
    }
    const b = this.pmd.allocDataBlock();
    this.writeBlock(b, value, fua);
    this.pmd.insertMapping(dev, vblock, b);
    if (fua && this.fixed) this.fuaWaiting.push({ dev, vblock, value });
  }

  private encoded: { readonly value: number; readonly block: Uint8Array } | null = null;

  private writeBlock(b: number, value: number, fua: boolean): void {
    if (fua) {
      const pend = this.data.volatileWrites();
      this.live = this.live.filter((i) => pend[i]?.block !== b);
    }
    // One encoded block per value: a modelled write puts the same value in every block of its run
    // (the device copies what it is given, so sharing the source is safe).
    if (this.encoded?.value !== value) this.encoded = { value, block: encodeValue(value) };
    this.data.write(b, this.encoded.block, fua);
    if (!fua) this.live.push(this.data.volatileWrites().length - 1);
  }

  /** Whole-block discard: remove the mapping (no passdown is modelled). */
  discard(dev: number, vblock: number): void {
    this.pmd.removeMapping(dev, vblock);
  }

  /** An empty FLUSH bio on `dev`: commit first if the device changed, then flush the data device. */
  flush(dev: number): void {
    if (this.pmd.changedThisTransaction(dev)) this.commit();
    this.flushData();
  }

  private flushData(): void {
    this.data.flush();
    this.live = [];
  }

  /** dm-thin's commit(): (fixed) flush the data device, then dm_pool_commit_metadata. */
  commit(): void {
    if (this.fixed) this.flushData();
    this.pmd.commit();
    this.fuaWaiting = [];
  }

  /** The data-device part of `commit` (for a caller that drives the metadata commit itself). */
  preCommit(): void {
    if (this.fixed) this.flushData();
  }

  /** FUA writes not yet acknowledged because their mapping is not committed yet (fixed profile). */
  fuaPending(): readonly { dev: number; vblock: number; value: number }[] {
    return this.fuaWaiting;
  }

  /** What a read of (dev, vblock) returns now: 0 when unmapped, JUNK for never-written disk contents. */
  read(dev: number, vblock: number): number {
    const look = this.pmd.lookup(dev, vblock);
    if (look === null) return 0;
    return decodeValue(this.data.read(look.dataBlock));
  }

  /** Cached data writes that a crash may or may not keep, as indices into data.volatileWrites(). */
  liveDataWrites(): readonly number[] {
    return this.live;
  }
}

/** A data device after a power cut that keeps the `keep`-th of the live cached writes. */
export function dataCrashImage(path: ThinDataPath, keep: readonly number[]): BlockDevice {
  const live = path.liveDataWrites();
  const idx = keep.map((k) => {
    const i = live[k];
    if (i === undefined) throw new RangeError(`no live cached data write #${k} (there are ${live.length})`);
    return i;
  });
  return path.data.crashImage(idx, null);
}

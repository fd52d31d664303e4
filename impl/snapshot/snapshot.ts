// Follows drivers/md/dm-snap.c (Linux 3.14.1): __origin_write / do_origin, snapshot_map (full-chunk
// write: start_full_bio), __find_pending_exception (prepare_exception, exception_start_sequence),
// copy_callback (in-order completion via exception_complete_sequence and out_of_order_list),
// complete_exception, pending_complete, __invalidate_snapshot; snapshot_ctr's handling of
// read_metadata's result. With profile 'fixed', complete_exception always commits (385277bfb57f).
//
// One snapshot of one origin. Bios are whole chunks. Data is symbolic: origin chunk c at version v;
// a copy writes "origin c @ v" into the COW chunk, a snapshot write writes "snapshot write to c".

import { BlockDevice } from '../block-device.js';
import type { Variant } from '../../checker/model.js';
import { dataBlock, parseDataBlock, type Rec } from './layout.js';
import { PersistentStore, type StoreOptions } from './persistent.js';

export interface Pending {
  seq: number;
  old: number;
  nw: number;
  /** 'copying' until kcopyd finishes; 'copied' waiting in order or for the batched commit. */
  state: 'copying' | 'copied';
  copyError: boolean;
  full: boolean;
  originHeld: number;
}

export const SNAP_MUTANTS = ['origin-before-commit', 'area-before-zero', 'area-off-by-one', 'terminator-old-chunk', 'no-area-copy'] as const;

export interface SnapshotOptions {
  readonly cowChunks: number;
  readonly epa: number;
  readonly variant: Variant;
  /** Leftover non-zero blocks on the COW device before the snapshot is created (a reused LV). */
  readonly junk?: readonly number[];
  readonly prefetch?: number;
}

export class Snapshot {
  dev: BlockDevice;
  store: PersistentStore;
  valid = true;
  /** Why activation failed (negative errno), or 0. */
  activationError = 0;
  complete = new Map<number, number>();
  pending = new Map<number, Pending>();
  startSeq = 0;
  completeSeq = 0;
  outOfOrder: Pending[] = [];
  /** Origin data versions; a write issued to the origin bumps its chunk's version. */
  readonly origin = new Map<number, number>();
  /** Snapshot writes acknowledged, by chunk. */
  readonly acked = new Set<number>();
  readonly mutant: string | null;
  private readonly storeOpts: StoreOptions;

  constructor(readonly o: SnapshotOptions) {
    this.mutant = o.variant.mutant;
    if (this.mutant !== null && !(SNAP_MUTANTS as readonly string[]).includes(this.mutant)) {
      throw new Error(`snapshot: unknown mutant '${this.mutant}'; known: ${SNAP_MUTANTS.join(', ')}`);
    }
    this.storeOpts = {
      epa: o.epa,
      mutant: this.mutant,
      commitOnCopyError: o.variant.profile === 'fixed',
      durableInvalidation: o.variant.profile === 'fixed',
      ...(o.prefetch !== undefined ? { prefetch: o.prefetch } : {}),
    };
    const durable = new Map<number, Uint8Array>();
    for (const j of o.junk ?? []) durable.set(j, dataBlock('snapw', 99, 99));
    this.dev = new BlockDevice(o.cowChunks, durable);
    this.store = new PersistentStore(this.dev, this.storeOpts);
    this.activate();
  }

  /** snapshot_ctr + resume: read the store; 1 means the header says invalid. */
  private activate(): void {
    this.store = new PersistentStore(this.dev, this.storeOpts);
    this.complete = new Map();
    this.pending = new Map();
    this.outOfOrder = [];
    this.startSeq = this.completeSeq = 0;
    this.valid = true;
    this.activationError = 0;
    const r = this.store.readMetadata((old, nw) => {
      this.complete.set(old, nw);
      return 0;
    });
    if (r < 0) {
      this.activationError = r;
      this.valid = false;
    } else if (r === 1) this.valid = false;
  }

  private invalidate(): void {
    if (!this.valid) return;
    this.store.dropSnapshot();
    this.valid = false;
  }

  private issueOrigin(c: number): void {
    this.origin.set(c, (this.origin.get(c) ?? 0) + 1);
  }

  /** A new pending exception, or null when the COW device is full (the snapshot is invalidated). */
  private newPending(c: number, full: boolean): Pending | null {
    const nw = this.store.prepareException();
    if (nw < 0) {
      this.invalidate();
      return null;
    }
    const pe: Pending = { seq: this.startSeq++, old: c, nw, state: 'copying', copyError: false, full, originHeld: 0 };
    this.pending.set(c, pe);
    return pe;
  }

  /** An origin write to chunk c (do_origin for the one snapshot). */
  originWrite(c: number): void {
    if (!this.valid || this.complete.has(c)) return this.issueOrigin(c);
    const pe = this.pending.get(c) ?? this.newPending(c, false);
    if (pe === null) return this.issueOrigin(c);
    pe.originHeld++;
  }

  /** A full-chunk write to the snapshot at chunk c that has no exception yet: -EIO or 0 (held). */
  snapWrite(c: number): number {
    if (!this.valid) return -5;
    if (this.complete.has(c) || this.pending.has(c)) throw new Error(`snapshot: model drives only first writes to a chunk (chunk ${c} has an exception)`);
    return this.newPending(c, true) === null ? -5 : 0;
  }

  private byseq(seq: number): Pending {
    for (const pe of this.pending.values()) if (pe.seq === seq) return pe;
    throw new Error(`snapshot: no pending exception with sequence ${seq}`);
  }

  /** kcopyd finished (or failed) the copy for the exception with this sequence number. */
  copyDone(seq: number, error: boolean): void {
    const pe = this.byseq(seq);
    if (pe.state !== 'copying') throw new Error(`snapshot: copy of exception ${seq} already finished`);
    pe.state = 'copied';
    pe.copyError = error;
    if (!error) {
      const data = pe.full ? dataBlock('snapw', pe.old, 1) : dataBlock('copy', pe.old, this.origin.get(pe.old) ?? 0);
      this.dev.write(pe.nw, data);
    }
    if (this.mutant === 'origin-before-commit' && !error) {
      // The seeded bug: the held origin writes go out as soon as the data is copied.
      for (let i = 0; i < pe.originHeld; i++) this.issueOrigin(pe.old);
      pe.originHeld = 0;
    }
    if (pe.seq !== this.completeSeq) {
      this.outOfOrder.push(pe);
      this.outOfOrder.sort((a, b) => a.seq - b.seq);
      return;
    }
    this.completeSeq++;
    this.completeException(pe);
    while (this.outOfOrder.length > 0 && this.outOfOrder[0]!.seq === this.completeSeq) {
      const next = this.outOfOrder.shift()!;
      this.completeSeq++;
      this.completeException(next);
    }
  }

  private completeException(pe: Pending): void {
    const rec: Rec = [pe.old, pe.nw];
    if (pe.copyError && !this.store.commitOnCopyError) return this.pendingComplete(pe, false);
    this.store.commitException(rec, !pe.copyError, (ok) => this.pendingComplete(pe, ok));
  }

  private pendingComplete(pe: Pending, success: boolean): void {
    let error = !success;
    if (!success) this.invalidate();
    else if (!this.valid) error = true;
    else this.complete.set(pe.old, pe.nw);
    this.pending.delete(pe.old);
    if (pe.full && !error) this.acked.add(pe.old);
    for (let i = 0; i < pe.originHeld; i++) this.issueOrigin(pe.old);
  }

  /** Clean shutdown (all writes durable) and a new activation. Only with nothing in flight. */
  restart(): void {
    if (this.pending.size > 0) throw new Error('snapshot: restart with exceptions in flight would wait for them');
    this.dev = this.dev.snapshot();
    this.activate();
  }

  /** Power cut: keep the given volatile COW writes, then activate again. In-flight bios are lost. */
  crash(keep: readonly number[], torn: number | null): void {
    this.dev = this.dev.crashImage(keep, torn);
    this.activate();
  }

  /** What the COW chunk holds now: 'copy' of origin c@v, 'snapw' of c, 'zero', or 'other'. */
  chunkContent(n: number): ReturnType<typeof parseDataBlock> {
    return parseDataBlock(this.dev.read(n));
  }
}

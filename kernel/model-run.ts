// The model side of a conformance case: the same event list driven through the thin-pool model
// (machines/thin-pool/semantics.ts poolStep, which follows dm-thin.c pool modes, out-of-space
// handling, resize and metadata failure) and the metadata implementation
// (impl/thin/pool-metadata.ts, dm-thin-metadata.c) for what the abstract pool leaves out:
// transaction id and held metadata root (set_transaction_id, reserve/release_metadata_snap).
// Each step yields the same observable fields the kernel's status line and IO results give.
// Steps the model cannot express (IO to thin ids other than 0, thin 0 closed) are marked, not guessed.

import { BlockDevice, type LogEntry } from '../impl/block-device.js';
import { MetadataError } from '../impl/persistent-data/errors.js';
import { PoolMetadata } from '../impl/thin/pool-metadata.js';
import { dataUsed, initialPoolState, poolStep } from '../machines/thin-pool/semantics.js';
import type { PoolConfig, PoolEvent, PoolState, Profile } from '../machines/thin-pool/types.js';
import { LW_FLUSH, LW_FUA, type LwEntry, type LwLog } from './logwrites.js';
import type { KCase, KEvent, PoolTable } from './scenario.js';

export interface ModelPool {
  readonly kind: 'ok';
  readonly mode: string;
  readonly noSpace: string;
  readonly needsCheck: boolean;
  readonly dataUsed: number;
  readonly dataTotal: number;
  readonly metaTotal: number;
  readonly txid: number;
  readonly held: boolean;
}

export interface ModelStep {
  readonly index: number;
  /** null: the model has no counterpart for this event (see note) */
  readonly ok: boolean | null;
  readonly errno: string | null;
  readonly blocks?: number;
  readonly bg?: string;
  readonly pool: ModelPool | { readonly kind: 'fail' } | null;
  readonly note?: string;
}

export const MODEL_PROFILES: readonly Profile[] = ['linux-3.14', 'fixed'];

const MODE_WORD: Readonly<Record<string, string>> = {
  write: 'rw',
  out_of_data_space: 'out_of_data_space',
  // the later kernels' internal out-of-metadata-space mode prints as ro
  out_of_metadata_space: 'ro',
  read_only: 'ro',
};

function cfgFor(c: KCase, first: PoolTable, profile: Profile): PoolConfig {
  const vblocks = Math.max(...c.events.map((e) => (e.type === 'thin_activate' ? e.blocks : 0)), 1);
  return {
    profile,
    mutant: null,
    vblocks,
    data: first.dataBlocks,
    dataMax: c.maxDataBlocks,
    md: first.metaBlocks,
    mdMax: c.maxMetaBlocks,
    lowWater: first.lowWater,
    // the scenarios park at most a couple of bios at once
    maxQueue: 8,
    eins: first.features.includes('error_if_no_space'),
  };
}

function errnoOf(e: unknown): string {
  if (e instanceof MetadataError) return e.errno;
  throw e;
}

export interface ModelRun {
  readonly steps: ModelStep[];
  /** every write/flush the metadata impl issued to its device, in order (for the commit shape) */
  readonly metaLog: readonly LogEntry[];
  /** the metadata impl's device at the end, when it followed the whole case (else null) */
  readonly metaDevice: BlockDevice | null;
}

/** Run one case through the model under a profile. */
export function runModelCase(c: KCase, profile: Profile): ModelStep[] {
  return runModelCaseFull(c, profile).steps;
}

/**
 * `metadataMutant` seeds one impl/thin/mutants.ts bug into the metadata impl only (the pool model
 * stays correct): the golden test's negative control for the impl's commit shape uses it.
 */
export function runModelCaseFull(c: KCase, profile: Profile, metadataMutant: string | null = null): ModelRun {
  const first = c.events.find((e): e is KEvent & { type: 'pool_create' } => e.type === 'pool_create');
  if (!first) throw new Error(`case ${c.name} never creates a pool`);
  const cfg = cfgFor(c, first, profile);
  let s: PoolState = initialPoolState(cfg);
  let live = false;
  let created0 = false;
  let thin0Open = false;
  const openThins = new Set<number>();
  let clearOnNext = false;
  let nst = 0;
  // background writes: id -> 'pending' | outcome; queued ones complete in FIFO order
  const bg = new Map<string, string>();
  const queue: string[] = [];
  const bgBlock = new Map<string, number>();
  // metadata impl for transaction id / held root (formatted like the kernel's pool_ctr does)
  const mdev = new BlockDevice(c.maxMetaBlocks);
  mdev.resize(first.metaBlocks);
  let pmd: PoolMetadata | null = null;

  const step = (e: PoolEvent): PoolState | null => {
    const n = poolStep(cfg, s, e);
    if (n) {
      s = n;
      for (const r of n.ctx.last?.released ?? []) {
        const id = queue.shift();
        const done = r.result === 'ok' || r.result === 'remap' || r.result === 'zero';
        if (id) bg.set(id, done ? 'ok' : r.result);
        const v = id !== undefined ? bgBlock.get(id) : undefined;
        if (done && v !== undefined) mirrorWrite(v);
      }
    }
    return n;
  };
  const ioOk = (r: string | undefined): boolean => r === 'ok' || r === 'remap' || r === 'zero';
  const project = (): ModelStep['pool'] => {
    if (!live) return null;
    if (s.mode === 'fail') return { kind: 'fail' };
    const cx = s.ctx;
    return {
      kind: 'ok',
      mode: MODE_WORD[s.mode] ?? s.mode,
      noSpace: cx.eins ? 'error_if_no_space' : 'queue_if_no_space',
      needsCheck: cx.needsCheck,
      dataUsed: dataUsed(cx),
      dataTotal: cx.dataNr,
      metaTotal: cx.mdNrNew,
      txid: pmd ? pmd.transactionId : 0,
      held: pmd ? pmd.heldRoot() !== 0 : false,
    };
  };
  // The metadata impl follows the pool model's successful writes to thin 0 (provisioning and
  // breaking sharing allocate a new data block), so its committed state can be dumped and compared
  // with the kernel's thin_dump. It stops following once the model aborts a transaction.
  let mirrorOk = true;
  const mirrorWrite = (v: number): void => {
    if (!pmd || !mirrorOk) return;
    try {
      const m = pmd.lookup(0, v);
      if (m && !m.shared) return;
      const b = pmd.allocDataBlock();
      pmd.insertMapping(0, v, b);
    } catch {
      mirrorOk = false;
    }
  };
  const reloadEv = (t: PoolTable): PoolEvent => ({ type: 'reload', data: t.dataBlocks, md: t.metaBlocks, eins: t.features.includes('error_if_no_space'), bs: s.ctx.sbBlockSize });

  // the guest starts every case with no_space_timeout=0 (queue forever, as 3.14 does)
  step({ type: 'set_timeout', on: false });
  const out: ModelStep[] = [];
  c.events.forEach((e, index) => {
    let ok: boolean | null = true;
    let errno: string | null = null;
    let note: string | undefined;
    let blocks: number | undefined;
    let bgText: string | undefined;
    const unmodelled = (why: string): void => {
      ok = null;
      note = why;
    };
    const fromErrno = (r: string | null | undefined): void => {
      if (r && r !== 'ok') {
        ok = false;
        errno = r;
      }
    };
    switch (e.type) {
      case 'pool_create':
        if (!pmd) {
          pmd = PoolMetadata.format(mdev, { variant: { profile, mutant: metadataMutant }, dataBlockSize: c.blockSectors, nrDataBlocks: e.dataBlocks });
        } else {
          step({ type: 'reactivate', clear: clearOnNext });
          clearOnNext = false;
          if (e.metaBlocks !== s.ctx.mdNrNew || e.dataBlocks !== s.ctx.dataNr) fromErrno(step(reloadEv(e))?.ctx.last?.errno);
        }
        live = true;
        break;
      case 'pool_reload':
        // grow the impl first: bios the grow releases are provisioned inside the pool step
        if (pmd && mirrorOk && e.dataBlocks >= pmd.dataDevSize() && e.metaBlocks >= pmd.metadataDevSize()) {
          try {
            mdev.resize(Math.max(mdev.nrBlocks, e.metaBlocks));
            pmd.resizeMetadataDevice(e.metaBlocks);
            pmd.resizeDataDevice(e.dataBlocks);
          } catch {
            mirrorOk = false;
          }
        }
        fromErrno(step(reloadEv(e))?.ctx.last?.errno);
        break;
      case 'pool_remove':
        live = false;
        openThins.clear();
        thin0Open = false;
        break;
      case 'thin_activate':
        openThins.add(e.dev);
        if (e.dev === 0) thin0Open = true;
        break;
      case 'thin_remove':
        openThins.delete(e.dev);
        if (e.dev === 0) thin0Open = false;
        break;
      case 'thin_suspend':
      case 'thin_resume':
        break;
      case 'message': {
        const [verb, a1, a2] = e.text.split(/\s+/);
        const id = Number(a1), arg = Number(a2);
        if (verb === 'create_thin' && id === 0 && !created0) {
          // the model's thin 0 exists from the start; the kernel's first create_thin 0 makes it
          created0 = true;
          if (s.mode === 'read_only' || s.mode === 'fail') unmodelled('thin 0 pre-exists in the model');
          else pmd?.createThin(0);
          break;
        }
        if (verb === 'create_thin' || verb === 'create_snap' || verb === 'delete') {
          if (verb === 'delete' && id === 0 && !thin0Open) {
            unmodelled('the model keeps thin 0 open');
            break;
          }
          const ev: PoolEvent = verb === 'create_thin' ? { type: 'create_thin', id } : verb === 'create_snap' ? { type: 'create_snap', id, origin: arg } : { type: 'delete', id };
          fromErrno(step(ev)?.ctx.last?.errno ?? 'EINVAL');
          if (ok && pmd) {
            if (verb === 'create_thin') pmd.createThin(id);
            else if (verb === 'create_snap') pmd.createSnap(id, arg);
            else pmd.deleteThin(id);
          }
          break;
        }
        // transaction id and metadata snapshots: the metadata impl, gated by the pool mode as
        // pool_message is (later kernels refuse messages in read-only/fail mode)
        if (!pmd) {
          unmodelled('no pool');
          break;
        }
        if (s.mode === 'read_only' || s.mode === 'fail') {
          fromErrno(profile === 'fixed' ? 'EOPNOTSUPP' : 'EINVAL');
          break;
        }
        try {
          if (verb === 'set_transaction_id') pmd.setTransactionId(id, arg);
          else if (verb === 'reserve_metadata_snap') {
            // process_reserve_metadata_snap_mesg commits (dm-thin) before the metadata call, which
            // commits again itself since 49e99fc7 (after its -EBUSY check, with the held-root fix)
            pmd.commit();
            pmd.reserveMetadataSnap();
          }
          else if (verb === 'release_metadata_snap') pmd.releaseMetadataSnap();
          else fromErrno('EINVAL');
          pmd.commit();
        } catch (err) {
          fromErrno(errnoOf(err));
        }
        break;
      }
      case 'write': {
        if (e.dev !== 0 || !thin0Open) {
          unmodelled('the model takes IO on thin 0 only');
          break;
        }
        let done = 0;
        for (let v = e.block; v < e.block + e.count; v++) {
          const n = step({ type: 'write', v });
          const r = n?.ctx.last?.io?.result;
          if (!ioOk(r)) {
            ok = false;
            errno = r === 'queued' ? 'QUEUED' : (r ?? 'EINVAL');
            break;
          }
          mirrorWrite(v);
          done++;
        }
        blocks = done;
        if (ok && e.flush) {
          const r = step({ type: 'flush' })?.ctx.last?.io?.result;
          if (!ioOk(r)) {
            ok = false;
            errno = r ?? 'EINVAL';
          }
        }
        break;
      }
      case 'write_async': {
        if (e.dev !== 0 || !thin0Open) {
          unmodelled('the model takes IO on thin 0 only');
          break;
        }
        bgBlock.set(e.id, e.block);
        const r = step({ type: 'write', v: e.block })?.ctx.last?.io?.result;
        if (ioOk(r)) mirrorWrite(e.block);
        if (r === 'queued') {
          bg.set(e.id, 'pending');
          queue.push(e.id);
        } else bg.set(e.id, ioOk(r) ? 'ok' : (r ?? 'EINVAL'));
        break;
      }
      case 'await': {
        // time passes: no_space_timeout fires if it is set, shorter than the wait, and armed
        if (nst > 0 && e.seconds > nst && s.ctx.timer) step({ type: 'timer_expire' });
        bgText = e.ids.map((id) => {
          const st = bg.get(id) ?? 'pending';
          return st === 'pending' ? `${id}:pending` : `${id}:done:${st}`;
        }).join(',');
        break;
      }
      case 'read': {
        if (e.dev !== 0 || !thin0Open) {
          unmodelled('the model takes IO on thin 0 only');
          break;
        }
        const r = step({ type: 'read', v: e.block })?.ctx.last?.io?.result;
        if (!ioOk(r)) {
          ok = false;
          errno = r ?? 'EINVAL';
        }
        break;
      }
      case 'flush': {
        const r = step({ type: 'flush' })?.ctx.last?.io?.result;
        if (!ioOk(r)) {
          ok = false;
          errno = r ?? 'EINVAL';
        }
        break;
      }
      case 'set_no_space_timeout':
        nst = e.seconds;
        if (step({ type: 'set_timeout', on: e.seconds > 0 }) === null && profile !== 'fixed' && e.seconds > 0) {
          note = 'no_space_timeout does not exist in this profile';
        }
        break;
      case 'sleep':
        break;
      case 'meta_fail_writes':
        step({ type: 'fault', kind: 'md-io' });
        break;
      case 'meta_heal':
        break;
      case 'thin_check':
        if (e.clear) clearOnNext = true;
        break;
    }
    // dmsetup status after every event: pool_status commits first (not in fail mode)
    if (live) step({ type: 'status' });
    if (s.ctx.needsCheck || (s.mode !== 'write' && s.mode !== 'out_of_data_space') || (s.ctx.last?.aborts.length ?? 0) > 0) mirrorOk = false;
    if (pmd && live && (s.mode === 'write' || s.mode === 'out_of_data_space')) {
      try {
        pmd.commit();
      } catch {
        // the metadata impl only tracks ids here; its failures show up through the pool model
      }
    }
    out.push({
      index, ok, errno, pool: project(),
      ...(blocks !== undefined ? { blocks } : {}),
      ...(bgText !== undefined ? { bg: bgText } : {}),
      ...(note !== undefined ? { note } : {}),
    });
  });
  const followed = mirrorOk && out.every((x) => x.ok !== null || x.note === undefined);
  return { steps: out, metaLog: mdev.log(), metaDevice: followed ? mdev : null };
}

/** The impl's device log in dm-log-writes shape, so commitShape judges kernel and impl alike. */
export function asLwLog(log: readonly LogEntry[]): LwLog {
  const sector = Buffer.alloc(4096);
  const entries: LwEntry[] = log.map((e, index) =>
    e.kind === 'flush'
      ? { index, sector: 0, nrSectors: 0, flags: LW_FLUSH }
      : { index, sector: e.block * 8, nrSectors: 8, flags: e.fua ? LW_FUA : 0, data: sector },
  );
  return { sectorSize: 512, entries };
}

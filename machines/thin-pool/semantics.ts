// Abstract step semantics of the thin-pool target. Follows drivers/md/dm-thin.c (Linux 3.14.1):
// set_pool_mode, abort_transaction, metadata_operation_failed, commit, alloc_data_block,
// check_low_water_mark, should_error_unserviceable_bio, retry_bios_on_resume, process_bio,
// process_bio_read_only, process_discard, issue, process_deferred_bios, bind_control_target,
// maybe_resize_data_dev, maybe_resize_metadata_dev, pool_preresume, pool_resume, pool_postsuspend,
// pool_message, pool_status; metadata side abstracted from dm-thin-metadata.c (dm_pool_abort_metadata,
// dm_pool_metadata_set_needs_check, dm_pool_metadata_close) and dm-space-map-metadata.c
// (check_threshold). The `fixed` profile applies the later fixes named in dm-thin.md §10 (#15, #16,
// #17, #18, #19, #23 and the RO/FAIL message refusal), idealised where noted in spec/thin-pool.md.
//
// One pure function `poolStep(cfg, state, event)`; the XState machine (machine.ts) is generated from
// it with one guarded transition per reachable target mode.

import type {
  Errno,
  IoClass,
  IoRecord,
  IoResult,
  Last,
  MdObservation,
  MdFailure,
  Mode,
  PoolConfig,
  PoolCtx,
  PoolEvent,
  PoolState,
  QueuedBio,
} from './types.js';

/** Abstract metadata usage of a mapping state: superblock + space-map roots, one per thin, one per distinct mapping. */
export const MD_BASE = 2;

/** fixed profile: metadata blocks kept back so a commit always has room (abstract stand-in for min(4096, total/10)). */
export const MD_RESERVE = 1;

/** min(1024 blocks = 4 MiB, a quarter of the metadata device): calc_metadata_threshold. */
export function metadataThreshold(mdDevBlocks: number): number {
  return Math.min(1024, Math.floor(mdDevBlocks / 4));
}

export function isMutant(cfg: PoolConfig, id: string): boolean {
  return cfg.mutant === id;
}

/** Blocks referenced by a mapping state. */
function refs(map: readonly (readonly number[] | null)[]): Set<number> {
  const s = new Set<number>();
  for (const t of map) if (t) for (const b of t) if (b >= 0) s.add(b);
  return s;
}

export function mdUsed(map: readonly (readonly number[] | null)[]): number {
  let n = MD_BASE;
  const t0 = map[0];
  for (let id = 0; id < map.length; id++) {
    const t = map[id];
    if (!t) continue;
    n += 1;
    for (let v = 0; v < t.length; v++) {
      const b = t[v]!;
      if (b < 0) continue;
      // A snapshot's entry identical to the origin's lives in a shared subtree: counted once.
      if (id > 0 && t0 && t0[v] === b) continue;
      n += 1;
    }
  }
  return n;
}

/** Free data blocks as dm_pool_get_free_block_count reports them (old_ll based, sm_disk). */
export function dataFree(c: Pick<PoolCtx, 'dataNr' | 'cmap' | 'allocTx'>): number {
  return c.dataNr - refs(c.cmap).size - c.allocTx.length;
}

/** Free metadata blocks (nr_blocks of the last commit − used then − allocated this transaction). */
export function mdFree(c: Pick<PoolCtx, 'mdNr' | 'mdUsedC' | 'mdTx'>): number {
  return c.mdNr - c.mdUsedC - c.mdTx;
}

/** Used/total words of the status line. */
export function dataUsed(c: Pick<PoolCtx, 'dataNr' | 'cmap' | 'allocTx'>): number {
  return c.dataNr - dataFree(c);
}

// ---------------------------------------------------------------------------------------------
// Working copy: the step mutates a private clone, then freezes it back into a fresh PoolState.

interface Work {
  readonly cfg: PoolConfig;
  mode: Mode;
  c: MutCtx;
  last: MutLast;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutCtx = Mutable<Omit<PoolCtx, 'map' | 'cmap' | 'allocTx' | 'retry' | 'durable' | 'acked' | 'last'>> & {
  map: (number[] | null)[];
  cmap: (number[] | null)[];
  allocTx: number[];
  retry: QueuedBio[];
  durable: number[];
  acked: number[];
};
type MutLast = Mutable<Omit<Last, 'released' | 'mdFailures' | 'aborts' | 'events' | 'mdObs' | 'commitModes'>> & {
  commitModes: Mode[];
  released: IoRecord[];
  mdFailures: MdFailure[];
  aborts: string[];
  events: string[];
  mdObs: MdObservation[];
};

// Hot path of the explorer: plain loops, no closures (tsx wraps every closure in a naming helper).
function cloneMap(m: readonly (readonly number[] | null)[]): (number[] | null)[] {
  const out: (number[] | null)[] = new Array<number[] | null>(m.length);
  for (let i = 0; i < m.length; i++) {
    const t = m[i]!;
    out[i] = t ? t.slice() : null;
  }
  return out;
}

function sortedUnique(a: number[]): number[] {
  if (a.length <= 1) return a;
  const out: number[] = [];
  for (const x of a) if (!out.includes(x)) out.push(x);
  out.sort(byNumber);
  return out;
}

function byNumber(x: number, y: number): number {
  return x - y;
}

function without(a: number[], v: number): number[] {
  const out: number[] = [];
  for (const x of a) if (x !== v) out.push(x);
  return out;
}

function begin(cfg: PoolConfig, s: PoolState, ev: PoolEvent): Work {
  const c = s.ctx;
  return {
    cfg,
    mode: s.mode,
    c: {
      ...c,
      map: cloneMap(c.map),
      cmap: cloneMap(c.cmap),
      allocTx: c.allocTx.slice(),
      retry: c.retry.slice(),
      durable: c.durable.slice(),
      acked: c.acked.slice(),
    },
    last: {
      ev: eventLabel(ev),
      type: ev.type,
      modeFrom: s.mode,
      bind: null,
      io: null,
      released: [],
      mdFailures: [],
      aborts: [],
      events: [],
      mdObs: [],
      lwBefore: c.lwTriggered,
      dataBefore: c.dataNr,
      dataNewBefore: c.dataNrNew,
      mdBefore: c.mdNrNew,
      errno: null,
      committed: false,
      commitModes: [],
      writeWhileRo: false,
    },
  };
}

/** Rebuild the context with a fixed key order (state keys are JSON strings). */
function finish(w: Work): PoolState {
  const c = w.c;
  // State reduction (one representative per behaviour): with fail_io every later preresume stops at
  // dm_pool_get_data_dev_size before looking at the table; on a running pool with needs_check set, a
  // live table larger than the space maps only ever meets a refused grow (maybe_resize_*_dev). Either
  // way the table's sizes make no difference until re-creation resets them.
  if (c.failIo || (!c.suspended && c.needsCheck && !isMutant(w.cfg, '13-resize-with-needs-check'))) {
    c.tableData = c.dataNr;
    c.tableMd = c.mdNrNew;
  }
  const sorted = sortedUnique;
  const ctx: PoolCtx = {
    eins: c.eins,
    einsReq: c.einsReq,
    einsTable: c.einsTable,
    blockSize: c.blockSize,
    sbBlockSize: c.sbBlockSize,
    dataNr: c.dataNr,
    dataNrNew: c.dataNrNew,
    allocTx: sorted(c.allocTx),
    map: c.map,
    cmap: c.cmap,
    mdNr: c.mdNr,
    mdNrNew: c.mdNrNew,
    mdUsedC: c.mdUsedC,
    mdTx: c.mdTx,
    mdThr: c.mdThr,
    mdObs: c.mdObs,
    mdThrArmed: c.mdThrArmed,
    needsCheck: c.needsCheck,
    needsCheckDisk: c.needsCheckDisk,
    ncGhost: c.ncGhost,
    mdDevCtr: c.mdDevCtr,
    tableData: c.tableData,
    tableMd: c.tableMd,
    suspended: c.suspended,
    failIo: c.failIo,
    lowWater: c.lowWater,
    lwTriggered: c.lwTriggered,
    changed: c.changed,
    abortedWithChanges: c.abortedWithChanges,
    retry: c.retry,
    fault: c.fault,
    timeoutOn: c.timeoutOn,
    timer: c.timer,
    durable: sorted(c.durable),
    acked: sorted(c.acked),
    balance: c.balance,
    shown: {
      io: w.last.io ? w.last.io.result : null,
      released: w.last.released.map(resultOf),
      errno: w.last.errno,
      events: w.last.events,
    },
    last: {
      ev: w.last.ev,
      type: w.last.type,
      modeFrom: w.last.modeFrom,
      bind: w.last.bind,
      io: w.last.io,
      released: w.last.released,
      mdFailures: w.last.mdFailures,
      aborts: w.last.aborts,
      events: w.last.events,
      mdObs: w.last.mdObs,
      lwBefore: w.last.lwBefore,
      dataBefore: w.last.dataBefore,
      dataNewBefore: w.last.dataNewBefore,
      mdBefore: w.last.mdBefore,
      errno: w.last.errno,
      committed: w.last.committed,
      commitModes: w.last.commitModes,
      writeWhileRo: w.last.writeWhileRo,
    },
  };
  return { mode: w.mode, ctx };
}

function resultOf(r: IoRecord): IoResult {
  return r.result;
}

export function eventLabel(e: PoolEvent): string {
  switch (e.type) {
    case 'read':
    case 'write':
    case 'discard':
      return `${e.type} ${e.v}`;
    case 'create_thin':
    case 'delete':
      return `${e.type} ${e.id}`;
    case 'create_snap':
      return `create_snap ${e.id} ${e.origin}`;
    case 'reload':
      return `reload data=${e.data} md=${e.md}${e.eins ? ' error_if_no_space' : ''}${e.bs !== 1 ? ` bs=${e.bs}` : ''}`;
    case 'reactivate':
      return e.clear ? 'reactivate after thin_check --clear-needs-check-flag' : 'reactivate';
    case 'fault':
      return `fault ${e.kind}`;
    case 'set_timeout':
      return `no_space_timeout=${e.on ? 60 : 0}`;
    default:
      return e.type;
  }
}

// ---------------------------------------------------------------------------------------------
// Pool mode (set_pool_mode) and the degradation path.

function fixed(w: Work): boolean {
  return w.cfg.profile === 'fixed';
}

function completeQueued(w: Work, bio: QueuedBio, result: IoResult): void {
  w.c.balance += 1; // left the queue
  w.c.balance -= 1; // completed
  w.last.released.push({
    cls: bio.op === 'write' ? 'write-unmapped' : 'flush-unmapped',
    mode: w.mode,
    eins: w.c.eins,
    changed: w.c.changed,
    aborted: w.c.abortedWithChanges,
    noSpace: false,
    mdFail: false,
    noMdSpace: false,
    result,
  });
}

/** error_retry_list: every parked bio completes with an error. */
function errorRetryList(w: Work, code: IoResult): void {
  const bios = w.c.retry;
  w.c.retry = [];
  for (const b of bios) completeQueued(w, b, code);
}

export function setPoolMode(w: Work, requested: Mode): void {
  const old = w.mode;
  let m = requested;
  if (m === 'write' && w.c.needsCheck && !isMutant(w.cfg, '13-write-with-needs-check')) {
    m = old !== 'write' ? old : 'read_only';
  }
  if (old === 'fail') m = 'fail';
  if (m !== old) w.last.events.push(`mode:${m}`);
  w.mode = m;
  switch (m) {
    case 'fail':
    case 'read_only':
    case 'out_of_metadata_space':
      errorRetryList(w, 'EIO');
      break;
    case 'out_of_data_space':
      if (fixed(w) && old !== m && !w.c.eins && (w.c.timeoutOn || isMutant(w.cfg, '16-zero-not-disable'))) w.c.timer = true;
      break;
    case 'write':
      // Later kernels restore the requested error_if_no_space when write mode returns.
      if (fixed(w)) w.c.eins = w.c.einsReq;
      break;
    default:
      break;
  }
  if (m !== 'out_of_data_space' && !isMutant(w.cfg, '16-timer-not-cancelled')) w.c.timer = false;
}

/**
 * The in-core transaction is gone: dm_pool_abort_metadata runs __destroy_persistent_data_objects
 * before it tries __create_persistent_data_objects, so this holds whether the re-open succeeds
 * (back to the last commit) or fails (fail_io: nothing in core is reachable any more). Keeping an
 * extended space map size past a failed abort was the THIN-POOL-6 artefact of spec/thin-pool.md.
 */
function dropInCoreTransaction(c: MutCtx): void {
  c.map = cloneMap(c.cmap);
  c.allocTx = [];
  c.mdTx = 0;
  c.dataNrNew = c.dataNr;
  c.mdNrNew = c.mdNr;
  c.mdThrArmed = false; // the re-created metadata space map has no threshold callback
  c.mdObs = -1;
  c.acked = [];
}

function abortTransaction(w: Work, cause: string): void {
  w.last.aborts.push(cause);
  const c = w.c;
  if (c.fault === 'abort-pending' || c.failIo) {
    // dm_pool_abort_metadata could not re-open the metadata: fail_io, and needs_check cannot be written.
    // With fail_io already set it returns -EINVAL before touching anything (already dropped then).
    if (!c.failIo) {
      c.abortedWithChanges = c.changed; // __set_abort_with_changes_flags runs before the re-open
      dropInCoreTransaction(c);
    }
    c.fault = 'none';
    c.failIo = true;
    setPoolMode(w, 'fail');
    c.needsCheck = true;
    setPoolMode(w, 'fail');
    return;
  }
  c.abortedWithChanges = c.changed;
  dropInCoreTransaction(c);
  // dm_pool_metadata_set_needs_check: in-core flag plus a dirty superblock (reaches disk at teardown).
  c.needsCheck = true;
  c.ncGhost = true;
  if (!isMutant(w.cfg, '13-not-persisted')) c.needsCheckDisk = true;
}

function metadataOperationFailed(w: Work, op: MdFailure['op'], r: Errno): void {
  w.last.mdFailures.push({ op, r });
  abortTransaction(w, 'metadata');
  setPoolMode(w, 'read_only');
}

/** One metadata block allocation by a btree / transaction-manager operation. */
function mdAlloc(w: Work, useReserve: boolean): Errno {
  const c = w.c;
  if (c.failIo) return 'EINVAL';
  if (w.mode === 'read_only' || w.mode === 'fail') return 'EPERM'; // block manager is read-only
  if (c.fault === 'md-io' || c.fault === 'md-io-abort') {
    c.fault = c.fault === 'md-io-abort' ? 'abort-pending' : 'none';
    return 'EIO';
  }
  const reserve = fixed(w) && !useReserve && !isMutant(w.cfg, '23-no-metadata-reserve') ? MD_RESERVE : 0;
  if (mdFree(c) - reserve <= 0) return 'ENOSPC';
  c.mdTx += 1;
  observeMdFree(w, mdFree(c));
  return 'ok';
}

/** sm_metadata_new_block → check_threshold: edge-triggered metadata low-water event. */
function observeMdFree(w: Work, free: number): void {
  const c = w.c;
  w.last.mdObs.push({ v: free, prev: c.mdObs, armed: c.mdThrArmed, thr: c.mdThr });
  const belowNow = c.mdThrArmed && free <= c.mdThr;
  const already = c.mdObs >= 0 && c.mdThrArmed && c.mdObs <= c.mdThr;
  let fire = belowNow && !already;
  if (isMutant(w.cfg, '6-level')) fire = belowNow;
  if (isMutant(w.cfg, '6-never')) fire = false;
  if (fire) w.last.events.push('md-threshold');
  c.mdObs = free;
}

/** Whether commit() may run in this mode (3.14: PM_WRITE only; fixed #15: also out-of-data-space). */
function commitAllowed(w: Work): boolean {
  if (w.mode === 'write') return true;
  return fixed(w) && w.mode === 'out_of_data_space';
}

function txDirty(c: MutCtx): boolean {
  return c.mdTx > 0 || c.dataNrNew !== c.dataNr || c.mdNrNew !== c.mdNr;
}

/** __commit_transaction on the abstract metadata. */
function commitMetadata(w: Work): Errno {
  const c = w.c;
  if (c.failIo) return 'EINVAL';
  if (w.mode === 'read_only' || w.mode === 'fail') {
    w.last.writeWhileRo = true;
    return 'EPERM';
  }
  if (c.fault === 'md-io' || c.fault === 'md-io-abort') {
    c.fault = c.fault === 'md-io-abort' ? 'abort-pending' : 'none';
    return 'EIO';
  }
  if (txDirty(c)) {
    if (mdFree(c) <= 0) return 'ENOSPC';
    observeMdFree(w, mdFree(c) - 1);
  }
  c.cmap = cloneMap(c.map);
  c.dataNr = c.dataNrNew;
  c.mdNr = c.mdNrNew;
  c.mdUsedC = mdUsed(c.map);
  c.mdTx = 0;
  c.allocTx = [];
  c.changed = false;
  c.needsCheckDisk = c.needsCheck;
  w.last.committed = true;
  w.last.commitModes.push(w.mode);
  return 'ok';
}

/** commit() of dm-thin.c: mode gate, then escalate a failure. */
function commit(w: Work): Errno {
  if (!commitAllowed(w)) return 'EINVAL';
  const r = commitMetadata(w);
  if (r !== 'ok') {
    metadataOperationFailed(w, 'commit', r);
    return r;
  }
  if (fixed(w)) {
    // check_for_data_space / check_for_metadata_space of later kernels.
    if (w.mode === 'out_of_data_space' && dataFree(w.c) > 0) {
      setPoolMode(w, 'write');
      requeueRetryList(w);
    }
    if (mdFree(w.c) - MD_RESERVE <= 0 && !isMutant(w.cfg, '23-no-metadata-reserve')) setPoolMode(w, 'out_of_metadata_space');
  }
  return 'ok';
}

/** fixed: commit early when the reported metadata free count cannot cover `need` blocks. */
function ensureMdSpace(w: Work, need: number): boolean {
  if (!fixed(w) || isMutant(w.cfg, '23-no-metadata-reserve')) return true;
  if (mdFree(w.c) - MD_RESERVE >= need) return true;
  if (commit(w) !== 'ok') return false;
  if (mdFree(w.c) - MD_RESERVE >= need) return true;
  setPoolMode(w, 'out_of_metadata_space');
  return false;
}

// ---------------------------------------------------------------------------------------------
// Data allocation and bio handling.

interface Alloc {
  readonly r: Errno;
  readonly block: number;
  readonly noSpace: boolean;
  readonly noMdSpace: boolean;
}

function checkLowWater(w: Work, free: number): void {
  if (free <= w.c.lowWater && !w.c.lwTriggered) {
    w.c.lwTriggered = true;
    w.last.events.push('low-water');
  }
}

function firstFreeDataBlock(c: MutCtx): number {
  const used = refs(c.cmap);
  for (let b = 0; b < c.dataNr; b++) if (!used.has(b) && !c.allocTx.includes(b)) return b;
  return -1;
}

function allocDataBlock(w: Work): Alloc {
  if (w.mode !== 'write') return { r: 'EINVAL', block: -1, noSpace: false, noMdSpace: false };
  let free = dataFree(w.c);
  checkLowWater(w, free);
  if (free === 0) {
    const r = commit(w);
    if (r !== 'ok') return { r, block: -1, noSpace: false, noMdSpace: false };
    free = dataFree(w.c);
    if (free === 0) {
      if (isMutant(w.cfg, '14-oods-aborts')) {
        // Before 3e1a0699: running out of data space went read-only, and read-only aborted.
        abortTransaction(w, 'out-of-data-space');
        setPoolMode(w, 'read_only');
      } else {
        setPoolMode(w, 'out_of_data_space');
      }
      return { r: 'ENOSPC', block: -1, noSpace: true, noMdSpace: false };
    }
  }
  if (!ensureMdSpace(w, 2)) {
    // fixed: out of metadata space (or the early commit failed); the bio is unserviceable.
    return { r: (w.mode as Mode) === 'out_of_metadata_space' ? 'ENOSPC' : 'EIO', block: -1, noSpace: false, noMdSpace: true };
  }
  const r = mdAlloc(w, false);
  if (r !== 'ok') {
    if (!isMutant(w.cfg, '3-alloc-no-escalate')) metadataOperationFailed(w, 'alloc', r);
    else w.last.mdFailures.push({ op: 'alloc', r });
    return { r, block: -1, noSpace: false, noMdSpace: false };
  }
  const b = firstFreeDataBlock(w.c);
  w.c.allocTx.push(b);
  return { r: 'ok', block: b, noSpace: false, noMdSpace: false };
}

/** should_error_unserviceable_bio, and the errno the profile uses. */
function unserviceable(w: Work): IoResult {
  if (w.mode === 'out_of_data_space') {
    let err = w.c.eins;
    if (isMutant(w.cfg, '2-unserviceable-eio')) err = true;
    if (isMutant(w.cfg, '5-eins-ignored')) err = false;
    if (!err) return 'queued';
    return fixed(w) ? 'ENOSPC' : 'EIO';
  }
  return 'EIO';
}

interface Bio {
  readonly op: 'read' | 'write' | 'flush' | 'discard';
  readonly v: number;
}

function classify(c: MutCtx, bio: Bio): IoClass {
  const t0 = c.map[0]!;
  const b = t0[bio.v]!;
  const mapped = b >= 0;
  switch (bio.op) {
    case 'read':
      return mapped ? 'read-mapped' : 'read-unmapped';
    case 'flush':
      return mapped ? 'flush-mapped' : 'flush-unmapped';
    case 'discard':
      return mapped ? 'discard-mapped' : 'discard-unmapped';
    case 'write': {
      if (!mapped) return 'write-unmapped';
      const t1 = c.map[1];
      return t1 && t1[bio.v] === b ? 'write-shared' : 'write-mapped';
    }
  }
}

/** Complete a flush that has been remapped: issue() plus the deferred-flush commit of the worker. */
function issueFlush(w: Work): IoResult {
  const c = w.c;
  if (!c.changed) {
    c.durable.push(...c.acked);
    return 'ok';
  }
  if (c.abortedWithChanges) return 'EIO';
  if (commit(w) !== 'ok') return 'EIO';
  c.durable.push(...c.acked);
  return 'ok';
}

/** process_bio / process_bio_read_only / process_bio_fail / process_discard on one bio. */
function processBio(w: Work, bio: Bio, fromRetry: boolean): void {
  const c = w.c;
  const cls = classify(c, bio);
  const rec = {
    cls,
    mode: w.mode,
    eins: c.eins,
    changed: c.changed,
    aborted: c.abortedWithChanges,
    noSpace: false,
    mdFail: false,
    noMdSpace: false,
  };
  const failuresBefore = w.last.mdFailures.length;
  let result: IoResult;
  if (w.mode === 'fail') {
    result = 'EIO';
  } else {
    const writeMode = w.mode === 'write';
    switch (cls) {
      case 'read-mapped':
      case 'write-mapped':
        result = 'remap';
        break;
      case 'read-unmapped':
        result = 'zero';
        break;
      case 'discard-unmapped':
        result = 'ok';
        break;
      case 'discard-mapped':
        if (writeMode) {
          // process_prepared_discard: remove the mapping (a failure is only logged), then pass down.
          if (ensureMdSpace(w, 1)) {
            const r = mdAlloc(w, false);
            if (r === 'ok') {
              c.map[0]![bio.v] = -1;
              c.changed = true;
              c.acked = without(c.acked, bio.v);
              c.durable = without(c.durable, bio.v);
            } else {
              w.last.mdFailures.push({ op: 'remove', r });
            }
          }
        }
        // out_of_data_space: passdown only, mapping kept; read-only: completed, nothing done.
        result = 'ok';
        break;
      case 'flush-mapped':
        result = issueFlush(w);
        break;
      case 'flush-unmapped':
        // A flush bio is WRITE-direction: in write mode it is remapped to data block 0, otherwise unserviceable.
        result = writeMode ? issueFlush(w) : unserviceable(w);
        break;
      case 'write-unmapped':
      case 'write-shared':
        if (!writeMode) {
          result = unserviceable(w);
          break;
        }
        {
          const a = allocDataBlock(w);
          rec.noSpace = a.noSpace;
          rec.noMdSpace = a.noMdSpace;
          if (a.r === 'ENOSPC') {
            result = unserviceable(w); // retry_bios_on_resume in the (new) mode
          } else if (a.r !== 'ok') {
            result = 'EIO'; // cell_error
          } else {
            const r = ensureMdSpace(w, 1) ? mdAlloc(w, false) : 'ENOSPC';
            if (r !== 'ok') {
              if (!isMutant(w.cfg, '3-alloc-no-escalate')) metadataOperationFailed(w, 'insert', r);
              else w.last.mdFailures.push({ op: 'insert', r });
              result = 'EIO';
            } else {
              c.map[0]![bio.v] = a.block;
              c.changed = true;
              if (!c.acked.includes(bio.v)) c.acked.push(bio.v);
              result = 'remap';
            }
          }
        }
        break;
    }
  }
  if (w.last.mdFailures.length > failuresBefore) rec.mdFail = true;
  if (bio.op === 'write' && result === 'remap' && !c.acked.includes(bio.v)) c.acked.push(bio.v);
  const full: IoRecord = { ...rec, result };
  if (result === 'queued') {
    c.retry.push({ op: bio.op === 'flush' ? 'flush' : 'write', v: bio.v });
    c.balance -= 1;
  } else {
    c.balance -= 1;
  }
  if (fromRetry) w.last.released.push(full);
  else w.last.io = full;
}

function submit(w: Work, bio: Bio): void {
  w.c.balance += 1;
  processBio(w, bio, false);
}

/**
 * dm_resume after the preresume: on success pool_resume runs and the device is live; on failure
 * dm_table_resume_targets returns before any resume hook, so the device stays suspended and the
 * retry list keeps its bios (even though bind_control_target may already have chosen write mode).
 */
function endResume(w: Work): void {
  if (w.last.errno === 'ok') {
    w.c.suspended = false;
    poolResume(w);
  } else {
    w.c.suspended = true;
  }
}

/** pool_resume: re-arm the data low-water event and re-process everything on the retry list. */
function poolResume(w: Work): void {
  w.c.lwTriggered = false;
  requeueRetryList(w);
}

/** __requeue_bios / requeue_bios: the parked bios go back to the worker and are processed again. */
function requeueRetryList(w: Work): void {
  const bios = w.c.retry;
  w.c.retry = [];
  for (const b of bios) {
    w.c.balance += 1;
    processBio(w, { op: b.op, v: b.v }, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Messages, resize, lifecycle.

function message(w: Work, e: PoolEvent): Errno {
  const c = w.c;
  if (fixed(w) && (w.mode === 'read_only' || w.mode === 'fail' || w.mode === 'out_of_metadata_space')) return 'EOPNOTSUPP';
  if (c.failIo) return 'EINVAL';
  let r: Errno;
  switch (e.type) {
    case 'create_thin':
      if (c.map[e.id]) return 'EEXIST';
      if (!ensureMdSpace(w, 1)) return 'ENOSPC';
      r = mdAlloc(w, false);
      if (r !== 'ok') break;
      c.map[e.id] = new Array<number>(w.cfg.vblocks).fill(-1);
      break;
    case 'create_snap': {
      if (c.map[e.id]) return 'EEXIST';
      const o = c.map[e.origin];
      if (!o) return 'ENODATA';
      if (!ensureMdSpace(w, 1)) return 'ENOSPC';
      r = mdAlloc(w, false);
      if (r !== 'ok') break;
      c.map[e.id] = o.slice();
      if (e.origin === 0) c.changed = true;
      break;
    }
    case 'delete':
      if (!c.map[e.id]) return 'ENODATA';
      if (e.id === 0) return 'EBUSY'; // thin 0 is open (active thin target)
      if (!ensureMdSpace(w, 1)) return 'ENOSPC';
      r = mdAlloc(w, false);
      if (r !== 'ok') break;
      c.map[e.id] = null;
      break;
    default:
      return 'EINVAL';
  }
  if (r !== 'ok') {
    w.last.mdFailures.push({ op: 'message', r });
    return r;
  }
  commit(w); // pool_message ignores the commit's result
  return 'ok';
}

/**
 * One space map grow at preresume (maybe_resize_data_dev / maybe_resize_metadata_dev): refused
 * while needs_check is set (resume still succeeds), an errno when the extend's metadata operation
 * fails, otherwise go ahead.
 */
function tryGrow(w: Work): 'refused' | 'grow' | Errno {
  const c = w.c;
  if (c.needsCheck && !isMutant(w.cfg, '13-resize-with-needs-check')) return 'refused';
  if (c.failIo) return 'EINVAL';
  if (c.fault === 'md-io' || c.fault === 'md-io-abort') {
    c.fault = c.fault === 'md-io-abort' ? 'abort-pending' : 'none';
    metadataOperationFailed(w, 'resize', 'EIO');
    return 'EIO';
  }
  return 'grow';
}

function preresume(w: Work, data: number, md: number): Errno {
  const c = w.c;
  let needCommit = false;
  // dm_pool_get_data_dev_size fails with fail_io: "failed to retrieve data device size".
  if (c.failIo) return 'EINVAL';
  // maybe_resize_data_dev: compare the table length with the data space map size.
  if (data < c.dataNr) return 'EINVAL';
  if (data > c.dataNr) {
    const g = tryGrow(w);
    if (g !== 'grow' && g !== 'refused') return g;
    if (g === 'grow') {
      c.dataNrNew = data;
      needCommit = true;
    }
  }
  // maybe_resize_metadata_dev: compare the device size with the metadata space map size.
  if (md < c.mdNrNew) return 'EINVAL';
  if (md > c.mdNrNew) {
    const g = tryGrow(w);
    if (g !== 'grow' && g !== 'refused') return g;
    if (g === 'grow') {
      c.mdNrNew = md;
      needCommit = true;
    }
  }
  if (needCommit) commit(w);
  return 'ok';
}

/** The whole step. Null = event not enabled in this state. */
export function poolStep(cfg: PoolConfig, s: PoolState, e: PoolEvent): PoolState | null {
  const w = begin(cfg, s, e);
  const c = w.c;
  switch (e.type) {
    case 'read':
    case 'write':
    case 'discard':
      if (e.v < 0 || e.v >= cfg.vblocks) return null;
      if (e.type === 'write' && c.retry.length >= cfg.maxQueue) return null;
      submit(w, { op: e.type, v: e.v });
      break;
    case 'flush':
      if (c.retry.length >= cfg.maxQueue) return null;
      submit(w, { op: 'flush', v: 0 });
      break;
    case 'create_thin':
    case 'create_snap':
    case 'delete':
      w.last.errno = message(w, e);
      break;
    case 'tick':
      // do_waker → process_deferred_bios: periodic commit when the pool changed. pool_postsuspend
      // cancelled the waker; only pool_resume queues it again.
      if (c.suspended) return null;
      if (!txDirty(c) && !c.changed) return null;
      if (!commitAllowed(w)) return null;
      commit(w);
      break;
    case 'status':
      // pool_status (INFO) commits first unless in fail mode or suspended (dm_suspended(ti)).
      if (w.mode !== 'fail' && !c.suspended) commit(w);
      break;
    case 'resume': {
      // Plain suspend/resume: postsuspend commit (do_resume only suspends a running device), bind
      // with the synced adjusted_pf.mode, preresume on the live table.
      if (!c.suspended) commit(w);
      const bindTo: Mode = isMutant(cfg, '4-no-mode-sync') ? 'write' : w.mode;
      setPoolMode(w, bindTo);
      w.last.bind = w.mode;
      w.last.errno = preresume(w, c.tableData, c.tableMd);
      endResume(w);
      break;
    }
    case 'reload': {
      if (e.bs !== c.sbBlockSize) {
        if (isMutant(cfg, '18-accept-block-size')) c.blockSize = e.bs;
        else if (fixed(w)) {
          // 9aec8629: the table load fails, nothing changes.
          w.last.errno = 'EINVAL';
          break;
        }
        // 3.14: __pool_find reuses the pool object; the new block size is silently ignored.
      }
      // pool_ctr runs at table load, before the suspend: it registers the new table's metadata
      // threshold on the live pmd, so the postsuspend commit below is already judged against it.
      c.mdDevCtr = e.md;
      c.mdThr = isMutant(cfg, '6-max-threshold') ? Math.max(1024, Math.floor(e.md / 4)) : metadataThreshold(e.md);
      c.mdThrArmed = true;
      if (!c.suspended) commit(w); // pool_postsuspend (a suspended device is not suspended again)
      // dm_swap_table: the new table is live from here on, whether or not its preresume succeeds.
      c.tableData = e.data;
      c.tableMd = e.md;
      // The new pool_c's features take effect at bind_control_target (preresume).
      c.einsReq = isMutant(cfg, '5-default-inverted') ? !e.eins : e.eins;
      c.einsTable = e.eins;
      // bind_control_target
      const degraded = w.mode !== 'write';
      const bindTo: Mode = isMutant(cfg, '1-no-rw-on-reload') && degraded ? w.mode : 'write';
      c.eins = c.einsReq;
      setPoolMode(w, bindTo);
      w.last.bind = w.mode;
      w.last.errno = preresume(w, e.data, e.md);
      endResume(w);
      break;
    }
    case 'reactivate': {
      if (c.retry.length > 0) return null; // thins must be closed: nothing can be parked
      // dm_pool_metadata_close: commits unless read-only / fail_io (so also in out_of_data_space).
      if (!c.failIo && (w.mode === 'write' || w.mode === 'out_of_data_space' || w.mode === 'out_of_metadata_space')) {
        const r = commitMetadata(w);
        if (r !== 'ok') w.last.mdFailures.push({ op: 'commit', r });
      }
      // Re-open from disk: only committed state and the on-disk needs_check flag survive.
      if (e.clear) {
        c.needsCheckDisk = false;
        c.ncGhost = false;
      }
      dropInCoreTransaction(c);
      c.needsCheck = c.needsCheckDisk;
      c.failIo = false;
      c.fault = 'none';
      c.changed = false;
      c.abortedWithChanges = false;
      c.lwTriggered = false;
      c.timer = false;
      c.eins = c.einsReq;
      c.mdThrArmed = true; // the new pool registers its threshold
      c.mdThr = metadataThreshold(c.mdNr);
      c.mdDevCtr = c.mdNr;
      // A fresh pool device with a table that matches the metadata.
      c.tableData = c.dataNr;
      c.tableMd = c.mdNr;
      c.suspended = false;
      const before = w.mode;
      w.mode = 'write';
      if (before !== 'write') w.last.events.push('mode:write');
      if (c.needsCheck && !isMutant(cfg, '13-write-with-needs-check')) {
        w.mode = 'read_only';
        w.last.events.push('mode:read_only');
      }
      w.last.bind = w.mode;
      break;
    }
    case 'fault':
      if (c.fault !== 'none' || w.mode === 'fail') return null;
      c.fault = e.kind;
      break;
    case 'timer_expire':
      if (!c.timer) return null;
      c.timer = false;
      if (isMutant(cfg, '19-timeout-sets-ro')) {
        setPoolMode(w, 'read_only');
      } else {
        // bcc696fa: stay out-of-data-space, error from now on, error what is parked.
        c.eins = true;
        w.last.events.push('mode:out_of_data_space');
        errorRetryList(w, 'ENOSPC');
      }
      break;
    case 'set_timeout':
      // The module parameter is only changed while nothing is waiting on the timer.
      if (cfg.profile !== 'fixed' || c.timeoutOn === e.on || w.mode === 'out_of_data_space') return null;
      c.timeoutOn = e.on;
      break;
  }
  return finish(w);
}

export function initialPoolState(cfg: PoolConfig): PoolState {
  const map = [new Array<number>(cfg.vblocks).fill(-1), null];
  const eins = isMutant(cfg, '5-default-inverted') ? !cfg.eins : cfg.eins;
  const ctx: PoolCtx = {
    eins,
    einsReq: eins,
    einsTable: cfg.eins,
    blockSize: 1,
    sbBlockSize: 1,
    dataNr: cfg.data,
    dataNrNew: cfg.data,
    allocTx: [],
    map,
    cmap: cloneMap(map),
    mdNr: cfg.md,
    mdNrNew: cfg.md,
    mdUsedC: mdUsed(map),
    mdTx: 0,
    mdThr: isMutant(cfg, '6-max-threshold') ? Math.max(1024, Math.floor(cfg.md / 4)) : metadataThreshold(cfg.md),
    mdObs: -1,
    mdThrArmed: true,
    needsCheck: false,
    needsCheckDisk: false,
    ncGhost: false,
    mdDevCtr: cfg.md,
    tableData: cfg.data,
    tableMd: cfg.md,
    suspended: false,
    failIo: false,
    lowWater: cfg.lowWater,
    lwTriggered: false,
    changed: false,
    abortedWithChanges: false,
    retry: [],
    fault: 'none',
    timeoutOn: cfg.profile === 'fixed',
    timer: false,
    durable: [],
    acked: [],
    balance: 0,
    shown: null,
    last: null,
  };
  return { mode: 'write', ctx };
}

/** Events worth trying in a state (disabled ones are fine: the step returns null). */
export function candidateEvents(cfg: PoolConfig, s: PoolState): PoolEvent[] {
  const out: PoolEvent[] = [];
  for (let v = 0; v < cfg.vblocks; v++) {
    out.push({ type: 'write', v });
    out.push({ type: 'read', v });
    out.push({ type: 'discard', v });
  }
  out.push({ type: 'flush' });
  out.push({ type: 'create_thin', id: 1 });
  out.push({ type: 'create_snap', id: 1, origin: 0 });
  out.push({ type: 'delete', id: 1 });
  out.push({ type: 'tick' });
  // pool_status (INFO), as dmsetup status / lvs / dmeventd read it: commits first (not in fail mode,
  // not while suspended), so a discarded block is free again for the next allocation.
  out.push({ type: 'status' });
  out.push({ type: 'resume' });
  const c = s.ctx;
  // Reloads: grow data (one block, or straight to the largest size the bounds allow), grow metadata
  // (two blocks, or straight to the largest), shrink data (refused), flip error_if_no_space, change
  // block size. The jumps are what lvextend / dmtest's resize tests do (one table with the final
  // size); at the default bounds they coincide with the single steps (1 → 2, 6 → 8).
  const same = { type: 'reload', data: c.dataNr, md: c.mdNrNew, eins: c.einsTable, bs: c.sbBlockSize } as const;
  if (c.dataNr + 1 <= cfg.dataMax) out.push({ ...same, data: c.dataNr + 1 });
  if (c.dataNr + 1 < cfg.dataMax) out.push({ ...same, data: cfg.dataMax });
  if (c.mdNrNew + 2 <= cfg.mdMax) out.push({ ...same, md: c.mdNrNew + 2 });
  if (c.mdNrNew + 2 < cfg.mdMax) out.push({ ...same, md: cfg.mdMax });
  if (c.dataNr > 1) out.push({ ...same, data: c.dataNr - 1 });
  out.push(same);
  out.push({ ...same, eins: !c.einsTable });
  out.push({ ...same, bs: c.sbBlockSize + 1 });
  out.push({ type: 'reactivate', clear: false });
  // Offline thin_check --clear-needs-check-flag before the reactivation (dmtest's repair step runs it
  // whether or not the flag is set; on a clean pool it changes nothing on disk).
  out.push({ type: 'reactivate', clear: true });
  if (cfg.profile === 'fixed') {
    out.push({ type: 'timer_expire' });
    out.push({ type: 'set_timeout', on: !c.timeoutOn });
  }
  return out;
}

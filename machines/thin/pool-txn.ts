// Abstract thin-pool metadata transactions with crash recovery.
// Follows drivers/md/dm-thin-metadata.c (Linux 3.14): dm_pool_commit_metadata, __commit_transaction,
// __create_thin, __create_snap, __delete_device, dm_pool_set_metadata_transaction_id,
// __reserve_metadata_snap, __release_metadata_snap, dm_thin_insert_block, dm_thin_remove_block,
// __open_metadata; drivers/md/persistent-data/dm-transaction-manager.c dm_tm_pre_commit/dm_tm_commit,
// dm-block-manager.c dm_bm_flush_and_unlock, dm-space-map-disk.c sm_disk_new_block; and
// drivers/md/dm-thin.c process_bio, provision_block, break_sharing, overwrite_endio,
// process_prepared_mapping, issue, process_deferred_bios, pool_message. The 'fixed' profile follows
// the later fixes up to stable 3dc9ae10 (held_root kept in core and written by
// __commit_transaction), which the conformance kernel (Debian 6.1.192) carries.
// Rules: spec/thin-metadata.md (THIN-META-n).
//
// One flat machine: its states are the commit lifecycle of the open transaction; provisioning and
// sharing per (device, virtual block) live in the context. Data values are write sequence numbers
// so that a read after a crash can be judged against what the user was promised (`want`).

import { defineFlatMachine, type DmMachine, type TransitionDef } from '../../checker/machine.js';
import type { Ev, Variant } from '../../checker/model.js';

/** Content of a data block that was never written since the pool was made (stale disk contents). */
export const JUNK = -1;
/** What an unprovisioned block reads (zero fill). */
export const ZERO = 0;

export interface ThinCfg {
  readonly devices: number;
  readonly vblocks: number;
  readonly dblocks: number;
  /** Bound on user writes (each carries sequence number 1..writes). */
  readonly writes: number;
  /** Bound on transaction ids set by set_transaction_id. */
  readonly tids: number;
  /**
   * 1: reserve/release_metadata_snap are in the alphabet; 2: also `reserve_race`, a reserve that a
   * provisioning write races between dm-thin's commit and dm_pool_reserve_metadata_snap.
   */
  readonly metasnap: number;
  /** 1: the metadata device may be grown once (`resize_meta`), past the first bitmap's blocks. */
  readonly metaresize: number;
  /** 1: a commit may fail with a metadata write error (`commit_fail`: abort, reopen from disk). */
  readonly faults: number;
  /** 1: a successful message is committed at once, as pool_message does (no crash point between). */
  readonly autocommit: number;
  /** 1: close (thin target dtr) is in the alphabet. */
  readonly close: number;
  /** Writes in the alphabet: 0 plain only, 1 plain and FUA, 2 FUA only. */
  readonly fua: number;
  /** 1: the commit is four steps with crash points between them; 0: one atomic step (lockstep). */
  readonly phased: number;
  readonly variant: Variant;
}

/** One device's mappings: map[v] = data block or -1; sh[v] = 1 when dm_thin_find_block would say shared. */
export interface DevMap {
  readonly map: readonly number[];
  readonly sh: readonly number[];
}

export interface CoreDev extends DevMap {
  readonly open: boolean;
  /** dm_thin_device.changed: uncommitted metadata changes. */
  readonly changed: boolean;
}

export interface View {
  readonly devs: readonly (DevMap | null)[];
  readonly tid: number;
  readonly held: boolean;
  /** Mappings (per device, null = no device) of the held metadata snapshot; null when none is held. */
  readonly snap: readonly (readonly number[] | null)[] | null;
  /** The data space map the superblock names (refcount per data block). */
  readonly rc: readonly number[];
  /** The metadata space map covers the grown metadata device (META_BLOCKS_GROWN blocks). */
  readonly mgrown: boolean;
}

export type Pending =
  | { readonly k: 'data'; readonly b: number; readonly v: number }
  | { readonly k: 'meta' }
  | { readonly k: 'sb' }
  /**
   * The dirty superblock written back by the first flush of a commit on kernels with a9d45396 but
   * the held root still in the buffer (mutant held-root-in-buffer): old roots, new held_root.
   */
  | { readonly k: 'sbheld' };

export interface Broken {
  readonly spec: readonly string[];
  readonly msg: string;
}

export interface ThinCtx {
  readonly core: {
    readonly devs: readonly (CoreDev | null)[];
    readonly tid: number;
    readonly held: boolean;
    readonly snap: readonly (readonly number[] | null)[] | null;
    /** sm_disk `begin`: the allocation cursor, reset by each data space-map commit. */
    readonly begin: number;
    /** linux-3.14 only: data blocks allocated this transaction (nr_allocated_this_transaction, never given back). */
    readonly allocs: number;
    /** A successful message is waiting for the commit pool_message issues after it. */
    readonly msgDirty: boolean;
    /**
     * The superblock buffer is dirty outside a commit (reserve/release_metadata_snap wrote held_root
     * into it and unlocked it), so the next commit's first write-back of dirty buffers writes it.
     */
    readonly sbDirty: boolean;
    /** The in-core metadata space map was extended to META_BLOCKS_GROWN (sm_metadata_extend). */
    readonly mgrown: boolean;
  };
  /** The view the durable superblock names. */
  readonly disk: View;
  /** The view a commit in progress is writing. */
  readonly staged: View | null;
  /** The staged transaction's btree and space-map blocks are durable. */
  readonly nodesDurable: boolean;
  /** Durable content of each data block. */
  readonly data: readonly number[];
  /** Issued, not yet flushed writes of both devices, in issue order. */
  readonly pending: readonly Pending[];
  /** Fixed profile: FUA writes whose completion waits for the next commit (4ae280b4). */
  readonly fuaWait: readonly { readonly d: number; readonly v: number; readonly val: number }[];
  /** Ghost: values a read of (d, v) may return after a crash, in the order they were acknowledged. */
  readonly want: readonly (readonly (readonly number[])[])[];
  /** Writes issued so far (the last sequence number used). */
  readonly seq: number;
  /** Result of the last message ("ok" or "-EBUSY" etc.), for lockstep. */
  readonly reply: string | null;
  /** Ghost: a violation observed by a transition (a crash recovery or an allocation). */
  readonly broken: Broken | null;
}

export type ThinEv =
  | { readonly type: 'create'; readonly dev: number }
  | { readonly type: 'snap'; readonly dev: number; readonly origin: number }
  | { readonly type: 'delete'; readonly dev: number }
  | { readonly type: 'set_tid'; readonly cur: number; readonly next: number }
  | { readonly type: 'reserve' }
  | { readonly type: 'release' }
  | { readonly type: 'reserve_race'; readonly dev: number; readonly vb: number }
  | { readonly type: 'resize_meta' }
  | { readonly type: 'commit_fail' }
  | { readonly type: 'open'; readonly dev: number }
  | { readonly type: 'close'; readonly dev: number }
  | { readonly type: 'write'; readonly dev: number; readonly vb: number }
  | { readonly type: 'write_fua'; readonly dev: number; readonly vb: number }
  | { readonly type: 'discard'; readonly dev: number; readonly vb: number }
  | { readonly type: 'flush'; readonly dev: number }
  | { readonly type: 'commit' }
  | { readonly type: 'commit_begin' }
  | { readonly type: 'meta_flush' }
  | { readonly type: 'sb_write' }
  | { readonly type: 'sb_flush' }
  | { readonly type: 'crash'; readonly keep: readonly number[]; readonly torn: number | null };

/** The explorer and lockstep see plain events; the machine narrows them by `type`. */
export type ThinEvent = Ev & ThinEv;
type E = ThinEvent;

// ---------------------------------------------------------------- profile switches

export const PROFILES = ['linux-3.14', 'fixed'] as const;

/** 694cfe7f: later kernels flush the data device as the first step of __commit_transaction. */
export const flushesDataBeforeCommit = (v: Variant): boolean => v.profile !== 'linux-3.14';
/** 4ae280b4: later kernels complete a FUA overwrite only after the mapping is committed. */
export const defersFuaOverwrite = (v: Variant): boolean => v.profile !== 'linux-3.14';

/**
 * Metadata device size (4 KiB blocks) the lockstep pools are formatted with, and the size
 * `resize_meta` grows it to: past the 16,320 blocks one space-map bitmap covers, so the extend must
 * allocate a new bitmap (the path of #8 and #9). The machine only records whether it grew.
 */
export const META_BLOCKS = 256;
export const META_BLOCKS_GROWN = 16384;

// ---------------------------------------------------------------- pure helpers

const rep = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);

export function emptyView(cfg: ThinCfg): View {
  return { devs: rep(cfg.devices, null), tid: 0, held: false, snap: null, rc: rep(cfg.dblocks, 0), mgrown: false };
}

export function initialContext(cfg: ThinCfg): ThinCtx {
  return {
    core: { devs: rep(cfg.devices, null), tid: 0, held: false, snap: null, begin: 0, allocs: 0, msgDirty: false, sbDirty: false, mgrown: false },
    disk: emptyView(cfg),
    staged: null,
    nodesDurable: false,
    data: rep(cfg.dblocks, JUNK),
    pending: [],
    fuaWait: [],
    want: freshWant(cfg, cfg.devices),
    seq: 0,
    reply: null,
    broken: null,
  };
}

function freshWant(cfg: ThinCfg, n: number): number[][][] {
  return Array.from({ length: n }, () => Array.from({ length: cfg.vblocks }, () => [ZERO]));
}

/**
 * Reference counts of data blocks implied by a set of device mappings (each mapping counts once),
 * plus the mappings of a held metadata snapshot: once the live tree's leaves are shadowed away from
 * the snapshot's, both copies count their data blocks (the btree value_type inc of a shared leaf),
 * so a block the snapshot maps stays allocated until release_metadata_snap deletes its trees. The
 * model counts every snapshot mapping; only zero versus non-zero is compared with the kernel.
 */
export function refcounts(devs: readonly (DevMap | null)[], nBlocks: number, snap: View['snap'] = null): number[] {
  const rc = rep(nBlocks, 0);
  for (const d of devs) {
    if (d === null) continue;
    for (const b of d.map) if (b >= 0) rc[b] = (rc[b] ?? 0) + 1;
  }
  for (const m of snap ?? []) for (const b of m ?? []) if (b >= 0) rc[b] = (rc[b] ?? 0) + 1;
  return rc;
}

/** Data block contents as a read sees them now: durable data overlaid with pending data writes. */
export function currentData(c: ThinCtx): number[] {
  const out = c.data.slice();
  for (const p of c.pending) if (p.k === 'data') out[p.b] = p.v;
  return out;
}

export function readCore(c: ThinCtx, d: number, v: number, cur: readonly number[] = currentData(c)): number {
  const dev = c.core.devs[d];
  const b = dev?.map[v] ?? -1;
  return b < 0 ? ZERO : (cur[b] ?? JUNK);
}

/**
 * sm_disk_get_nr_free: blocks free at the last data space-map commit minus those allocated since.
 * linux-3.14 never gives an allocation back when the block is freed again in the same transaction
 * (#28, fixed in 4.12); the fixed count is exactly the blocks free in both maps.
 */
export function freeDataBlocks(c: ThinCtx, cfg: ThinCfg): number {
  const old = (c.staged ?? c.disk).rc;
  const committedUsed = old.filter((n) => n > 0).length;
  if (cfg.variant.profile === 'linux-3.14') return cfg.dblocks - committedUsed - c.core.allocs;
  const cur = refcounts(c.core.devs, cfg.dblocks, c.core.snap);
  const newlyUsed = cur.filter((n, b) => n > 0 && (old[b] ?? 0) === 0).length;
  return cfg.dblocks - committedUsed - newlyUsed;
}

/** The view the in-core transaction would commit (the data space map as it stands in core). */
export function coreView(c: ThinCtx, cfg: ThinCfg): View {
  const devs = c.core.devs.map((d) => (d === null ? null : { map: d.map, sh: d.sh }));
  return { devs, tid: c.core.tid, held: c.core.held, snap: c.core.snap, rc: refcounts(devs, cfg.dblocks, c.core.snap), mgrown: c.core.mgrown };
}

function setDev(c: ThinCtx, d: number, dev: CoreDev | null, markDirty = true): ThinCtx {
  const devs = c.core.devs.slice();
  devs[d] = dev;
  return { ...c, core: { ...c.core, devs, msgDirty: c.core.msgDirty || markDirty } };
}

function withWant(c: ThinCtx, d: number, v: number, f: (w: readonly number[]) => readonly number[]): ThinCtx {
  const want = c.want.map((wd, i) => (i === d ? wd.map((wv, j) => (j === v ? f(wv) : wv)) : wd));
  return { ...c, want };
}

/** Acknowledge value `val` for (d, v): it joins the acceptable set as the newest. */
const ack = (val: number) => (w: readonly number[]): readonly number[] => [...w.filter((x) => x !== val), val];

/** A durability point for (d, v): only values acknowledged at or after `val` remain acceptable. */
const durableFrom = (val: number) => (w: readonly number[]): readonly number[] => {
  const i = w.lastIndexOf(val);
  return i < 0 ? [val] : w.slice(i);
};

/**
 * sm_disk_new_block: the first block at or after `begin` that is free in the committed space map
 * (old_ll). Mutant alloc-ignores-committed searches the in-core map from 0 instead, so a block freed
 * in this transaction, still reachable from the committed superblock, can be handed out again.
 */
export function allocBlock(c: ThinCtx, cfg: ThinCfg): number {
  if (cfg.variant.mutant === 'alloc-ignores-committed') {
    const rc = refcounts(c.core.devs, cfg.dblocks, c.core.snap);
    return rc.findIndex((n) => n === 0);
  }
  const rc = refcounts(c.core.devs, cfg.dblocks, c.core.snap);
  for (let b = c.core.begin; b < cfg.dblocks; b++) if (c.disk.rc[b] === 0 && rc[b] === 0) return b;
  return -1;
}

// ---------------------------------------------------------------- guards

const dev = (c: ThinCtx, d: number): CoreDev | null => c.core.devs[d] ?? null;
const isOpen = (c: ThinCtx, d: number): boolean => dev(c, d)?.open === true;
const mappedAt = (c: ThinCtx, d: number, v: number): number => dev(c, d)?.map[v] ?? -1;
const sharedAt = (c: ThinCtx, d: number, v: number): boolean => (dev(c, d)?.sh[v] ?? 0) === 1;
/** A message may run only after the previous successful one was committed (pool_message commits). */
const msgReady = (c: ThinCtx): boolean => !c.core.msgDirty;

// ---------------------------------------------------------------- updates

function reply(c: ThinCtx, r: string): ThinCtx {
  return { ...c, reply: r };
}

function doCreate(cfg: ThinCfg) {
  return (c: ThinCtx, e: E): ThinCtx => {
    if (e.type !== 'create') return c;
    const d = e.dev;
    if (dev(c, d) !== null) return reply(c, '-EEXIST');
    const nd: CoreDev = { map: rep(cfg.vblocks, -1), sh: rep(cfg.vblocks, 0), open: false, changed: true };
    const c1 = setDev(reply(c, 'ok'), d, nd);
    const want = c1.want.map((w, i) => (i === d ? rep(cfg.vblocks, [ZERO]) : w));
    return { ...c1, want };
  };
}

function doSnap(c: ThinCtx, e: E): ThinCtx {
  if (e.type !== 'snap') return c;
  const { dev: s, origin: o } = e;
  if (dev(c, s) !== null) return reply(c, '-EEXIST');
  const od = dev(c, o);
  if (od === null) return reply(c, '-ENODATA');
  // __create_snap: both devices share the origin's tree; every existing mapping is now older than
  // both snapshotted_times, so dm_thin_find_block reports it shared.
  const sh = od.map.map((b) => (b >= 0 ? 1 : 0));
  let c1 = setDev(reply(c, 'ok'), o, { ...od, sh, changed: true });
  c1 = setDev(c1, s, { map: od.map, sh, open: false, changed: true });
  const want = c1.want.map((w, i) => (i === s ? c1.want[o]! : w));
  return { ...c1, want };
}

function doDelete(c: ThinCtx, e: E): ThinCtx {
  if (e.type !== 'delete') return c;
  const d = dev(c, e.dev);
  if (d === null) return reply(c, '-ENODATA');
  if (d.open) return reply(c, '-EBUSY');
  // The want entry is kept: a crash before the commit brings the device back.
  return setDev(reply(c, 'ok'), e.dev, null);
}

function doSetTid(c: ThinCtx, e: E): ThinCtx {
  if (e.type !== 'set_tid') return c;
  if (e.cur !== c.core.tid) return reply(c, '-EINVAL');
  return { ...c, reply: 'ok', core: { ...c.core, tid: e.next, msgDirty: true } };
}

/**
 * Where reserve/release keep the held root. linux-3.14, and later kernels up to stable 3dc9ae10
 * "dm thin metadata: fix metadata snapshot consistency on commit failure" (the fixed-profile
 * mutant held-root-in-buffer): in the superblock buffer (superblock_lock, dm_bm_unlock), which
 * leaves block 0 dirty until the next commit. With the fix (fixed profile, the conformance
 * kernel): in pmd->held_root, which only __commit_transaction writes, with the new roots.
 */
export const heldRootInBuffer = (v: Variant): boolean => v.profile === 'linux-3.14' || v.mutant === 'held-root-in-buffer';

/**
 * reserve_metadata_snap: dm-thin commits first (process_reserve_metadata_snap_mesg calls commit(),
 * whose result is ignored; later __reserve_metadata_snap commits again, with nothing in between),
 * then -EBUSY if a snapshot is held, else the snapshot pins the roots of that commit. The held root
 * reaches the disk with the next commit's superblock, or (heldRootInBuffer) first as a dirty
 * buffer. The commit is taken here as one step with no crash point.
 */
function doReserve(cfg: ThinCfg) {
  const commitNow = doCommit(cfg);
  return (c: ThinCtx): ThinCtx => {
    const c1 = commitNow(c);
    if (c1.core.held) return reply(c1, '-EBUSY');
    // The snapshot pins the roots of the commit just made: the in-core view now.
    const snap = c1.core.devs.map((d) => (d === null ? null : d.map));
    return { ...c1, reply: 'ok', core: { ...c1.core, held: true, snap, msgDirty: true, sbDirty: heldRootInBuffer(cfg.variant) } };
  };
}

/**
 * release_metadata_snap. With the held root in the superblock buffer, __release_metadata_snap
 * clears it there before it checks it, so even the -EINVAL path leaves the buffer dirty; with
 * pmd->held_root the -EINVAL path touches nothing.
 */
function doRelease(cfg: ThinCfg) {
  const inBuffer = heldRootInBuffer(cfg.variant);
  return (c: ThinCtx): ThinCtx => {
    if (!c.core.held) return { ...c, reply: '-EINVAL', core: { ...c.core, sbDirty: c.core.sbDirty || inBuffer } };
    return { ...c, reply: 'ok', core: { ...c.core, held: false, snap: null, msgDirty: true, sbDirty: inBuffer } };
  };
}

function setOpen(open: boolean) {
  return (c: ThinCtx, e: E): ThinCtx => {
    if (e.type !== 'open' && e.type !== 'close') return c;
    const d = dev(c, e.dev);
    return d === null ? c : setDev(c, e.dev, { ...d, open }, false);
  };
}

function canWrite(cfg: ThinCfg) {
  return function canWrite(c: ThinCtx, e: E): boolean {
    if (e.type !== 'write' && e.type !== 'write_fua') return false;
    if (!isOpen(c, e.dev) || c.seq >= cfg.writes) return false;
    const b = mappedAt(c, e.dev, e.vb);
    if (b >= 0 && !sharedAt(c, e.dev, e.vb)) {
      // A FUA bio on a device with uncommitted changes waits in deferred_flush_bios for the next
      // commit (issue); the model issues it after that commit instead.
      return e.type === 'write' || dev(c, e.dev)?.changed !== true;
    }
    return allocBlock(c, cfg) >= 0;
  };
}

/**
 * process_bio on a whole-block write. Mapped and unshared: overwrite in place. Unmapped
 * (provision_block) or shared (break_sharing): allocate, write the new block (overwrite_endio),
 * then insert the mapping, which drops the old block's reference.
 */
function doWrite(cfg: ThinCfg) {
  return (c: ThinCtx, e: E): ThinCtx => {
    if (e.type !== 'write' && e.type !== 'write_fua') return c;
    const fua = e.type === 'write_fua';
    const { dev: d, vb: v } = e;
    const val = c.seq + 1;
    let c1: ThinCtx = { ...c, seq: val };
    let b = mappedAt(c, d, v);
    const inPlace = b >= 0 && !sharedAt(c, d, v);
    if (!inPlace) {
      b = allocBlock(c, cfg);
      if (c.disk.rc[b] !== 0 && c1.broken === null) {
        c1 = {
          ...c1,
          broken: { spec: ['THIN-META-3'], msg: `data block ${b} was allocated while the committed space map still counts it (refcount ${c.disk.rc[b]})` },
        };
      }
      const od = dev(c, d)!;
      const map = od.map.slice();
      const sh = od.sh.slice();
      map[v] = b;
      sh[v] = 0;
      c1 = setDev(c1, d, { ...od, map, sh, changed: true }, false);
      c1 = {
        ...c1,
        core: {
          ...c1.core,
          begin: cfg.variant.mutant === 'alloc-ignores-committed' ? c1.core.begin : b + 1,
          allocs: cfg.variant.profile === 'linux-3.14' ? c1.core.allocs + 1 : 0,
        },
      };
    }
    if (!fua) {
      c1 = { ...c1, pending: [...c1.pending, { k: 'data', b, v: val }] };
      return withWant(c1, d, v, ack(val));
    }
    // FUA: the data is durable when the bio completes; an older cached write to the same block can
    // no longer land over it.
    const data = c1.data.slice();
    data[b] = val;
    c1 = { ...c1, data, pending: c1.pending.filter((p) => !(p.k === 'data' && p.b === b)) };
    c1 = withWant(c1, d, v, ack(val));
    if (inPlace || !defersFuaOverwrite(cfg.variant)) {
      // 3.14 overwrite path: process_prepared_mapping completes the bio right after the in-core
      // insert, so the user is told the write is durable before its mapping is committed (#25).
      return withWant(c1, d, v, durableFrom(val));
    }
    return { ...c1, fuaWait: [...c1.fuaWait, { d, v, val }] };
  };
}

function doDiscard(c: ThinCtx, e: E): ThinCtx {
  if (e.type !== 'discard') return c;
  const od = dev(c, e.dev)!;
  const map = od.map.slice();
  const sh = od.sh.slice();
  map[e.vb] = -1;
  sh[e.vb] = 0;
  return withWant(setDev(c, e.dev, { ...od, map, sh, changed: true }, false), e.dev, e.vb, ack(ZERO));
}

/** An empty FLUSH on d (its metadata already committed): every cached data write becomes durable. */
function doFlush(cfg: ThinCfg) {
  return (c: ThinCtx, e: E): ThinCtx => {
    if (e.type !== 'flush') return c;
    const c1 = flushData(c);
    const cur = c1.data;
    let out = c1;
    for (let v = 0; v < cfg.vblocks; v++) out = withWant(out, e.dev, v, () => [readCore(c1, e.dev, v, cur)]);
    return out;
  };
}

function flushData(c: ThinCtx): ThinCtx {
  const data = c.data.slice();
  for (const p of c.pending) if (p.k === 'data') data[p.b] = p.v;
  return { ...c, data, pending: c.pending.filter((p) => p.k !== 'data') };
}

function flushMeta(c: ThinCtx): ThinCtx {
  const hadNodes = c.pending.some((p) => p.k === 'meta');
  const c1 = c.pending.some((p) => p.k === 'sbheld') ? landHeldRoot(c) : c;
  return { ...c1, nodesDurable: c1.nodesDurable || hadNodes, pending: c1.pending.filter((p) => p.k === 'data') };
}

/**
 * The old superblock with the new held_root is durable: its space maps do not count the held
 * root's change (the copy block it names, or the copy it drops), so the committed image's metadata
 * reference counts are wrong until the new superblock lands. Reached only with the held root in the
 * buffer after a9d45396 (mutant held-root-in-buffer): dm_tm_pre_commit → dm_bm_flush →
 * dm_bufio_write_dirty_buffers writes every dirty buffer, block 0 included, before
 * __commit_transaction locks the superblock for the new roots.
 */
function landHeldRoot(c: ThinCtx): ThinCtx {
  const staged = c.staged;
  if (staged === null || staged.held === c.disk.held) return c;
  const broken: Broken = c.broken ?? {
    spec: ['THIN-META-4'],
    msg: `the superblock buffer dirtied by ${staged.held ? 'reserve' : 'release'}_metadata_snap reached the disk before the commit: the committed superblock ${
      staged.held ? 'names a held root its space map does not count' : 'drops a held root its space map still counts'
    }`,
  };
  return { ...c, disk: { ...c.disk, held: staged.held, snap: staged.snap }, broken };
}

/**
 * __commit_transaction up to the first flush: (fixed) flush the data device; write changed details,
 * commit the data space map (begin = 0), pre-commit the metadata space map, save the roots, then
 * issue every dirty metadata block. Mutant precommit-after-roots saves the space-map root before the
 * pre-commit, so the superblock names the previous transaction's space map (#27). Mutant
 * sb-before-flush issues the superblock together with the other blocks (#22). A superblock buffer
 * left dirty by reserve/release (heldRootInBuffer) is issued too: with the new roots under
 * linux-3.14, as it stands ('sbheld') after a9d45396.
 */
function doCommitBegin(cfg: ThinCfg) {
  return (c: ThinCtx): ThinCtx => {
    const c0 = flushesDataBeforeCommit(cfg.variant) ? flushData(c) : c;
    const view = coreView(c0, cfg);
    const staged: View = cfg.variant.mutant === 'precommit-after-roots' ? { ...view, rc: c0.disk.rc } : view;
    const devs = c0.core.devs.map((d) => (d === null ? null : { ...d, changed: false }));
    const pending: Pending[] = [...c0.pending, { k: 'meta' }];
    if (sbGoesEarly(c0, cfg)) pending.push({ k: 'sb' });
    else if (c0.core.sbDirty) pending.push({ k: 'sbheld' });
    return { ...c0, staged, nodesDurable: false, pending, core: { ...c0.core, devs, begin: 0, allocs: 0 } };
  };
}

/**
 * The superblock reaches the disk with the other blocks: mutant sb-before-flush, or (linux-3.14) a
 * superblock buffer left dirty by reserve/release: __commit_transaction fills the locked buffer
 * with the new roots and dm_bufio_write_dirty_buffers writes it with everything else before the
 * flush (the hazard a9d45396 removed).
 */
export function sbGoesEarly(c: ThinCtx, cfg: ThinCfg): boolean {
  return cfg.variant.mutant === 'sb-before-flush' || (c.core.sbDirty && cfg.variant.profile === 'linux-3.14');
}

function doSbWrite(c: ThinCtx): ThinCtx {
  return { ...c, pending: [...c.pending, { k: 'sb' }] };
}

/** The second flush: the superblock is durable, the transaction committed; waiting FUAs complete. */
function doSbFlush(cfg: ThinCfg) {
  return (c: ThinCtx): ThinCtx => {
    const c1 = flushMeta(c);
    return landSuperblock(c1, cfg);
  };
}

function landSuperblock(c: ThinCtx, cfg: ThinCfg): ThinCtx {
  const disk = c.staged ?? c.disk;
  let out: ThinCtx = { ...c, disk, staged: null, nodesDurable: false, fuaWait: [], core: { ...c.core, msgDirty: false, sbDirty: false } };
  for (const f of c.fuaWait) out = withWant(out, f.d, f.v, durableFrom(f.val));
  // A device whose deletion is now committed cannot come back: forget its history.
  const want = out.want.map((w, d) => (disk.devs[d] === null && out.core.devs[d] === null ? rep(cfg.vblocks, [ZERO]) : w));
  return { ...out, want };
}

/** The atomic commit (phased = 0): all four steps with no crash point between them. */
function doCommit(cfg: ThinCfg) {
  const begin = doCommitBegin(cfg);
  const end = doSbFlush(cfg);
  // No crash point inside: a superblock written early by the first flush is overwritten by the second.
  const noEarlySb = (c: ThinCtx): ThinCtx => ({ ...c, pending: c.pending.filter((p) => p.k !== 'sbheld') });
  return (c: ThinCtx): ThinCtx => end(doSbWrite(flushMeta(noEarlySb(begin(c)))));
}

/**
 * A reserve_metadata_snap message racing a provisioning write (metasnap = 2): pool_message →
 * process_reserve_metadata_snap_mesg runs dm-thin's commit(), the worker provisions (dev, vb), then
 * dm_pool_reserve_metadata_snap pins the roots. Since 49e99fc7 the reserve commits again under
 * root_lock, so the snapshot holds the racing write's mapping too (THIN-META-18).
 */
function doReserveRace(cfg: ThinCfg) {
  const commitNow = doCommit(cfg);
  const write = doWrite(cfg);
  const reserve = doReserve(cfg);
  return (c: ThinCtx, e: E): ThinCtx => {
    if (e.type !== 'reserve_race') return c;
    return reserve(write(commitNow(c), { type: 'write', dev: e.dev, vb: e.vb }));
  };
}

function canReserveRace(cfg: ThinCfg) {
  const commitNow = doCommit(cfg);
  const write = canWrite(cfg);
  return (c: ThinCtx, e: E): boolean =>
    e.type === 'reserve_race' && cfg.metasnap === 2 && !c.core.held && write(commitNow(c), { type: 'write', dev: e.dev, vb: e.vb });
}

/**
 * dm_pool_resize_metadata_dev (pool_preresume → maybe_resize_metadata_dev): the metadata space map
 * grows to META_BLOCKS_GROWN; like a message, the commit that follows makes it durable.
 */
function doResizeMeta(c: ThinCtx): ThinCtx {
  return { ...c, reply: 'ok', core: { ...c.core, mgrown: true, msgDirty: true } };
}

/**
 * A metadata write fails inside dm_pool_commit_metadata: dm-thin's metadata_operation_failed →
 * abort_transaction → dm_pool_abort_metadata drops the open transaction and reopens the metadata
 * from the last committed superblock; open thin devices stay open. The data device is taken as
 * flushed (the fixed commit flushes it first; under linux-3.14 this is an abstraction). The pool
 * mode change that follows (read-only, needs_check) belongs to the thin-pool model.
 */
function doCommitFail(cfg: ThinCfg) {
  return (c: ThinCtx): ThinCtx => {
    const r = crashRecover(flushData(c), [], null, cfg);
    const devs = r.core.devs.map((d, i) => (d === null ? null : { ...d, open: c.core.devs[i]?.open === true }));
    return { ...r, core: { ...r.core, devs } };
  };
}

// ---------------------------------------------------------------- crash

/**
 * Power cut, then reopen (__open_metadata, __begin_transaction). Kept writes land in issue order;
 * a torn superblock lands whole (its payload sits in the first sector); a torn metadata block fails
 * its checksum. Judges every read of the recovered pool against `want` and records what is wrong.
 */
export function crashRecover(c: ThinCtx, keep: readonly number[], torn: number | null, cfg: ThinCfg): ThinCtx {
  const data = c.data.slice();
  let nodes = c.nodesDurable;
  let sb = false;
  let heldLands = false;
  c.pending.forEach((p, i) => {
    if (!keep.includes(i) && i !== torn) return;
    if (p.k === 'data') data[p.b] = p.v;
    else if (p.k === 'meta') nodes = nodes || i !== torn;
    else if (p.k === 'sbheld') heldLands = true;
    else sb = true;
  });
  let broken = c.broken;
  let disk = c.disk;
  if (heldLands && !sb) {
    const h = landHeldRoot(c);
    broken = h.broken;
    disk = h.disk;
  }
  if (sb && c.staged !== null) {
    disk = c.staged;
    if (!nodes && broken === null) {
      broken = {
        spec: ['THIN-META-1', 'THIN-META-2'],
        msg: 'the new superblock landed but the btree and space-map blocks it names did not: the recovered metadata is not any committed transaction',
      };
    }
  }
  const devs = disk.devs.map((d) => (d === null ? null : { map: d.map, sh: d.sh, open: false, changed: false }));
  const want: number[][][] = [];
  for (let d = 0; d < cfg.devices; d++) {
    const dm = disk.devs[d] ?? null;
    const row: number[][] = [];
    for (let v = 0; v < cfg.vblocks; v++) {
      if (dm === null) {
        row.push([ZERO]);
        continue;
      }
      const b = dm.map[v] ?? -1;
      const r = b < 0 ? ZERO : (data[b] ?? JUNK);
      const ok = c.want[d]?.[v] ?? [ZERO];
      if (!ok.includes(r) && broken === null) broken = judgeRead(d, v, b, r, ok);
      row.push([r]);
    }
    want.push(row);
  }
  return {
    core: { devs, tid: disk.tid, held: disk.held, snap: disk.snap, begin: 0, allocs: 0, msgDirty: false, sbDirty: false, mgrown: disk.mgrown },
    disk,
    staged: null,
    nodesDurable: false,
    data,
    pending: [],
    fuaWait: [],
    want,
    seq: c.seq,
    reply: null,
    broken,
  };
}

function judgeRead(d: number, v: number, b: number, r: number, ok: readonly number[]): Broken {
  const where = `after the crash, thin ${d} block ${v} (data block ${b}) reads ${r === JUNK ? 'stale disk contents' : r === ZERO ? 'zeroes' : `write #${r}`}`;
  const allowed = `allowed: ${ok.map((x) => (x === ZERO ? 'zeroes' : `write #${x}`)).join(', ')}`;
  if (r === JUNK) {
    return { spec: ['THIN-META-7'], msg: `${where}: a committed mapping points at data that never reached the disk (${allowed})` };
  }
  const minOk = Math.min(...ok.filter((x) => x !== ZERO));
  if ((r === ZERO && !ok.includes(ZERO)) || (r !== ZERO && r < minOk)) {
    return { spec: ['THIN-META-5'], msg: `${where}: a write acknowledged as durable (FLUSH/FUA) was lost (${allowed})` };
  }
  return { spec: ['THIN-META-6'], msg: `${where}: a value this device never had at that point (${allowed})` };
}

// ---------------------------------------------------------------- the machine

export type ThinMachine = DmMachine<ThinCtx, E>;

export function thinPoolMachine(cfg: ThinCfg): ThinMachine {
  const commitNow = doCommit(cfg);
  const msg = (update: (c: ThinCtx, e: E) => ThinCtx, extra?: (c: ThinCtx, e: E) => boolean): TransitionDef<ThinCtx, E>[] => [
    cfg.autocommit === 1
      ? {
          label: 'ok, committed',
          guard: (c, e) => msgReady(c) && (extra?.(c, e) ?? true) && update(c, e).reply === 'ok',
          target: 'clean',
          update: (c, e) => commitNow(update(c, e)),
        }
      : {
          label: 'ok → dirty',
          guard: (c, e) => msgReady(c) && (extra?.(c, e) ?? true) && update(c, e).reply === 'ok',
          target: 'dirty',
          update,
        },
    { label: 'error', guard: (c, e) => msgReady(c) && (extra?.(c, e) ?? true), update },
  ];
  const write = canWrite(cfg);
  const ioStay = {
    open: { guard: (c: ThinCtx, e: E) => e.type === 'open' && dev(c, e.dev)?.open === false, update: setOpen(true), label: 'exists' },
    close: { guard: (c: ThinCtx, e: E) => e.type === 'close' && isOpen(c, e.dev), update: setOpen(false), label: 'open' },
  };
  const writes = {
    write: { guard: write, target: 'dirty', update: doWrite(cfg) },
    write_fua: { guard: write, target: 'dirty', update: doWrite(cfg) },
    discard: {
      guard: (c: ThinCtx, e: E) => e.type === 'discard' && isOpen(c, e.dev) && mappedAt(c, e.dev, e.vb) >= 0,
      target: 'dirty',
      update: doDiscard,
      label: 'mapped',
    },
    flush: {
      // FLUSH on a changed device waits for a commit (deferred_flush_bios): enabled once committed.
      guard: (c: ThinCtx, e: E) => e.type === 'flush' && isOpen(c, e.dev) && dev(c, e.dev)?.changed === false,
      update: doFlush(cfg),
      label: 'committed',
    },
  };
  const messages = {
    create: msg(doCreate(cfg)),
    snap: msg(doSnap, (_c, e) => e.type === 'snap' && e.dev !== e.origin),
    delete: msg(doDelete),
    set_tid: msg(doSetTid, (_c, e) => e.type === 'set_tid' && e.next <= cfg.tids),
    reserve: msg(doReserve(cfg)),
    release: msg(doRelease(cfg)),
    reserve_race: msg(doReserveRace(cfg), canReserveRace(cfg)),
    resize_meta: msg(doResizeMeta, (c) => cfg.metaresize === 1 && !c.core.mgrown),
  };
  const crash: TransitionDef<ThinCtx, E> = {
    target: 'clean',
    update: (c, e) => (e.type === 'crash' ? crashRecover(c, e.keep, e.torn, cfg) : c),
  };
  const phased = cfg.phased === 1;
  return defineFlatMachine<ThinCtx, E>({
    id: 'thin-pool-txn',
    context: initialContext(cfg),
    initial: 'clean',
    states: {
      clean: { on: { ...messages, ...ioStay, ...writes, crash } },
      dirty: {
        on: {
          ...messages,
          ...ioStay,
          ...writes,
          crash,
          // The superblock must not be dirty already: that case is the reserve finding (see spec).
          commit_fail: { guard: (c: ThinCtx) => cfg.faults === 1 && !c.core.sbDirty, target: 'clean', update: doCommitFail(cfg), label: 'abort' },
          ...(phased
            ? {
                commit_begin: [
                  { label: 'sb goes early', guard: (c: ThinCtx) => sbGoesEarly(c, cfg), target: 'sbIssued', update: doCommitBegin(cfg) },
                  { target: 'nodesIssued', update: doCommitBegin(cfg) },
                ],
              }
            : { commit: { target: 'clean', update: doCommit(cfg) } }),
        },
      },
      nodesIssued: { on: { meta_flush: { target: 'nodesDurable', update: flushMeta }, crash } },
      nodesDurable: { on: { sb_write: { target: 'sbIssued', update: doSbWrite }, crash } },
      sbIssued: { on: { sb_flush: { target: 'clean', update: doSbFlush(cfg) }, crash } },
    },
  });
}

/** Every event worth trying in some state (the explorer's alphabet instances), except crashes. */
export function thinEvents(cfg: ThinCfg): ThinEv[] {
  const out: ThinEv[] = [];
  const ids = Array.from({ length: cfg.devices }, (_, i) => i);
  const vbs = Array.from({ length: cfg.vblocks }, (_, i) => i);
  for (const d of ids) {
    out.push({ type: 'create', dev: d }, { type: 'delete', dev: d }, { type: 'open', dev: d });
    if (cfg.close === 1) out.push({ type: 'close', dev: d });
    for (const o of ids) if (o !== d) out.push({ type: 'snap', dev: d, origin: o });
    for (const v of vbs) {
      if (cfg.fua !== 2) out.push({ type: 'write', dev: d, vb: v });
      if (cfg.fua !== 0) out.push({ type: 'write_fua', dev: d, vb: v });
      out.push({ type: 'discard', dev: d, vb: v });
    }
    out.push({ type: 'flush', dev: d });
  }
  if (cfg.metasnap >= 1) out.push({ type: 'reserve' }, { type: 'release' });
  if (cfg.metasnap === 2) for (const d of ids) for (const v of vbs) out.push({ type: 'reserve_race', dev: d, vb: v });
  if (cfg.metaresize === 1) out.push({ type: 'resize_meta' });
  if (cfg.faults === 1) out.push({ type: 'commit_fail' });
  if (cfg.phased === 1) out.push({ type: 'commit_begin' }, { type: 'meta_flush' }, { type: 'sb_write' }, { type: 'sb_flush' });
  else out.push({ type: 'commit' });
  return out;
}

/** set_transaction_id candidates depend on the current id: the right one and a wrong one. */
export function tidEvents(c: ThinCtx, cfg: ThinCfg): ThinEv[] {
  if (cfg.tids === 0) return [];
  if (c.core.tid >= cfg.tids) return [{ type: 'set_tid', cur: c.core.tid + 1, next: c.core.tid }];
  return [
    { type: 'set_tid', cur: c.core.tid, next: c.core.tid + 1 },
    { type: 'set_tid', cur: c.core.tid + 1, next: c.core.tid + 1 },
  ];
}

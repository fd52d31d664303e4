// The life of one virtual block of one thin device, as the pool-transaction machine
// (machines/thin/pool-txn.ts) moves it: provisioned in the open transaction, committed, shared by a
// snapshot, remapped by breaking sharing, discarded, and what a crash does to each.
// Follows drivers/md/dm-thin.c process_bio / provision_block / break_sharing / process_discard and
// drivers/md/dm-thin-metadata.c dm_thin_insert_block, dm_thin_remove_block, __create_snap,
// __commit_transaction, __open_metadata (Linux 3.14).
//
// It is an observer: each event carries the status the block ends in (`to`), and the machine only
// says which moves exist. Used for the per-block diagram, and by a test that checks every move of
// the exhaustively explored pool machine is one of these (blockStatus below is the abstraction).

import { defineFlatMachine, type DmMachine, type TransitionDef } from '../../checker/machine.js';
import type { Ev } from '../../checker/model.js';
import type { ThinCtx } from './pool-txn.js';

export const BLOCK_STATUSES = ['unmapped', 'provisioned', 'mapped', 'shared', 'remapped', 'discarded'] as const;
export type BlockStatus = (typeof BLOCK_STATUSES)[number];

/** Block-level events: what happened to this block (or to the pool as a whole). */
export const BLOCK_EVENTS = ['write', 'discard', 'snap', 'delete', 'commit', 'crash'] as const;
export type BlockEventType = (typeof BLOCK_EVENTS)[number];

export interface BlockEv extends Ev {
  readonly type: BlockEventType;
  readonly to: BlockStatus;
}

/**
 * The abstraction: in-core mapping vs the committed superblock's mapping of (d, v).
 * unmapped: neither maps it; provisioned: only in core; mapped: both, same block; remapped: both,
 * different blocks (sharing broken or re-provisioned, uncommitted); discarded: committed only;
 * shared: in core, and dm_thin_find_block would report it shared (a snapshot since it was mapped).
 */
export function blockStatus(c: ThinCtx, d: number, v: number): BlockStatus {
  const cd = c.core.devs[d];
  const cb = cd?.map[v] ?? -1;
  const db = c.disk.devs[d]?.map[v] ?? -1;
  if (cb >= 0 && cd?.sh[v] === 1) return 'shared';
  if (cb < 0) return db < 0 ? 'unmapped' : 'discarded';
  if (db < 0) return 'provisioned';
  return cb === db ? 'mapped' : 'remapped';
}

const to = (target: BlockStatus, label: string): TransitionDef<null, BlockEv> => ({
  target,
  label,
  guard: (_c, e) => e.to === target,
});

type Moves = { readonly [type in BlockEventType]?: TransitionDef<null, BlockEv> | readonly TransitionDef<null, BlockEv>[] };

/** A refused message (-EEXIST, -EBUSY, -ENODATA) leaves every block as it was. */
function withRefusals(states: Record<BlockStatus, { on: Moves }>): Record<BlockStatus, { on: Moves }> {
  const out = {} as Record<BlockStatus, { on: Moves }>;
  for (const st of BLOCK_STATUSES) {
    const on = states[st].on;
    const add = (t: 'snap' | 'delete'): readonly TransitionDef<null, BlockEv>[] => {
      const cur = on[t];
      const list = cur === undefined ? [] : Array.isArray(cur) ? (cur as readonly TransitionDef<null, BlockEv>[]) : [cur as TransitionDef<null, BlockEv>];
      return list.some((x) => x.target === st) ? list : [...list, to(st, 'refused')];
    };
    out[st] = { on: { ...on, snap: add('snap'), delete: add('delete') } };
  }
  return out;
}

export const blockMachine: DmMachine<null, BlockEv> = defineFlatMachine<null, BlockEv>({
  id: 'thin-block',
  context: null,
  initial: 'unmapped',
  states: withRefusals({
    unmapped: {
      on: {
        write: to('provisioned', 'provision_block'),
        snap: [to('unmapped', 'origin unmapped'), to('shared', 'snapshot of a mapped origin block')],
        delete: to('unmapped', 'delete'),
        commit: to('unmapped', 'commit'),
        crash: to('unmapped', 'crash'),
      },
    },
    provisioned: {
      on: {
        write: to('provisioned', 'overwrite in place'),
        discard: to('unmapped', 'discard'),
        snap: to('shared', 'create_snap'),
        delete: to('unmapped', 'delete'),
        commit: to('mapped', 'superblock lands'),
        crash: [to('unmapped', 'mapping lost'), to('mapped', 'crash after the superblock landed')],
      },
    },
    mapped: {
      on: {
        write: to('mapped', 'overwrite in place'),
        discard: to('discarded', 'discard'),
        snap: to('shared', 'create_snap'),
        delete: to('discarded', 'delete'),
        commit: to('mapped', 'commit'),
        crash: to('mapped', 'crash'),
      },
    },
    shared: {
      on: {
        write: [to('remapped', 'break_sharing'), to('provisioned', 'break_sharing (uncommitted snapshot)')],
        discard: [to('discarded', 'discard'), to('unmapped', 'discard (uncommitted snapshot)')],
        snap: to('shared', 'create_snap'),
        delete: [to('discarded', 'delete'), to('unmapped', 'delete (uncommitted snapshot)')],
        commit: to('shared', 'commit'),
        crash: [to('shared', 'crash'), to('mapped', 'crash: snapshot never committed'), to('unmapped', 'crash: device never committed')],
      },
    },
    remapped: {
      on: {
        write: to('remapped', 'overwrite in place'),
        discard: to('discarded', 'discard'),
        snap: to('shared', 'create_snap'),
        delete: to('discarded', 'delete'),
        commit: to('mapped', 'superblock lands'),
        crash: [to('mapped', 'new mapping lost'), to('shared', 'new mapping lost, still shared')],
      },
    },
    discarded: {
      on: {
        write: to('remapped', 'provision_block'),
        snap: to('discarded', 'create_snap'),
        delete: to('discarded', 'delete'),
        commit: to('unmapped', 'superblock lands'),
        crash: [to('mapped', 'discard lost'), to('shared', 'discard lost, still shared'), to('unmapped', 'crash after the superblock landed')],
      },
    },
  }),
});

/**
 * Which block event a pool-machine event is for (d, v), or null when it does not concern that
 * block. Commits count when the superblock lands (sb_flush, the atomic commit, and reserve, which
 * commits first).
 */
export function blockEventOf(e: Ev, d: number, v: number): BlockEventType | null {
  switch (e.type) {
    case 'write':
    case 'write_fua':
      return e['dev'] === d && e['vb'] === v ? 'write' : null;
    case 'discard':
      return e['dev'] === d && e['vb'] === v ? 'discard' : null;
    case 'snap':
      return e['dev'] === d || e['origin'] === d ? 'snap' : null;
    case 'delete':
      return e['dev'] === d ? 'delete' : null;
    case 'sb_flush':
    case 'commit':
    case 'reserve':
      return 'commit';
    case '@crash':
      return 'crash';
    default:
      return null;
  }
}

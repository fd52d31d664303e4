// The scenario language shared by the kernel oracle and the model side. A case is a list of
// dmcheck events against ONE pool; it is rendered to a guest shell script (guest.ts) and replayed
// through the reference implementation (model-run.ts). The event names follow the thin-pool
// model's vocabulary (pool create/reload = table load + resume in dm-thin.c pool_ctr/pool_preresume,
// messages = pool_message, IO = thin_bio_map through the worker).

/** A pool table: sizes in blocks (data block = blockSectors*512 bytes; metadata block = 4 KiB). */
export interface PoolTable {
  readonly dataBlocks: number;
  readonly metaBlocks: number;
  /** Data low-water mark in blocks (a table argument; crossing it raises one dm event). */
  readonly lowWater: number;
  /** Feature words as in the table line, e.g. ['error_if_no_space', 'skip_block_zeroing']. */
  readonly features: readonly string[];
}

export type KEvent =
  | ({ readonly type: 'pool_create' } & PoolTable)
  /** suspend, grow the metadata device if metaBlocks grew, load the new table, resume */
  | ({ readonly type: 'pool_reload' } & PoolTable)
  | { readonly type: 'pool_remove' }
  | { readonly type: 'message'; readonly text: string }
  | { readonly type: 'thin_activate'; readonly dev: number; readonly blocks: number }
  | { readonly type: 'thin_remove'; readonly dev: number }
  | { readonly type: 'thin_suspend'; readonly dev: number }
  | { readonly type: 'thin_resume'; readonly dev: number }
  /** O_DIRECT write of `count` pool blocks at virtual block `block`; flush=true adds an fsync (REQ_PREFLUSH). */
  | { readonly type: 'write'; readonly dev: number; readonly block: number; readonly count: number; readonly flush?: boolean }
  /** The same write started in the background (it may be queued by the pool); `id` names it for await. */
  | { readonly type: 'write_async'; readonly dev: number; readonly block: number; readonly id: string }
  /** Wait up to `seconds` for background writes; those still running are reported as pending. */
  | { readonly type: 'await'; readonly ids: readonly string[]; readonly seconds: number }
  | { readonly type: 'read'; readonly dev: number; readonly block: number }
  | { readonly type: 'flush'; readonly dev: number }
  /** dm_thin_pool.no_space_timeout (a module parameter from Linux 3.16 on; 0 = queue forever). */
  | { readonly type: 'set_no_space_timeout'; readonly seconds: number }
  | { readonly type: 'sleep'; readonly seconds: number }
  /** dm-flakey under the metadata device starts failing every write with EIO (reads still work). */
  | { readonly type: 'meta_fail_writes' }
  | { readonly type: 'meta_heal' }
  /** Offline thin_check of the metadata device (pool must be removed); clear = --clear-needs-check-flag. */
  | { readonly type: 'thin_check'; readonly clear?: boolean };

export interface KCase {
  readonly name: string;
  readonly title: string;
  /** Data block size in 512-byte sectors (dm-thin: multiple of 128). */
  readonly blockSectors: number;
  /** Largest data size (blocks) any table of the case uses: sizes the case's slice of the data disk. */
  readonly maxDataBlocks: number;
  /** Largest metadata size (4 KiB blocks). */
  readonly maxMetaBlocks: number;
  /**
   * Guest watchdog for this case, seconds of guest time (= host wall time under TCG). It costs
   * nothing unless the case hangs, so it is sized for a heavily loaded host, not a quiet one.
   */
  readonly limitSec: number;
  readonly events: readonly KEvent[];
}

export const SECTORS_PER_META_BLOCK = 8;

/** Events that only observe or wait (no status line is worth comparing after them). */
export function isObservationOnly(e: KEvent): boolean {
  return e.type === 'sleep' || e.type === 'thin_check';
}

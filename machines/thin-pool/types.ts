// Abstract state of a dm-thin pool target for the mode / out-of-space / metadata-failure / resize
// protocol. Follows drivers/md/dm-thin.c (Linux 3.14.1): struct pool (pf.mode, pf.error_if_no_space,
// low_water_*, retry_on_resume_list), struct pool_c (adjusted_pf) and, abstracted to counters, the
// pmd state of dm-thin-metadata.c (mapping trees, data and metadata space maps, needs_check flag).
// Plain JSON only: the explorer keys states by JSON.stringify.

export const MODES = ['write', 'out_of_data_space', 'out_of_metadata_space', 'read_only', 'fail'] as const;
/** PM_OUT_OF_METADATA_SPACE exists only in the `fixed` profile (later kernels, 3ab91828). */
export type Mode = (typeof MODES)[number];

export type Profile = 'linux-3.14' | 'fixed';
export const PROFILES: readonly Profile[] = ['linux-3.14', 'fixed'];

/** Errno names as a user would see them ("ok" = 0). */
export type Errno = 'ok' | 'EIO' | 'ENOSPC' | 'EINVAL' | 'EPERM' | 'EBUSY' | 'EEXIST' | 'ENODATA' | 'EOPNOTSUPP';

/** What happened to a bio: remapped to the data device, zero-filled, queued on retry_on_resume_list, or errored. */
export type IoResult = 'remap' | 'zero' | 'queued' | 'ok' | 'EIO' | 'ENOSPC';

/**
 * Request classes of the IO outcome table (dm-thin.md §2.1), all on thin 0. `write-provision` also
 * covers breaking sharing: both need a new data block.
 */
export type IoClass =
  | 'read-mapped'
  | 'read-unmapped'
  | 'write-mapped'
  | 'write-shared'
  | 'write-unmapped'
  | 'flush-unmapped'
  | 'flush-mapped'
  | 'discard-mapped'
  | 'discard-unmapped';

/** Metadata fault armed by the environment: the next metadata write fails; `-abort` also fails the abort. */
export type Fault = 'none' | 'md-io' | 'md-io-abort' | 'abort-pending';

/** A bio parked on retry_on_resume_list. Only writes and flushes can be unserviceable. */
export interface QueuedBio {
  readonly op: 'write' | 'flush';
  readonly v: number;
}

/** How one bio was handled, with the facts the IO outcome table depends on. */
export interface IoRecord {
  readonly cls: IoClass;
  /** Mode when the bio was processed. */
  readonly mode: Mode;
  readonly eins: boolean;
  /** Thin 0 had uncommitted changes / aborted changes when the bio was issued (flush rows). */
  readonly changed: boolean;
  readonly aborted: boolean;
  /** Provisioning found no free data block (the pool switched to out_of_data_space). */
  readonly noSpace: boolean;
  /** A metadata operation failed while handling this bio. */
  readonly mdFail: boolean;
  /** Metadata reserve exhausted while provisioning (fixed profile only). */
  readonly noMdSpace: boolean;
  readonly result: IoResult;
}

/**
 * One check_threshold call: the free count, the previous observed value (-1 = none), callback
 * registered, and the threshold registered at that moment (a reload's pool_ctr may change it
 * between two observations of one step, e.g. a close commit before re-creation).
 */
export interface MdObservation {
  readonly v: number;
  readonly prev: number;
  readonly armed: boolean;
  readonly thr: number;
}

/** A metadata operation that failed in this step, and whether the pool escalated it. */
export interface MdFailure {
  readonly op: 'alloc' | 'insert' | 'remove' | 'commit' | 'resize' | 'message';
  readonly r: Errno;
}

/**
 * Ghost record of the last step, for transition invariants. Reset on every step; part of the state
 * key (so two arrivals at the same pool state by different steps are checked separately).
 */
export interface Last {
  /** The event's label (eventLabel) and its type (what the rules compare, read on every successor). */
  readonly ev: string;
  readonly type: string;
  readonly modeFrom: Mode;
  /** Mode chosen by bind_control_target on a resume (null when no resume happened). */
  readonly bind: Mode | null;
  /** Outcome of the external bio of this step. */
  readonly io: IoRecord | null;
  /** Bios released from / errored off the retry list in this step. */
  readonly released: readonly IoRecord[];
  readonly mdFailures: readonly MdFailure[];
  /** Causes of abort attempts in this step ('metadata' = metadata_operation_failed). */
  readonly aborts: readonly string[];
  /** dm_table_event reasons in this step: 'low-water', 'md-threshold', 'mode:<m>'. */
  readonly events: readonly string[];
  /** Metadata free count observed after each metadata allocation of this step. */
  readonly mdObs: readonly MdObservation[];
  /** low_water_triggered and the space-map sizes (data old_ll, metadata ll) before the step. */
  readonly lwBefore: boolean;
  readonly dataBefore: number;
  /** The in-core data space map size (ll) before the step. */
  readonly dataNewBefore: number;
  readonly mdBefore: number;
  /** Errno of a message / resume, null if the step had none. */
  readonly errno: Errno | null;
  /** Whether a commit succeeded in this step, and the modes the commits ran in. */
  readonly committed: boolean;
  readonly commitModes: readonly Mode[];
  /** Whether a metadata write was attempted while the block manager was read-only. */
  readonly writeWhileRo: boolean;
}

/** What a user saw of the last step: the bio's and released bios' results, the errno, the dm events. */
export interface Shown {
  readonly io: IoResult | null;
  readonly released: readonly IoResult[];
  readonly errno: Errno | null;
  readonly events: readonly string[];
}

export interface PoolCtx {
  /** pool->pf.error_if_no_space (effective) and the table's requested value. */
  readonly eins: boolean;
  readonly einsReq: boolean;
  /** Ghost: error_if_no_space exactly as the loaded table says (mutants may misread it). */
  readonly einsTable: boolean;
  /** Data block size in 64 KiB units: the pool's (table at creation) and the superblock's. */
  readonly blockSize: number;
  readonly sbBlockSize: number;
  /** Data space map size as of the last commit (old_ll) and as extended in core (ll). */
  readonly dataNr: number;
  readonly dataNrNew: number;
  /** Data blocks allocated in this transaction (sorted). */
  readonly allocTx: readonly number[];
  /** In-core mapping per thin id (0 is open and takes IO; 1 is an unopened thin/snapshot); -1 = unmapped. */
  readonly map: readonly (readonly number[] | null)[];
  /** The same as of the last commit. */
  readonly cmap: readonly (readonly number[] | null)[];
  /** Metadata space map: size at last commit, extended size, used at last commit, allocated this transaction. */
  readonly mdNr: number;
  readonly mdNrNew: number;
  readonly mdUsedC: number;
  readonly mdTx: number;
  /** Metadata low-water threshold (set at pool_ctr), last observed free count (-1 = none), callback registered. */
  readonly mdThr: number;
  readonly mdObs: number;
  readonly mdThrArmed: boolean;
  readonly needsCheck: boolean;
  /** needs_check as found on the metadata device (survives teardown). */
  readonly needsCheckDisk: boolean;
  /** Ghost: a successful abort set needs_check and no offline repair cleared it since. */
  readonly ncGhost: boolean;
  /** Metadata device size (blocks) seen by the last pool_ctr: the threshold is computed from it. */
  readonly mdDevCtr: number;
  /** The live table's data length and metadata device size (a plain resume runs preresume on them). */
  readonly tableData: number;
  readonly tableMd: number;
  /**
   * The pool device is still suspended: its last resume failed in preresume (dm_table_resume_targets
   * stops, dm_resume leaves DMF_SUSPENDED set, and the new table stays live). Thin IO still reaches
   * the pool; the waker is cancelled; parked bios wait for the next successful pool_resume.
   */
  readonly suspended: boolean;
  readonly failIo: boolean;
  readonly lowWater: number;
  readonly lwTriggered: boolean;
  /** Thin 0's `changed` and `aborted_with_changes`. */
  readonly changed: boolean;
  readonly abortedWithChanges: boolean;
  readonly retry: readonly QueuedBio[];
  readonly fault: Fault;
  /** fixed profile: no_space_timeout module parameter is non-zero, and the timer is armed. */
  readonly timeoutOn: boolean;
  readonly timer: boolean;
  /** Ghost: thin-0 blocks whose write was acknowledged before a successful flush (must stay committed). */
  readonly durable: readonly number[];
  /** Ghost: thin-0 blocks with an acknowledged write in core. */
  readonly acked: readonly number[];
  /** Ghost: issued bios − completed bios − queued bios; 0 unless a bio was dropped or completed twice. */
  readonly balance: number;
  /** The visible part of `last`; kept when the explorer's reduction drops `last` (properties/thin-pool/model.ts). */
  readonly shown: Shown | null;
  readonly last: Last | null;
}

/** The pool state the explorer walks: mode (the machine's state value) plus context. */
export interface PoolState {
  readonly mode: Mode;
  readonly ctx: PoolCtx;
}

/** Static configuration of one model instance (bounds and variant). Not part of the state. */
export interface PoolConfig {
  readonly profile: Profile;
  readonly mutant: string | null;
  /** Virtual blocks per thin. */
  readonly vblocks: number;
  /** Initial data blocks and the largest data size a reload may ask for. */
  readonly data: number;
  readonly dataMax: number;
  /** Initial metadata blocks and the largest metadata size a reload may ask for. */
  readonly md: number;
  readonly mdMax: number;
  readonly lowWater: number;
  /** Most bios the environment keeps parked at once (bounds the state space). */
  readonly maxQueue: number;
  /** Whether the error_if_no_space feature is in the initial table. */
  readonly eins: boolean;
}

export type PoolEvent =
  | { readonly type: 'read'; readonly v: number }
  | { readonly type: 'write'; readonly v: number }
  | { readonly type: 'flush' }
  | { readonly type: 'discard'; readonly v: number }
  | { readonly type: 'create_thin'; readonly id: number }
  | { readonly type: 'create_snap'; readonly id: number; readonly origin: number }
  | { readonly type: 'delete'; readonly id: number }
  | { readonly type: 'tick' }
  | { readonly type: 'status' }
  | { readonly type: 'resume' }
  | { readonly type: 'reload'; readonly data: number; readonly md: number; readonly eins: boolean; readonly bs: number }
  | { readonly type: 'reactivate'; readonly clear: boolean }
  | { readonly type: 'fault'; readonly kind: 'md-io' | 'md-io-abort' }
  | { readonly type: 'timer_expire' }
  | { readonly type: 'set_timeout'; readonly on: boolean };

export type PoolEventType = PoolEvent['type'];

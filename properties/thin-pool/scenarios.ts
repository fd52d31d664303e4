// Named scenarios from dm-thin.md §11 (jthornber/device-mapper-test-suite thin-provisioning tests,
// lvm2, and the real-kernel oracle runs), as data: bounds, events, and the kernel's observable outcome
// per profile. Replayed through the machine and the impl by scenarios.test.ts; the CLI can report
// which of them the explored state space covers, and the conformance engineer can render them to a
// VM script (one vblock = one pool data block; `reload` = suspend, load a new table, resume).

import type { Bounds } from '../../checker/model.js';
import type { Errno, IoResult, PoolEvent, Profile } from '../../machines/thin-pool/types.js';

export interface ScenarioExpect {
  /** Mode word of the status line (rw, ro, out_of_data_space, Fail). */
  readonly mode?: string;
  /** Words that must appear in the INFO status line. */
  readonly words?: readonly string[];
  /** Result of the bio issued by the last event. */
  readonly io?: IoResult;
  /** Results of the queued bios the last event released or errored, in order. */
  readonly released?: readonly IoResult[];
  /** Errno of the last message / resume. */
  readonly errno?: Errno;
  readonly needsCheck?: boolean;
  readonly queued?: number;
  /** dm_table_event reasons the last event raised. */
  readonly events?: readonly string[];
}

export interface Scenario {
  readonly name: string;
  /** Where the scenario comes from. */
  readonly source: string;
  readonly bounds: Bounds;
  readonly events: readonly PoolEvent[];
  /** Expected outcome after the last event, per profile (a profile missing here is not run). */
  readonly expect: Partial<Record<Profile, ScenarioExpect>>;
}

const both = (e: ScenarioExpect): Partial<Record<Profile, ScenarioExpect>> => ({ 'linux-3.14': e, fixed: e });
const W = (v: number): PoolEvent => ({ type: 'write', v });
const R = (v: number): PoolEvent => ({ type: 'read', v });
const reload = (data: number, md: number, eins = false, bs = 1): PoolEvent => ({ type: 'reload', data, md, eins, bs });

/**
 * The data low-water pair (dm-thin.md §5; Linux 3.14.1 dm-thin.c alloc_data_block reads
 * dm_pool_get_free_block_count, then check_low_water_mark raises dm_table_event once when
 * free_blocks <= low_water_blocks and sets low_water_triggered; pool_resume clears it). Smallest
 * bounds that show it, explored to completion (about 164,000 states; the scenarios used to ask for
 * vblocks=3, data=3, md=16, over 250,000):
 * - two virtual blocks over two data blocks with a mark of one: the second provisioning write is the
 *   first to see free_blocks <= 1;
 * - md=10: the smallest metadata device on which those writes do not also cross the metadata
 *   low-water threshold (calc_metadata_threshold: min(1024, nr_blocks / 4) = 2 blocks; at md 7-9
 *   the same write raises that event too, at md 6 metadata space runs out before the pair ends), so
 *   the event the scenarios expect is the data one alone;
 * - queue=1: the pool stays in write mode with a free block throughout, so no bio is ever parked;
 *   the retry-list bound only shapes the out-of-data-space part of the space.
 */
const LOW_WATER_BOUNDS = { vblocks: 2, data: 2, lowWater: 1, md: 10, queue: 1 } as const;

export const poolScenarios: readonly Scenario[] = [
  {
    name: 'out_of_data_space_errors_immediately_if_requested',
    source: 'dmtest pool_resize_tests.rb',
    bounds: { vblocks: 2, data: 1, eins: 1 },
    events: [W(0), W(1)],
    expect: {
      'linux-3.14': { mode: 'out_of_data_space', words: ['error_if_no_space'], io: 'EIO', queued: 0 },
      fixed: { mode: 'out_of_data_space', words: ['error_if_no_space'], io: 'ENOSPC', queued: 0 },
    },
  },
  {
    name: 'out_of_data_space_queues_by_default',
    source: 'real-kernel-oracle §5.2',
    bounds: { vblocks: 2, data: 1 },
    events: [W(0), W(1)],
    expect: both({ mode: 'out_of_data_space', words: ['queue_if_no_space', '1/1'], io: 'queued', queued: 1 }),
  },
  {
    name: 'overwrite_and_read_while_out_of_data_space',
    source: 'real-kernel-oracle §5.1',
    bounds: { vblocks: 2, data: 1, eins: 1 },
    events: [W(0), W(1), W(0)],
    expect: both({ mode: 'out_of_data_space', io: 'remap' }),
  },
  {
    name: 'resize_after_OODS_held_io',
    source: 'dmtest pool_resize_tests.rb',
    bounds: { vblocks: 2, data: 1, dataMax: 2, md: 8, mdMax: 8 },
    events: [W(0), W(1), reload(2, 8)],
    expect: both({ mode: 'rw', released: ['remap'], queued: 0, errno: 'ok' }),
  },
  {
    name: 'resize_after_OODS_error_immediately',
    source: 'dmtest pool_resize_tests.rb',
    bounds: { vblocks: 2, data: 1, dataMax: 2, eins: 1, md: 8, mdMax: 8 },
    events: [W(0), W(1), reload(2, 8, true), W(1)],
    expect: both({ mode: 'rw', io: 'remap', words: ['2/2'] }),
  },
  {
    name: 'suspend_resume_keeps_read_write',
    source: 'dmtest resize_io: "suspend/resume cycle should _not_ cause read-write -> read-only"',
    bounds: { vblocks: 2 },
    events: [W(0), { type: 'resume' }],
    expect: both({ mode: 'rw', errno: 'ok' }),
  },
  {
    name: 'suspend_resume_keeps_out_of_data_space',
    source: 'dm-thin.md §6 (synchronize the pool mode during suspend)',
    bounds: { vblocks: 2, data: 1 },
    events: [W(0), W(1), { type: 'resume' }],
    expect: both({ mode: 'out_of_data_space', released: ['queued'], queued: 1 }),
  },
  {
    name: 'resize_refused_when_smaller',
    source: 'dm-thin.md §6 maybe_resize_data_dev',
    bounds: { vblocks: 2, data: 2 },
    // The metadata size is left as it is (it was md=12, beyond every bound): pool_preresume runs
    // maybe_resize_data_dev first and returns its -EINVAL ("pool target (%llu blocks) too small")
    // before maybe_resize_metadata_dev, so the metadata size plays no part in the refusal.
    events: [W(0), reload(1, 6)],
    expect: both({ mode: 'rw', errno: 'EINVAL', words: ['1/2'] }),
  },
  {
    name: 'resize_metadata_after_exhaust',
    source: 'dmtest metadata_resize_tests.rb',
    bounds: { vblocks: 2, data: 2, md: 4, mdMax: 8 },
    events: [W(0), reload(2, 8)],
    expect: {
      // 3.14: exhaustion aborts, needs_check blocks both write mode and the grow.
      'linux-3.14': { mode: 'ro', needsCheck: true, errno: 'ok', words: ['/4'] },
      // later kernels: out-of-metadata-space without abort; the grow brings write mode back.
      fixed: { mode: 'rw', needsCheck: false, errno: 'ok', words: ['/8'] },
    },
  },
  {
    name: 'metadata_exhaustion_enters_read_only',
    source: 'dmtest exhausting_metadata_space_causes_fail_mode; real-kernel-oracle §5.4',
    bounds: { vblocks: 2, data: 2, md: 4 },
    events: [W(0)],
    expect: {
      'linux-3.14': { mode: 'ro', needsCheck: true, io: 'EIO' },
      fixed: { mode: 'ro', needsCheck: false, io: 'EIO', words: ['ro', '-'] },
    },
  },
  {
    name: 'resize_metadata_after_exhaust_and_repair',
    source: 'dmtest metadata_resize_tests.rb; real-kernel-oracle §5.4 (offline thin_check --clear-needs-check-flag)',
    bounds: { vblocks: 2, data: 2, md: 4, mdMax: 8 },
    events: [W(0), { type: 'reactivate', clear: true }, reload(2, 8), W(0)],
    expect: both({ mode: 'rw', needsCheck: false, io: 'remap', words: ['/8'] }),
  },
  {
    name: 'exhausting_metadata_space_causes_fail_mode',
    source: 'dmtest metadata_resize_tests.rb (abort itself fails)',
    bounds: { vblocks: 2 },
    events: [{ type: 'fault', kind: 'md-io-abort' }, W(0)],
    expect: both({ mode: 'Fail', words: ['Fail'], io: 'EIO' }),
  },
  {
    name: 'commit_failure_sets_needs_check',
    source: 'dmtest needs_check_tests.rb',
    bounds: { vblocks: 2 },
    events: [W(0), { type: 'fault', kind: 'md-io' }, { type: 'flush' }],
    expect: both({ mode: 'ro', needsCheck: true, io: 'EIO' }),
  },
  {
    name: 'commit_failure_needs_check_survives_reactivation',
    source: 'dmtest needs_check_tests.rb',
    bounds: { vblocks: 2 },
    events: [W(0), { type: 'fault', kind: 'md-io' }, { type: 'flush' }, { type: 'reactivate', clear: false }],
    expect: both({ mode: 'ro', needsCheck: true }),
  },
  {
    name: 'commit_failure_cleared_by_thin_check',
    source: 'dmtest needs_check_tests.rb (thin_check --clear-needs-check-flag)',
    bounds: { vblocks: 2 },
    events: [W(0), { type: 'fault', kind: 'md-io' }, { type: 'flush' }, { type: 'reactivate', clear: true }, W(1)],
    expect: both({ mode: 'rw', needsCheck: false, io: 'remap' }),
  },
  {
    name: 'grow_refused_while_needs_check',
    source: 'dm-thin.md §4 needs_check effect (2)',
    bounds: { vblocks: 2, data: 1, dataMax: 2 },
    events: [W(0), { type: 'fault', kind: 'md-io' }, { type: 'flush' }, reload(2, 6)],
    expect: both({ mode: 'ro', needsCheck: true, errno: 'ok', words: ['/1'] }),
  },
  {
    name: 'bz1230271_metadata_replaced_by_error_target',
    source: 'dmtest bz1230271',
    bounds: { vblocks: 2 },
    events: [{ type: 'fault', kind: 'md-io-abort' }, W(0), R(1)],
    expect: both({ mode: 'Fail', io: 'EIO' }),
  },
  {
    name: 'message_failure_not_escalated',
    source: 'dm-thin.md §4 (message failures go back to the caller, no mode change)',
    bounds: { vblocks: 2, data: 1 },
    events: [W(0), W(1), { type: 'fault', kind: 'md-io' }, { type: 'create_thin', id: 1 }],
    expect: {
      'linux-3.14': { mode: 'out_of_data_space', queued: 1, errno: 'EIO' },
      fixed: { mode: 'out_of_data_space', queued: 1, errno: 'EIO' },
    },
  },
  {
    name: 'thin_remove_works_after_resize',
    source: 'dmtest metadata_resize_tests.rb',
    bounds: { vblocks: 2 },
    events: [reload(1, 8), { type: 'create_thin', id: 1 }, { type: 'delete', id: 1 }],
    expect: both({ mode: 'rw', errno: 'ok', words: ['/8'] }),
  },
  {
    name: 'delete_in_out_of_data_space_frees_space',
    source: 'dm-thin.md §10 #15 (8d07e8a5)',
    bounds: { vblocks: 2, data: 2, md: 8, mdMax: 8 },
    events: [W(0), { type: 'create_snap', id: 1, origin: 0 }, W(0), W(1), { type: 'delete', id: 1 }],
    expect: {
      'linux-3.14': { mode: 'out_of_data_space', errno: 'ok', queued: 1 },
      fixed: { mode: 'rw', errno: 'ok', queued: 0, released: ['remap'] },
    },
  },
  {
    name: 'flush_in_out_of_data_space',
    source: 'dm-thin.md §2.1 (commit refused unless PM_WRITE; #15)',
    bounds: { vblocks: 2, data: 1, md: 7, mdMax: 7 },
    events: [W(0), W(1), { type: 'create_snap', id: 1, origin: 0 }, { type: 'flush' }],
    expect: {
      'linux-3.14': { mode: 'out_of_data_space', io: 'EIO' },
      fixed: { mode: 'out_of_data_space', io: 'ok' },
    },
  },
  {
    name: 'data_low_water_event_once_per_resume',
    source: 'dm-thin.md §5 check_low_water_mark',
    // Smallest bounds that show it (was vblocks=3, data=3, md=16, over 250,000 states): the second
    // provisioning write sees free_blocks = 1 <= low_water_blocks and raises the event
    // (alloc_data_block → check_low_water_mark); the discard and the status commit free that block
    // again, and the next provisioning write sees free_blocks = 1 once more but low_water_triggered
    // is still set (only pool_resume clears it), so no second event. Bounds: LOW_WATER_BOUNDS.
    bounds: LOW_WATER_BOUNDS,
    events: [W(0), W(1), { type: 'discard', v: 1 }, { type: 'status' }, W(1)],
    expect: both({ mode: 'rw', io: 'remap', events: [] }),
  },
  {
    name: 'data_low_water_event_fires',
    source: 'dm-thin.md §5 check_low_water_mark',
    // Smallest bounds that show the crossing (was vblocks=3, data=3, md=16, over 250,000 states):
    // alloc_data_block reads the free count before allocating and check_low_water_mark fires when
    // free_blocks <= low_water_blocks; with two data blocks and a mark of one, the first write
    // (free 2) stays silent and the second (free 1) raises the event. Bounds: LOW_WATER_BOUNDS.
    bounds: LOW_WATER_BOUNDS,
    events: [W(0), W(1)],
    expect: both({ mode: 'rw', io: 'remap', events: ['low-water'] }),
  },
  {
    name: 'block_size_change_on_reload',
    source: 'dm-thin.md §6 (9aec8629)',
    bounds: { vblocks: 2, data: 2 },
    // Only the block size changes (it was also md=12, beyond every bound): 3.14's pool_ctr finds the
    // pool by its metadata device (__pool_find) and ignores the new block size; 9aec8629 fails the
    // table load with -EINVAL. The metadata size plays no part in either.
    events: [W(0), reload(2, 6, false, 2)],
    expect: {
      'linux-3.14': { mode: 'rw', errno: 'ok' },
      fixed: { mode: 'rw', errno: 'EINVAL' },
    },
  },
  {
    name: 'out_of_data_space_times_out',
    source: 'dmtest pool_resize_tests.rb; bcc696fa (stay in out-of-data-space)',
    bounds: { vblocks: 2, data: 1 },
    events: [W(0), W(1), { type: 'timer_expire' }],
    expect: { fixed: { mode: 'out_of_data_space', words: ['error_if_no_space'], released: ['ENOSPC'], queued: 0 } },
  },
  {
    name: 'messages_refused_in_read_only',
    source: 'dm-thin.md §9; real-kernel-oracle §5.4 (Operation not supported)',
    bounds: { vblocks: 2 },
    events: [W(0), { type: 'fault', kind: 'md-io' }, { type: 'flush' }, { type: 'create_thin', id: 1 }],
    expect: {
      'linux-3.14': { mode: 'ro', errno: 'EPERM' },
      fixed: { mode: 'ro', errno: 'EOPNOTSUPP' },
    },
  },
  {
    name: 'messages_refused_in_fail',
    source: 'dm-thin.md §9',
    bounds: { vblocks: 2 },
    events: [{ type: 'fault', kind: 'md-io-abort' }, W(0), { type: 'create_thin', id: 1 }],
    expect: {
      'linux-3.14': { mode: 'Fail', errno: 'EINVAL' },
      fixed: { mode: 'Fail', errno: 'EOPNOTSUPP' },
    },
  },
];

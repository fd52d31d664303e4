// Seeded bugs (explorer-level, in the machine) and the holes Linux 3.14 ships with, for the
// thin-metadata model. Kernel: drivers/md/dm-thin-metadata.c __commit_transaction,
// drivers/md/persistent-data/dm-space-map-disk.c sm_disk_new_block, drivers/md/dm-thin.c
// overwrite_endio / process_prepared_mapping / commit.

import type { Bounds, Ev, LockstepPlan, MutantInfo, ShippedDefect } from '../../checker/model.js';
import { thinMetadataMutants } from '../../impl/thin/mutants.js';

/**
 * A change after reserve (create, delete, snap) shadows tree blocks the snapshot shares; a shallow
 * release leaks them. Two device ids give the runner several such paths; no data writes, so the 3.14
 * data-flush hole (#24) cannot be found first. Missed at 500 runs by one fresh seed (1517734696); a
 * failure ends the hunt early, so more runs cost only on such seeds. Shared by thin-20 and the
 * shipped defect it stands for (release-leaks-snapshot-trees).
 */
const RELEASE_LEAK_HUNT = { bounds: { metasnap: 1, autocommit: 1, phased: 0, devices: 2, dblocks: 1, writes: 0, fua: 0 }, runs: 2000 } as const;

export const thinMutants: readonly MutantInfo[] = [
  {
    id: 'sb-before-flush',
    title: 'the superblock is written together with the other dirty metadata blocks, before the first flush (dm-thin.md §10 #22)',
    fix: 'a9d45396f5956d0b615c7ae3b936afd888351a47 dm transaction manager: fix corruption due to non-atomic transaction commit; 5a32083d03fb543f63489b2946c4948398579ba0',
    breaks: ['THIN-META-1', 'THIN-META-2'],
    killedBy: ['explore'],
  },
  {
    id: 'precommit-after-roots',
    title: 'the space-map roots are saved into the superblock before the pre-commit, so it names a stale space map (dm-thin.md §10 #27)',
    fix: 'dm thin metadata: call precommit before saving the roots (for-4.12)',
    breaks: ['THIN-META-4'],
    killedBy: ['explore'],
  },
  {
    id: 'alloc-ignores-committed',
    title: 'data allocation searches the in-core space map only, so a block freed in this transaction (still live in the committed one) is reused (dm-thin.md §10 #26)',
    fix: '4feaef830de7ffdd8352e1fe14ad3bf13c9688f8 dm space map common: fix to ensure new block isn\'t already in use',
    breaks: ['THIN-META-3'],
    killedBy: ['explore'],
  },
  {
    // Kernels with a9d45396 (pre-commit flushes every dirty buffer) but before stable 3dc9ae10
    // (held_root in core): reserve leaves block 0 dirty with the old roots and the new held root,
    // and dm_tm_pre_commit → dm_bm_flush writes it before the new superblock (THIN-META-4 finding).
    id: 'held-root-in-buffer',
    title: 'reserve/release_metadata_snap store held_root in the superblock buffer, so the next pre-commit flush writes block 0 (old roots, new held root) before the new superblock',
    fix: "stable 3dc9ae1029320d77472c44965e572f176949cd63 'dm thin metadata: fix metadata snapshot consistency on commit failure' (CVE-2026-72108)",
    breaks: ['THIN-META-4'],
    killedBy: ['explore'],
    bounds: { devices: 1, vblocks: 1, dblocks: 1, writes: 0, metasnap: 1 },
  },
];

export const thinShipped: readonly ShippedDefect[] = [
  {
    id: 'dirty-sb-written-early',
    title: 'after reserve/release_metadata_snap the dirty superblock, already holding the new roots, is written with the other blocks before the flush (dm-thin.md §10 #22, Corrections 6)',
    profile: 'linux-3.14',
    fix: 'a9d45396f5956d0b615c7ae3b936afd888351a47 dm transaction manager: fix corruption due to non-atomic transaction commit; 5a32083d03fb543f63489b2946c4948398579ba0',
    breaks: ['THIN-META-1', 'THIN-META-2'],
    killedBy: ['explore'],
    bounds: { metasnap: 1 },
  },
  {
    id: 'release-leaks-snapshot-trees',
    title: 'release_metadata_snap only decrements the snapshot roots, so the tree blocks the snapshot alone still references leak (dm-thin.md §10 #20)',
    profile: 'linux-3.14',
    fix: '7f518ad0a212e2a6fd68630e176af1de395070a7 dm thin metadata: delete btrees when releasing metadata snapshot',
    breaks: ['THIN-META-4', 'THIN-META-16'],
    killedBy: ['lockstep'],
    ...RELEASE_LEAK_HUNT,
  },
  {
    // Found here (the fact sheets do not list it): upstream fixed it in v5.5 after thin_check
    // reported "too few entries in btree_node" on a pool whose details tree had lost devices.
    id: 'rebalance2-node-below-third',
    title:
      "removal rebalances two btree children holding exactly 2·(max/3)+1 entries to max/3 and max/3+1, then deletes from the smaller: a non-root node below a third full, which thin_check rejects",
    profile: 'linux-3.14',
    fix: '474e559567fa631dea8fb8407ab1b6090c903755 dm btree: increase rebalance threshold in __rebalance2() (v5.5)',
    breaks: ['THIN-META-16'],
    killedBy: ['lockstep'],
    // Two runs of 168 blocks fill two mapping leaves (126 + 210); discarding the first run removes
    // ascending keys from the left leaf, rebalancing before each removal, and stops at 168 entries
    // with the left leaf at 83 < 252 / 3. FUA writes only and no crashes, so the 3.14 crash holes
    // (#24, #25) cannot be found first.
    bounds: { devices: 1, vblocks: 2, dblocks: 2, writes: 2, run: 168, fua: 2, phased: 0 },
    operators: { crashes: false },
  },
  {
    id: 'no-data-flush-before-commit',
    title: 'a commit makes durable a mapping whose data is still in the data device cache (dm-thin.md §10 #24)',
    profile: 'linux-3.14',
    fix: '694cfe7f31db36912725e63a38a5179c8628a496 dm thin: Flush data device before committing metadata',
    breaks: ['THIN-META-7'],
    killedBy: ['explore'],
  },
  {
    id: 'fua-overwrite-before-commit',
    title: 'a FUA write that provisions a block is acknowledged before its mapping is committed (dm-thin.md §10 #25)',
    profile: 'linux-3.14',
    fix: '4ae280b4ee3463fa57bbe6eede26b97daff8a0f1 dm thin: fix bug where bio that overwrites thin block ignores FUA',
    breaks: ['THIN-META-5'],
    killedBy: ['explore'],
    // With only FUA writes the data is always durable before a commit, so #24 cannot mask this one.
    bounds: { fua: 2 },
  },
];

/**
 * thin-10-bop-lifo (cebc2de4): the metadata space map queues an INC and then a DEC of one block only
 * when a removal from its reference-count btree merges two leaves not yet shadowed in the
 * transaction; that needs more than 336 metadata blocks counted three times or more (the tree must
 * have split) and a commit that leaves its two leaves at exactly 225 entries (the fixed profile's
 * merge threshold, 2 · (112 + 1) since 474e5595; spec/thin-metadata.md, "thin-10"). Random commands
 * never land there, so the hunt runs this derived path:
 *
 * - grow the metadata device (the trees need ~600 blocks), create the origin (device 0) and write
 *   its 14 runs in order: 455 leaves of 126 mappings;
 * - snapshot it twice (devices 1 and 2), then write runs 0, 4 and 9 of the origin and of the first
 *   snapshot: each copies the internal nodes above its run, so the 355 leaves neither rewrote are
 *   named by three internal nodes (the original, the origin's copy, the snapshot's copy): count 3,
 *   the tree splits;
 * - write runs 12, 11, 10 and 8 of the second snapshot and commit: each copies its still-shared
 *   leaves (count 3 → 2, one removal each), 355 → 322 → 289 → 257 → 225 entries;
 * - the next write (run 13)'s first removal merges the two leaves: FIFO applies INC then DEC of the
 *   fresh shadow; the mutant applies the DEC first, below zero (-EINVAL, THIN-META-4).
 *
 * The run size (4095 = 32.5 leaves, so runs drop 32 or 33 counts and a subset can sum to the
 * 130 needed) and origin length (14) were found by running the implementation over run sizes,
 * origin lengths and subsets of the second snapshot's runs.
 */
const THIN10_BOUNDS: Bounds = { devices: 3, vblocks: 14, dblocks: 25, writes: 25, run: 4095, metaresize: 1, fua: 0, autocommit: 0, phased: 0 };

function thin10Plan(): LockstepPlan {
  const V = THIN10_BOUNDS['vblocks']!;
  const copied = [0, 4, 9];
  const write = (dev: number, vb: number): Ev => ({ type: 'write', dev, vb });
  const steps: Ev[] = [
    { type: 'resize_meta' },
    { type: 'commit' },
    { type: 'create', dev: 0 },
    { type: 'commit' },
    { type: 'open', dev: 0 },
    ...Array.from({ length: V }, (_, v) => write(0, v)),
    { type: 'commit' },
    { type: 'snap', dev: 1, origin: 0 },
    { type: 'commit' },
    { type: 'snap', dev: 2, origin: 0 },
    { type: 'commit' },
    { type: 'open', dev: 1 },
    { type: 'open', dev: 2 },
    ...copied.map((v) => write(0, v)),
    ...copied.map((v) => write(1, v)),
    { type: 'commit' },
    ...[12, 11, 10, 8].map((v) => write(2, v)),
    { type: 'commit' },
    write(2, 13),
  ];
  return { steps, why: 'spec/thin-metadata.md "thin-10"' };
}

/**
 * How the lockstep runner reaches each implementation mutant of impl/thin/mutants.ts: its bounds,
 * and where random commands need help, more runs or a plan. Atomic commits (phased = 0) where the
 * mutant is not about commit ordering: the four-step commit only adds crash points it does not
 * need. held-root-in-buffer is not listed: its window lies between two flushes of one commit, so
 * the explorer kills it (thinMutants above).
 */
const IMPL_MUTANT_HUNTS: Readonly<Record<string, Pick<MutantInfo, 'bounds' | 'runs' | 'plan'>>> = {
  'thin-08-sm-extend-single-pass': { bounds: { metaresize: 1, autocommit: 1, phased: 0 } },
  'thin-09-extend-nr-blocks-late': { bounds: { metaresize: 1, autocommit: 1, phased: 0 } },
  // The planned path above: 14 runs of 4095 kernel blocks (32.5 mapping leaves each).
  'thin-10-bop-lifo': { bounds: THIN10_BOUNDS, plan: thin10Plan() },
  'thin-20-release-shallow-dec': RELEASE_LEAK_HUNT,
  'thin-21-reserve-no-commit': { bounds: { metasnap: 2, autocommit: 1, phased: 0, devices: 1 } },
  'thin-22-sb-before-flush': { bounds: { faults: 1, phased: 0 } },
  'thin-26-alloc-stale-cursor': { bounds: { vblocks: 2, dblocks: 2, phased: 0 } },
  'thin-27-roots-before-precommit': { bounds: { phased: 0 } },
  'thin-28-free-count-drift': { bounds: { phased: 0 } },
  // One run of 256 kernel blocks overflows a 252-entry btree leaf (two leaves under one root);
  // discarding the run empties both leaves, which only rebalancing folds back into the root. Five
  // specific steps out of many candidates: over 30 seeds missed 4 times at 300 runs, never at 1000.
  'btree-remove-no-rebalance': { bounds: { run: 256, devices: 1, vblocks: 1, dblocks: 1, writes: 1, fua: 0, autocommit: 1, phased: 0 }, runs: 1000 },
};

/** Implementation mutants the lockstep runner must kill, with what reaches them. */
export const thinImplMutants: readonly MutantInfo[] = thinMetadataMutants.flatMap((m) => {
  const hunt = IMPL_MUTANT_HUNTS[m.id];
  return hunt === undefined ? [] : [{ ...m, killedBy: ['lockstep' as const], ...hunt }];
});

// Seeded bugs of the dm-thin metadata implementation (impl/persistent-data, impl/thin/pool-metadata)
// and how a Variant turns them on. Each follows a fix listed in dm-thin.md §10; kernel files:
// drivers/md/persistent-data/dm-space-map-{common,metadata,disk}.c, dm-transaction-manager.c,
// dm-btree-remove.c and drivers/md/dm-thin-metadata.c.
//
// Spec IDs are spec/thin-metadata.md's; the on-disk rules THIN-META-16 (well-formed metadata),
// THIN-META-17 (space accounting) and THIN-META-18 (a metadata snapshot pins the current
// transaction) are judged on this implementation's bytes by the thin-metadata model's lockstep
// adapter (properties/thin-metadata/adapter.ts).
//
// Profiles: 'linux-3.14' ships the bugs fixed after 3.14 (#20, #22, #28 and the upper-level
// refcount gap of multi-level btrees); 'fixed' has every later fix, up to the 2026 held-root fix
// the conformance kernel (Debian 6.1.192) carries. A mutant switches one bug on under either profile.

import type { MutantInfo, Variant } from '../../checker/model.js';
import type { SmBehaviour } from '../persistent-data/space-map-common.js';
import type { RebalancePolicy } from '../persistent-data/btree-internal.js';

export const THIN_PROFILES = ['linux-3.14', 'fixed'] as const;

export const thinMetadataMutants: readonly MutantInfo[] = [
  {
    id: 'thin-08-sm-extend-single-pass',
    title: 'sm_metadata_extend counts the new bitmaps in a single inc + commit pass, so blocks the commit itself allocates keep a zero count',
    fix: '7e664b3dec431eebf0c5df5ff704d6197634cf35 dm space map metadata: fix extending the space map',
    breaks: ['THIN-META-4', 'THIN-META-16'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-09-extend-nr-blocks-late',
    title: 'sm_ll_extend sets nr_blocks after allocating the new bitmaps, so the bootstrap allocator has no room and extend fails with -ENOSPC',
    fix: 'dm space map common: make sure new space is used during extend',
    breaks: ['THIN-META-17'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-10-bop-lifo',
    title: 'recursive metadata space-map ops are applied newest first, so a DEC can run before its INC (count below zero)',
    fix: 'cebc2de44d3bce53e46476e774126c298ca2c8a9 dm space map metadata: fix refcount decrement below 0 which caused corruption',
    breaks: ['THIN-META-4'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-20-release-shallow-dec',
    title: 'release_metadata_snap only decrements the snapshot roots instead of deleting the trees, leaking their blocks',
    fix: '7f518ad0a212e2a6fd68630e176af1de395070a7 dm thin metadata: delete btrees when releasing metadata snapshot',
    breaks: ['THIN-META-4', 'THIN-META-16'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-21-reserve-no-commit',
    title: 'reserve_metadata_snap pins the roots of the last commit without committing first, so the snapshot names stale trees',
    fix: '49e99fc717f624aa75ca755d6e7bc029efd3f0e9 dm thin metadata: fix bug when taking a metadata snapshot',
    breaks: ['THIN-META-18', 'THIN-META-4'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-22-sb-before-flush',
    title: 'commit writes a superblock that was already dirty together with the other blocks, before the flush (and an error leaves it dirty)',
    fix: 'a9d45396f5956d0b615c7ae3b936afd888351a47 dm transaction manager: fix corruption due to non-atomic transaction commit; 5a32083d03fb543f63489b2946c4948398579ba0',
    breaks: ['THIN-META-1', 'THIN-META-2'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-26-alloc-stale-cursor',
    title: 'the data allocator searches the committed space map only and does not advance its cursor, so a block already in use is handed out again',
    fix: "4feaef830de7ffdd8352e1fe14ad3bf13c9688f8 dm space map common: fix to ensure new block isn't already in use",
    breaks: ['THIN-META-3', 'THIN-META-4'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-27-roots-before-precommit',
    title: 'the space-map roots are copied before the metadata space map pre-commit, so the superblock names a stale index block',
    fix: 'dm thin metadata: call precommit before saving the roots (for-4.12)',
    breaks: ['THIN-META-4', 'THIN-META-16'],
    killedBy: ['lockstep'],
  },
  {
    id: 'thin-28-free-count-drift',
    title: 'freeing a data block allocated in the same transaction does not return it to the free count, which drifts low',
    fix: 'dm space map disk: fix some book keeping in the disk space map (for-4.12)',
    breaks: ['THIN-META-17'],
    killedBy: ['lockstep'],
  },
  {
    id: 'held-root-in-buffer',
    title: 'reserve/release_metadata_snap write held_root into the cached superblock instead of the in-core pmd->held_root, so the next pre-commit flush writes block 0 (old roots, new held root) with the other dirty blocks',
    fix: "stable 3dc9ae1029320d77472c44965e572f176949cd63 'dm thin metadata: fix metadata snapshot consistency on commit failure' (CVE-2026-72108; 6.1.178, 6.6.145, 6.12.97, 6.18.40)",
    breaks: ['THIN-META-2', 'THIN-META-4', 'THIN-META-16'],
    killedBy: ['lockstep'],
    bounds: { metasnap: 1 },
  },
  {
    id: 'btree-remove-no-rebalance',
    title: 'btree removal never merges or redistributes, so non-root nodes drop below a third full (thin_check: too few entries)',
    fix: 'drivers/md/persistent-data/dm-btree-remove.c rebalance_children (present since 3.2)',
    breaks: ['THIN-META-16'],
    killedBy: ['lockstep'],
  },
];

export const THIN_METADATA_MUTANT_IDS: readonly string[] = thinMetadataMutants.map((m) => m.id);

/** Every behaviour switch the metadata implementation reads. */
export interface ThinBehaviour {
  readonly sm: SmBehaviour;
  readonly upperLevelInc: boolean;
  /** The trees' rebalancing: 474e5595 under 'fixed', none under mutant btree-remove-no-rebalance. */
  readonly rebalance: RebalancePolicy;
  readonly releaseShallow: boolean;
  readonly reserveNoCommit: boolean;
  /** a9d45396 + 5a32083d: pre-commit flushes everything, roots copied before the superblock is locked. */
  readonly atomicCommit: boolean;
  readonly rootsBeforePrecommit: boolean;
  /**
   * CVE-2026-72108 fix: held_root lives in core (pmd->held_root) and only __commit_transaction
   * writes it, with the new roots; reserve refuses a second snapshot before committing or shadowing.
   * Without it (3.14, and later kernels up to the fix) reserve/release dirty the superblock buffer.
   */
  readonly heldRootInCore: boolean;
}

export function checkVariant(v: Variant): void {
  if (!(THIN_PROFILES as readonly string[]).includes(v.profile)) {
    throw new Error(`unknown profile '${v.profile}' for thin metadata; use one of: ${THIN_PROFILES.join(', ')}`);
  }
  if (v.mutant !== null && !THIN_METADATA_MUTANT_IDS.includes(v.mutant)) {
    throw new Error(`unknown thin metadata mutant '${v.mutant}'; known: ${THIN_METADATA_MUTANT_IDS.join(', ')}`);
  }
}

export function behaviourOf(v: Variant): ThinBehaviour {
  const m = (id: string): boolean => v.mutant === id;
  const fixed = v.profile === 'fixed';
  return {
    sm: {
      allocCheckCurrent: fixed && !m('thin-26-alloc-stale-cursor'),
      allocStaleCursor: m('thin-26-alloc-stale-cursor'),
      extendNrBlocksLate: m('thin-09-extend-nr-blocks-late'),
      extendSinglePass: m('thin-08-sm-extend-single-pass'),
      bopLifo: m('thin-10-bop-lifo'),
      freeCountFixed: fixed && !m('thin-28-free-count-drift'),
      extendAppliesBops: fixed,
      rebalance: fixed ? 'keeps-third' : 'linux-3.14',
    },
    upperLevelInc: fixed,
    rebalance: m('btree-remove-no-rebalance') ? 'none' : fixed ? 'keeps-third' : 'linux-3.14',
    releaseShallow: !fixed || m('thin-20-release-shallow-dec'),
    reserveNoCommit: m('thin-21-reserve-no-commit'),
    atomicCommit: fixed && !m('thin-22-sb-before-flush'),
    rootsBeforePrecommit: m('thin-27-roots-before-precommit'),
    heldRootInCore: fixed && !m('held-root-in-buffer'),
  };
}

// Seeded bugs (explorer-level, in the machine) and the holes Linux 3.14 ships with, for the
// thin-metadata model. Kernel: drivers/md/dm-thin-metadata.c __commit_transaction,
// drivers/md/persistent-data/dm-space-map-disk.c sm_disk_new_block, drivers/md/dm-thin.c
// overwrite_endio / process_prepared_mapping / commit.

import type { MutantInfo, ShippedDefect } from '../../checker/model.js';

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

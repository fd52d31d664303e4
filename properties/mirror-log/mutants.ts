// Seeded bugs and shipped defects of the mirror-log model, each tied to the spec rules it breaks
// and the bounds that reach it. Sources: dm-log-userspace-base.c userspace_flush (3.14.1),
// dm-region-hash.c dm_rh_dec, lvm2 cmirrord functions.c clear_region, and the fact sheet A.10.

import type { Bounds, MutantInfo, ShippedDefect } from '../../checker/model.js';

export interface MirrorMutant extends MutantInfo {
  /** Bounds at which the explorer reaches the bug (merged over the defaults). */
  readonly bounds: Bounds;
}

export const MIRROR_MUTANTS: readonly MirrorMutant[] = [
  {
    id: 'marks-before-clears',
    title: 'userspace_flush sends the MARK (or FLUSH-with-marks) group before the CLEAR group',
    fix: 'order as shipped in 5066a4df (clears first, in both modes)',
    breaks: ['ULOG-3', 'ULOG-1'],
    killedBy: ['explore'],
    bounds: { batch: 1, integrated: 2, nodes: 1 },
  },
  {
    id: 'no-final-flush',
    title: 'non-integrated userspace_flush returns after the MARK group without the final FLUSH',
    fix: 'userspace_flush always ends the non-integrated path with DM_ULOG_FLUSH',
    breaks: ['ULOG-1'],
    killedBy: ['explore', 'lockstep'],
    bounds: { integrated: 0, batch: 0, nodes: 1 },
  },
  {
    id: 'lazy-at-once',
    title: 'integrated mode sends the empty FLUSH right after a clears-only flush instead of 3 s later',
    fix: 'queue_delayed_work(flush_log_work, 3*HZ) in 5066a4df',
    breaks: ['ULOG-4'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1 },
  },
  {
    id: 'lazy-never',
    title: 'integrated mode never schedules the lazy FLUSH after a clears-only flush',
    fix: 'queue_delayed_work(flush_log_work, 3*HZ) in 5066a4df',
    breaks: ['ULOG-4'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1 },
  },
  {
    id: 'cancel-no-reset',
    title: 'cancel_delayed_work without atomic_set(sched_flush, 0)',
    fix: 'both statements of the else branch of userspace_flush (5066a4df)',
    breaks: ['ULOG-4'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1 },
  },
  {
    id: 'write-before-reply',
    title: 'do_writes dispatches writes once the commit request is sent, before its reply',
    fix: 'dm_consult_userspace blocks until the matching reply (dm-log-userspace-transfer.c)',
    breaks: ['ULOG-1'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1 },
  },
  {
    id: 'mark-drop',
    title: 'userspace_mark_region allocates with GFP_ATOMIC and drops the mark on failure',
    fix: 'mempool_alloc(GFP_NOIO) never fails (BUG_ON) in userspace_mark_region',
    breaks: ['ULOG-5', 'ULOG-1'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1 },
  },
  {
    id: 'server-clear-ignores-others',
    title: "cmirrord clear_region sets the clean bit although another node still has the region marked",
    fix: 'lvm2 cmirrord clear_region checks other_matches before log_set_bit',
    breaks: ['ULOG-8', 'ULOG-6'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 2 },
  },
  {
    id: 'rh-race',
    title: 'dm_rh_dec decides the CLEAN transition outside region_lock, racing rh_inc',
    fix: '844e8d904a7c "dm: fix rh_dec()/rh_inc() race in dm-raid1.c" (2006)',
    breaks: ['ULOG-2'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1, writes: 2, regions: 1 },
  },
  {
    id: 'log-failure-reset',
    title: 'do_writes overwrites log_failure with the latest flush result',
    fix: 'sticky assignment in do_writes ("we must not reset the log_failure variable")',
    breaks: ['ULOG-9', 'ULOG-1'],
    killedBy: ['explore'],
    bounds: { nodes: 1, logFaults: 1, writes: 3, resends: 0 },
  },
];

export const MIRROR_SHIPPED: readonly (ShippedDefect & { readonly bounds: Bounds })[] = [
  {
    id: 'lazy-flush-cancelled',
    title: 'a clears-only integrated flush while a lazy flush is queued cancels it; the clears stay uncommitted',
    profile: 'linux-3.14',
    fix: 'not fixed upstream (mainline userspace_flush is unchanged); profile "fixed" cancels only when marks were sent',
    breaks: ['ULOG-4'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1, integrated: 1, server: 1 },
  },
  {
    id: 'no-leg-cache-flush',
    title: 'the userspace log commits clears without flushing the legs\u2019 write caches (no flush_callback_fn)',
    profile: 'linux-3.14',
    fix: 'not fixed upstream; profile "fixed" flushes the legs before sending clears, as dm-log.c disk_flush does',
    breaks: ['ULOG-6'],
    killedBy: ['explore', 'lockstep'],
    bounds: { nodes: 1, cache: 1 },
  },
];

/** The compatibility hazard of 5066a4df: a configuration, not a kernel bug, so it is not in `shipped`. */
export const COMPAT_HAZARD = {
  id: 'integrated-vs-upstream-server',
  title: 'integrated_flush in the table against upstream cmirrord, which ignores FLUSH payload: marks are lost',
  breaks: ['ULOG-10', 'ULOG-1', 'ULOG-5'],
  bounds: { integrated: 1, server: 0, nodes: 1 } as Bounds,
};

// Regression tests for model artefacts found while triaging explorer reports (spec/thin-pool.md,
// "Triaged reports"). Each replays the explorer's own path through the machine and the pool target
// impl. Kernel: drivers/md/dm-thin.c (Linux 3.14.1) abort_transaction, maybe_resize_data_dev,
// pool_preresume, pool_ctr, pool_resume; dm-thin-metadata.c dm_pool_abort_metadata;
// dm-space-map-metadata.c check_threshold; dm-ioctl.c do_resume and dm.c dm_resume (a failed
// preresume leaves the device suspended).

import { describe, expect, it } from 'vitest';
import { canonical } from '../../checker/lockstep.js';
import { boundsWithDefaults, type Ev } from '../../checker/model.js';
import { withOperators } from '../../checker/operators.js';
import type { PoolEvent } from '../../machines/thin-pool/types.js';
import { createPoolHarness } from './impl-adapter.js';
import { thinPoolModel, unreducedInstance, type PoolMState } from './model.js';

/**
 * The shortest path the explorer reported as a THIN-POOL-6 violation under linux-3.14 with growth
 * (dataMax=2, mdMax=8): in-core changes pile up in out_of_data_space (no commit, #15) until the
 * metadata is full, an abort is armed to fail, a reload grows the data device and its commit fails
 * with ENOSPC, the abort fails (fail mode, fail_io), and a second reload is refused with EINVAL.
 */
const TRIAGED_THIN_POOL_6: readonly Ev[] = [
  { type: 'reload', data: 1, md: 7, eins: false, bs: 1 },
  { type: 'write', v: 0 },
  { type: 'create_snap', id: 1, origin: 0 },
  { type: 'write', v: 0 },
  { type: 'delete', id: 1 },
  { type: 'create_thin', id: 1 },
  { type: '@fault', site: 'md-io-abort' },
  { type: 'delete', id: 1 },
  { type: 'reload', data: 2, md: 7, eins: false, bs: 1 },
  { type: 'reload', data: 2, md: 7, eins: false, bs: 1 },
];

// The unreduced instance keeps each step's ghost record (`last`), which these tests read.
describe('thin-pool triaged explorer reports', () => {
  it('THIN-POOL-6 under linux-3.14 with growth: a failed abort leaves no extended space map behind', () => {
    const bounds = boundsWithDefaults(thinPoolModel, { dataMax: 2, mdMax: 8 });
    const variant = { profile: 'linux-3.14', mutant: null };
    const inst = unreducedInstance(bounds, variant);
    const sys = withOperators(inst as never) as unknown as ReturnType<typeof withOperators<PoolMState>>;
    const impl = createPoolHarness(variant, bounds);
    const rule6 = inst.invariants.find((i) => i.spec.includes('THIN-POOL-6'))!;
    let s = sys.initial()[0]!;
    const seen: string[] = [];
    for (const [i, e] of TRIAGED_THIN_POOL_6.entries()) {
      const n = sys.step(s, e);
      expect(n, `step ${i + 1} ${JSON.stringify(e)} is not enabled`).not.toBeNull();
      s = n!;
      impl.apply(e as PoolEvent);
      expect(canonical(impl.project()), `impl and machine disagree after step ${i + 1}`).toBe(canonical(inst.project!(s)));
      const msg = rule6.check(s);
      if (msg !== null) seen.push(`step ${i + 1}: ${msg}`);
      seen.push(`${s.value[0]}${s.context.failIo ? ' fail_io' : ''} errno=${s.context.last?.errno ?? '-'}`);
    }
    // The path still goes where the report said (grow, commit ENOSPC, failed abort, refused reload) ...
    expect(seen.slice(-2)).toEqual(['fail fail_io errno=ok', 'fail fail_io errno=EINVAL']);
    expect(s.context.last?.mdFailures ?? []).toEqual([]);
    // ... and no rule 6 message on the way; the destroyed in-core space maps are the committed ones.
    expect(seen.filter((x) => x.includes('step'))).toEqual([]);
    expect([s.context.dataNrNew, s.context.mdNrNew]).toEqual([s.context.dataNr, s.context.mdNr]);
  });

  it('THIN-POOL-6 still catches growing while needs_check is set (negative control, mutant #13)', () => {
    const bounds = boundsWithDefaults(thinPoolModel, {});
    const inst = unreducedInstance(bounds, { profile: 'linux-3.14', mutant: '13-resize-with-needs-check' });
    const sys = withOperators(inst as never) as unknown as ReturnType<typeof withOperators<PoolMState>>;
    const rule6 = inst.invariants.find((i) => i.spec.includes('THIN-POOL-6'))!;
    let s = sys.initial()[0]!;
    // A failed insert sets needs_check; the next reload grows the data device anyway under the mutant
    // (the metadata size stays the default 6: a smaller one would be a refused shrink).
    for (const e of [{ type: '@fault', site: 'md-io' }, { type: 'write', v: 0 }, { type: 'reload', data: 2, md: 6, eins: false, bs: 1 }] as const) {
      s = sys.step(s, e)!;
    }
    expect(s.context.needsCheck).toBe(true);
    expect(rule6.check(s)).toBe('a device grew while needs_check is set');
  });

  it('THIN-POOL-8 with two metadata grows: the postsuspend commit is judged against the threshold pool_ctr just registered', () => {
    // Explorer report at dataMax=3 mdMax=9 (both profiles): the event fired at the reload's
    // postsuspend commit, and the rule judged it against the new table's threshold.
    const bounds = boundsWithDefaults(thinPoolModel, { dataMax: 3, mdMax: 9 });
    for (const profile of ['linux-3.14', 'fixed']) {
      const variant = { profile, mutant: null };
      const inst = unreducedInstance(bounds, variant);
      const impl = createPoolHarness(variant, bounds);
      let s = inst.system.initial()[0]!;
      const steps: PoolEvent[] = [
        { type: 'reload', data: 1, md: 7, eins: false, bs: 1 },
        { type: 'write', v: 0 },
        { type: 'reload', data: 1, md: 9, eins: false, bs: 1 },
      ];
      for (const e of steps) {
        s = inst.system.step(s, e)!;
        impl.apply(e);
        expect(canonical(impl.project())).toBe(canonical(inst.project!(s)));
        for (const i of inst.invariants) expect(i.check(s), `${profile} ${i.spec.join(',')} after ${JSON.stringify(e)}`).toBeNull();
      }
      // md 9 → threshold 2, registered before the commit; 2 blocks were free, so check_threshold
      // counts it as already triggered (threshold_already_triggered uses the new value): no event.
      const obs = s.context.last!.mdObs;
      expect(obs[0]).toEqual({ v: 1, prev: 2, armed: true, thr: 2 });
      expect(s.context.last!.events.filter((x) => x === 'md-threshold')).toEqual([]);
    }
  });

  it('THIN-POOL-5/1 at vblocks=2 under linux-3.14: a refused shrink leaves the pool suspended with its parked bio', () => {
    // Explorer report: after a reload the preresume refuses (table smaller than the data space map),
    // bind_control_target had already chosen write mode, and the bio parked in out_of_data_space
    // stayed on the retry list; a plain resume then "changed the mode". In the kernel dm_resume stops
    // at the failed preresume: the device stays suspended with the small table, and every plain
    // resume fails the same way until a table of the right size is loaded.
    const bounds = boundsWithDefaults(thinPoolModel, { vblocks: 2 });
    const variant = { profile: 'linux-3.14', mutant: null };
    const inst = unreducedInstance(bounds, variant);
    const impl = createPoolHarness(variant, bounds);
    let s = inst.system.initial()[0]!;
    const after: string[] = [];
    const steps: PoolEvent[] = [
      { type: 'reload', data: 1, md: 7, eins: false, bs: 1 },
      { type: 'write', v: 0 },
      { type: 'write', v: 1 },
      { type: 'reload', data: 2, md: 7, eins: false, bs: 1 },
      { type: 'flush' },
      { type: 'create_snap', id: 1, origin: 0 },
      { type: 'write', v: 0 },
      { type: 'reload', data: 1, md: 7, eins: false, bs: 1 },
      { type: 'resume' },
      { type: 'reload', data: 2, md: 7, eins: false, bs: 1 },
    ];
    for (const e of steps) {
      const n = inst.system.step(s, e);
      if (n === null) {
        after.push(`${e.type}: not enabled`);
        continue;
      }
      s = n;
      impl.apply(e);
      expect(canonical(impl.project())).toBe(canonical(inst.project!(s)));
      for (const i of inst.invariants) if (!i.spec.includes('THIN-POOL-11')) expect(i.check(s), `${i.spec.join(',')} after ${JSON.stringify(e)}`).toBeNull();
      const c = s.context;
      after.push(`${e.type}: ${s.value[0]} ${c.suspended ? 'suspended' : 'live'} queued=${c.retry.length} errno=${c.last?.errno ?? '-'}`);
    }
    // The parked write is re-processed only by the successful reload, and runs out of space again.
    expect(after.slice(-4)).toEqual([
      'write: out_of_data_space live queued=1 errno=-',
      'reload: write suspended queued=1 errno=EINVAL',
      'resume: write suspended queued=1 errno=EINVAL',
      'reload: out_of_data_space live queued=1 errno=ok',
    ]);
  });
});

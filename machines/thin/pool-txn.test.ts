// Unit tests of the thin-pool transaction machine (machines/thin/pool-txn.ts): message results
// (THIN-META-9..12), commit lifecycle, crash recovery judgements, and agreement between the compiled
// stepper and the XState machine built from the same definition.
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { MState } from '../../checker/machine.js';
import { crashRecover, thinPoolMachine, type ThinCfg, type ThinCtx, type ThinEv, type ThinEvent } from './pool-txn.js';

const cfg = (profile: string, mutant: string | null = null, over: Partial<ThinCfg> = {}): ThinCfg => ({
  devices: 2,
  vblocks: 2,
  dblocks: 3,
  writes: 4,
  tids: 2,
  metasnap: 1,
  close: 1,
  fua: 1,
  phased: 1,
  metaresize: 0,
  faults: 0,
  autocommit: 0,
  variant: { profile, mutant },
  ...over,
});

function run(c: ThinCfg, events: readonly ThinEv[]): MState<ThinCtx> {
  const m = thinPoolMachine(c);
  let s = m.initial();
  for (const e of events) {
    const n = m.step(s, e as ThinEvent);
    if (n === null) throw new Error(`event ${JSON.stringify(e)} not enabled in ${s.value[0]}`);
    s = n;
  }
  return s;
}

const COMMIT: ThinEv[] = [{ type: 'commit_begin' }, { type: 'meta_flush' }, { type: 'sb_write' }, { type: 'sb_flush' }];

describe('messages', () => {
  const c = cfg('fixed');
  it('create of an existing id is -EEXIST and changes nothing (THIN-META-12)', () => {
    const s1 = run(c, [{ type: 'create', dev: 0 }, ...COMMIT]);
    const s2 = run(c, [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'create', dev: 0 }]);
    expect(s2.context.reply).toBe('-EEXIST');
    expect(s2.value).toEqual(['clean']);
    expect({ ...s2.context, reply: null }).toEqual({ ...s1.context, reply: null });
  });
  it('snap of a missing origin is -ENODATA; snap onto an existing id is -EEXIST (THIN-META-12)', () => {
    expect(run(c, [{ type: 'snap', dev: 1, origin: 0 }]).context.reply).toBe('-ENODATA');
    const s = run(c, [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'create', dev: 1 }, ...COMMIT, { type: 'snap', dev: 1, origin: 0 }]);
    expect(s.context.reply).toBe('-EEXIST');
  });
  it('delete of an open device is -EBUSY, of a missing one -ENODATA (THIN-META-11)', () => {
    const s = run(c, [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }, { type: 'delete', dev: 0 }]);
    expect(s.context.reply).toBe('-EBUSY');
    expect(s.context.core.devs[0]).not.toBeNull();
    expect(run(c, [{ type: 'delete', dev: 1 }]).context.reply).toBe('-ENODATA');
    const closed = run(c, [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }, { type: 'close', dev: 0 }, { type: 'delete', dev: 0 }]);
    expect(closed.context.reply).toBe('ok');
    expect(closed.context.core.devs[0]).toBeNull();
  });
  it('set_transaction_id is a compare-and-swap, durable only after the commit (THIN-META-9)', () => {
    const bad = run(c, [{ type: 'set_tid', cur: 1, next: 2 }]);
    expect(bad.context.reply).toBe('-EINVAL');
    expect(bad.context.core.tid).toBe(0);
    const good = run(c, [{ type: 'set_tid', cur: 0, next: 1 }]);
    expect(good.context.core.tid).toBe(1);
    expect(good.context.disk.tid).toBe(0);
    expect(run(c, [{ type: 'set_tid', cur: 0, next: 1 }, ...COMMIT]).context.disk.tid).toBe(1);
  });
  it('at most one held metadata root: reserve twice -EBUSY, release of none -EINVAL (THIN-META-10)', () => {
    expect(run(c, [{ type: 'release' }]).context.reply).toBe('-EINVAL');
    const s = run(c, [{ type: 'reserve' }, ...COMMIT, { type: 'reserve' }]);
    expect(s.context.reply).toBe('-EBUSY');
    expect(s.context.disk.held).toBe(true);
  });
  it('the held root reaches the disk with the commit (fixed) or ahead of it as a dirty superblock (3.14, held-root-in-buffer)', () => {
    const pending = (p: ThinCfg, evs: readonly ThinEv[]): string[] => run(p, evs).context.pending.map((x) => x.k);
    const reserve: ThinEv[] = [{ type: 'reserve' }, { type: 'commit_begin' }];
    // stable 3dc9ae10: pmd->held_root, written only by __commit_transaction's superblock
    expect(pending(c, reserve)).toEqual(['meta']);
    expect(run(c, [{ type: 'release' }]).context.core.sbDirty).toBe(false);
    // before it: reserve/release dirty block 0, even release's -EINVAL path
    expect(pending(cfg('fixed', 'held-root-in-buffer'), reserve)).toEqual(['meta', 'sbheld']);
    expect(run(cfg('fixed', 'held-root-in-buffer'), [{ type: 'release' }]).context.core.sbDirty).toBe(true);
    expect(pending(cfg('linux-3.14'), reserve)).toEqual(['meta', 'sb']);
  });
  it('a second message waits for the commit of the first (pool_message commits after success)', () => {
    const m = thinPoolMachine(c);
    const s = run(c, [{ type: 'create', dev: 0 }]);
    expect(m.step(s, { type: 'create', dev: 1 } as ThinEvent)).toBeNull();
  });
});

describe('provisioning and sharing', () => {
  const c = cfg('fixed');
  const setup: ThinEv[] = [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }];
  it('a write provisions the lowest block free in the committed space map; freed blocks are not reused before the commit (THIN-META-3)', () => {
    const s = run(c, [...setup, { type: 'write', dev: 0, vb: 0 }, ...COMMIT, { type: 'discard', dev: 0, vb: 0 }, { type: 'write', dev: 0, vb: 0 }]);
    expect(s.context.core.devs[0]!.map[0]).toBe(1);
    expect(s.context.broken).toBeNull();
  });
  it('the alloc-ignores-committed mutant reuses the freed block and the machine flags THIN-META-3', () => {
    const s = run(cfg('fixed', 'alloc-ignores-committed'), [...setup, { type: 'write', dev: 0, vb: 0 }, ...COMMIT, { type: 'discard', dev: 0, vb: 0 }, { type: 'write', dev: 0, vb: 0 }]);
    expect(s.context.core.devs[0]!.map[0]).toBe(0);
    expect(s.context.broken?.spec).toContain('THIN-META-3');
  });
  it('a write to a snapshot breaks sharing and leaves the origin untouched, also after a crash (THIN-META-8)', () => {
    const s = run(c, [
      ...setup,
      { type: 'write', dev: 0, vb: 0 },
      ...COMMIT,
      { type: 'snap', dev: 1, origin: 0 },
      ...COMMIT,
      { type: 'open', dev: 1 },
      { type: 'write', dev: 1, vb: 0 },
    ]);
    expect(s.context.core.devs[0]!.map[0]).toBe(0);
    expect(s.context.core.devs[1]!.map[0]).toBe(1);
    expect(s.context.core.devs[0]!.sh[0]).toBe(1);
    const after = crashRecover(s.context, [], null, c);
    expect(after.broken).toBeNull();
    expect(after.core.devs[1]!.map[0]).toBe(0);
  });
});

describe('crash recovery', () => {
  const setup: ThinEv[] = [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }, { type: 'write', dev: 0, vb: 0 }];
  it('fixed: a commit flushes the data device first, so the committed mapping reads the write (THIN-META-7)', () => {
    const s = run(cfg('fixed'), [...setup, ...COMMIT]);
    expect(s.context.data[0]).toBe(1);
    expect(crashRecover(s.context, [], null, cfg('fixed')).broken).toBeNull();
  });
  it('linux-3.14: the committed mapping points at a block whose data is still cached (#24, THIN-META-7)', () => {
    const c = cfg('linux-3.14');
    const s = run(c, [...setup, ...COMMIT]);
    expect(s.context.pending).toEqual([{ k: 'data', b: 0, v: 1 }]);
    expect(crashRecover(s.context, [], null, c).broken?.spec).toEqual(['THIN-META-7']);
    expect(crashRecover(s.context, [0], null, c).broken).toBeNull();
  });
  it('a crash before the superblock lands recovers the previous transaction; a torn superblock lands whole (THIN-META-1)', () => {
    const c = cfg('fixed');
    const s = run(c, [...setup, { type: 'commit_begin' }, { type: 'meta_flush' }, { type: 'sb_write' }]);
    expect(s.context.pending).toEqual([{ k: 'sb' }]);
    const lost = crashRecover(s.context, [], null, c);
    expect(lost.core.devs[0]!.map[0]).toBe(-1);
    expect(lost.broken).toBeNull();
    const torn = crashRecover(s.context, [], 0, c);
    expect(torn.core.devs[0]!.map[0]).toBe(0);
    expect(torn.broken).toBeNull();
  });
  it('sb-before-flush: the superblock can land without the blocks it names (THIN-META-1/2)', () => {
    const c = cfg('fixed', 'sb-before-flush');
    const early: ThinEv[] = [{ type: 'commit_begin' }, { type: 'sb_flush' }];
    const s = run(c, [{ type: 'create', dev: 0 }, ...early, { type: 'open', dev: 0 }, { type: 'write', dev: 0, vb: 0 }, { type: 'commit_begin' }]);
    expect(s.value).toEqual(['sbIssued']);
    const idx = s.context.pending.findIndex((p) => p.k === 'sb');
    expect(crashRecover(s.context, [idx], null, c).broken?.spec).toContain('THIN-META-1');
  });
  it('linux-3.14: an acknowledged FUA overwrite of an unprovisioned block is lost (#25, THIN-META-5); fixed defers its completion', () => {
    const pre: ThinEv[] = [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }, { type: 'write_fua', dev: 0, vb: 0 }];
    const old = cfg('linux-3.14');
    expect(crashRecover(run(old, pre).context, [], null, old).broken?.spec).toEqual(['THIN-META-5']);
    const fixed = cfg('fixed');
    const s = run(fixed, pre);
    expect(s.context.fuaWait).toEqual([{ d: 0, v: 0, val: 1 }]);
    expect(crashRecover(s.context, [], null, fixed).broken).toBeNull();
  });
});

describe('compiled stepper and XState agree', () => {
  it('on a run through messages, writes, a snapshot and a commit', () => {
    const c = cfg('linux-3.14');
    const m = thinPoolMachine(c);
    const events: ThinEv[] = [
      { type: 'create', dev: 0 },
      ...COMMIT,
      { type: 'open', dev: 0 },
      { type: 'write', dev: 0, vb: 1 },
      { type: 'write_fua', dev: 0, vb: 0 },
      ...COMMIT,
      { type: 'snap', dev: 1, origin: 0 },
      { type: 'create', dev: 1 },
      ...COMMIT,
      { type: 'discard', dev: 0, vb: 1 },
      { type: 'flush', dev: 0 },
    ];
    const actor = createActor(m.xstate).start();
    let s = m.initial();
    for (const e of events) {
      const n = m.step(s, e as ThinEvent);
      actor.send(e);
      if (n !== null) s = n;
      const snap = actor.getSnapshot();
      expect(m.valueFromXState(snap.value)).toEqual(s.value);
      expect(snap.context).toEqual(s.context);
    }
    expect(s.context.core.devs[1]).not.toBeNull();
    actor.stop();
  });
});

describe('events for the implementation mutants', () => {
  const c = cfg('fixed', null, { metasnap: 2, metaresize: 1, faults: 1 });
  const auto = cfg('fixed', null, { metasnap: 2, metaresize: 1, faults: 1, autocommit: 1, phased: 0 });

  it('commit_fail reverts the open transaction to the committed view and keeps open devices open', () => {
    const s = run(c, [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'open', dev: 0 }, { type: 'write', dev: 0, vb: 0 }, { type: 'commit_fail' }]);
    expect(s.value).toEqual(['clean']);
    expect(s.context.core.devs[0]?.map).toEqual([-1, -1]);
    expect(s.context.core.devs[0]?.open).toBe(true);
    // The lost write was never flushed, so reading zeroes again is allowed (no THIN-META-5/6 judgement).
    expect(s.context.broken).toBeNull();
    // A device created in the failed transaction is gone.
    expect(run(c, [{ type: 'create', dev: 1 }, { type: 'commit_fail' }]).context.core.devs[1]).toBeNull();
  });

  it('commit_fail is not offered while the superblock buffer is dirty (the held-root-in-buffer finding) or with nothing to commit', () => {
    const reserved = [{ type: 'create', dev: 0 }, ...COMMIT, { type: 'reserve' }] as const;
    const inBuffer = cfg('fixed', 'held-root-in-buffer', { metasnap: 2, metaresize: 1, faults: 1 });
    expect(thinPoolMachine(inBuffer).step(run(inBuffer, [...reserved]), { type: 'commit_fail' })).toBeNull();
    // With the held root in core (stable 3dc9ae10) the reserve leaves block 0 clean: the commit may fail.
    const m = thinPoolMachine(c);
    expect(m.step(run(c, [...reserved]), { type: 'commit_fail' })).not.toBeNull();
    expect(m.step(m.initial(), { type: 'commit_fail' })).toBeNull();
  });

  it('reserve_race: the snapshot holds the racing write, and everything is committed (THIN-META-18)', () => {
    const s = run(auto, [{ type: 'create', dev: 0 }, { type: 'open', dev: 0 }, { type: 'reserve_race', dev: 0, vb: 1 }]);
    expect(s.context.reply).toBe('ok');
    expect(s.context.core.held).toBe(true);
    expect(s.context.core.snap?.[0]).toEqual([-1, 0]);
    expect(s.context.disk.devs[0]?.map).toEqual([-1, 0]);
    expect(s.context.disk.held).toBe(true);
  });

  it('resize_meta is durable only after its commit; a crash before it reverts the space map', () => {
    const grown = run(c, [{ type: 'resize_meta' }]);
    expect(grown.context.core.mgrown).toBe(true);
    expect(grown.context.disk.mgrown).toBe(false);
    expect(run(c, [{ type: 'resize_meta' }, { type: 'crash', keep: [], torn: null }]).context.core.mgrown).toBe(false);
    expect(run(c, [{ type: 'resize_meta' }, ...COMMIT]).context.disk.mgrown).toBe(true);
    expect(thinPoolMachine(c).step(run(c, [{ type: 'resize_meta' }, ...COMMIT]), { type: 'resize_meta' })).toBeNull();
  });

  it('a block the held snapshot maps stays allocated after the live mapping is discarded', () => {
    const s = run(auto, [{ type: 'create', dev: 0 }, { type: 'open', dev: 0 }, { type: 'write', dev: 0, vb: 0 }, { type: 'commit' }, { type: 'reserve' }, { type: 'discard', dev: 0, vb: 0 }, { type: 'commit' }, { type: 'write', dev: 0, vb: 1 }]);
    // Committed after the discard, block 0 is still the snapshot's: the new write gets block 1.
    expect(s.context.core.devs[0]?.map).toEqual([-1, 1]);
    const released = run(auto, [{ type: 'create', dev: 0 }, { type: 'open', dev: 0 }, { type: 'write', dev: 0, vb: 0 }, { type: 'commit' }, { type: 'reserve' }, { type: 'discard', dev: 0, vb: 0 }, { type: 'commit' }, { type: 'release' }, { type: 'write', dev: 0, vb: 1 }]);
    expect(released.context.core.devs[0]?.map).toEqual([-1, 0]);
  });
});

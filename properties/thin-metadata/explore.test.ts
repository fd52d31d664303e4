// Exhaustive exploration of the thin-metadata model: under 'fixed' every invariant holds at the
// default bounds (and with the atomic commit used by lockstep); under 'linux-3.14' the explorer finds
// the shipped holes #24 and #25; each explorer-level mutant is found as a violation of its rule.
import { describe, expect, it } from 'vitest';
import { explore } from '../../checker/explore.js';
import { boundsWithDefaults, type Bounds } from '../../checker/model.js';
import { thinMetadataModel } from './model.js';

function run(profile: string, mutant: string | null, bounds: Bounds = {}, all = true) {
  const b = boundsWithDefaults(thinMetadataModel, bounds);
  const r = explore(thinMetadataModel.instance(b, { profile, mutant }), { allViolations: all, checkProgress: all });
  console.log(`[explore] thin-metadata ${profile} ${mutant ?? '-'} ${JSON.stringify(bounds)}: ${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(1)} s`);
  return r;
}

describe('thin-metadata exhaustive exploration', () => {
  it('fixed: every invariant holds at the default bounds, no deadlock, a clean state stays reachable', () => {
    const r = run('fixed', null);
    expect(r.violations.map((v) => `${v.property}: ${v.message}`)).toEqual([]);
    expect(r.complete).toBe(true);
    // The crash operator and every commit step were exercised.
    for (const t of ['@crash', 'commit_begin', 'meta_flush', 'sb_write', 'sb_flush', 'snap', 'write_fua', 'discard', 'flush']) {
      expect(r.eventCoverage[t] ?? 0, t).toBeGreaterThan(0);
    }
  }, 600_000);

  it('fixed: holds with FUA-only writes and with the atomic commit', () => {
    for (const b of [{ fua: 2 }, { phased: 0, devices: 1, vblocks: 2, dblocks: 3, writes: 3 }]) {
      const r = run('fixed', null, b);
      expect(r.violations.map((v) => v.message)).toEqual([]);
      expect(r.complete).toBe(true);
    }
  }, 600_000);

  it('fixed: messages (set_transaction_id, metadata snapshots, close) keep every invariant with atomic commits', () => {
    const r = run('fixed', null, { devices: 2, vblocks: 1, dblocks: 1, writes: 1, tids: 1, metasnap: 1, close: 1, phased: 0 });
    expect(r.violations.map((v) => v.message)).toEqual([]);
    expect(r.complete).toBe(true);
  }, 600_000);

  it('fixed (held root in core, stable 3dc9ae10): reserve/release never let a superblock reach the disk before the commit that names it', () => {
    const r = run('fixed', null, { devices: 1, vblocks: 1, dblocks: 1, writes: 0, metasnap: 1 });
    expect(r.violations.map((v) => v.message)).toEqual([]);
    expect(r.complete).toBe(true);
    expect(r.eventCoverage['reserve'] ?? 0).toBeGreaterThan(0);
    expect(r.eventCoverage['release'] ?? 0).toBeGreaterThan(0);
  }, 600_000);

  it('fixed: the events the implementation mutants need keep every invariant (failed commits, metadata resize, a raced reserve, messages committed at once)', () => {
    for (const b of [
      { devices: 1, vblocks: 2, dblocks: 2, writes: 2, faults: 1, metaresize: 1 },
      { devices: 2, vblocks: 1, dblocks: 2, writes: 2, metasnap: 2, faults: 1, autocommit: 1, phased: 0 },
    ]) {
      const r = run('fixed', null, b);
      expect(r.violations.map((v) => `${v.property}: ${v.message}`)).toEqual([]);
      expect(r.complete).toBe(true);
      for (const t of ['commit_fail', ...('metaresize' in b ? ['resize_meta'] : ['reserve_race'])]) expect(r.eventCoverage[t] ?? 0, t).toBeGreaterThan(0);
    }
  }, 600_000);

  it('held-root-in-buffer (kernels from a9d45396 to stable 3dc9ae10): FINDING - the first flush of the next commit writes the old superblock with the new held root (THIN-META-4)', () => {
    // dm_tm_pre_commit → dm_bm_flush writes every dirty buffer, block 0 included, before the new
    // superblock; a crash in that window leaves a held root the committed space map does not count.
    const r = run('fixed', 'held-root-in-buffer', { devices: 1, vblocks: 1, dblocks: 1, writes: 0, metasnap: 1 }, false);
    expect(r.violations[0]?.spec).toEqual(['THIN-META-4', 'THIN-META-15']);
    expect(r.violations[0]?.path.map((e) => e.type)).toEqual(['reserve', 'commit_begin', 'meta_flush']);
  }, 600_000);

  it('linux-3.14: a superblock dirtied by reserve is written with the other blocks before the flush (#22, THIN-META-1)', () => {
    const r = run('linux-3.14', null, { devices: 1, vblocks: 1, dblocks: 1, writes: 0, metasnap: 1 }, false);
    expect(r.violations[0]?.spec).toContain('THIN-META-1');
  }, 600_000);

  it('linux-3.14: finds #24 (THIN-META-7) and #25 (THIN-META-5)', () => {
    const r = run('linux-3.14', null);
    const found = new Set(r.violations.flatMap((v) => v.spec));
    expect(found.has('THIN-META-7')).toBe(true);
    const fua = run('linux-3.14', null, { fua: 2 });
    expect(fua.violations.map((v) => v.spec[0])).toEqual(['THIN-META-5']);
  }, 600_000);

  // Implementation mutants (killedBy lockstep) leave the machine correct; mutants.test.ts hunts them.
  for (const m of thinMetadataModel.mutants.filter((x) => x.killedBy.includes('explore'))) {
    it(`mutant ${m.id} breaks ${m.breaks.join('/')}`, () => {
      const r = run('fixed', m.id, m.bounds ?? {}, false);
      expect(r.violations.length).toBeGreaterThan(0);
      expect(r.violations[0]!.spec.some((s) => m.breaks.includes(s))).toBe(true);
    }, 600_000);
  }
});

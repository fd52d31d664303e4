// The implementation mutants of impl/thin/mutants.ts (dm-thin.md §10) as first-class members of the
// thin-metadata model. Every mutant is declared in the model (hunted by properties/mutants.test.ts,
// trace under counterexamples/thin-metadata/, replayed by properties/counterexamples.test.ts);
// impl/thin/mutants.test.ts adds unit scenarios for some. For each mutant that corrupts metadata on disk, the image its committed
// counterexample leaves is rejected by the project's checker (impl/thin/tools/check.ts) and by the
// real thin_check (Debian thin-provisioning-tools; skipped with a message when absent, failing
// under CI=true), while the same steps on the correct implementation leave an image both accept.
// Kernel: drivers/md/dm-thin-metadata.c, drivers/md/persistent-data/ (see impl/thin/mutants.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { counterexamplePath } from '../../checker/hunt.js';
import type { Variant } from '../../checker/model.js';
import { loadTrace, type Trace } from '../../checker/trace.js';
import type { BlockDevice } from '../../impl/block-device.js';
import { THIN_METADATA_MUTANT_IDS } from '../../impl/thin/mutants.js';
import { checkMetadata, formatFindings } from '../../impl/thin/tools/check.js';
import { oracleStatus, oracleTempDir, thinCheck } from '../../impl/thin/tools/oracle.js';
import { ThinImplHandle, type ImplFinding } from './adapter.js';
import { thinMetadataModel } from './model.js';

/** Mutants whose counterexample ends in on-disk damage (the others: a refused resize, a stale
 * snapshot caught before its commit, an allocation or free-count difference seen in core). */
const CORRUPTING = ['thin-08-sm-extend-single-pass', 'thin-20-release-shallow-dec', 'thin-22-sb-before-flush', 'thin-27-roots-before-precommit', 'btree-remove-no-rebalance'];

/**
 * Killed by the explorer (its window is between two flushes of one commit); the crash image of
 * that window is checked against check.ts and thin_check in impl/thin/mutants.test.ts.
 */
const EXPLORE_ONLY = ['held-root-in-buffer'];

const modelMutants = thinMetadataModel.mutants.filter((m) => THIN_METADATA_MUTANT_IDS.includes(m.id));
const implMutants = modelMutants.filter((m) => !EXPLORE_ONLY.includes(m.id));

/** Drive the implementation alone through a trace's steps; stop at its first finding. */
function drive(t: Trace, variant: Variant): { finding: ImplFinding | null; handle: ThinImplHandle } {
  const handle = new ThinImplHandle(variant, t.bounds);
  // The pool's formatting commit is already a step of its own (thin-27's trace has no other).
  let finding = handle.implFinding();
  for (const e of t.steps) {
    if (finding) break;
    handle.apply(e);
    finding = handle.implFinding();
  }
  return { finding, handle };
}

/** thin_check's verdict on an image: its exit status, or null when the tool is absent (skip). */
function thinCheckRc(img: BlockDevice, what: string): number | null {
  const o = oracleStatus();
  if (o.mode === 'fail') throw new Error(o.message);
  if (o.mode === 'skip') {
    console.warn(`skipping thin_check of ${what}: ${o.message}`);
    return null;
  }
  const t = oracleTempDir();
  try {
    const p = join(t.dir, 'metadata.bin');
    writeFileSync(p, img.toBuffer());
    return thinCheck(p, ['-q']).rc;
  } finally {
    t.cleanup();
  }
}

/**
 * The damaged image is rejected by check.ts and thin_check; the same steps under `good` leave an
 * image both accept (negative control). Returns the checker's findings on the damaged image.
 */
function expectRejectedThenClean(img: BlockDevice, t: Trace, good: Variant, what: string): string {
  const ours = checkMetadata(img);
  expect(ours.ok, 'impl/thin/tools/check.ts must reject it').toBe(false);
  const rc = thinCheckRc(img, `${what}'s image`);
  if (rc !== null) expect(rc, `thin_check must reject ${what}'s image (${formatFindings(ours).split('\n')[0]})`).not.toBe(0);

  const clean = drive(t, good);
  expect(clean.finding?.message ?? null).toBeNull();
  const cleanImg = clean.handle.metadataImage();
  expect(checkMetadata(cleanImg).ok, formatFindings(checkMetadata(cleanImg))).toBe(true);
  const rcClean = thinCheckRc(cleanImg, `the correct code's image for ${what}`);
  if (rcClean !== null) expect(rcClean).toBe(0);
  return formatFindings(ours);
}

describe('thin-metadata shipped defect rebalance2-node-below-third (474e5595)', () => {
  it('its counterexample leaves an image check.ts and thin_check reject under linux-3.14, and both accept under fixed', () => {
    const t = loadTrace(counterexamplePath('counterexamples', 'thin-metadata', 'rebalance2-node-below-third', 'lockstep'), [thinMetadataModel.id]);
    expect(t.profile).toBe('linux-3.14');
    const bad = drive(t, { profile: 'linux-3.14', mutant: null });
    expect(bad.finding?.spec).toEqual(['THIN-META-16']);
    const findings = expectRejectedThenClean(bad.finding!.image!, t, { profile: 'fixed', mutant: null }, 'rebalance2-node-below-third');
    expect(findings).toMatch(/too few entries in btree_node: 83, expected at least 84/);
  });
});

describe('thin-metadata implementation mutants', () => {
  it('every implementation mutant is declared in the model, so it is hunted and has a trace', () => {
    const inModel = modelMutants.map((m) => m.id);
    expect([...inModel].sort()).toEqual([...THIN_METADATA_MUTANT_IDS].sort());
    for (const m of modelMutants) expect(m.killedBy, m.id).toEqual(EXPLORE_ONLY.includes(m.id) ? ['explore'] : ['lockstep']);
  });

  for (const m of implMutants) {
    const file = counterexamplePath('counterexamples', 'thin-metadata', m.id, 'lockstep');
    const corrupting = CORRUPTING.includes(m.id);
    it(`${m.id}: ${corrupting ? 'the image its counterexample leaves is rejected by check.ts and thin_check' : 'its counterexample leaves no damaged image'}`, () => {
      const t = loadTrace(file, [thinMetadataModel.id]);
      const bad = drive(t, { profile: t.profile, mutant: m.id });
      if (t.violation?.kind !== 'impl') {
        // A disagreement with the machine (allocation, free count): the implementation alone shows nothing.
        expect(corrupting).toBe(false);
        expect(t.violation?.property).toBe('projection');
        return;
      }
      expect(bad.finding, `the implementation alone must show ${m.id}`).not.toBeNull();
      expect(bad.finding!.spec).toEqual(t.violation.spec);
      if (!corrupting) {
        expect(bad.finding!.image, 'a finding with an image is on-disk damage: list the mutant in CORRUPTING').toBeNull();
        return;
      }
      const img = bad.finding!.image;
      expect(img, 'a corrupting mutant must leave an image').not.toBeNull();
      expectRejectedThenClean(img!, t, { profile: t.profile, mutant: null }, m.id);
    }, 120_000);
  }
});

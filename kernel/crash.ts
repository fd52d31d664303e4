// Crash consistency of the REAL kernel's metadata: rebuild the metadata device from the
// dm-log-writes log at every flush point (and at random subsets of each epoch's writes, since a
// disk may land an epoch's writes in any subset and order), and check each image with the
// project's reader-based checker and, where installed, thin_check. THIN-META-1 (atomic commit):
// every such image must be a consistent committed pool. A negative control (one epoch's writes
// dropped: a device that lied about a flush) must make the checkers fail, which shows they look.

import { PoolMetadata } from '../impl/thin/pool-metadata.js';
import { checkMetadata } from '../impl/thin/tools/check.js';
import { hostToolAvailable, hostToolMany } from './golden.js';
import { deviceFromImage } from './image.js';
import { commitShape, crashImages, epochs, parseLogWrites, META_BLOCK, type LwLog } from './logwrites.js';

/**
 * The project's checker on one image: open it with the impl's reader (superblock, btree node and
 * space-map checksums are validated while walking), then check what thin_check checks about
 * references: each device's mapped_blocks equals its mappings, every mapped data block is inside
 * the data device and is counted as used by the data space map. Leaked blocks
 * (counted but unmapped) are accepted, as thin_check does: the kernel leaks one on an aborted commit.
 */
export function implCheck(image: Buffer): string | null {
  let pmd: PoolMetadata;
  try {
    pmd = PoolMetadata.open(deviceFromImage(image), { variant: { profile: 'fixed', mutant: null } });
    const s = pmd.summary();
    // (reference counts are the checker tool's job: a snapshot shares leaves, counted once)
    for (const d of s.devices) {
      if (d.mappedBlocks !== d.mappings.length) return `device ${d.id}: mapped_blocks ${d.mappedBlocks} but ${d.mappings.length} mappings`;
      for (const [v, b] of d.mappings) {
        if (b >= s.nrDataBlocks) return `device ${d.id} maps block ${v} to data block ${b}, beyond the ${s.nrDataBlocks}-block data device`;
        if (pmd.dataBlockRefCount(b) === 0) return `device ${d.id} maps block ${v} to data block ${b}, which the data space map counts as free`;
      }
    }
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** The project's thin_check (impl/thin/tools/check.ts): null when it finds no error (data leaks accepted). */
export function toolCheck(image: Buffer): string | null {
  try {
    const r = checkMetadata(deviceFromImage(image));
    // A leaked data block (counted, mapped by nobody) is what the kernel leaves when a commit lands
    // between a block's allocation and the insertion of its mapping; thin_check accepts it too.
    const errors = r.findings.filter((f) => f.severity === 'error' && f.code !== 'data-leak');
    if (errors.length === 0) return null;
    return errors.map((f) => f.message).slice(0, 2).join('; ');
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Both project checkers: the checker tool and the reader. */
export function projectCheck(image: Buffer): { checker: 'check' | 'reader'; message: string } | null {
  const a = toolCheck(image);
  if (a !== null) return { checker: 'check', message: a };
  const b = implCheck(image);
  if (b !== null) return { checker: 'reader', message: b };
  return null;
}

export interface CrashFailure {
  readonly label: string;
  readonly checker: 'check' | 'reader' | 'thin_check';
  readonly message: string;
}

export interface CrashReport {
  readonly flushPoints: number;
  readonly subsetImages: number;
  readonly failures: readonly CrashFailure[];
  readonly thinCheckUsed: boolean;
  /** negative control: the epoch dropped, images checked after it, and how many failed */
  readonly negative: { readonly epoch: number; readonly checked: number; readonly failed: number } | null;
  readonly shape: { readonly commits: number; readonly violations: readonly string[] };
}

/** A data-carrying epoch right before a commit: dropping it must break the committed tree. */
export function pickNegativeEpoch(log: LwLog): number | null {
  const eps = epochs(log);
  const ss = log.sectorSize;
  const cands: number[] = [];
  for (let n = 0; n + 1 < eps.length; n++) {
    const here = eps[n]?.writes ?? [];
    const next = eps[n + 1]?.writes ?? [];
    const writesSb = (ws: typeof here): boolean => ws.some((w) => Math.floor((w.sector * ss) / META_BLOCK) === 0);
    if (here.length >= 2 && !writesSb(here) && writesSb(next) && n > 0) cands.push(n);
  }
  return cands.length ? (cands[Math.floor(cands.length / 2)] as number) : null;
}

export function checkCrashConsistency(
  logBuf: Buffer,
  imageBytes: number,
  opts: { subsetsPerEpoch: number; seed: number; thinCheck: boolean },
): CrashReport {
  const log = parseLogWrites(logBuf);
  const failures: CrashFailure[] = [];
  let flushPoints = 0, subsetImages = 0;
  const useThinCheck = opts.thinCheck && hostToolAvailable('thin_check');
  const forThinCheck: { label: string; image: Buffer }[] = [];
  for (const ci of crashImages(log, { imageBytes, subsetsPerEpoch: opts.subsetsPerEpoch, seed: opts.seed })) {
    if (ci.label.startsWith('flush point')) flushPoints++;
    else subsetImages++;
    const m = projectCheck(ci.image);
    if (m !== null) failures.push({ label: ci.label, ...m });
    if (useThinCheck && ci.label.startsWith('flush point')) forThinCheck.push({ label: ci.label, image: ci.image });
  }
  // thin_check runs are batched: each one mostly waits in the kernel, so they overlap well
  const rs = hostToolMany('thin_check', forThinCheck.map((x) => x.image), ['-q']) ?? [];
  rs.forEach((r, i) => {
    const label = forThinCheck[i]?.label ?? '?';
    if (r.rc !== 0) failures.push({ label, checker: 'thin_check', message: r.out.trim().split('\n').slice(-2).join(' | ') });
  });
  const drop = pickNegativeEpoch(log);
  let negative: CrashReport['negative'] = null;
  if (drop !== null) {
    let checked = 0, failed = 0;
    for (const ci of crashImages(log, { imageBytes, dropEpoch: drop })) {
      if (ci.faithful) continue;
      checked++;
      if (projectCheck(ci.image) !== null) failed++;
    }
    negative = { epoch: drop, checked, failed };
  }
  const shape = commitShape(log);
  return { flushPoints, subsetImages, failures, thinCheckUsed: useThinCheck, negative, shape: { commits: shape.commits, violations: shape.violations } };
}

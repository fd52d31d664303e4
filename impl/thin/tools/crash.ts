// Crash-consistency checking of dm-thin metadata commits (the guarantee of
// drivers/md/dm-thin-metadata.c __commit_transaction + persistent-data dm_tm_commit: after a power
// cut the metadata is exactly the last committed transaction, or the new one once its superblock
// landed). Crash images are built from impl/block-device.ts's volatile-write log at every flush.

import type { BlockDevice } from '../../block-device.js';
import { checkMetadata, formatFindings } from './check.js';
import { emitXml, readXmlModel } from './dump.js';

export interface CrashViolation {
  readonly keep: readonly number[];
  readonly torn: number | null;
  readonly message: string;
}

/** Which subsets of `n` volatile writes to try: all of them up to 2^maxAll, else a deterministic sample. */
export function crashSubsets(n: number, maxAll = 10, samples = 256, seed = 1): { keep: number[]; torn: number | null }[] {
  const out: { keep: number[]; torn: number | null }[] = [];
  const all = Array.from({ length: n }, (_, i) => i);
  if (n <= maxAll) {
    for (let mask = 0; mask < 1 << n; mask++) out.push({ keep: all.filter((i) => mask & (1 << i)), torn: null });
  } else {
    out.push({ keep: [], torn: null }, { keep: all, torn: null });
    for (let i = 0; i < n; i++) {
      out.push({ keep: all.slice(0, i), torn: null });
      out.push({ keep: all.filter((j) => j !== i), torn: null });
    }
    let x = seed >>> 0 || 1;
    const rnd = (): number => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    };
    for (let s = 0; s < samples; s++) out.push({ keep: all.filter(() => rnd() & 1), torn: null });
  }
  return out;
}

function modelText(dev: BlockDevice): string {
  try {
    return emitXml(readXmlModel(dev));
  } catch (e) {
    return `unreadable: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Run `commit` (or any metadata operation) and check every crash image of every flush window it
 * opens or closes, plus the window left open at the end: each must pass the checker and read back
 * as the state before or the state after. Tearing is tried on superblock writes (block 0).
 */
export function checkCrashesDuring(dev: BlockDevice, op: () => void, opts: { maxAll?: number; samples?: number } = {}): CrashViolation[] {
  const before = modelText(dev.crashImage([], null));
  const images: { keep: number[]; torn: number | null; img: BlockDevice }[] = [];
  const capture = (d: BlockDevice): void => {
    const pend = d.volatileWrites();
    for (const s of crashSubsets(pend.length, opts.maxAll ?? 10, opts.samples ?? 256)) {
      images.push({ ...s, img: d.crashImage(s.keep, null) });
      // A superblock write may be torn: only its first sector lands.
      for (const i of s.keep) if (pend[i]!.block === 0) images.push({ keep: s.keep, torn: i, img: d.crashImage(s.keep, i) });
    }
  };
  const prev = dev.beforeFlush;
  dev.beforeFlush = capture;
  let opError: unknown = null;
  try {
    op();
  } catch (e) {
    opError = e;
  } finally {
    dev.beforeFlush = prev;
  }
  capture(dev);
  const after = modelText(dev.snapshot());
  const violations: CrashViolation[] = [];
  for (const { keep, torn, img } of images) {
    const r = checkMetadata(img);
    if (!r.ok) {
      violations.push({ keep, torn, message: `crash image fails the checker: ${formatFindings(r).split('\n').slice(0, 4).join('; ')}` });
      continue;
    }
    const m = modelText(img);
    if (m !== before && m !== after) violations.push({ keep, torn, message: 'crash image reads back as neither the state before nor the state after the operation' });
  }
  if (opError !== null && violations.length === 0) throw opError;
  return violations;
}

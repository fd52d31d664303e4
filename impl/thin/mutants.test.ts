// One test per seeded mutant of the dm-thin metadata implementation (impl/thin/mutants.ts): a small
// step sequence that the correct implementation ('fixed' profile) runs clean and the mutant turns
// into a checker finding, a crash-consistency violation or a refused operation, each naming its
// spec rule. Where the mutant corrupts metadata on disk, the real thin_check must reject the image
// too (when thin-provisioning-tools is installed). The minimal sequences are committed as traces in
// counterexamples/thin-metadata/impl-scenarios/<mutant>.impl.json (regenerate with DMCHECK_WRITE_CEX=1).

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ev, Variant } from '../../checker/model.js';
import { makeTrace, serializeTrace } from '../../checker/trace.js';
import { BlockDevice } from '../block-device.js';
import { MetadataError, PoolMetadata } from './pool-metadata.js';
import { THIN_METADATA_MUTANT_IDS, thinMetadataMutants } from './mutants.js';
import { checkMetadata, formatFindings } from './tools/check.js';
import { checkCrashesDuring } from './tools/crash.js';
import { oracleStatus, oracleTempDir, thinCheck } from './tools/oracle.js';

/** What running the steps produced: null when clean, else the violation with its spec IDs. */
interface Outcome {
  readonly spec: readonly string[];
  readonly message: string;
  /** The metadata image to hand to thin_check when the violation is on-disk corruption. */
  readonly image: BlockDevice | null;
}

interface Scenario {
  readonly mutant: string;
  readonly steps: readonly Ev[];
  /** Does the real thin_check reject the corrupted image? */
  readonly thinCheckRejects: boolean;
}

function run(steps: readonly Ev[], variant: Variant): Outcome | null {
  let dev = new BlockDevice(256);
  let pmd: PoolMetadata | null = null;
  const need = (): PoolMetadata => {
    if (!pmd) throw new Error('scenario must start with a format step');
    return pmd;
  };
  const checked = (spec: readonly string[]): Outcome | null => {
    const img = dev.snapshot();
    const r = checkMetadata(img);
    return r.ok ? null : { spec, message: formatFindings(r), image: img };
  };
  for (const s of steps) {
    const n = (k: string): number => Number(s[k]);
    try {
      switch (s.type) {
        case 'format':
          dev = new BlockDevice(n('mdBlocks'));
          pmd = PoolMetadata.format(dev, { variant, dataBlockSize: 128, nrDataBlocks: n('dataBlocks') });
          break;
        case 'create':
          need().createThin(n('dev'));
          break;
        case 'map':
          for (let i = 0; i < n('n'); i++) need().insertMapping(n('dev'), n('v') + i, need().allocDataBlock());
          break;
        case 'unmap':
          for (let i = 0; i < n('n'); i++) need().removeMapping(n('dev'), n('v') + i);
          break;
        case 'alloc-free': {
          const b = need().allocDataBlock();
          need().decDataBlock(b);
          break;
        }
        case 'commit': {
          need().commit();
          const o = checked((s['spec'] as string[] | undefined) ?? ['THIN-META-4', 'THIN-META-16']);
          if (o) return o;
          break;
        }
        case 'free-count': {
          // THIN-META-17: the free count of the open transaction equals what a commit reports.
          const before = need().freeDataBlocks();
          need().commit();
          const after = need().freeDataBlocks();
          if (before !== after) return { spec: ['THIN-META-17'], message: `free data blocks drifted: ${before} in the open transaction, ${after} after commit`, image: null };
          break;
        }
        case 'reserve':
          need().reserveMetadataSnap();
          break;
        case 'release':
          need().releaseMetadataSnap();
          break;
        case 'resize-metadata':
          dev.resize(n('blocks'));
          need().resizeMetadataDevice(n('blocks'));
          break;
        case 'nested-inc-dec': {
          // An op sequence queued inside one recursive space-map update: a block counted and then
          // released again (what a shadow of a freshly allocated node does).
          const sm = need().internals.metadataSm;
          const b = n('block');
          sm.withRecursion(() => {
            sm.incBlock(b);
            sm.decBlock(b);
          });
          break;
        }
        case 'crash-after-first-flush': {
          // Power cut right after the first flush of the next commit (dm_tm_pre_commit →
          // dm_bm_flush has made every dirty block durable, the new superblock is not written yet):
          // the image is the committed state plus that epoch. It must pass the checker, and the
          // superblock must not have been in the epoch (THIN-META-2, as the kernel's log shows).
          let epoch: readonly number[] | null = null;
          let img: BlockDevice | null = null;
          dev.beforeFlush = (d): void => {
            if (epoch !== null) return;
            const pend = d.volatileWrites();
            epoch = pend.map((w) => w.block);
            img = d.crashImage(pend.map((_, i) => i), null);
          };
          try {
            need().commit();
          } finally {
            dev.beforeFlush = null;
          }
          const blocks: readonly number[] = epoch ?? [];
          if (img === null) throw new Error('scenario: the commit issued no flush');
          const r = checkMetadata(img);
          if (!r.ok) return { spec: ['THIN-META-4', 'THIN-META-16'], message: `crash after the first flush: ${formatFindings(r)}`, image: img };
          if (blocks.includes(0) && blocks.length > 1) {
            return { spec: ['THIN-META-2'], message: `the first flush of the commit wrote the superblock together with blocks [${blocks.filter((b) => b !== 0).join(' ')}]`, image: img };
          }
          break;
        }
        case 'commit-write-error': {
          // A metadata write fails during commit; dm-thin then aborts (the teardown writes back
          // every dirty buffer) and the pool reopens from disk.
          const p = need();
          const victim = p.internals.bm.dirtyBlocks().find((b) => b !== 0);
          if (victim === undefined) throw new Error('scenario: nothing dirty to fail');
          dev.armFault({ op: 'write', block: victim, sticky: true });
          expect(() => p.commit()).toThrow(MetadataError);
          try {
            p.abort();
          } catch {
            // a failed reopen is itself a finding below
          }
          dev.clearFaults();
          const o = checked(['THIN-META-1', 'THIN-META-2']);
          if (o) return o;
          break;
        }
        default:
          throw new Error(`unknown scenario step ${s.type}`);
      }
    } catch (e) {
      if (e instanceof MetadataError) {
        const spec = (s['spec'] as string[] | undefined) ?? ['THIN-META-17'];
        return { spec, message: `${s.type} failed: ${e.message}`, image: null };
      }
      throw e;
    }
  }
  return null;
}

const F = (mdBlocks = 256, dataBlocks = 1024): Ev => ({ type: 'format', mdBlocks, dataBlocks });

const scenarios: readonly Scenario[] = [
  {
    mutant: 'thin-08-sm-extend-single-pass',
    steps: [F(20000, 64), { type: 'resize-metadata', blocks: 20000 + 16320 }, { type: 'commit' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'thin-09-extend-nr-blocks-late',
    steps: [F(20000, 64), { type: 'resize-metadata', blocks: 20000 + 16320, spec: ['THIN-META-17'] }, { type: 'commit' }],
    thinCheckRejects: false,
  },
  {
    mutant: 'thin-10-bop-lifo',
    steps: [F(), { type: 'nested-inc-dec', block: 100, spec: ['THIN-META-4'] }, { type: 'commit' }],
    thinCheckRejects: false,
  },
  {
    mutant: 'thin-20-release-shallow-dec',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'map', dev: 1, v: 0, n: 300 }, { type: 'commit' }, { type: 'reserve' }, { type: 'map', dev: 1, v: 0, n: 300 }, { type: 'commit' }, { type: 'release' }, { type: 'commit' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'thin-21-reserve-no-commit',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'map', dev: 1, v: 0, n: 300 }, { type: 'commit' }, { type: 'map', dev: 1, v: 300, n: 10 }, { type: 'reserve' }, { type: 'map', dev: 1, v: 400, n: 10 }, { type: 'commit' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'thin-22-sb-before-flush',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'commit' }, { type: 'map', dev: 1, v: 0, n: 50 }, { type: 'commit-write-error' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'thin-26-alloc-stale-cursor',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'commit' }, { type: 'map', dev: 1, v: 0, n: 2 }, { type: 'commit', spec: ['THIN-META-3'] }],
    thinCheckRejects: false,
  },
  {
    mutant: 'thin-27-roots-before-precommit',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'commit' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'thin-28-free-count-drift',
    steps: [F(), { type: 'alloc-free' }, { type: 'free-count' }],
    thinCheckRejects: false,
  },
  {
    // reserve leaves block 0 dirty (old roots, new held root); the next commit's pre-commit flush
    // writes it: a crash there leaves a held root the committed metadata space map does not count.
    mutant: 'held-root-in-buffer',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'map', dev: 1, v: 0, n: 20 }, { type: 'commit' }, { type: 'reserve' }, { type: 'crash-after-first-flush' }],
    thinCheckRejects: true,
  },
  {
    mutant: 'btree-remove-no-rebalance',
    steps: [F(), { type: 'create', dev: 1 }, { type: 'map', dev: 1, v: 0, n: 600 }, { type: 'commit' }, { type: 'unmap', dev: 1, v: 0, n: 500 }, { type: 'commit' }],
    thinCheckRejects: true,
  },
];

// Impl-level scenarios (their own step vocabulary, interpreted by run() above), kept apart from the
// machine-replayable traces that properties/counterexamples.test.ts replays.
const CEX_DIR = join(import.meta.dirname, '../../counterexamples/thin-metadata/impl-scenarios');

describe('thin metadata mutants', () => {
  it('every mutant in thinMetadataMutants has a scenario, and every id is unique', () => {
    expect(new Set(THIN_METADATA_MUTANT_IDS).size).toBe(THIN_METADATA_MUTANT_IDS.length);
    expect(scenarios.map((s) => s.mutant).sort()).toEqual([...THIN_METADATA_MUTANT_IDS].sort());
  });

  for (const sc of scenarios) {
    const info = thinMetadataMutants.find((m) => m.id === sc.mutant)!;
    it(`${sc.mutant}: clean when fixed, violates ${info.breaks.join('/')} when seeded`, () => {
      expect(run(sc.steps, { profile: 'fixed', mutant: null })).toBeNull();
      const bad = run(sc.steps, { profile: 'fixed', mutant: sc.mutant });
      expect(bad, 'the mutant must be caught').not.toBeNull();
      expect(bad!.spec.some((id) => info.breaks.includes(id)), `${bad!.spec} vs ${info.breaks}: ${bad!.message}`).toBe(true);

      const file = join(CEX_DIR, `${sc.mutant}.impl.json`);
      const trace = makeTrace({
        model: 'thin-metadata',
        bounds: {},
        profile: 'fixed',
        mutant: sc.mutant,
        engine: 'lockstep',
        initialIndex: 0,
        steps: sc.steps,
        violation: { kind: 'impl', property: 'impl/thin/mutants.test.ts', spec: bad!.spec, message: bad!.message.split('\n')[0]! },
        note: 'impl-level scenario for impl/thin/pool-metadata.ts (interpreted by impl/thin/mutants.test.ts run())',
      });
      if (process.env['DMCHECK_WRITE_CEX'] === '1') writeFileSync(file, serializeTrace(trace));
      expect(existsSync(file), `missing ${file}: run with DMCHECK_WRITE_CEX=1`).toBe(true);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { steps: Ev[]; violation: { spec: string[] } };
      expect(saved.steps).toEqual(sc.steps);
      expect(saved.violation.spec).toEqual([...bad!.spec]);

      const o = oracleStatus();
      if (sc.thinCheckRejects && bad!.image) {
        if (o.mode === 'fail') throw new Error(o.message);
        if (o.mode === 'run') {
          const t = oracleTempDir();
          try {
            const p = join(t.dir, 'img.bin');
            writeFileSync(p, bad!.image.toBuffer());
            expect(thinCheck(p, ['-q']).rc, 'thin_check must reject the corrupted image').not.toBe(0);
          } finally {
            t.cleanup();
          }
        } else console.warn(`skipping thin_check part of ${sc.mutant}: ${o.message}`);
      }
    });
  }

  it('thin-22 under the 3.14 profile: the same write error corrupts metadata (shipped defect, THIN-META-2)', () => {
    const sc = scenarios.find((s) => s.mutant === 'thin-22-sb-before-flush')!;
    expect(run(sc.steps, { profile: 'linux-3.14', mutant: null })?.spec).toContain('THIN-META-2');
  });

  it('thin-22 seeded: a crash image of a commit with the superblock already dirty is inconsistent (THIN-META-1)', () => {
    const run22 = (variant: Variant): number => {
      const dev = new BlockDevice(256);
      const pmd = PoolMetadata.format(dev, { variant, dataBlockSize: 128, nrDataBlocks: 1024 });
      pmd.createThin(1);
      pmd.commit();
      pmd.setNeedsCheck(); // dirties the superblock before the commit
      for (let i = 0; i < 5; i++) pmd.insertMapping(1, i, pmd.allocDataBlock());
      return checkCrashesDuring(dev, () => pmd.commit()).filter((v) => v.message.includes('fails the checker')).length;
    };
    expect(run22({ profile: 'fixed', mutant: null })).toBe(0);
    expect(run22({ profile: 'fixed', mutant: 'thin-22-sb-before-flush' })).toBeGreaterThan(0);
  });
});

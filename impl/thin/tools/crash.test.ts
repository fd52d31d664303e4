// Crash consistency of the reference implementation (drivers/md/dm-thin-metadata.c
// __commit_transaction over persistent-data's dm_tm_commit): for random operation sequences, every
// crash image of every commit (all subsets of the volatile writes at each flush, plus torn
// superblock writes) passes the checker and reads back as the state before or after (THIN-META-1,
// THIN-META-2, THIN-META-13).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BlockDevice } from '../../block-device.js';
import { PoolMetadata } from '../pool-metadata.js';
import { applyOp, opArb, type Op } from '../testing.js';
import { checkCrashesDuring, crashSubsets } from './crash.js';

describe('crash images', () => {
  it('crashSubsets enumerates all subsets of small windows and samples big ones', () => {
    expect(crashSubsets(3).length).toBe(8);
    const big = crashSubsets(20, 10, 16);
    expect(big.length).toBe(2 + 40 + 16);
  });

  for (const profile of ['linux-3.14', 'fixed']) {
    it(`every crash image of every commit is the old or the new transaction (${profile})`, () => {
      const seed = profile === 'fixed' ? 777 : 314;
      console.log(`fast-check seed ${seed} (crash property, ${profile})`);
      const noHeld = (op: Op): boolean => op.k !== 'reserve' && op.k !== 'release';
      fc.assert(
        fc.property(fc.array(opArb.filter(noHeld), { minLength: 1, maxLength: 12 }), (ops) => {
          const dev = new BlockDevice(256);
          const pmd = PoolMetadata.format(dev, { variant: { profile, mutant: null }, dataBlockSize: 128, nrDataBlocks: 1024 });
          const st = { heldDirty: false };
          for (const op of ops) {
            const v = checkCrashesDuring(dev, () => applyOp(pmd, op, st), { maxAll: 8, samples: 48 });
            if (v.length) throw new Error(`after ${JSON.stringify(ops)} at ${JSON.stringify(op)}: ${v[0]!.message} (keep ${JSON.stringify(v[0]!.keep)}, torn ${v[0]!.torn})`);
          }
        }),
        { seed, numRuns: 25 },
      );
    });
  }
});

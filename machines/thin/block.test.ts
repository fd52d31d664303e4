// The per-block machine (machines/thin/block.ts) is a sound abstraction of the pool-transaction
// machine: walking every reachable state of the pool machine under 'fixed' at small bounds, every
// change of a block's status is a move of the block machine under the event that caused it, and
// events that do not concern a block leave its status alone.
import { describe, expect, it } from 'vitest';
import type { MState } from '../../checker/machine.js';
import type { Ev } from '../../checker/model.js';
import { withOperators } from '../../checker/operators.js';
import { thinInstance } from '../../properties/thin-metadata/model.js';
import { blockEventOf, blockMachine, blockStatus } from './block.js';
import type { ThinCtx } from './pool-txn.js';

type S = MState<ThinCtx>;

describe('thin-block machine abstracts the pool machine', () => {
  it('every reachable move of every (device, block) is allowed (fixed, devices=2, vblocks=1, dblocks=2, writes=2)', () => {
    const inst = thinInstance({ devices: 2, vblocks: 1, dblocks: 2, writes: 2, tids: 0, metasnap: 0, fua: 1, close: 0, phased: 1 }, { profile: 'fixed', mutant: null });
    const sys = withOperators(inst as never) as unknown as {
      initial: () => readonly S[];
      events: (s: S) => readonly Ev[];
      step: (s: S, e: Ev) => S | null;
      key: (s: S) => string;
    };
    const queue: S[] = [...sys.initial()];
    const seen = new Set(queue.map((s) => sys.key(s)));
    const bad: string[] = [];
    const moves = new Set<string>();
    for (let i = 0; i < queue.length; i++) {
      const s = queue[i]!;
      for (const e of sys.events(s)) {
        const n = sys.step(s, e);
        if (n === null) continue;
        for (let d = 0; d < 2; d++) {
          const from = blockStatus(s.context, d, 0);
          const to = blockStatus(n.context, d, 0);
          const be = blockEventOf(e, d, 0);
          if (be === null) {
            if (from !== to) bad.push(`${JSON.stringify(e)} changed thin ${d} block 0 from ${from} to ${to} without concerning it`);
            continue;
          }
          const next = blockMachine.step({ value: [from], context: null }, { type: be, to });
          if (next === null) bad.push(`${from} --${be}--> ${to} (pool event ${JSON.stringify(e)}) is not a block-machine move`);
          else moves.add(`${from}-${be}-${to}`);
        }
        const k = sys.key(n);
        if (!seen.has(k)) {
          seen.add(k);
          queue.push(n);
        }
      }
    }
    console.log(`[block] ${queue.length} pool states, ${moves.size} distinct block moves`);
    expect([...new Set(bad)].slice(0, 10)).toEqual([]);
    // The walk reaches the interesting moves, not only self-loops.
    for (const m of ['unmapped-write-provisioned', 'provisioned-commit-mapped', 'mapped-snap-shared', 'shared-write-remapped', 'remapped-crash-mapped', 'discarded-crash-mapped']) {
      expect(moves.has(m), m).toBe(true);
    }
  }, 600_000);
});

// Every row of the IO outcome table (dm-thin.md §2.1; drivers/md/dm-thin.c process_bio,
// process_bio_read_only, process_bio_fail, process_discard, issue, should_error_unserviceable_bio)
// tested against the pool target impl: a bounded BFS over the machine finds a shortest path to each
// (mode, request class, error_if_no_space) situation, the path is replayed on the impl, and the
// impl's result for the final bio must equal the table's (io-table.ts), per profile.

import { describe, expect, it } from 'vitest';
import { boundsWithDefaults } from '../../checker/model.js';
import { initialPoolState, poolStep } from '../../machines/thin-pool/semantics.js';
import type { IoClass, Mode, PoolEvent, PoolState, Profile } from '../../machines/thin-pool/types.js';
import { poolConfig } from './config.js';
import { createPoolHarness } from './impl-adapter.js';
import { expectedOutcome } from './io-table.js';
import { thinPoolModel } from './model.js';

const BOUNDS = { vblocks: 2, data: 1, dataMax: 2, md: 10, mdMax: 10, queue: 2 };
const CLASSES: IoClass[] = ['read-mapped', 'read-unmapped', 'write-mapped', 'write-shared', 'write-unmapped', 'flush-mapped', 'flush-unmapped', 'discard-mapped', 'discard-unmapped'];

function alphabet(): PoolEvent[] {
  const out: PoolEvent[] = [];
  for (let v = 0; v < 2; v++) out.push({ type: 'write', v }, { type: 'read', v }, { type: 'discard', v });
  out.push({ type: 'flush' }, { type: 'create_snap', id: 1, origin: 0 }, { type: 'delete', id: 1 }, { type: 'status' });
  out.push({ type: 'fault', kind: 'md-io' }, { type: 'fault', kind: 'md-io-abort' });
  out.push({ type: 'reload', data: 1, md: 10, eins: true, bs: 1 }, { type: 'reload', data: 1, md: 10, eins: false, bs: 1 });
  return out;
}

interface Witness {
  readonly path: PoolEvent[];
  readonly state: PoolState;
}

/** Shortest path to each (mode, class, eins, noSpace) bio record. */
function witnesses(profile: Profile): Map<string, Witness> {
  const cfg = poolConfig(boundsWithDefaults(thinPoolModel, BOUNDS), { profile, mutant: null });
  const found = new Map<string, Witness>();
  const seen = new Set<string>();
  let frontier: Witness[] = [{ path: [], state: initialPoolState(cfg) }];
  for (let depth = 0; depth < 6 && frontier.length; depth++) {
    const next: Witness[] = [];
    for (const w of frontier) {
      for (const e of alphabet()) {
        const s = poolStep(cfg, w.state, e);
        if (!s) continue;
        const k = JSON.stringify([s.mode, { ...s.ctx, last: null }]);
        const nw = { path: [...w.path, e], state: s };
        const io = s.ctx.last?.io;
        if (io) {
          const key = `${io.mode}|${io.cls}|${io.eins ? 'eins' : 'queue'}|${io.noSpace ? 'nospace' : ''}|${io.changed ? 'changed' : ''}`;
          if (!found.has(key)) found.set(key, nw);
        }
        if (seen.has(k)) continue;
        seen.add(k);
        next.push(nw);
      }
    }
    frontier = next;
  }
  return found;
}

for (const profile of ['linux-3.14', 'fixed'] as Profile[]) {
  describe(`IO outcome table against the impl (${profile})`, () => {
    const found = witnesses(profile);
    it('reaches every request class in write, out_of_data_space, read_only and fail', () => {
      const modes: Mode[] = ['write', 'out_of_data_space', 'read_only', 'fail'];
      const missing: string[] = [];
      for (const m of modes) {
        for (const cls of CLASSES) {
          if (![...found.keys()].some((k) => k.startsWith(`${m}|${cls}|`))) missing.push(`${m} ${cls}`);
        }
      }
      // Both policies of the unserviceable rows in out_of_data_space.
      for (const pol of ['eins', 'queue']) {
        if (![...found.keys()].some((k) => k.startsWith(`out_of_data_space|write-unmapped|${pol}|`))) missing.push(`out_of_data_space write-unmapped ${pol}`);
      }
      expect(missing).toEqual([]);
    });
    for (const [key, w] of [...found].sort(([a], [b]) => a.localeCompare(b))) {
      it(key, () => {
        const rec = w.state.ctx.last!.io!;
        const want = expectedOutcome(profile, rec);
        const h = createPoolHarness({ profile, mutant: null }, boundsWithDefaults(thinPoolModel, BOUNDS));
        for (const e of w.path) h.apply(e);
        const got = (h.project() as { io: string | null }).io;
        if (want !== null) expect(got).toBe(want);
        expect(got).toBe(rec.result);
      });
    }
  });
}

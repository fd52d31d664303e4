// Invariants of the thin-metadata model, each naming the rules of spec/thin-metadata.md it checks.
// Crash-time judgements (a read after recovery, a reused block) are recorded by the machine's
// transitions in the ghost field `broken`; the invariants below report them under their rule and
// check the state-only rules directly.
// Kernel: drivers/md/dm-thin-metadata.c __commit_transaction, __open_metadata.

import type { Invariant } from '../../checker/model.js';
import type { MState } from '../../checker/machine.js';
import { JUNK, coreView, readCore, refcounts, type ThinCfg, type ThinCtx, type View } from '../../machines/thin/pool-txn.js';

type S = MState<ThinCtx>;

function brokenUnder(id: string) {
  return (s: S): string | null => (s.context.broken?.spec.includes(id) ? s.context.broken.msg : null);
}

function rcMismatch(v: View, what: string, n: number): string | null {
  const want = refcounts(v.devs, n, v.snap);
  for (let b = 0; b < n; b++) {
    const got = v.rc[b] ?? 0;
    if (got < 0) return `${what}: data block ${b} has a negative refcount ${got}`;
    if (got !== want[b]) return `${what}: the space map says data block ${b} has refcount ${got} but ${want[b]} mapping(s) (live and held snapshot) reference it`;
  }
  return null;
}

function sameView(a: View, b: View): boolean {
  return JSON.stringify([a.devs, a.tid, a.held, a.mgrown]) === JSON.stringify([b.devs, b.tid, b.held, b.mgrown]);
}

export function thinInvariants(cfg: ThinCfg): Invariant<S>[] {
  return [
    {
      spec: ['THIN-META-1', 'THIN-META-2'],
      name: 'atomic-commit',
      check: brokenUnder('THIN-META-1'),
    },
    {
      spec: ['THIN-META-3'],
      name: 'no-reuse-in-transaction',
      check: brokenUnder('THIN-META-3'),
    },
    {
      spec: ['THIN-META-4', 'THIN-META-15'],
      name: 'refcounts-at-commit',
      check: (s) => {
        const c = s.context;
        const hit = brokenUnder('THIN-META-4')(s);
        if (hit) return hit;
        return rcMismatch(c.disk, 'committed superblock', cfg.dblocks) ?? (c.staged ? rcMismatch(c.staged, 'transaction being committed', cfg.dblocks) : null);
      },
    },
    {
      spec: ['THIN-META-5'],
      name: 'flushed-writes-survive',
      check: brokenUnder('THIN-META-5'),
    },
    {
      spec: ['THIN-META-6', 'THIN-META-8'],
      name: 'no-phantom-reads',
      check: brokenUnder('THIN-META-6'),
    },
    {
      spec: ['THIN-META-7'],
      name: 'committed-data-durable',
      check: (s) => {
        const c = s.context;
        const hit = brokenUnder('THIN-META-7')(s);
        if (hit) return hit;
        for (let d = 0; d < c.disk.devs.length; d++) {
          const dm = c.disk.devs[d];
          if (!dm) continue;
          for (let v = 0; v < dm.map.length; v++) {
            const b = dm.map[v]!;
            if (b >= 0 && c.data[b] === JUNK) {
              return `the committed superblock maps thin ${d} block ${v} to data block ${b}, whose data is still only in the data device's cache`;
            }
          }
        }
        return null;
      },
    },
    {
      spec: ['THIN-META-13'],
      name: 'clean-means-committed',
      check: (s) => {
        if (s.value[0] !== 'clean') return null;
        const c = s.context;
        return sameView(coreView(c, cfg), c.disk) ? null : 'no transaction is open, yet the in-core view differs from the committed superblock';
      },
    },
    {
      spec: ['THIN-META-14'],
      name: 'in-core-reads',
      check: (s) => {
        const c = s.context;
        for (let d = 0; d < c.core.devs.length; d++) {
          if (c.core.devs[d] === null) continue;
          for (let v = 0; v < cfg.vblocks; v++) {
            const r = readCore(c, d, v);
            const w = c.want[d]?.[v] ?? [];
            if (w[w.length - 1] !== r) return `thin ${d} block ${v} reads ${r} but the last acknowledged write left ${w[w.length - 1]}`;
          }
        }
        return null;
      },
    },
  ];
}

// Message cost of the cluster-mirror dirty log: kernel→cmirrord requests and cluster rounds per
// write workload, plain log vs integrated_flush (impl/mirror over drivers/md/dm-log-userspace-base.c
// userspace_flush semantics; one cluster round = request multicast + server response, lvm2
// cmirrord cluster.c). Counts, not timings: the result is deterministic.
//
//   npx tsx bench/mirror-rounds.ts            prints the table (also used by the README)

import { notTimer } from '../impl/mirror/sim.js';
import { drive, rig } from '../impl/mirror/testkit.js';
import { RequestType } from '../impl/mirror/wire.js';

export interface RoundResult {
  readonly mode: 'plain' | 'integrated';
  readonly workload: string;
  readonly writes: number;
  /** userspace_flush calls that carried marks, and the requests/rounds they cost in total. */
  readonly markFlushes: number;
  readonly markFlushRequests: number;
  /** Clears-only calls and their requests (the lazy FLUSH is counted separately). */
  readonly clearFlushes: number;
  readonly clearFlushRequests: number;
  readonly lazyFlushes: number;
  /** Every flush-path request (MARK, CLEAR, FLUSH) and every cluster round for them. */
  readonly flushPathRequests: number;
  readonly clusterRounds: number;
}

export type Workload = { name: string; regions: number; run: (write: (r: number) => Promise<number>) => Promise<unknown> };

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'sequential: 16 writes, each to a new region, one at a time',
    regions: 16,
    run: async (write) => {
      for (let r = 0; r < 16; r++) await write(r);
    },
  },
  {
    name: 'burst: 16 concurrent writes to 16 regions',
    regions: 16,
    run: (write) => Promise.all(Array.from({ length: 16 }, (_, r) => write(r))),
  },
  {
    name: 'hot: 4 rounds of 4 concurrent writes to the same 4 regions',
    regions: 4,
    run: async (write) => {
      for (let i = 0; i < 4; i++) await Promise.all([0, 1, 2, 3].map((r) => write(r)));
    },
  },
];

/** Runs a workload to quiescence; lazy flushes fire when nothing else is left (3 s later). */
export async function measure(mode: 'plain' | 'integrated', w: Workload): Promise<RoundResult> {
  const r = await rig({ regions: w.regions, integrated: mode === 'integrated', aware: true });
  const sent0 = r.s.transfer.sent.length;
  const rounds0 = r.s.cluster.cost.clusterRounds;
  const calls0 = r.s.log.flushCalls.length;
  let finished = false;
  const done = w.run((region) => r.s.mirror.write(region)).then(() => (finished = true));
  // Serve everything except timers; when idle, let one 3 s timer fire, until the workload ends
  // and nothing is left.
  for (let guard = 0; guard < 10_000; guard++) {
    await drive(r, { include: notTimer });
    if (!(await r.gate.release((e) => e.type === 'lazyfire'))) {
      if (finished) break;
      await new Promise((res) => setImmediate(res));
    }
  }
  await done;
  if (r.violations.length) throw new Error(`rule broken during the benchmark: ${r.violations[0]}`);
  const calls = r.s.log.flushCalls.slice(calls0);
  const withMarks = calls.filter((c) => c.marks > 0);
  const clearsOnly = calls.filter((c) => c.marks === 0);
  const sent = r.s.transfer.sent.slice(sent0);
  const flushPath = sent.filter((x) => x.type === RequestType.FLUSH || x.type === RequestType.MARK_REGION || x.type === RequestType.CLEAR_REGION);
  // Cluster rounds of the flush path only (RESUME/GET_RESYNC_WORK/SYNC_COUNT rounds are the same in both modes).
  const otherRounds = sent.filter((x) => x.type === RequestType.GET_RESYNC_WORK || x.type === RequestType.SET_REGION_SYNC).length;
  return {
    mode,
    workload: w.name,
    writes: r.s.mirror.events.length,
    markFlushes: withMarks.length,
    markFlushRequests: withMarks.reduce((a, c) => a + c.requests.length, 0),
    clearFlushes: clearsOnly.length,
    clearFlushRequests: clearsOnly.reduce((a, c) => a + c.requests.length, 0),
    lazyFlushes: sent.filter((x) => x.thread === 'l').length,
    flushPathRequests: flushPath.length,
    clusterRounds: r.s.cluster.cost.clusterRounds - rounds0 - otherRounds,
  };
}

export function table(rows: readonly RoundResult[]): string {
  const head = ['workload', 'mode', 'flushes with marks', 'requests (= rounds) per flush with marks', 'clears-only flushes: requests', 'lazy FLUSH', 'flush-path requests', 'flush-path cluster rounds'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    lines.push(
      `| ${r.workload} | ${r.mode} | ${r.markFlushes} | ${(r.markFlushRequests / Math.max(1, r.markFlushes)).toFixed(2)} | ${r.clearFlushes}: ${r.clearFlushRequests} | ${r.lazyFlushes} | ${r.flushPathRequests} | ${r.clusterRounds} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const rows: RoundResult[] = [];
  for (const w of WORKLOADS) for (const mode of ['plain', 'integrated'] as const) rows.push(await measure(mode, w));
  console.log(table(rows));
}

if (process.argv[1]?.endsWith('mirror-rounds.ts')) await main();

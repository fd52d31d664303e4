// Run conformance cases on the real kernel and turn the outputs into golden records. The cases
// are packed into a few VM boots that run side by side (one emulated CPU each), so a 2-core host
// runs the whole set in about half the time of one boot after another.

import { availableParallelism } from 'node:os';
import { readGoldenKernel, toGolden, type GoldenCase } from './golden.js';
import type { KCase } from './scenario.js';
import { setupKernel } from './setup.js';
import { runVm, type RawRun } from './vm.js';

/**
 * Rough guest seconds a case takes under emulation on a quiet host (measured: ~0.1 s per event,
 * dominated by the two dmsetup calls; ~0.5 s to set up and tear down the case's devices; waits
 * for held writes; bulk IO). Only used to balance the VMs, so it need not be exact.
 */
export function estimateSeconds(c: KCase): number {
  let s = 0.5;
  for (const e of c.events) {
    s += 0.1;
    if (e.type === 'await') s += Math.min(e.seconds, 2); // a held write is waited for, a released one is not
    if (e.type === 'sleep') s += e.seconds;
    if (e.type === 'write') s += e.count * 0.0005;
  }
  return s;
}

/** How many VMs to boot at once: DMCHECK_VMS, else one per host core, at most 2 (more only adds boots). */
export function vmCount(cases: number): number {
  const want = Number(process.env['DMCHECK_VMS'] ?? 0) || Math.min(2, availableParallelism());
  return Math.max(1, Math.min(want, cases));
}

/**
 * Split the cases into `n` batches of about equal estimated time (longest first, each to the
 * lightest batch). Deterministic for a given case list; within a batch the cases keep their order.
 */
export function batches(cases: readonly KCase[], n: number): KCase[][] {
  const load = new Array<number>(n).fill(0);
  const member = new Map<KCase, number>();
  const byCost = cases.map((c, i) => ({ c, i, s: estimateSeconds(c) })).sort((a, b) => b.s - a.s || a.i - b.i);
  for (const { c, s } of byCost) {
    let best = 0;
    for (let k = 1; k < n; k++) if ((load[k] ?? 0) < (load[best] ?? 0)) best = k;
    load[best] = (load[best] ?? 0) + s;
    member.set(c, best);
  }
  const out: KCase[][] = Array.from({ length: n }, () => []);
  for (const c of cases) out[member.get(c) ?? 0]?.push(c);
  return out.filter((b) => b.length > 0);
}

export interface KernelRunResult {
  readonly cases: readonly GoldenCase[];
  readonly runs: readonly RawRun[];
  readonly setupSeconds: number;
  readonly wallSeconds: number;
}

/** Run the cases on the real kernel (batches in parallel VMs) and return one golden record per case. */
export async function runKernelCases(cases: readonly KCase[], log: (l: string) => void): Promise<KernelRunResult> {
  const t0 = performance.now();
  // the same Debian kernel build as the committed records, while the archive still has it
  const setup = setupKernel({ install: process.env['DMCHECK_VM_INSTALL'] === '1', log, prefer: readGoldenKernel() });
  const setupSeconds = (performance.now() - t0) / 1000;
  const keepDir = process.env['DMCHECK_KEEP_VM'] === '1';
  const plan = batches(cases, vmCount(cases.length));
  log(`${cases.length} case(s) in ${plan.length} VM(s) at once: ${plan.map((b, k) => `vm${k}=[${b.map((c) => c.name).join(' ')}]`).join(' ')}`);
  const runs = await Promise.all(plan.map((batch, k) => runVm(setup, batch, { log, keepDir, tag: `vm${k}` })));
  const byName = new Map<string, GoldenCase>();
  plan.forEach((batch, k) => {
    const run = runs[k];
    if (!run) throw new Error(`VM ${k} returned nothing`);
    batch.forEach((c, i) => {
      const raw = run.cases[i];
      if (!raw) throw new Error(`the VM returned no result for case ${c.name}`);
      const g = toGolden(c, raw, run);
      byName.set(c.name, g);
      const r = g.record;
      log(`  [vm${k}] ${r.name}: rc=${r.rc}${r.watchdog ? ' WATCHDOG' : ''} steps=${r.steps.length}/${r.events.length} vm=${r.vmSeconds}s thin_check=${r.thinCheckRc ?? 'n/a'}`);
    });
    log(`[vm${k}] wall ${run.wallSeconds.toFixed(1)}s for ${batch.length} case(s)${run.killedBy ? `; ${run.killedBy}` : ''}`);
  });
  const out = cases.map((c) => {
    const g = byName.get(c.name);
    if (!g) throw new Error(`no kernel result for case ${c.name}`);
    return g;
  });
  return { cases: out, runs, setupSeconds, wallSeconds: (performance.now() - t0) / 1000 };
}

// Run conformance cases on the real kernel in one VM boot and turn the outputs into golden records.

import { toGolden, type GoldenCase } from './golden.js';
import type { KCase } from './scenario.js';
import { setupKernel } from './setup.js';
import { runVm, type RawRun } from './vm.js';


/** Light cases share one boot; each slow case gets its own, after them. */
export function batches(cases: readonly KCase[]): KCase[][] {
  const light = cases.filter((c) => !c.slow);
  const out: KCase[][] = light.length ? [light] : [];
  for (const c of cases) if (c.slow) out.push([c]);
  return out;
}

export interface KernelRunResult {
  readonly cases: readonly GoldenCase[];
  readonly runs: readonly RawRun[];
  readonly setupSeconds: number;
  readonly wallSeconds: number;
}

/** Run the cases on the real kernel (one VM at a time) and return one golden record per case. */
export async function runKernelCases(cases: readonly KCase[], log: (l: string) => void): Promise<KernelRunResult> {
  const t0 = performance.now();
  const setup = setupKernel({ install: process.env['DMCHECK_VM_INSTALL'] === '1', log });
  const setupSeconds = (performance.now() - t0) / 1000;
  const byName = new Map<string, GoldenCase>();
  const runs: RawRun[] = [];
  for (const batch of batches(cases)) {
    const run = await runVm(setup, batch, { log, keepDir: process.env['DMCHECK_KEEP_VM'] === '1' });
    runs.push(run);
    batch.forEach((c, i) => {
      const raw = run.cases[i];
      if (!raw) throw new Error(`the VM returned no result for case ${c.name}`);
      const g = toGolden(c, raw, run);
      byName.set(c.name, g);
      const r = g.record;
      log(`  ${r.name}: rc=${r.rc}${r.watchdog ? ' WATCHDOG' : ''} steps=${r.steps.length}/${r.events.length} vm=${r.vmSeconds}s thin_check=${r.thinCheckRc ?? 'n/a'}`);
    });
    log(`VM wall ${run.wallSeconds.toFixed(1)}s for ${batch.length} case(s)`);
  }
  const out = cases.map((c) => byName.get(c.name) as GoldenCase);
  return { cases: out, runs, setupSeconds, wallSeconds: (performance.now() - t0) / 1000 };
}

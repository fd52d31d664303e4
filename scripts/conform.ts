// Standalone entry point for the real-kernel conformance harness (kernel/).
//   npx tsx scripts/conform.ts [SCENARIO...]            compare the model with the golden records
//   npx tsx scripts/conform.ts --vm [SCENARIO...]       also re-run the kernel; fail if its record changed
//   npx tsx scripts/conform.ts --record [SCENARIO...]   re-run the kernel and rewrite kernel/golden/
//   npx tsx scripts/conform.ts --reparse [SCENARIO...]  re-derive the golden steps from the stored guest logs
// Needs for --vm/--record: qemu-system-x86 busybox-static dmsetup thin-provisioning-tools kmod
// (DMCHECK_VM_INSTALL=1 installs them with apt-get). DMCHECK_VMS sets how many VMs run side by side.

import { runConformance } from '../kernel/conform.js';
import { readGolden, writeGolden } from '../kernel/golden.js';
import { parseCaseLog } from '../kernel/parse.js';
import { runKernelCases } from '../kernel/record.js';
import { findCases } from '../kernel/scenarios.js';

const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('--'));
const log = (l: string): void => console.error(l);
if (args.includes('--record')) {
  const r = await runKernelCases(findCases(names), log);
  for (const g of r.cases) writeGolden(g);
  const vmSeconds = r.cases.reduce((a, g) => a + g.record.vmSeconds, 0);
  console.log(`recorded ${r.cases.length} golden record(s) in kernel/golden/: ${r.wallSeconds.toFixed(1)}s wall in ${r.runs.length} VM(s), ` +
    `${(vmSeconds / Math.max(1, r.cases.length)).toFixed(1)} VM s/case, ${((r.cases.length * 60) / r.wallSeconds).toFixed(1)} cases/min`);
} else if (args.includes('--reparse')) {
  for (const c of findCases(names)) {
    const g = readGolden(c.name);
    const parsed = parseCaseLog(g.guestLog, g.record.events);
    writeGolden({ ...g, record: { ...g.record, steps: parsed.steps, watchdog: parsed.watchdog, teardownOk: parsed.teardownOk } });
    console.log(`re-parsed ${c.name}: ${parsed.steps.length} steps`);
  }
} else {
  const r = await runConformance({ ...(names.length ? { scenarios: names } : {}), vm: args.includes('--vm'), log });
  console.log(r.table);
  process.exitCode = r.ok ? 0 : 1;
}

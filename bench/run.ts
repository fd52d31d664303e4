// npm run bench: every benchmark in turn, each in its own process (they measure CPU time and heap,
// so they must not share one). Results go to stdout; the explorer bench also rewrites bench/results.md.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const benches = ['bench/explorer.bench.ts', 'bench/thin-crash.bench.ts', 'bench/mirror-rounds.ts'].filter((f) => existsSync(f));
let failed = 0;
for (const f of benches) {
  console.log(`\n=== ${f}`);
  const r = spawnSync('npx', ['tsx', f, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`${f} exited with ${r.status}`);
  }
}
process.exitCode = failed ? 1 : 0;

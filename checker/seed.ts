// Test seeds: fixed by default so `npm test` is deterministic; DMCHECK_SEED=random (npm run
// test:fresh) or a number picks another. The seed in use is printed so a failure can be rerun.

export function testSeed(label: string, fallback = 42): number {
  const env = process.env['DMCHECK_SEED'];
  let seed = fallback;
  if (env === 'random') seed = (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
  else if (env !== undefined && env !== '') seed = Number(env);
  if (!Number.isInteger(seed)) throw new Error(`DMCHECK_SEED must be a whole number or 'random', not '${env}'`);
  console.log(`[seed] ${label}: ${seed}  (rerun: DMCHECK_SEED=${seed} npx vitest run)`);
  return seed;
}

// The real-tool oracle: Debian's thin-provisioning-tools (thin_check, thin_dump, thin_restore,
// 0.9.0). One place decides whether the tools are present: when they are absent, oracle tests
// SKIP with a message naming the package, except under CI=true, where they must fail.

import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ORACLE_PACKAGE = 'thin-provisioning-tools';
export const ORACLE_VERSION = '0.9.0';

export interface OracleStatus {
  /** 'run': tools present; 'skip': absent, tests skip; 'fail': absent under CI=true. */
  readonly mode: 'run' | 'skip' | 'fail';
  readonly message: string;
}

let cached: OracleStatus | null = null;

/** Detect the tools once per process. */
export function oracleStatus(): OracleStatus {
  cached ??= detectOracle();
  return cached;
}

/** The detection itself (uncached; `cmd` and `env` are parameters so the CI rule can be tested). */
export function detectOracle(cmd = 'thin_check', env: NodeJS.ProcessEnv = process.env): OracleStatus {
  const r = spawnSync(cmd, ['-V'], { encoding: 'utf8' });
  const version = r.status === 0 ? r.stdout.trim() : null;
  if (version === ORACLE_VERSION) return { mode: 'run', message: `${cmd} ${version}` };
  const why =
    version === null
      ? `${cmd} not found (install the ${ORACLE_PACKAGE} package: apt-get install -y ${ORACLE_PACKAGE})`
      : `${cmd} -V printed '${version}', expected ${ORACLE_VERSION} from the Debian ${ORACLE_PACKAGE} package`;
  return { mode: env['CI'] === 'true' ? 'fail' : 'skip', message: why };
}

export interface ToolResult {
  readonly rc: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A private temp directory for images (tmpfs/ext4: the tools open with O_DIRECT). */
export function oracleTempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dmcheck-thin-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function runTool(cmd: string, args: readonly string[]): ToolResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new Error(`could not run ${cmd}: ${r.error.message} (is ${ORACLE_PACKAGE} installed?)`);
  return { rc: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function runToolAsync(cmd: string, args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`could not run ${cmd}: ${err.message}`));
      else resolve({ rc: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

/** Run `jobs` with at most `limit` in flight (the tools spend most wall time idle at exit). */
export async function pool<T>(jobs: readonly (() => Promise<T>)[], limit = 8): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

export function thinCheck(path: string, extra: readonly string[] = []): ToolResult {
  return runTool('thin_check', [...extra, path]);
}

export function thinDump(path: string, extra: readonly string[] = []): ToolResult {
  return runTool('thin_dump', [...extra, path]);
}

/** thin_restore into a new zero-filled file of `blocks` 4 KiB blocks. */
export function thinRestore(xmlPath: string, outPath: string, blocks: number): ToolResult {
  writeFileSync(outPath, new Uint8Array(blocks * 4096));
  return runTool('thin_restore', ['-i', xmlPath, '-o', outPath]);
}

// Golden records: what the real kernel did for each conformance case, committed under
// kernel/golden/ so `npm test` can replay the model against them without a VM.
//   <case>.json           parsed steps (status lines, IO/message outcomes), dm dmesg lines, timing
//   <case>.meta.img.gz    the case's metadata device after teardown
//   <case>.lw.gz          the dm-log-writes log of every metadata write/flush
//   <case>.thin_dump.xml  host thin_dump of the metadata image (when the tool was present)
//   <case>.guest.log      the guest's raw output for the case (the steps can be re-parsed from it)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { dmLines, parseCaseLog, type PoolStatus, type StepResult } from './parse.js';
import type { KCase, KEvent } from './scenario.js';
import type { RawCaseResult, RawRun } from './vm.js';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'golden');
export const GOLDEN_FORMAT = 1;

export interface GoldenRecord {
  readonly format: number;
  readonly name: string;
  readonly title: string;
  readonly kernel: string;
  readonly targets: Readonly<Record<string, string>>;
  readonly events: readonly KEvent[];
  readonly steps: readonly StepResult[];
  readonly watchdog: boolean;
  readonly teardownOk: boolean;
  readonly rc: string;
  /** guest seconds the case took (start of its script to its end) */
  readonly vmSeconds: number;
  readonly metaImageBytes: number;
  readonly dmesg: readonly string[];
  /** host thin_check of the final image: exit code, or null when thin_check was not installed */
  readonly thinCheckRc: number | null;
}

export interface GoldenCase {
  readonly record: GoldenRecord;
  readonly guestLog: string;
  readonly metaImage: Buffer;
  readonly log: Buffer;
  readonly thinDump: string | null;
}

export function targetsOf(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of info.matchAll(/^target (\S+)\s+(v\S+)/gm)) if (m[1] && m[2]) out[m[1]] = m[2];
  return out;
}

type HostTool = 'thin_check' | 'thin_dump';

const hostToolPath = (tool: HostTool): string => `/usr/sbin/${tool}`;

/** Whether thin-provisioning-tools' `tool` is installed on the host. */
export function hostToolAvailable(tool: HostTool): boolean {
  return existsSync(hostToolPath(tool));
}

/** Run a host tool on an image written to a temp file. Null when the tool is not installed. */
export function hostTool(tool: HostTool, image: Buffer, args: readonly string[] = []): { rc: number; out: string } | null {
  const bin = hostToolPath(tool);
  if (!hostToolAvailable(tool)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'dmcheck-img-'));
  try {
    const f = join(dir, 'meta.img');
    writeFileSync(f, image);
    const r = spawnSync(bin, [...args, f], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return { rc: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * hostTool over many images at once. thin_check spends ~30 ms of each run idle in io_destroy
 * (libaio teardown waits for the kernel), so they run 8 at a time; null when the tool is not installed.
 */
export function hostToolMany(tool: HostTool, images: readonly Buffer[], args: readonly string[] = []): { rc: number; out: string }[] | null {
  const bin = hostToolPath(tool);
  if (!hostToolAvailable(tool)) return null;
  if (images.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'dmcheck-img-'));
  try {
    const files = images.map((img, i) => {
      const f = join(dir, `${i}.img`);
      writeFileSync(f, img);
      return f;
    });
    // tool and args are fixed words (no quoting needed); xargs appends each file as $1
    const script = `${[bin, ...args].join(' ')} "$1" > "$1.out" 2>&1; echo $? > "$1.rc"`;
    const r = spawnSync('xargs', ['-0', '-P', '8', '-n', '1', 'sh', '-c', script, 'sh'], { input: files.join('\0'), encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 123) throw new Error(`xargs ${tool} failed: ${(r.stderr ?? '').trim().slice(-300)}`);
    return files.map((f) => ({
      rc: existsSync(`${f}.rc`) ? Number(readFileSync(`${f}.rc`, 'utf8').trim()) : -1,
      out: existsSync(`${f}.out`) ? readFileSync(`${f}.out`, 'utf8') : '',
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function toGolden(c: KCase, raw: RawCaseResult, run: RawRun): GoldenCase {
  const parsed = parseCaseLog(raw.log, c.events);
  const check = hostTool('thin_check', raw.metaImage, ['-q']);
  const dump = hostTool('thin_dump', raw.metaImage);
  const record: GoldenRecord = {
    format: GOLDEN_FORMAT,
    name: c.name,
    title: c.title,
    kernel: run.kernel,
    targets: targetsOf(run.info),
    events: c.events,
    steps: parsed.steps,
    watchdog: parsed.watchdog,
    teardownOk: parsed.teardownOk,
    rc: raw.rc,
    vmSeconds: Math.round((raw.end - raw.start) * 100) / 100,
    metaImageBytes: raw.metaImage.length,
    dmesg: dmLines(raw.dmesg),
    thinCheckRc: check ? check.rc : null,
  };
  return { record, guestLog: raw.log, metaImage: raw.metaImage, log: raw.logImage, thinDump: dump && dump.rc === 0 ? dump.out : null };
}

export function writeGolden(g: GoldenCase, dir = GOLDEN_DIR): void {
  const n = g.record.name;
  writeFileSync(join(dir, `${n}.json`), JSON.stringify(g.record, null, 1) + '\n');
  writeFileSync(join(dir, `${n}.meta.img.gz`), gzipSync(g.metaImage, { level: 9 }));
  writeFileSync(join(dir, `${n}.lw.gz`), gzipSync(g.log, { level: 9 }));
  if (g.thinDump !== null) writeFileSync(join(dir, `${n}.thin_dump.xml`), g.thinDump);
  writeFileSync(join(dir, `${n}.guest.log`), g.guestLog);
}

export function hasGolden(name: string, dir = GOLDEN_DIR): boolean {
  return existsSync(join(dir, `${name}.json`));
}

export function readGolden(name: string, dir = GOLDEN_DIR): GoldenCase {
  const p = join(dir, `${name}.json`);
  if (!existsSync(p)) throw new Error(`no golden record for '${name}' in ${dir}: record it with 'npx tsx scripts/conform.ts --record ${name}' (needs the VM packages)`);
  const record = JSON.parse(readFileSync(p, 'utf8')) as GoldenRecord;
  if (record.format !== GOLDEN_FORMAT) throw new Error(`golden record ${p} has format ${record.format}, expected ${GOLDEN_FORMAT}: re-record it`);
  const dumpPath = join(dir, `${name}.thin_dump.xml`);
  const logPath = join(dir, `${name}.guest.log`);
  return {
    record,
    guestLog: existsSync(logPath) ? readFileSync(logPath, 'utf8') : '',
    metaImage: gunzipSync(readFileSync(join(dir, `${name}.meta.img.gz`))),
    log: gunzipSync(readFileSync(join(dir, `${name}.lw.gz`))),
    thinDump: existsSync(dumpPath) ? readFileSync(dumpPath, 'utf8') : null,
  };
}

/** The guest kernel release the committed records were made with, when they all agree (else null). */
export function readGoldenKernel(dir = GOLDEN_DIR): string | null {
  if (!existsSync(dir)) return null;
  const kernels = new Set<string>();
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.json')) kernels.add((JSON.parse(readFileSync(join(dir, f), 'utf8')) as GoldenRecord).kernel);
  }
  const [only] = kernels;
  return kernels.size === 1 && only !== undefined ? only : null;
}

/** Fields of a kernel step that do not depend on timing; a re-run of the VM must reproduce them. */
export interface StableStep {
  readonly i: number;
  readonly type: string;
  readonly ok: boolean;
  readonly errno: string | null;
  readonly blocks?: number;
  readonly bg?: string;
  readonly pool: string;
  readonly thins: string;
}

/** A field of a case's steps known to vary from run to run of the same kernel. */
export interface TimingField {
  readonly field: 'dataUsed' | 'blocks' | 'thins' | 'noSpace';
  /** only this step (default: every step) */
  readonly step?: number;
  readonly why: string;
}

/** Left out of the stable view (kernel re-runs) and of the model comparison. */
export const TIMING_DEPENDENT: Readonly<Record<string, readonly TimingField[]>> = {
  'oom-meta': [
    { field: 'dataUsed', why: 'the periodic commit (every second) moves the exact point where metadata space runs out' },
    { field: 'blocks', why: 'as dataUsed' },
    { field: 'thins', why: 'as dataUsed' },
  ],
  'oods-timeout': [
    { field: 'noSpace', step: 5, why: 'the 2 s no_space_timeout may already have expired when the status after the queued write is read' },
  ],
};

/** Fields to leave out for one step of a case. */
export function timingSkips(name: string, step: number): string[] {
  return (TIMING_DEPENDENT[name] ?? []).filter((t) => t.step === undefined || t.step === step).map((t) => t.field);
}

export function poolWords(p: PoolStatus | null, skip: readonly string[] = []): string {
  if (p === null) return '(none)';
  if (p.kind === 'fail') return 'Fail';
  if (p.kind === 'error') return `error: ${p.text}`;
  const data = skip.includes('dataUsed') ? `*/${p.dataTotal}` : `${p.dataUsed}/${p.dataTotal}`;
  const ns = skip.includes('noSpace') ? '*' : p.noSpace;
  return `tx=${p.txid} data=${data} meta=/${p.metaTotal} held=${p.heldRoot === null ? '-' : 'yes'} ${p.mode} ${ns}${p.needsCheck ? ' needs_check' : ''}`;
}

export function stableView(name: string, steps: readonly StepResult[]): StableStep[] {
  return steps.map((s) => {
    const skip = timingSkips(name, s.index);
    return {
      i: s.index,
      type: s.event.type,
      ok: s.ok,
      errno: s.errno,
      ...(s.blocksWritten !== undefined && !skip.includes('blocks') ? { blocks: s.blocksWritten } : {}),
      ...(s.bg ? { bg: s.bg.map((b) => `${b.id}:${b.state}${b.state === 'done' ? (b.ok ? ':ok' : `:${b.errno ?? 'error'}`) : ''}`).join(',') } : {}),
      pool: poolWords(s.pool, skip),
      thins: skip.includes('thins') ? '*' : Object.entries(s.thins).map(([k, v]) => `${k}=${v.mappedSectors ?? v.raw}`).join(' '),
    };
  });
}

// `dmcheck conform`: the conformance cases on the real kernel (golden records, or a fresh VM run
// with vm=true) next to the model, as a side-by-side table. A difference fails the run unless it is
// listed in KNOWN_DIFFERENCES with the kernel commit that explains it. Also: the impl's reader must
// decode the kernel's metadata image to what thin_dump printed, every crash point of the kernel's
// dm-log-writes log must check clean (THIN-META-1), the negative control must fail, and the kernel's
// commit shape must put the superblock alone between flushes (THIN-META-2).

import type { Profile } from '../machines/thin-pool/types.js';
import { checkCrashConsistency, type CrashReport } from './crash.js';
import { hasGolden, readGolden, stableView, timingSkips, type GoldenCase, type StableStep } from './golden.js';
import { dumpXml } from '../impl/thin/tools/dump.js';
import { compareWithDump, decodeWithImpl, deviceFromImage, parseThinDump } from './image.js';
import { commitShape } from './logwrites.js';
import { asLwLog, runModelCase, runModelCaseFull, type ModelStep } from './model-run.js';
import type { PoolStatus, StepResult } from './parse.js';
import { runKernelCases } from './record.js';
import type { KCase, KEvent } from './scenario.js';
import { findCases } from './scenarios.js';

/** The model profile that matches the booted kernel (6.1 has the later fixes), and the one compared for information. */
export const KERNEL_PROFILE: Profile = 'fixed';
export const OTHER_PROFILE: Profile = 'linux-3.14';

export type Field = 'result' | 'blocks' | 'bg' | 'mode' | 'noSpace' | 'needsCheck' | 'data' | 'metaTotal' | 'txid' | 'held';

export interface KnownDifference {
  readonly scenario: string;
  /** step index, or undefined for every step of the scenario */
  readonly step?: number;
  readonly field: Field;
  readonly profile: Profile;
  /** the kernel commit (or model abstraction) that explains the difference */
  readonly commit: string;
  readonly why: string;
}

const NST = "85ad643b 'dm thin: add timeout to stop out-of-data-space mode holding IO forever' + 'dm thin: add no_space_timeout dm-thin-pool module param' (3.16)";
const STAY = "bcc696fa 'dm thin: stay in out-of-data-space mode once no_space_timeout expires'";

/**
 * Differences that are understood. Each names what explains it. The booted kernel is 6.1, so the
 * `fixed` profile must match it; `linux-3.14` lacks the later commits listed here.
 */
export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  { scenario: 'oods-error', step: 4, field: 'result', profile: 'linux-3.14', commit: "'dm thin: return ENOSPC instead of EIO when error_if_no_space enabled' (3.17), c3667cc6 (4.6)", why: '3.14 errors the unserviceable write with EIO' },
  { scenario: 'oods-timeout', step: 6, field: 'bg', profile: 'linux-3.14', commit: NST, why: '3.14 has no no_space_timeout: the queued write stays queued' },
  { scenario: 'oods-timeout', step: 6, field: 'noSpace', profile: 'linux-3.14', commit: STAY, why: 'the expired timeout switches the effective flag to error_if_no_space' },
  { scenario: 'oods-timeout', step: 7, field: 'result', profile: 'linux-3.14', commit: NST, why: '3.14 queues the write (the real dd would hang) instead of failing it' },
  { scenario: 'oods-timeout', step: 7, field: 'noSpace', profile: 'linux-3.14', commit: STAY, why: 'as step 6' },
  { scenario: 'oods-timeout', step: 8, field: 'data', profile: 'linux-3.14', commit: NST, why: 'in 3.14 both held writes are provisioned when the grow releases them' },
  { scenario: 'oods-timeout', step: 9, field: 'data', profile: 'linux-3.14', commit: NST, why: 'as step 8' },
  { scenario: 'oods-timeout', step: 10, field: 'data', profile: 'linux-3.14', commit: NST, why: 'as step 8' },
  // Model abstractions (not kernel commits): the pool model takes IO on thin 0 only and keeps it open.
  ...[9, 10, 11, 12, 13].map((step): KnownDifference => ({ scenario: 'snapshots', step, field: 'data', profile: 'fixed', commit: 'model abstraction', why: 'writes to the snapshot (thin 1) are not modelled, so its 2 new blocks are missing' })),
  ...[17, 18].map((step): KnownDifference => ({ scenario: 'snapshots', step, field: 'data', profile: 'fixed', commit: 'model abstraction', why: 'the model keeps thin 0 open, so its delete is not modelled' })),
  // The model's abstract metadata accounting (one block per mapping, MD_RESERVE) runs out at
  // allocation and enters out-of-metadata-space (status ro, no needs_check); the 6.1 kernel with 16
  // metadata blocks fails the commit itself and aborts: read-only + needs_check (3ab91828's reserve
  // does not cover a full commit at this size). The abort rolls the kernel back to the last
  // commit, where block 0 was not yet mapped, so step 4's write needs an allocation.
  ...[3, 4, 5, 6, 7, 8].map((step): KnownDifference => ({ scenario: 'oom-meta', step, field: 'needsCheck', profile: 'fixed', commit: 'model abstraction (metadata accounting)', why: 'the kernel aborted a failed commit (needs_check); the model entered out-of-metadata-space' })),
  { scenario: 'oom-meta', step: 4, field: 'result', profile: 'fixed', commit: 'model abstraction (metadata accounting)', why: 'the model keeps block 0 mapped and overwrites it; the kernel aborted back to a commit without that mapping, and read-only mode cannot allocate' },
  { scenario: 'oom-meta', step: 8, field: 'mode', profile: 'fixed', commit: "07f2b6e0 'dm thin: ensure user takes action to validate data and metadata consistency'", why: 'with needs_check the kernel refuses write mode and the metadata grow until repaired; the model had no needs_check' },
  { scenario: 'oom-meta', step: 8, field: 'metaTotal', profile: 'fixed', commit: "07f2b6e0 'dm thin: ensure user takes action to validate data and metadata consistency'", why: 'as step 8 mode' },
  { scenario: 'meta-write-error', step: 6, field: 'result', profile: 'linux-3.14', commit: "'dm thin: don't allow messages to be sent to a pool target in READ_ONLY or FAIL mode'", why: '3.14 tries the message against read-only metadata and fails it with another errno' },
];

/**
 * Cases where the kernel's own log breaks the commit shape (THIN-META-2). Findings, not failures:
 * every crash point of these logs still checks clean.
 */
export const KERNEL_SHAPE_FINDINGS: Readonly<Record<string, string>> = {
  'oom-meta': '6.1 aborted-commit path writes the superblock in one epoch with other blocks',
};

export interface Difference {
  readonly scenario: string;
  readonly step: number;
  readonly field: Field;
  readonly profile: Profile;
  readonly kernel: string;
  readonly model: string;
  readonly explainedBy: KnownDifference | null;
}

function kernelFields(s: StepResult, skip: readonly string[]): Partial<Record<Field, string>> {
  const f: Partial<Record<Field, string>> = { result: s.ok ? 'ok' : (s.errno ?? 'error') };
  if (s.blocksWritten !== undefined && !skip.includes('blocks')) f.blocks = String(s.blocksWritten);
  if (s.bg) f.bg = s.bg.map((b) => (b.state === 'pending' ? `${b.id}:pending` : `${b.id}:done:${b.ok ? 'ok' : (b.errno ?? 'error')}`)).join(',');
  Object.assign(f, poolFields(s.pool, skip));
  return f;
}

function poolFields(p: PoolStatus | ModelStep['pool'] | null, skip: readonly string[]): Partial<Record<Field, string>> {
  if (p === null) return { mode: '(no pool)' };
  if (p.kind === 'fail') return { mode: 'Fail' };
  if (p.kind === 'error') return { mode: `error: ${p.text}` };
  const held = 'heldRoot' in p ? p.heldRoot !== null : p.held;
  return {
    mode: p.mode,
    ...(skip.includes('noSpace') ? {} : { noSpace: p.noSpace }),
    needsCheck: p.needsCheck ? 'needs_check' : '-',
    ...(skip.includes('dataUsed') ? { data: `*/${p.dataTotal}` } : { data: `${p.dataUsed}/${p.dataTotal}` }),
    metaTotal: String(p.metaTotal),
    txid: String(p.txid),
    held: held ? 'held' : '-',
  };
}

function modelFields(m: ModelStep, skip: readonly string[]): Partial<Record<Field, string>> {
  const f: Partial<Record<Field, string>> = {};
  if (m.ok !== null) f.result = m.ok ? 'ok' : (m.errno ?? 'error');
  if (m.blocks !== undefined && !skip.includes('blocks')) f.blocks = String(m.blocks);
  if (m.bg !== undefined) f.bg = m.bg;
  Object.assign(f, poolFields(m.pool, skip));
  return f;
}

export function compareCase(name: string, steps: readonly StepResult[], model: readonly ModelStep[], profile: Profile, known: readonly KnownDifference[] = KNOWN_DIFFERENCES): Difference[] {
  const diffs: Difference[] = [];
  for (const ks of steps) {
    const ms = model[ks.index];
    if (!ms) continue;
    const skip = timingSkips(name, ks.index);
    const kf = kernelFields(ks, skip), mf = modelFields(ms, skip);
    for (const field of Object.keys(kf) as Field[]) {
      const kv = kf[field], mv = mf[field];
      if (mv === undefined || kv === mv) continue; // the model has no counterpart, or they agree
      const explainedBy = known.find((k) => k.scenario === name && k.field === field && k.profile === profile && (k.step === undefined || k.step === ks.index)) ?? null;
      diffs.push({ scenario: name, step: ks.index, field, profile, kernel: kv ?? '', model: mv, explainedBy });
    }
  }
  return diffs;
}

export function eventText(e: KEvent): string {
  switch (e.type) {
    case 'pool_create':
    case 'pool_reload':
      return `${e.type === 'pool_create' ? 'create' : 'reload'} data=${e.dataBlocks} meta=${e.metaBlocks}${e.features.length ? ' ' + e.features.join(',') : ''}`;
    case 'message':
      return `msg ${e.text}`;
    case 'write':
      return `write t${e.dev} ${e.block}${e.count > 1 ? `+${e.count}` : ''}${e.flush ? ' fsync' : ''}`;
    case 'write_async':
      return `write& t${e.dev} ${e.block} (${e.id})`;
    case 'await':
      return `await ${e.ids.join(',')} ${e.seconds}s`;
    case 'read':
      return `read t${e.dev} ${e.block}`;
    case 'flush':
      return `flush t${e.dev}`;
    case 'thin_activate':
      return `activate t${e.dev}`;
    case 'thin_remove':
    case 'thin_suspend':
    case 'thin_resume':
      return `${e.type.replace('thin_', '')} t${e.dev}`;
    case 'set_no_space_timeout':
      return `no_space_timeout=${e.seconds}`;
    case 'sleep':
      return `sleep ${e.seconds}`;
    case 'thin_check':
      return e.clear ? 'thin_check --clear-needs-check-flag' : 'thin_check';
    default:
      return e.type;
  }
}

function cell(f: Partial<Record<Field, string>>): string {
  const io = [f.result, f.blocks !== undefined ? `${f.blocks}blk` : undefined, f.bg].filter(Boolean).join(' ');
  if (f.mode === undefined) return io;
  if (f.mode === '(no pool)' || f.mode === 'Fail' || f.mode.startsWith('error')) return `${io} | ${f.mode}`;
  const eins = f.noSpace === undefined ? '*' : f.noSpace === 'error_if_no_space' ? 'eins' : 'queue';
  return `${io} | ${f.mode} ${eins}${f.needsCheck === 'needs_check' ? ' NC' : ''} d=${f.data} m=${f.metaTotal} tx=${f.txid} ${f.held === 'held' ? 'H' : '-'}`;
}

function stripUuid(l: string): string {
  return l.replace(/uuid="[^"]*"/, 'uuid=""');
}

function b0(s: string): number {
  return s.trim().split('\n').length;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export interface CaseReport {
  readonly name: string;
  readonly lines: readonly string[];
  readonly failures: readonly string[];
  readonly explained: number;
  readonly crash: CrashReport | null;
}

export function reportCase(c: KCase, g: GoldenCase, opts: { thinCheck: boolean }): CaseReport {
  const lines: string[] = [];
  const failures: string[] = [];
  const r = g.record;
  lines.push(`== ${c.name}: ${c.title}`);
  lines.push(`   kernel ${r.kernel} thin-pool ${r.targets['thin-pool'] ?? '?'}; ${r.vmSeconds}s in the VM${r.watchdog ? '; WATCHDOG fired' : ''}`);
  if (r.watchdog) failures.push(`${c.name}: the kernel case hit its watchdog (partial record)`);
  if (r.steps.length !== c.events.length) failures.push(`${c.name}: the kernel record has ${r.steps.length} of ${c.events.length} steps`);
  if (JSON.stringify(r.events) !== JSON.stringify(c.events)) failures.push(`${c.name}: the golden record was made from a different event list: re-record it`);
  const full = runModelCaseFull(c, KERNEL_PROFILE);
  const main = full.steps;
  const other = runModelCase(c, OTHER_PROFILE);
  const dMain = compareCase(c.name, r.steps, main, KERNEL_PROFILE);
  const dOther = compareCase(c.name, r.steps, other, OTHER_PROFILE);
  const W = 28, K = 58;
  lines.push(`   ${pad('#  event', W)} ${pad('kernel', K)} ${pad(`model (${KERNEL_PROFILE})`, K)} verdict`);
  for (const ks of r.steps) {
    const ms = main[ks.index];
    if (!ms) continue;
    const dm = dMain.filter((d) => d.step === ks.index);
    const d3 = dOther.filter((d) => d.step === ks.index);
    let verdict = ms.ok === null ? `n/m (${ms.note ?? 'not modelled'})` : '=';
    if (dm.length) {
      verdict = dm.map((d) => (d.explainedBy ? `≠${d.field} [${d.explainedBy.commit}]` : `≠${d.field} UNEXPLAINED`)).join('; ');
    }
    if (d3.length) verdict += `; 3.14: ${d3.map((d) => `≠${d.field}${d.explainedBy ? '' : ' (unlisted)'}`).join(',')}`;
    const skip = timingSkips(c.name, ks.index);
    lines.push(`   ${pad(`${ks.index} ${eventText(ks.event)}`, W)} ${pad(cell(kernelFields(ks, skip)), K)} ${pad(cell(modelFields(ms, skip)), K)} ${verdict}`);
  }
  for (const d of dMain) if (!d.explainedBy) failures.push(`${c.name} step ${d.step} ${d.field}: kernel ${d.kernel}, model ${d.model}`);
  // metadata image: the impl's reader against thin_dump
  try {
    const s = decodeWithImpl(g.metaImage);
    if (g.thinDump !== null) {
      const diffs = compareWithDump(s, parseThinDump(g.thinDump));
      lines.push(`   metadata image: impl reader ${diffs.length ? 'DIFFERS from' : 'agrees with'} thin_dump (${s.devices.length} device(s), ${s.devices.reduce((a, d) => a + d.mappings.length, 0)} mappings, tx ${s.transactionId}${s.needsCheck ? ', needs_check' : ''})`);
      for (const d of diffs) failures.push(`${c.name} image: ${d}`);
      // the project's thin_dump must print the kernel's image exactly as thin_dump did
      const ours = dumpXml(deviceFromImage(g.metaImage));
      if (ours.trim() !== g.thinDump.trim()) {
        const a = ours.trim().split('\n'), b = g.thinDump.trim().split('\n');
        const i = a.findIndex((l, k) => l !== b[k]);
        failures.push(`${c.name} image: the project's thin_dump differs from thin_dump at line ${i + 1}: '${a[i] ?? ''}' vs '${b[i] ?? ''}'`);
      } else lines.push(`   thin_dump: the project's dump of the kernel image is identical to thin_dump's (${b0(g.thinDump)} lines)`);
    } else lines.push(`   metadata image: impl reader decodes it (no thin_dump recorded)`);
  } catch (e) {
    failures.push(`${c.name} image: the impl's reader cannot decode the kernel's metadata: ${(e as Error).message}`);
  }
  let crash: CrashReport | null = null;
  try {
    crash = checkCrashConsistency(g.log, r.metaImageBytes, { subsetsPerEpoch: 3, seed: 20140330, thinCheck: opts.thinCheck });
    const neg = crash.negative;
    lines.push(`   crash points: ${crash.flushPoints} flush points + ${crash.subsetImages} epoch subsets (seed 20140330), ${crash.failures.length} failing` +
      `${crash.thinCheckUsed ? ' (project checker + reader + thin_check)' : ' (project checker + reader)'}; negative control (epoch ${neg?.epoch ?? '-'} dropped): ${neg ? `${neg.failed}/${neg.checked} fail` : 'no candidate epoch'}; ` +
      `commits ${crash.shape.commits}, shape ${crash.shape.violations.length ? 'VIOLATED' : 'ok'}`);
    for (const f of crash.failures.slice(0, 5)) failures.push(`${c.name} crash ${f.label} (${f.checker}): ${f.message}`);
    if (neg && neg.failed === 0) failures.push(`${c.name}: the negative control (epoch ${neg.epoch} dropped) was not detected`);
    const listed = KERNEL_SHAPE_FINDINGS[c.name];
    for (const v of crash.shape.violations) {
      if (listed) lines.push(`   kernel THIN-META-2 finding (listed: ${listed}): ${v}`);
      else failures.push(`${c.name} THIN-META-2: ${v}`);
    }
  } catch (e) {
    failures.push(`${c.name}: cannot replay the dm-log-writes log: ${(e as Error).message}`);
  }
  // the impl's committed state after the same case, dumped, against the kernel's thin_dump
  if (full.metaDevice && g.thinDump !== null) {
    try {
      const ours = dumpXml(full.metaDevice);
      const a = ours.trim().split('\n').map(stripUuid), b = g.thinDump.trim().split('\n').map(stripUuid);
      const i = a.findIndex((l, k) => l !== b[k]);
      if (i < 0 && a.length === b.length) lines.push(`   impl state: thin_dump of the impl's metadata after the same events is identical to the kernel's`);
      else failures.push(`${c.name}: the impl's committed state differs from the kernel's thin_dump at line ${i + 1}: '${a[i] ?? ''}' vs '${b[i] ?? ''}'`);
    } catch (e) {
      failures.push(`${c.name}: cannot dump the impl's metadata: ${(e as Error).message}`);
    }
  } else lines.push(`   impl state: not compared (the model does not follow every event of this case)`);
  // the same commit-shape invariant on the impl's own metadata writes (THIN-META-2)
  const implShape = commitShape(asLwLog(full.metaLog));
  lines.push(`   impl commit shape: ${implShape.commits} commits, ${implShape.violations.length ? 'VIOLATED' : 'ok'} (superblock alone between flushes, as the kernel's)`);
  for (const v of implShape.violations) failures.push(`${c.name} impl THIN-META-2: ${v}`);
  const explained = dMain.filter((d) => d.explainedBy).length;
  return { name: c.name, lines, failures, explained, crash };
}

/** Compare a fresh kernel run with the golden record (timing-independent fields only). */
export function kernelDrift(name: string, golden: GoldenCase, fresh: GoldenCase): string[] {
  const a = stableView(name, golden.record.steps), b = stableView(name, fresh.record.steps);
  const out: string[] = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x: StableStep | undefined = a[i], y: StableStep | undefined = b[i];
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${name} step ${i}: golden ${JSON.stringify(x)} / now ${JSON.stringify(y)}`);
  }
  return out;
}

export async function runConformance(opts: { scenarios?: string[]; vm: boolean; log: (line: string) => void }): Promise<{ ok: boolean; table: string }> {
  const cases = findCases(opts.scenarios);
  const lines: string[] = [];
  const failures: string[] = [];
  let records: Map<string, GoldenCase>;
  if (opts.vm) {
    const run = await runKernelCases(cases, opts.log);
    records = new Map(run.cases.map((g) => [g.record.name, g]));
    const vmSeconds = run.cases.reduce((a, g) => a + g.record.vmSeconds, 0);
    lines.push(`kernel run: ${cases.length} case(s) in ${run.wallSeconds.toFixed(1)}s wall (${run.runs.length} boot(s), setup ${run.setupSeconds.toFixed(1)}s); ` +
      `${(vmSeconds / cases.length).toFixed(1)} VM s/case, ${((cases.length * 60) / run.wallSeconds).toFixed(1)} cases/min`);
    for (const c of cases) {
      const fresh = records.get(c.name);
      if (!fresh) continue;
      if (!hasGolden(c.name)) {
        failures.push(`${c.name}: no golden record to compare the kernel run with`);
        continue;
      }
      const drift = kernelDrift(c.name, readGolden(c.name), fresh);
      for (const d of drift) failures.push(`kernel record changed: ${d}`);
    }
  } else {
    records = new Map();
    for (const c of cases) {
      if (!hasGolden(c.name)) {
        failures.push(`${c.name}: no golden record (run 'npx tsx scripts/conform.ts --record ${c.name}' on a machine with the VM packages)`);
        continue;
      }
      records.set(c.name, readGolden(c.name));
    }
  }
  let explained = 0;
  for (const c of cases) {
    const g = records.get(c.name);
    if (!g) continue;
    const rep = reportCase(c, g, { thinCheck: opts.vm });
    lines.push(...rep.lines, '');
    failures.push(...rep.failures);
    explained += rep.explained;
  }
  const used = new Set<KnownDifference>();
  for (const c of cases) {
    const g = records.get(c.name);
    if (!g) continue;
    for (const p of [KERNEL_PROFILE, OTHER_PROFILE]) {
      for (const d of compareCase(c.name, g.record.steps, runModelCase(c, p), p)) if (d.explainedBy) used.add(d.explainedBy);
    }
  }
  if (used.size) {
    lines.push(`explained differences (${KERNEL_PROFILE} must match the booted kernel; ${OTHER_PROFILE} is shown for information):`);
    for (const k of used) lines.push(`  [${k.profile}] ${k.scenario}${k.step !== undefined ? ` step ${k.step}` : ''} ${k.field}: ${k.commit}: ${k.why}`);
  }
  lines.push(failures.length ? `FAIL: ${failures.length} problem(s)` : `OK: ${cases.length} scenario(s) agree (${explained} explained difference(s))`);
  for (const f of failures) lines.push(`  - ${f}`);
  return { ok: failures.length === 0, table: lines.join('\n') };
}

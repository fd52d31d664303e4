// Turn a case's guest output (guest.ts protocol) into structured results: every status line
// parsed (dm-thin.c pool_status / thin_status field order of the booted kernel), every command's
// exit code and errno, IO byte counts, background-write outcomes, and the dm lines of dmesg.

import { ioChunk } from './guest.js';
import type { KEvent } from './scenario.js';

/** Pool status as printed by pool_status(): transaction id, metadata and data use, held root, mode... */
export type PoolStatus =
  | {
      readonly kind: 'ok';
      readonly txid: number;
      readonly metaUsed: number;
      readonly metaTotal: number;
      readonly dataUsed: number;
      readonly dataTotal: number;
      /** metadata block of the held (reserved) metadata snapshot root, or null for '-' */
      readonly heldRoot: number | null;
      /** 'rw' | 'ro' | 'out_of_data_space' */
      readonly mode: string;
      /** 'discard_passdown' | 'no_discard_passdown' | 'ignore_discard' */
      readonly discard: string;
      /** the EFFECTIVE flag: 'error_if_no_space' | 'queue_if_no_space' */
      readonly noSpace: string;
      readonly needsCheck: boolean;
      /** metadata low water mark (blocks); only later kernels print it */
      readonly metaLowWater: number | null;
    }
  | { readonly kind: 'fail' }
  | { readonly kind: 'error'; readonly text: string };

export interface ThinStatus {
  /** mapped sectors, or null when the thin reports Fail/error */
  readonly mappedSectors: number | null;
  readonly highestSector: number | null;
  readonly raw: string;
}

export interface BgOutcome {
  readonly id: string;
  readonly state: 'done' | 'pending';
  readonly ok: boolean | null;
  readonly errno: string | null;
}

export interface StepResult {
  readonly index: number;
  readonly event: KEvent;
  /** guest uptime when the step began */
  readonly t: number;
  /** true when every command of the step exited 0 */
  readonly ok: boolean;
  /** errno name from the first failing command's message, e.g. ENOSPC */
  readonly errno: string | null;
  /** for write events: whole pool blocks the kernel acknowledged */
  readonly blocksWritten?: number;
  readonly bg?: readonly BgOutcome[];
  readonly pool: PoolStatus | null;
  readonly thins: Readonly<Record<string, ThinStatus>>;
  readonly output: readonly string[];
}

export interface CaseRecord {
  readonly steps: readonly StepResult[];
  readonly watchdog: boolean;
  readonly teardownOk: boolean;
}

const ERRNO_TEXT: readonly [string, string][] = [
  ['No space left on device', 'ENOSPC'],
  ['Input/output error', 'EIO'],
  ['Operation not supported', 'EOPNOTSUPP'],
  ['Invalid argument', 'EINVAL'],
  ['Device or resource busy', 'EBUSY'],
  ['No data available', 'ENODATA'],
  ['File exists', 'EEXIST'],
  ['Operation not permitted', 'EPERM'],
  ['Cannot allocate memory', 'ENOMEM'],
  ['No such device or address', 'ENXIO'],
  ['No such file or directory', 'ENOENT'],
  ['No such device', 'ENODEV'],
  ['Read-only file system', 'EROFS'],
];

export function errnoOf(text: string): string | null {
  for (const [msg, name] of ERRNO_TEXT) if (text.includes(msg)) return name;
  return null;
}

export function parsePoolStatus(line: string): PoolStatus {
  const f = line.trim().split(/\s+/);
  // f[0..2] = start length "thin-pool"
  if (f[2] !== 'thin-pool') return { kind: 'error', text: line.trim() };
  const rest = f.slice(3);
  if (rest[0] === 'Fail') return { kind: 'fail' };
  const [txid, meta, data, held, mode, discard, noSpace, needs, lw] = rest;
  const frac = (s: string | undefined): [number, number] => {
    const m = /^(\d+)\/(\d+)$/.exec(s ?? '');
    return m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  };
  const [metaUsed, metaTotal] = frac(meta);
  const [dataUsed, dataTotal] = frac(data);
  if (txid === undefined || !/^\d+$/.test(txid) || Number.isNaN(metaUsed) || Number.isNaN(dataUsed)) {
    return { kind: 'error', text: line.trim() };
  }
  return {
    kind: 'ok',
    txid: Number(txid),
    metaUsed, metaTotal, dataUsed, dataTotal,
    heldRoot: held === undefined || held === '-' ? null : Number(held),
    mode: mode ?? '?',
    discard: discard ?? '?',
    noSpace: noSpace ?? '?',
    needsCheck: needs === 'needs_check',
    metaLowWater: lw === undefined ? null : Number(lw),
  };
}

function parseThinStatus(line: string): ThinStatus {
  const f = line.trim().split(/\s+/);
  if (f[2] !== 'thin' || f[3] === undefined || !/^\d+$/.test(f[3])) return { mappedSectors: null, highestSector: null, raw: line.trim() };
  return { mappedSectors: Number(f[3]), highestSector: f[4] === '-' || f[4] === undefined ? null : Number(f[4]), raw: line.trim() };
}

function parseBg(rest: string): BgOutcome {
  const m = /^(\S+) (done|pending)\s*(.*)$/.exec(rest);
  if (!m) return { id: '?', state: 'pending', ok: null, errno: null };
  const [, id = '?', state, tail = ''] = m;
  if (state === 'pending') return { id, state: 'pending', ok: null, errno: null };
  const rc = /rc=(\d+)/.exec(tail)?.[1];
  return { id, state: 'done', ok: rc === '0', errno: rc === '0' ? null : errnoOf(tail) };
}

/** Parse the case log against the events the case ran. */
export function parseCaseLog(log: string, events: readonly KEvent[]): CaseRecord {
  interface Acc { t: number; rcs: number[]; out: string[]; bg: BgOutcome[]; pool: PoolStatus | null; thins: Record<string, ThinStatus> }
  const acc = new Map<number, Acc>();
  let watchdog = false, teardownOk = true, teardownDone = false;
  for (const line of log.split('\n')) {
    const m = /^@(\S+) (\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    const [, tag = '', kind = '', rest = ''] = m;
    if (tag === '-' && kind === 'watchdog') watchdog = true;
    if (tag === 'teardown') {
      if (kind === 'rc' && rest.trim() !== '0') teardownOk = false;
      if (kind === 'done') teardownDone = true;
      continue;
    }
    if (!/^\d+$/.test(tag)) continue;
    const i = Number(tag);
    let a = acc.get(i);
    if (!a) {
      a = { t: NaN, rcs: [], out: [], bg: [], pool: null, thins: {} };
      acc.set(i, a);
    }
    if (kind === 'ev') a.t = Number(rest.split(' ')[1]);
    else if (kind === 'rc') a.rcs.push(Number(rest));
    else if (kind === 'out') a.out.push(rest);
    else if (kind === 'bg') a.bg.push(parseBg(rest));
    else if (kind === 'status') {
      const sm = /^(\S+): (.*)$/.exec(rest);
      if (sm?.[1] === 'pool') a.pool = parsePoolStatus(sm[2] ?? '');
      else if (sm?.[1]) a.thins[sm[1]] = parseThinStatus(sm[2] ?? '');
    }
  }
  const steps: StepResult[] = [];
  events.forEach((event, index) => {
    const a = acc.get(index);
    if (!a) return; // never reached (watchdog or an earlier crash of the script)
    // events without a command of their own (await) succeed unless something they ran failed
    const ok = a.rcs.every((r) => r === 0);
    const errText = a.out.find((o) => errnoOf(o) !== null) ?? '';
    const step: StepResult = {
      index, event, t: a.t, ok, errno: ok ? null : errnoOf(errText),
      pool: a.pool, thins: a.thins, output: a.out,
      ...(a.bg.length ? { bg: a.bg } : {}),
      ...(event.type === 'write' ? { blocksWritten: recordsOut(a.out) * ioChunk(event.count, event.block) } : {}),
    };
    steps.push(step);
  });
  return { steps, watchdog, teardownOk: teardownOk && teardownDone };
}

function recordsOut(out: readonly string[]): number {
  for (const o of out) {
    const m = /^(\d+)\+(\d+) records out/.exec(o);
    if (m) return Number(m[1]);
  }
  return 0;
}

/** dmesg lines from device-mapper, without timestamps and dm device numbers (they vary by run). */
export function dmLines(dmesg: string): string[] {
  return dmesg
    .split('\n')
    .map((l) => l.replace(/^\[\s*[\d.]+\]\s*/, ''))
    .filter((l) => l.startsWith('device-mapper:'))
    .map((l) => l.replace(/\b\d+:\d+:/g, 'N:N:'));
}

// Boot the oracle VM once for a batch of cases and collect what each case left behind.
// qemu runs in software emulation (TCG) unless DMCHECK_ACCEL=kvm; it is killed by a host-side
// watchdog when the guest stops making progress (the guest has its own per-case watchdog).

import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCpioGz, type CpioEntry } from './cpio.js';
import { layoutCases, renderCase, type CaseSlot } from './guest.js';
import type { KCase } from './scenario.js';
import type { KernelSetup } from './setup.js';
import { readTar } from './tar.js';

export interface RawCaseResult {
  readonly name: string;
  readonly slot: CaseSlot;
  readonly log: string;
  /** exit code of the case script, or 'watchdog' / 'missing' */
  readonly rc: string;
  readonly dmesg: string;
  /** guest uptime at case start/end (seconds) */
  readonly start: number;
  readonly end: number;
  /** the case's metadata slice of the disk, as the kernel left it */
  readonly metaImage: Buffer;
  /** the case's dm-log-writes log slice (only as long as needed) */
  readonly logImage: Buffer;
}

export interface RawRun {
  readonly kernel: string;
  readonly info: string;
  readonly console: string;
  readonly wallSeconds: number;
  /** why the host killed qemu, or null when the guest powered off by itself */
  readonly killedBy: string | null;
  readonly cases: readonly RawCaseResult[];
}

function readSlice(path: string, offsetBytes: number, lengthBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(lengthBytes);
    let done = 0;
    while (done < lengthBytes) {
      const n = readSync(fd, buf, done, lengthBytes - done, offsetBytes + done);
      if (n === 0) break;
      done += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** The log slice up to the end of its last entry (the superblock says how many entries). */
function trimLog(buf: Buffer): Buffer {
  // keep whole slice if the superblock is absent; logwrites.ts reports that as unusable
  if (buf.length < 32 || buf.readBigUInt64LE(0) !== 0x6a736677736872n) return buf.subarray(0, 4096);
  let end = buf.length;
  while (end > 4096 && buf[end - 1] === 0) end--;
  return buf.subarray(0, Math.ceil(end / 512) * 512);
}

function num(s: string | undefined): number {
  const n = Number(s);
  return Number.isFinite(n) ? n : NaN;
}

/** Host-side limits (seconds) for a batch: the guest has its own watchdog per case; these cover a guest that stops altogether. */
export interface HostWatchdog {
  readonly bootSec: number;
  readonly slackSec: number;
  caseSec(i: number): number;
}

export function hostWatchdog(cases: readonly KCase[]): HostWatchdog {
  // boot under TCG took up to ~6 minutes on a host with load 30 (other engineers' tests)
  const bootSec = Number(process.env['DMCHECK_VM_BOOT_TIMEOUT'] ?? 0) || 420;
  // after a guest watchdog fires, init still runs dmsetup status, dmesg and tar (slow under load)
  const slackSec = 120;
  return { bootSec, slackSec, caseSec: (i) => (cases[i]?.limitSec ?? 0) + slackSec };
}

export async function runVm(setup: KernelSetup, cases: readonly KCase[], opts: { log: (l: string) => void; keepDir?: boolean; tag?: string }): Promise<RawRun> {
  const layout = layoutCases(cases);
  const dir = mkdtempSync(join(tmpdir(), 'dmcheck-vm-'));
  const meta = join(dir, 'meta.img'), data = join(dir, 'data.img'), logd = join(dir, 'log.img'), out = join(dir, 'out.img');
  const disks: [string, number][] = [[meta, layout.metaDiskBytes], [data, layout.dataDiskBytes], [logd, layout.logDiskBytes], [out, 16 << 20]];
  for (const [p, size] of disks) {
    writeFileSync(p, '');
    truncateSync(p, size);
  }
  const entries: CpioEntry[] = [];
  cases.forEach((c, i) => {
    const slot = layout.slots[i];
    if (!slot) throw new Error('layout lost a case');
    entries.push({ kind: 'file', path: `cases/${slot.prefix}.sh`, data: Buffer.from(renderCase(c, slot)), mode: 0o755 });
    entries.push({ kind: 'file', path: `cases/${slot.prefix}.limit`, data: Buffer.from(`${c.limitSec}\n`) });
  });
  entries.push({ kind: 'file', path: 'cases/order', data: Buffer.from(layout.slots.map((s) => s.prefix).join('\n') + '\n') });
  const initrd = join(dir, 'initrd.gz');
  writeFileSync(initrd, Buffer.concat([setup.baseInitrd, buildCpioGz(entries)]));

  const accel = process.env['DMCHECK_ACCEL'] ?? 'tcg';
  const cpu = accel === 'kvm' ? 'host' : 'max';
  const args = [
    '-accel', accel, '-cpu', cpu, '-m', '512', '-smp', process.env['DMCHECK_SMP'] ?? '1', '-nographic', '-no-reboot', '-nodefaults',
    '-serial', 'stdio', '-kernel', setup.vmlinuz, '-initrd', initrd,
    '-append', ['console=ttyS0 quiet loglevel=3 panic=-1', process.env['DMCHECK_KERNEL_ARGS'] ?? ''].join(' ').trim(),
    ...disks.flatMap(([p]) => ['-drive', `file=${p},if=virtio,format=raw,cache=unsafe`]),
    ...(process.env['DMCHECK_QEMU_ARGS'] ?? '').split(' ').filter(Boolean),
  ];
  const watchdog = hostWatchdog(cases);
  const tag = opts.tag ? `[${opts.tag}] ` : '';
  opts.log(`${tag}booting ${setup.kver} (${accel}) with ${cases.length} case(s); host watchdog: ${watchdog.bootSec}s to boot, then each case's guest watchdog + ${watchdog.slackSec}s`);
  const t0 = performance.now();
  let consoleText = '';
  let killedBy: string | null = null;
  await new Promise<void>((resolve) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    let timer: NodeJS.Timeout | undefined;
    // The deadline moves with the guest's progress lines, so a hung guest costs at most one
    // phase's allowance (boot, or one case), never the sum over the batch.
    const arm = (sec: number, what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killedBy = `no progress for ${sec}s (${what}): qemu killed; cases not finished by then have no results`;
        opts.log(`${tag}${killedBy}`);
        child.kill('SIGKILL');
      }, sec * 1000);
    };
    arm(watchdog.bootSec, 'boot');
    const onLine = (b: Buffer): void => {
      const s = b.toString('utf8');
      consoleText += s;
      const lines = (partial + s).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        if (!raw.includes('DMCHECK')) continue;
        const l = raw.slice(raw.indexOf('DMCHECK')).replace(/[\x00-\x1f]/g, '').trim();
        opts.log(`${tag}${l}`);
        const done = /^DMCHECK case c(\d+) /.exec(l);
        if (/^DMCHECK modules /.test(l)) arm(watchdog.caseSec(0), `case ${layout.slots[0]?.prefix ?? '-'}`);
        else if (done) {
          const next = Number(done[1]) + 1;
          arm(next < cases.length ? watchdog.caseSec(next) : watchdog.slackSec, next < cases.length ? `case c${next}` : 'power-off');
        }
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    const onExit = (): void => { child.kill('SIGKILL'); };
    process.once('exit', onExit);
    child.on('close', () => {
      clearTimeout(timer);
      process.removeListener('exit', onExit);
      resolve();
    });
    child.on('error', (err) => {
      consoleText += `\nqemu failed to start: ${err.message}`;
    });
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  const files = new Map(readTar(readFileSync(out)).map((f) => [f.path, f.data.toString('utf8')]));
  const results = cases.map((c, i): RawCaseResult => {
    const slot = layout.slots[i] as CaseSlot;
    const timing = files.get(`${slot.prefix}/timing`) ?? '';
    return {
      name: c.name,
      slot,
      log: files.get(`${slot.prefix}/log`) ?? '',
      rc: (files.get(`${slot.prefix}/rc`) ?? 'missing').trim(),
      dmesg: files.get(`${slot.prefix}/dmesg`) ?? '',
      start: num(/start (\S+)/.exec(timing)?.[1]),
      end: num(/end (\S+)/.exec(timing)?.[1]),
      metaImage: readSlice(meta, slot.metaOffset * 512, slot.metaSectors * 512),
      logImage: trimLog(readSlice(logd, slot.logOffset * 512, slot.logSectors * 512)),
    };
  });
  const info = files.get('info') ?? '';
  if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  else opts.log(`VM disks kept in ${dir}`);
  return { kernel: /kernel (\S+)/.exec(info)?.[1] ?? 'unknown', info, console: consoleText, wallSeconds, killedBy, cases: results };
}

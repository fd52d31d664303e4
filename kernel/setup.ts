// Host setup for the real-kernel oracle: checks the Debian tools, fetches the Debian kernel image
// with `apt-get download` and unpacks it with `dpkg -x` (never installs it), runs depmod on the
// unpacked tree, and builds the base initramfs (busybox, dmsetup, pdata_tools, the dm modules and
// our PID-1 init) in memory. The guest kernel is whatever Debian ships for linux-image-cloud-amd64
// (6.1 on bookworm) unless DMCHECK_KERNEL_PKG names one; the recorder prefers the release the
// golden records name, so a new Debian kernel upload does not silently change the oracle.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { buildCpioGz, type CpioEntry } from './cpio.js';
import { INIT_SCRIPT } from './guest.js';

/** Debian packages the harness needs on the host, by the command that proves each is there. */
export const HOST_PACKAGES: readonly { readonly pkg: string; readonly probe: string }[] = [
  { pkg: 'qemu-system-x86', probe: '/usr/bin/qemu-system-x86_64' },
  { pkg: 'busybox-static', probe: '/bin/busybox' },
  { pkg: 'dmsetup', probe: '/usr/sbin/dmsetup' },
  { pkg: 'thin-provisioning-tools', probe: '/usr/sbin/pdata_tools' },
  { pkg: 'kmod', probe: '/usr/sbin/depmod' },
];

/** dm modules the guest loads; modprobe --show-depends expands them (with softdeps) into insmod order. */
const WANTED_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_intel', 'libcrc32c', 'dm-mod', 'dm-thin-pool', 'dm-log-writes', 'dm-flakey'];

export interface KernelSetup {
  readonly kver: string;
  readonly pkg: string;
  readonly vmlinuz: string;
  /** Base initramfs (gzip cpio); case scripts are appended as a second archive per run. */
  readonly baseInitrd: Buffer;
  readonly modules: readonly string[];
}

export function cacheDir(): string {
  const base = process.env['DMCHECK_KERNEL_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'dmcheck', 'kernel');
  mkdirSync(base, { recursive: true });
  return base;
}

export function missingHostPackages(): string[] {
  return HOST_PACKAGES.filter((p) => !existsSync(p.probe)).map((p) => p.pkg);
}

function run(cmd: string, args: readonly string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim().slice(-400)}`);
  }
  return r.stdout;
}

/** Install the host packages with apt-get when asked to (CI); otherwise say what is missing. */
export function ensureHostPackages(install: boolean, log: (l: string) => void): void {
  const missing = missingHostPackages();
  if (missing.length === 0) return;
  if (!install) {
    throw new Error(`the kernel oracle needs Debian packages: ${missing.join(' ')} (run: apt-get install --no-install-recommends ${missing.join(' ')}, or set DMCHECK_VM_INSTALL=1)`);
  }
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, stdio: 'ignore' });
}

/** Whether apt knows a package (from the indexes of the last apt-get update). */
function aptHas(pkg: string): boolean {
  return spawnSync('apt-cache', ['show', '--no-all-versions', pkg], { encoding: 'utf8' }).status === 0;
}

function kernelPackage(prefer: string | null, log: (l: string) => void): string {
  const fromEnv = process.env['DMCHECK_KERNEL_PKG'];
  if (fromEnv) return fromEnv;
  if (prefer) {
    const pkg = `linux-image-${prefer}`;
    if (aptHas(pkg)) return pkg;
    log(`the golden records were made with ${prefer}, which apt no longer offers: using the current cloud kernel`);
  }
  const out = run('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const m = /Depends: (linux-image-[^\s]+)/.exec(out);
  if (!m?.[1]) throw new Error('apt-cache knows no linux-image-cloud-amd64 dependency: run apt-get update, or set DMCHECK_KERNEL_PKG=linux-image-<abi>');
  return m[1];
}

/** Download + unpack the kernel .deb into the cache (once), depmod it. */
function ensureKernelTree(dir: string, pkg: string, log: (l: string) => void): { kroot: string; kver: string } {
  const kver = pkg.replace(/^linux-image-/, '');
  const kroot = join(dir, kver);
  if (!existsSync(join(kroot, 'boot', `vmlinuz-${kver}`))) {
    log(`apt-get download ${pkg}`);
    run('apt-get', ['download', pkg], dir);
    const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
    run('dpkg', ['-x', join(dir, deb), kroot]);
  }
  if (!existsSync(join(kroot, 'lib', 'modules', kver, 'modules.dep'))) run('depmod', ['-b', kroot, kver]);
  return { kroot, kver };
}

function moduleOrder(kroot: string, kver: string): string[] {
  const seen = new Set<string>();
  const order: string[] = [];
  for (const m of WANTED_MODULES) {
    const out = run('modprobe', ['-d', kroot, '-S', kver, '--show-depends', m]);
    for (const line of out.split('\n')) {
      const [verb, path] = line.trim().split(/\s+/);
      if (verb === 'insmod' && path && !seen.has(path)) {
        seen.add(path);
        order.push(path);
      }
    }
  }
  return order;
}

/** Shared libraries (and the loader) a dynamic binary needs, from ldd. */
function sharedLibs(bin: string): string[] {
  const out = run('ldd', [bin]);
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const loader = /^\s*(\/\S*ld-linux\S*)/.exec(line);
    const p = arrow?.[1] ?? loader?.[1];
    if (p && existsSync(p)) libs.push(p);
  }
  return libs;
}

function addDirs(entries: CpioEntry[], dirs: Set<string>, path: string): void {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) {
    const d = parts.slice(0, i).join('/');
    if (!dirs.has(d)) {
      dirs.add(d);
      entries.push({ kind: 'dir', path: d });
    }
  }
}

function baseEntries(modules: readonly string[]): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'lib', 'lib64', 'proc', 'sys', 'dev', 'tmp', 'out', 'mods', 'cases', 'run']) {
    dirs.add(d);
    entries.push({ kind: 'dir', path: d });
  }
  const file = (path: string, data: Uint8Array, mode = 0o755): void => {
    addDirs(entries, dirs, path);
    entries.push({ kind: 'file', path, data, mode });
  };
  file('bin/busybox', readFileSync('/bin/busybox'));
  const applets = run('/bin/busybox', ['--list']).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) entries.push({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' });
  const libs = new Set<string>();
  for (const bin of ['/usr/sbin/dmsetup', '/usr/sbin/pdata_tools']) {
    file(bin.slice(1), readFileSync(realpathSync(bin)));
    for (const l of sharedLibs(bin)) libs.add(l);
  }
  for (const l of libs) {
    // keep the path ldd printed (the loader looks there), with the content of the real file
    file(l.slice(1), readFileSync(realpathSync(l)));
  }
  for (const t of ['thin_check', 'thin_dump', 'thin_restore', 'thin_repair', 'thin_ls']) {
    entries.push({ kind: 'symlink', path: `usr/sbin/${t}`, target: 'pdata_tools' });
  }
  for (const m of modules) file(`mods/${basename(m)}`, readFileSync(m), 0o644);
  file('mods/order', Buffer.from(modules.map((m) => basename(m)).join('\n') + '\n'), 0o644);
  file('init', Buffer.from(INIT_SCRIPT, 'utf8'));
  return entries;
}

/** Everything needed to boot the oracle VM; cached under cacheDir() apart from the initramfs. */
export function setupKernel(opts: { install: boolean; log: (l: string) => void; prefer?: string | null }): KernelSetup {
  ensureHostPackages(opts.install, opts.log);
  const dir = cacheDir();
  const pkg = kernelPackage(opts.prefer ?? null, opts.log);
  const { kroot, kver } = ensureKernelTree(dir, pkg, opts.log);
  const modules = moduleOrder(kroot, kver);
  const baseInitrd = buildCpioGz(baseEntries(modules));
  const vmlinuz = join(kroot, 'boot', `vmlinuz-${kver}`);
  return { kver, pkg, vmlinuz, baseInitrd, modules: modules.map((m) => basename(m)) };
}

// Minimal writer for the "newc" cpio format that the Linux initramfs unpacker reads
// (init/initramfs.c: the 110-byte ASCII header "070701", names and data padded to 4 bytes).
// Written so the harness needs no temp tree and produces the same archive for the same inputs.

import { gzipSync } from 'node:zlib';

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, name: string, data: Uint8Array): Buffer {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from('070701' + fields.map(hex8).join(''), 'ascii');
  const headPad = pad4(header.length + nameBytes.length);
  return Buffer.concat([header, nameBytes, Buffer.alloc(headPad), Buffer.from(data), Buffer.alloc(pad4(data.length))]);
}

/** Build an uncompressed newc archive (with its TRAILER!!! record). Paths are relative, no leading '/'. */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (e.kind === 'dir') parts.push(record(ino++, S_IFDIR | 0o755, path, new Uint8Array()));
    else if (e.kind === 'file') parts.push(record(ino++, S_IFREG | (e.mode ?? 0o644), path, e.data));
    else parts.push(record(ino++, S_IFLNK | 0o777, path, Buffer.from(e.target, 'utf8')));
  }
  parts.push(record(0, 0, 'TRAILER!!!', new Uint8Array()));
  return Buffer.concat(parts);
}

/** Gzip-compressed archive; the kernel accepts several of these concatenated in one initrd. */
export function buildCpioGz(entries: readonly CpioEntry[]): Buffer {
  return gzipSync(buildCpio(entries), { level: 1 });
}

// Reader for the ustar stream the guest writes with `tar -cf /dev/vdd` (busybox tar): 512-byte
// headers, octal sizes, data padded to 512. Only regular files are returned; the stream ends at
// the first all-zero header (the rest of the results disk is zero).

export interface TarFile {
  readonly path: string;
  readonly data: Buffer;
}

function octal(buf: Buffer, off: number, len: number): number {
  const s = buf.subarray(off, off + len).toString('ascii').replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function cstr(buf: Buffer, off: number, len: number): string {
  const raw = buf.subarray(off, off + len);
  const z = raw.indexOf(0);
  return raw.subarray(0, z < 0 ? len : z).toString('utf8');
}

export function readTar(buf: Buffer): TarFile[] {
  const out: TarFile[] = [];
  let pos = 0;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const name = cstr(h, 0, 100);
    const prefix = h.subarray(257, 262).toString('ascii') === 'ustar' ? cstr(h, 345, 155) : '';
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] ?? 48);
    pos += 512;
    if (type === '0' || type === '\0') {
      const path = (prefix ? prefix + '/' : '') + name;
      out.push({ path: path.replace(/^\.\//, ''), data: Buffer.from(buf.subarray(pos, pos + size)) });
    }
    pos += Math.ceil(size / 512) * 512;
  }
  return out;
}

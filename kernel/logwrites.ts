// Reader for dm-log-writes logs and the crash-consistency rebuilds made from them.
// Follows drivers/md/dm-log-writes.c (format version 1, little-endian): a superblock
// {magic, version, nr_entries, sectorsize} at byte 0, then from byte `sectorsize` one entry header
// sector {sector, nr_sectors, flags, data_len} (+ the text of a MARK) followed by the written data.
// log_writes_map/log_writes_end_io: plain writes are logged (in completion order) when the next
// FLUSH completes, just before the FLUSH entry; FUA writes are logged when they complete. So every
// prefix of the log that ends on a FLUSH or FUA entry is a state the device may really have held
// after a power cut, and the writes between two such points ("an epoch") may have landed in any
// subset and order.

export const LW_MAGIC = 0x6a736677736872n;
export const LW_FLUSH = 1, LW_FUA = 2, LW_DISCARD = 4, LW_MARK = 8, LW_METADATA = 16;
export const META_BLOCK = 4096;

export interface LwEntry {
  readonly index: number;
  /** in units of the log's sector size */
  readonly sector: number;
  readonly nrSectors: number;
  readonly flags: number;
  readonly mark?: string;
  readonly data?: Buffer;
}

export interface LwLog {
  readonly sectorSize: number;
  readonly entries: readonly LwEntry[];
}

export function parseLogWrites(buf: Buffer): LwLog {
  if (buf.length < 32 || buf.readBigUInt64LE(0) !== LW_MAGIC) {
    throw new Error('not a dm-log-writes log (bad magic): was the log-writes target removed before the log was read?');
  }
  const version = buf.readBigUInt64LE(8);
  if (version !== 1n) throw new Error(`dm-log-writes log version ${version} is not supported (expected 1)`);
  const nr = Number(buf.readBigUInt64LE(16));
  const ss = buf.readUInt32LE(24);
  const entries: LwEntry[] = [];
  let pos = ss;
  for (let i = 0; i < nr; i++) {
    if (pos + 32 > buf.length) throw new Error(`log truncated at entry ${i} of ${nr}`);
    const sector = Number(buf.readBigUInt64LE(pos));
    const nrSectors = Number(buf.readBigUInt64LE(pos + 8));
    const flags = Number(buf.readBigUInt64LE(pos + 16));
    const dataLen = Number(buf.readBigUInt64LE(pos + 24));
    const mark = flags & LW_MARK ? buf.subarray(pos + 32, pos + 32 + dataLen).toString('utf8') : undefined;
    pos += ss;
    let data: Buffer | undefined;
    if (!(flags & LW_DISCARD) && nrSectors > 0) {
      data = buf.subarray(pos, pos + nrSectors * ss);
      if (data.length !== nrSectors * ss) throw new Error(`log truncated in the data of entry ${i}`);
      pos += nrSectors * ss;
    }
    entries.push({ index: i, sector, nrSectors, flags, ...(mark !== undefined ? { mark } : {}), ...(data ? { data } : {}) });
  }
  return { sectorSize: ss, entries };
}

export function entryKind(e: LwEntry): string {
  const k: string[] = [];
  if (e.flags & LW_FLUSH) k.push('FLUSH');
  if (e.flags & LW_FUA) k.push('FUA');
  if (e.flags & LW_DISCARD) k.push('DISCARD');
  if (e.flags & LW_MARK) k.push('MARK');
  if (e.flags & LW_METADATA) k.push('META');
  return k.length ? k.join('|') : 'W';
}

const isPoint = (e: LwEntry): boolean => (e.flags & (LW_FLUSH | LW_FUA)) !== 0;
const isWrite = (e: LwEntry): boolean => e.data !== undefined && !(e.flags & LW_MARK);

/** A flush point: the writes logged since the previous point, then the FLUSH/FUA entry itself. */
export interface Epoch {
  /** index of the FLUSH/FUA entry that ends the epoch */
  readonly point: number;
  readonly writes: readonly LwEntry[];
}

export function epochs(log: LwLog): Epoch[] {
  const out: Epoch[] = [];
  let cur: LwEntry[] = [];
  for (const e of log.entries) {
    if (isWrite(e) && !isPoint(e)) cur.push(e);
    if (isPoint(e)) {
      // a FUA write carries its data and is durable at its own completion
      if (isWrite(e)) cur.push(e);
      out.push({ point: e.index, writes: cur });
      cur = [];
    }
  }
  return out;
}

function apply(img: Buffer, e: LwEntry, ss: number): void {
  const start = e.sector * ss;
  if (e.flags & LW_DISCARD) img.fill(0, start, Math.min(img.length, start + e.nrSectors * ss));
  else if (e.data) {
    if (start + e.data.length > img.length) throw new Error(`log entry ${e.index} writes past the end of a ${img.length}-byte image`);
    e.data.copy(img, start);
  }
}

export interface CrashImage {
  /** human label: which point, which subset */
  readonly label: string;
  readonly epoch: number;
  readonly image: Buffer;
  /** false for a deliberately broken image (negative control) */
  readonly faithful: boolean;
}

/** Deterministic PRNG (mulberry32) so subset choices are reproducible from a printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RebuildOptions {
  readonly imageBytes: number;
  /** random proper subsets (in random order) of each epoch's writes applied on top of the previous point */
  readonly subsetsPerEpoch?: number;
  readonly seed?: number;
  /** negative control: the writes of this epoch are lost (a device that lied about the flush) */
  readonly dropEpoch?: number;
}

/**
 * Images at every flush point (and, optionally, random subsets of each epoch's writes on top of
 * the previous point's image). Images whose block 0 is still zero (never formatted) are skipped.
 */
export function* crashImages(log: LwLog, opts: RebuildOptions): Generator<CrashImage> {
  const ss = log.sectorSize;
  const img = Buffer.alloc(opts.imageBytes);
  const eps = epochs(log);
  const random = rng(opts.seed ?? 1);
  const formatted = (b: Buffer): boolean => !b.subarray(0, META_BLOCK).every((x) => x === 0);
  for (let n = 0; n < eps.length; n++) {
    const ep = eps[n] as Epoch;
    const k = opts.subsetsPerEpoch ?? 0;
    if (k > 0 && ep.writes.length > 1) {
      for (let s = 0; s < k; s++) {
        const copy = Buffer.from(img);
        const chosen = ep.writes.filter(() => random() < 0.5);
        for (let i = chosen.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [chosen[i], chosen[j]] = [chosen[j] as LwEntry, chosen[i] as LwEntry];
        }
        for (const w of chosen) apply(copy, w, ss);
        if (formatted(copy)) {
          yield { label: `epoch ${n} (before entry #${ep.point}) subset [${chosen.map((w) => w.index).join(',')}]`, epoch: n, image: copy, faithful: true };
        }
      }
    }
    if (opts.dropEpoch !== n) for (const w of ep.writes) apply(img, w, ss);
    if (formatted(img)) {
      yield { label: `flush point ${n} (entry #${ep.point})`, epoch: n, image: Buffer.from(img), faithful: opts.dropEpoch === undefined || n < opts.dropEpoch };
    }
  }
}

/** The final image the whole log produces (should equal the metadata device after teardown). */
export function finalImage(log: LwLog, imageBytes: number): Buffer {
  const img = Buffer.alloc(imageBytes);
  for (const e of log.entries) apply(img, e, log.sectorSize);
  return img;
}

/**
 * The commit shape both the kernel and the impl must show (THIN-META-2, superblock last):
 * every write of metadata block 0 (the superblock) is alone in its epoch, so the epoch before it
 * ended with a flush that made the transaction's other blocks durable.
 * Returns the violations as sentences (empty = holds) and a compact trace of the commits.
 */
export function commitShape(log: LwLog): { violations: string[]; commits: number; trace: string[] } {
  const ss = log.sectorSize;
  const blockOf = (w: LwEntry): number => Math.floor((w.sector * ss) / META_BLOCK);
  const eps = epochs(log);
  const violations: string[] = [];
  const trace: string[] = [];
  let commits = 0;
  // Writes after the last flush point form an open epoch. A lone superblock there is allowed: 6.1
  // writes the needs_check superblock of a read-only pool at close with no flush after it (seen in
  // meta-write-error); with other blocks beside it, it could land without them.
  const lastPoint = eps.length ? (eps[eps.length - 1] as Epoch).point : -1;
  const tail = log.entries.filter((e) => e.index > lastPoint && isWrite(e)).map(blockOf);
  if (tail.includes(0) && tail.some((b) => b !== 0)) {
    violations.push(`the unflushed tail of the log writes the superblock together with blocks [${tail.filter((b) => b !== 0).join(' ')}]`);
  }
  eps.forEach((ep, n) => {
    const blocks = ep.writes.map(blockOf);
    trace.push(`[${blocks.join(' ')}] ${entryKind(log.entries[ep.point] as LwEntry)}`);
    if (!blocks.includes(0)) return;
    commits++;
    if (blocks.length !== 1) {
      violations.push(`epoch ${n} (entry #${ep.point}) writes the superblock together with blocks [${blocks.filter((b) => b !== 0).join(' ')}]: they may land without each other`);
    }
    if (n === 0) violations.push(`the first epoch writes the superblock with no flush before it`);
  });
  return { violations, commits, trace };
}

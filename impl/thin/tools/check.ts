// The project's own thin_check: reads a dm-thin metadata image the way
// thin-provisioning-tools' thin_check does (superblock, device-details tree, mapping tree, space
// map counts) and also checks what thin_check 0.9.0 misses (superblock magic/blocknr/version,
// data reference counts, data block range, mapped_blocks, device sets agree). Layouts follow
// drivers/md/dm-thin-metadata.c and drivers/md/persistent-data/ (dm-btree-internal.h,
// dm-space-map-common.c, dm-space-map-metadata.c); counting rules are thin-metadata-format.md §5,
// §6.10, §6.11.

import type { BlockDevice } from '../../block-device.js';
import { dmBlockChecksum } from '../../persistent-data/crc32c.js';
import {
  BTREE_CSUM_XOR,
  INTERNAL_NODE,
  LEAF_NODE,
  NODE_HEADER_SIZE,
  getU32,
  getU64,
  keyAt,
  maxEntries,
  nodeFlags,
  nrEntries,
  value64,
  valueOffset,
  valueSize,
} from '../../persistent-data/btree-internal.js';
import {
  BITMAP_CSUM_XOR,
  ENTRIES_PER_BLOCK,
  INDEX_CSUM_XOR,
  MAX_METADATA_BITMAPS,
  decodeIndexEntry,
  lookupBitmap,
} from '../../persistent-data/space-map-common.js';
import {
  SB,
  SUPERBLOCK_CSUM_XOR,
  THIN_SUPERBLOCK_MAGIC,
  decodeDetails,
  decodeSuperblock,
  unpackBlockTime,
  type DeviceDetails,
  type SmRoot,
  type Superblock,
} from '../format/superblock.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  readonly severity: Severity;
  /** Stable machine-readable kind, e.g. 'btree-checksum', 'data-refcount'. */
  readonly code: string;
  readonly message: string;
}

export interface CheckOptions {
  /** Check the metadata snapshot (thin_check -m) instead of the live superblock's trees. */
  readonly metadataSnap?: boolean;
  /** Skip the space-map count comparison (faster, for structure-only checks). */
  readonly skipSpaceMaps?: boolean;
}

// ---- block reading with memoised validation ----
// Crash images share block arrays with the device they came from, so a block already validated is
// not checksummed again.
const validated = new WeakMap<Uint8Array, number>();

function checksumOk(d: Uint8Array, salt: number): boolean {
  const m = validated.get(d);
  if (m === salt) return true;
  const ok = dmBlockChecksum(d, 4, salt) === getU32(d, 0);
  if (ok) validated.set(d, salt);
  return ok;
}

export interface MappingEntry {
  readonly vblock: number;
  readonly dataBlock: number;
  readonly time: number;
}

export interface ReadDevice {
  readonly id: number;
  readonly details: DeviceDetails | null;
  readonly mappings: MappingEntry[] | null;
}

/** Everything the walk learned; `findings` lists what is wrong. */
export interface CheckReport {
  readonly findings: Finding[];
  readonly superblock: Superblock | null;
  /** The metadata snapshot's superblock copy, when one is held and readable. */
  readonly snapshot: Superblock | null;
  /** Devices of the live trees (or of the snapshot with `metadataSnap`). */
  readonly devices: ReadDevice[];
  /** True when there is no finding of severity 'error'. */
  readonly ok: boolean;
}

class Walker {
  readonly findings: Finding[] = [];
  /** Expected metadata reference counts. */
  readonly metaRefs = new Map<number, number>();
  /** Expected data reference counts (per distinct mapping leaf). */
  readonly dataRefs = new Map<number, number>();
  private readonly visited = new Set<number>();
  private readonly bad = new Set<number>();

  constructor(readonly dev: BlockDevice) {}

  isBad(b: number): boolean {
    return this.bad.has(b);
  }

  err(code: string, message: string): void {
    this.findings.push({ severity: 'error', code, message });
  }

  warn(code: string, message: string): void {
    this.findings.push({ severity: 'warning', code, message });
  }

  ref(b: number): void {
    this.metaRefs.set(b, (this.metaRefs.get(b) ?? 0) + 1);
  }

  read(b: number, what: string): Uint8Array | null {
    if (!Number.isInteger(b) || b < 0 || b >= this.dev.nrBlocks) {
      this.err('block-range', `${what}: block ${b} is beyond the metadata device (${this.dev.nrBlocks} blocks)`);
      return null;
    }
    try {
      return this.dev.read(b);
    } catch (e) {
      this.err('io', `${what}: reading block ${b} failed: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }

  /** Read and validate a btree node; null (with a finding) when damaged. */
  node(b: number, tree: string, vsize: number): Uint8Array | null {
    const d = this.read(b, tree);
    if (!d) return null;
    if (!checksumOk(d, BTREE_CSUM_XOR)) {
      this.err('btree-checksum', `${tree}: bad checksum in btree node (block ${b})`);
      return null;
    }
    if (getU64(d, 8) !== b) {
      this.err('btree-blocknr', `${tree}: bad block nr in btree node (block = ${b}, node says ${getU64(d, 8)})`);
      return null;
    }
    const f = nodeFlags(d);
    if (f !== INTERNAL_NODE && f !== LEAF_NODE) {
      this.err('btree-flags', `${tree}: unknown node type ${f} in block ${b}`);
      return null;
    }
    const vs = valueSize(d);
    const want = f === INTERNAL_NODE ? 8 : vsize;
    if (vs !== want) {
      this.err('btree-value-size', `${tree}: node ${b} has value_size ${vs}, expected ${want}`);
      return null;
    }
    const max = maxEntries(d);
    if (max % 3 !== 0) {
      this.err('btree-max-entries', `${tree}: max entries is not divisible by 3: ${max} (block ${b})`);
      return null;
    }
    if (NODE_HEADER_SIZE + max * (8 + vs) > 4096) {
      this.err('btree-max-entries', `${tree}: max_entries ${max} does not fit block ${b}`);
      return null;
    }
    if (nrEntries(d) > max) {
      this.err('btree-nr-entries', `${tree}: nr_entries ${nrEntries(d)} > max_entries ${max} in block ${b}`);
      return null;
    }
    return d;
  }

  /**
   * Walk a single-level btree. Each pointer to a node adds one expected reference; a node reached
   * again (shared) is not descended twice. `leaf` is called once per leaf entry of a first visit.
   * Returns false when some part of the tree was unreadable.
   */
  walk(root: number, tree: string, vsize: number, leaf: (key: number, d: Uint8Array, off: number, nodeBlock: number) => void): boolean {
    let lastLeafKey = -1;
    let ok = true;
    const visit = (b: number, isRoot: boolean, lowKey: number): void => {
      this.ref(b);
      if (this.visited.has(b)) {
        if (this.bad.has(b)) ok = false;
        return;
      }
      this.visited.add(b);
      const d = this.node(b, tree, vsize);
      if (!d) {
        this.bad.add(b);
        ok = false;
        return;
      }
      const nr = nrEntries(d);
      const max = maxEntries(d);
      if (!isRoot && nr < Math.floor(max / 3)) {
        this.err('btree-underfull', `${tree}: too few entries in btree_node: ${nr}, expected at least ${Math.floor(max / 3)} (block ${b})`);
      }
      let prev = -1;
      for (let i = 0; i < nr; i++) {
        const k = keyAt(d, i);
        if (i > 0 && k <= prev) {
          this.err('btree-key-order', `${tree}: keys are out of order, ${k} <= ${prev} (block ${b})`);
          this.bad.add(b);
          ok = false;
          return;
        }
        prev = k;
      }
      if (nr > 0 && keyAt(d, 0) < lowKey) {
        this.err('btree-parent-key', `${tree}: parent key ${lowKey} is greater than the first key ${keyAt(d, 0)} of block ${b}`);
      }
      if (nodeFlags(d) === INTERNAL_NODE) {
        if (nr === 0) this.err('btree-empty-internal', `${tree}: internal node ${b} has no entries`);
        for (let i = 0; i < nr; i++) visit(value64(d, i), false, keyAt(d, i));
      } else {
        if (nr > 0) {
          if (keyAt(d, 0) <= lastLeafKey) {
            this.err('btree-leaf-order', `${tree}: leaf ${b} starts at key ${keyAt(d, 0)}, not after the previous leaf's last key ${lastLeafKey}`);
          }
          lastLeafKey = keyAt(d, nr - 1);
        }
        for (let i = 0; i < nr; i++) leaf(keyAt(d, i), d, valueOffset(d, i), b);
      }
    };
    visit(root, true, 0);
    return ok;
  }

}

function superblockFindings(w: Walker, d: Uint8Array, at: number): Superblock | null {
  if (!checksumOk(d, SUPERBLOCK_CSUM_XOR)) {
    w.err('sb-checksum', `superblock is corrupt: bad checksum in superblock (block ${at}), wanted ${dmBlockChecksum(d, 4, SUPERBLOCK_CSUM_XOR)}`);
    return null;
  }
  const sb = decodeSuperblock(d);
  if (sb.magic !== THIN_SUPERBLOCK_MAGIC) w.err('sb-magic', `superblock magic is ${sb.magic}, expected ${THIN_SUPERBLOCK_MAGIC}: not dm-thin metadata (the kernel refuses it)`);
  if (sb.blocknr !== at) w.err('sb-blocknr', `superblock at block ${at} says it is block ${sb.blocknr} (the kernel refuses it)`);
  if (sb.version !== 1 && sb.version !== 2) w.err('sb-version', `superblock version ${sb.version} is unknown (1 or 2 expected)`);
  if (sb.incompatFlags) w.err('sb-incompat', `superblock has unsupported incompat feature flags ${sb.incompatFlags}`);
  if (sb.compatRoFlags) w.err('sb-compat-ro', `superblock has unsupported compat_ro feature flags ${sb.compatRoFlags}`);
  if (sb.metadataBlockSize !== 8) w.err('sb-metadata-block-size', `metadata_block_size is ${sb.metadataBlockSize} sectors, expected 8`);
  if (at === 0 && (sb.dataBlockSize < 128 || sb.dataBlockSize % 128 !== 0 || sb.dataBlockSize > 2097152)) {
    w.err('sb-data-block-size', `data_block_size ${sb.dataBlockSize} is not a multiple of 128 sectors in 128..2097152`);
  }
  return sb;
}

/** Walk the device-details and mapping trees of one superblock (live or snapshot). */
function walkTrees(w: Walker, sb: Superblock, label: string, countData: boolean, nrDataBlocks: number | null): ReadDevice[] {
  const details = new Map<number, DeviceDetails>();
  // Walk for counting and validation; then read the entries (shared nodes are walked only once).
  const detOk = w.walk(sb.deviceDetailsRoot, `${label}device details tree`, 24, () => undefined);
  if (detOk) readLeaves(w, sb.deviceDetailsRoot, (k, d, off) => details.set(k, decodeDetails(d.subarray(off, off + 24))));
  else w.err('missing-devices', `${label}missing devices: [0, -]`);
  const tops: [number, number][] = [];
  // Sub-tree pointers in a top-level leaf seen before (shared with the live trees) were counted then.
  const fresh = new Map<number, number>();
  const topOk = w.walk(sb.dataMappingRoot, `${label}top-level mapping tree`, 8, (k, d, off) => fresh.set(k, getU64(d, off)));
  if (topOk) readLeaves(w, sb.dataMappingRoot, (k, d, off) => tops.push([k, getU64(d, off)]));
  const devices: ReadDevice[] = [];
  const mappingIds = new Set<number>();
  for (const [id, sub] of tops) {
    mappingIds.add(id);
    const walkIt = fresh.get(id) === sub;
    const tree = walkIt ? `${label}thin device ${id} mapping tree` : '';
    const ok = !walkIt ? !w.isBad(sub) : w.walk(sub, tree, 8, (k, d, off) => {
      // data block = the top 40 bits of the packed value
      const block = getU32(d, off + 4) * 256 + (d[off + 3]! >>> 0);
      // The walk calls this once per distinct leaf, so data blocks are counted per leaf.
      if (countData) w.dataRefs.set(block, (w.dataRefs.get(block) ?? 0) + 1);
      if (nrDataBlocks !== null && block >= nrDataBlocks) {
        w.err('data-range', `${label}thin device ${id} maps block ${k} to data block ${block}, beyond nr_data_blocks ${nrDataBlocks}`);
      }
    });
    // Shared nodes are walked by their first owner only; read this device's whole view again.
    const full = ok ? readMappingsNoCount(w, sub) : [];
    if (!ok) w.err('missing-mappings', `${label}thin device ${id} is missing mappings [0, -]`);
    // dm-thin never maps two blocks of one device to the same data block (no dedupe): an alias
    // means the allocator handed out a block already in use (THIN-META-3).
    const seenData = new Map<number, number>();
    for (const m of full) {
      const o = seenData.get(m.dataBlock);
      if (o !== undefined) {
        w.err('data-alias', `${label}thin device ${id} maps blocks ${o} and ${m.vblock} to the same data block ${m.dataBlock}`);
        break;
      }
      seenData.set(m.dataBlock, m.vblock);
    }
    const det = details.get(id) ?? null;
    if (!det) w.err('device-sets', `${label}thin device ${id} is in the mapping tree but has no device details`);
    else if (ok && det.mappedBlocks !== full.length) {
      w.err('mapped-blocks', `${label}thin device ${id}: mapped_blocks is ${det.mappedBlocks} but it has ${full.length} mappings`);
    }
    devices.push({ id, details: det, mappings: ok ? full : null });
  }
  if (!topOk) w.err('missing-mappings', `${label}missing all mappings for devices: [0, -]`);
  for (const id of details.keys()) {
    if (!mappingIds.has(id) && topOk) {
      w.err('device-sets', `${label}thin device ${id} has device details but no mapping tree`);
      devices.push({ id, details: details.get(id) ?? null, mappings: [] });
    }
  }
  devices.sort((a, b) => a.id - b.id);
  return devices;
}

/** Leaf entries of an already validated tree, without touching the reference counts. */
function readLeaves(w: Walker, root: number, fn: (key: number, d: Uint8Array, off: number) => void): void {
  const rec = (b: number): void => {
    const d = w.dev.read(b);
    const nr = nrEntries(d);
    if (nodeFlags(d) === INTERNAL_NODE) for (let i = 0; i < nr; i++) rec(value64(d, i));
    else for (let i = 0; i < nr; i++) fn(keyAt(d, i), d, valueOffset(d, i));
  };
  rec(root);
}

function readMappingsNoCount(w: Walker, root: number): MappingEntry[] {
  const out: MappingEntry[] = [];
  readLeaves(w, root, (k, d, off) => {
    const { block, time } = unpackBlockTime(d, off);
    out.push({ vblock: k, dataBlock: block, time });
  });
  return out;
}

/** Counts as a space map stores them: index → bitmaps (+ ref-count tree for 3). */
function readSpaceMap(w: Walker, root: SmRoot, kind: 'metadata' | 'data'): Map<number, number> | null {
  const counts = new Map<number, number>();
  const bitmaps: { blocknr: number; nrFree: number }[] = [];
  const nrBitmaps = Math.ceil(root.nrBlocks / ENTRIES_PER_BLOCK);
  if (kind === 'metadata') {
    if (nrBitmaps > MAX_METADATA_BITMAPS) {
      w.err('sm-too-large', `metadata space map has ${root.nrBlocks} blocks, more than ${MAX_METADATA_BITMAPS} bitmaps can hold`);
      return null;
    }
    const d = w.read(root.bitmapRoot, 'metadata space map index');
    if (!d) return null;
    w.ref(root.bitmapRoot);
    if (!checksumOk(d, INDEX_CSUM_XOR) || getU64(d, 8) !== root.bitmapRoot) {
      w.err('sm-index', `bad checksum or block nr in metadata index block (block ${root.bitmapRoot})`);
      return null;
    }
    for (let i = 0; i < nrBitmaps; i++) bitmaps.push(decodeIndexEntry(d, 16 + 16 * i));
  } else {
    const entries = new Map<number, { blocknr: number; nrFree: number }>();
    const ok = w.walk(root.bitmapRoot, 'data space map index', 16, (k, d, off) => entries.set(k, decodeIndexEntry(d, off)));
    if (!ok) return null;
    for (let i = 0; i < nrBitmaps; i++) {
      const e = entries.get(i);
      if (!e) {
        w.err('sm-index', `data space map index has no entry for bitmap ${i}`);
        return null;
      }
      bitmaps.push(e);
    }
  }
  const overflow = new Map<number, number>();
  const rcOk = w.walk(root.refCountRoot, `${kind} space map ref-count tree`, 4, (k, d, off) => overflow.set(k, getU32(d, off)));
  if (!rcOk) return null;
  let allocated = 0;
  for (let i = 0; i < bitmaps.length; i++) {
    const ie = bitmaps[i]!;
    const d = w.read(ie.blocknr, `${kind} space map bitmap`);
    if (!d) return null;
    w.ref(ie.blocknr);
    if (!checksumOk(d, BITMAP_CSUM_XOR) || getU64(d, 8) !== ie.blocknr) {
      w.err('sm-bitmap', `bad checksum in space map bitmap (block ${ie.blocknr}) of the ${kind} space map`);
      return null;
    }
    const first = i * ENTRIES_PER_BLOCK;
    const n = Math.min(ENTRIES_PER_BLOCK, root.nrBlocks - first);
    for (let e = 0; e < n; e++) {
      // four entries per byte: skip all-free bytes at once
      if ((e & 3) === 0 && d[16 + (e >> 2)] === 0) {
        e += 3;
        continue;
      }
      const c = lookupBitmap(d, e);
      if (!c) continue;
      allocated++;
      if (c < 3) counts.set(first + e, c);
      else {
        const big = overflow.get(first + e);
        if (big === undefined) {
          w.err('sm-overflow', `${kind} block ${first + e} is marked 3+ but has no ref-count tree entry`);
          counts.set(first + e, 3);
        } else counts.set(first + e, big);
      }
    }
  }
  if (allocated !== root.nrAllocated && Math.abs(allocated - root.nrAllocated) > 1) {
    w.warn('sm-nr-allocated', `${kind} space map root says nr_allocated ${root.nrAllocated}, bitmaps hold ${allocated}`);
  }
  return counts;
}

function compareCounts(w: Walker, kind: 'metadata' | 'data', expected: Map<number, number>, actual: Map<number, number>, nrBlocks: number): void {
  // Fast path: same size and every expected count matches (then the maps are equal).
  let equal = expected.size === actual.size;
  if (equal) {
    for (const [b, e] of expected) {
      if (actual.get(b) !== e) {
        equal = false;
        break;
      }
    }
  }
  if (equal) return;
  const blocks = new Set<number>([...expected.keys(), ...actual.keys()]);
  for (const b of [...blocks].sort((x, y) => x - y)) {
    const e = expected.get(b) ?? 0;
    const a = actual.get(b) ?? 0;
    if (e === a) continue;
    if (b >= nrBlocks) {
      w.err(`${kind}-range`, `${kind} block ${b} is referenced but beyond the space map (${nrBlocks} blocks)`);
      continue;
    }
    if (a > e) {
      // thin_check calls an over-count a leak (non-fatal but still rc 1)
      w.err(`${kind}-leak`, `${kind} reference counts differ for block ${b}, expected ${e}, but got ${a} (leaked)`);
    } else {
      w.err(`${kind}-refcount`, `${kind} reference counts differ for block ${b}, expected ${e}, but got ${a}`);
    }
  }
}

/** Check a metadata image; never throws for damage (it becomes findings). */
export function checkMetadata(dev: BlockDevice, opts: CheckOptions = {}): CheckReport {
  const w = new Walker(dev);
  let snapSb: Superblock | null = null;
  const finish = (sb: Superblock | null, devices: ReadDevice[]): CheckReport => ({
    findings: w.findings,
    superblock: sb,
    snapshot: snapSb,
    devices,
    ok: !w.findings.some((f) => f.severity === 'error'),
  });
  if (dev.nrBlocks < 1) {
    w.err('too-small', 'metadata device/file too small: is this binary metadata?');
    return finish(null, []);
  }
  const d0 = w.read(0, 'superblock');
  if (!d0) return finish(null, []);
  const sb = superblockFindings(w, d0, 0);
  if (!sb) return finish(null, []);
  w.ref(0);

  let devices: ReadDevice[] = [];
  let snapDevices: ReadDevice[] | null = null;
  const live = walkTrees(w, sb, '', true, sb.dataSmRoot.nrBlocks);
  devices = live;
  if (sb.heldRoot) {
    const sd = w.read(sb.heldRoot, 'metadata snapshot superblock');
    if (sd) {
      w.ref(sb.heldRoot);
      const snap = superblockFindings(w, sd, sb.heldRoot);
      snapSb = snap;
      if (snap) {
        // The snapshot shares (mostly) the live trees: its leaves add no data references beyond
        // the distinct-leaf rule, which the visited set already applies.
        snapDevices = walkTrees(w, snap, 'metadata snapshot: ', true, null);
      }
    }
  }
  if (opts.metadataSnap) {
    if (!sb.heldRoot) w.err('no-metadata-snap', 'no metadata snapshot is held (superblock metadata_snap is 0)');
    devices = snapDevices ?? [];
  }
  if (!opts.skipSpaceMaps) {
    const meta = readSpaceMap(w, sb.metadataSmRoot, 'metadata');
    const data = readSpaceMap(w, sb.dataSmRoot, 'data');
    if (meta) compareCounts(w, 'metadata', w.metaRefs, meta, sb.metadataSmRoot.nrBlocks);
    if (data) compareCounts(w, 'data', w.dataRefs, data, sb.dataSmRoot.nrBlocks);
  }
  return finish(sb, devices);
}

export function formatFindings(r: CheckReport): string {
  return r.findings.map((f) => `${f.severity}: ${f.message}`).join('\n');
}

export { SB };

// Benchmark: dm-thin metadata crash images built and checked per second, in process, at small
// bounds (target >= 10,000/s). Run: npx tsx bench/thin-crash.bench.ts [seconds]
// Follows the commit of drivers/md/dm-thin-metadata.c (__commit_transaction) as implemented by
// impl/thin/pool-metadata.ts; images come from impl/block-device.ts, checks from
// impl/thin/tools/check.ts (full check: structure, metadata and data reference counts).

import { BlockDevice } from '../impl/block-device.js';
import { PoolMetadata } from '../impl/thin/pool-metadata.js';
import { checkMetadata, type CheckReport } from '../impl/thin/tools/check.js';

const seconds = Number(process.argv[2] ?? '3');

function key(r: CheckReport): string {
  const sb = r.superblock;
  return `${sb?.transId}/${sb?.time}|` + r.devices.map((d) => `${d.id}:${d.mappings?.map((m) => `${m.vblock}>${m.dataBlock}@${m.time}`).join(',')}`).join(';');
}

// Small bounds: 2 devices, ~60 mappings, 64 KiB data blocks, 128-block metadata device.
const dev = new BlockDevice(128);
dev.recordLog = false;
const pmd = PoolMetadata.format(dev, { variant: { profile: 'fixed', mutant: null }, dataBlockSize: 128, nrDataBlocks: 512 });
pmd.createThin(1);
for (let i = 0; i < 40; i++) pmd.insertMapping(1, i, pmd.allocDataBlock());
pmd.commit();
const before = key(checkMetadata(dev.crashImage([], null)));
pmd.createSnap(2, 1);
for (let i = 0; i < 20; i++) pmd.insertMapping(2, i, pmd.allocDataBlock());
pmd.removeMapping(1, 39);

// Record the commit's crash windows: at each flush, the durable image and the volatile writes.
const windows: { writes: { block: number; data: Uint8Array }[]; durable: ReadonlyMap<number, Uint8Array> }[] = [];
dev.beforeFlush = (d) => {
  windows.push({ writes: d.volatileWrites().map((w) => ({ block: w.block, data: w.data })), durable: new Map(d.durableImage()) });
};
pmd.commit();
dev.beforeFlush = null;
const after = key(checkMetadata(dev.snapshot()));

/**
 * A crash image: the window's durable image plus the kept writes (torn: first sector only). Block
 * arrays are shared with the window, as BlockDevice.crashImage does, so validated blocks are not
 * checksummed again.
 */
function build(w: (typeof windows)[number], mask: number, torn: number | null): BlockDevice {
  const img = new Map(w.durable);
  for (let i = 0; i < w.writes.length; i++) {
    if (!(mask & (1 << (i % 30)))) continue;
    const x = w.writes[i]!;
    if (i === torn) {
      const t = (img.get(x.block) ?? new Uint8Array(4096)).slice();
      t.set(x.data.subarray(0, 512), 0);
      img.set(x.block, t);
    } else img.set(x.block, x.data);
  }
  return new BlockDevice(dev.nrBlocks, img);
}

let images = 0;
let bad = 0;
let seed = 12345;
const rnd = (): number => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed;
};
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const deadline = t0 + seconds * 1000;
while (performance.now() < deadline) {
  for (let k = 0; k < 200; k++) {
    const w = windows[rnd() % windows.length]!;
    const mask = rnd();
    const torn = w.writes.length && rnd() % 4 === 0 ? rnd() % w.writes.length : null;
    const img = build(w, mask, torn);
    const r = checkMetadata(img);
    const kk = r.ok ? key(r) : '';
    if (!r.ok || (kk !== before && kk !== after)) bad++;
    images++;
  }
}
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
console.log(
  `thin-crash: ${images} crash images built and fully checked: ${Math.round(images / secs)} images/s wall (${secs.toFixed(2)} s), ` +
    `${Math.round(images / cpuSecs)} images/s per CPU-second (${cpuSecs.toFixed(2)} s CPU); windows of ${windows.map((w) => w.writes.length).join('+')} ` +
    `volatile writes; inconsistent images: ${bad}; target >= 10000/s`,
);
if (bad) process.exitCode = 1;

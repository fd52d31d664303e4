// What runs inside the oracle VM: the PID-1 init and the per-case shell scripts rendered from
// scenario events. Output protocol (parsed by parse.ts), one line each, `I` = event index:
//   @I ev <type> <json>          the event about to run
//   @I rc <n> | @I out <text>    exit code and output lines of the command(s) of the event
//   @I status <dev>: <line>      `dmsetup status` of the pool / each active thin after the event
//   @I bg <id> done|pending ...  background write outcomes (await)
// Every case gets its own slices of the disks, so several cases share one boot:
//   vda = metadata slices, vdb = data slices, vdc = dm-log-writes logs, vdd = results tar.
// The metadata device of a case is  linear|flakey -> log-writes(slice of vda, log = slice of vdc),
// so the log records every metadata write and flush the kernel issued (dm-log-writes.c).

import { SECTORS_PER_META_BLOCK, type KCase, type KEvent } from './scenario.js';

export const INIT_SCRIPT = `#!/bin/sh
# dmcheck oracle init (PID 1): load the dm modules, run /cases/* one after another, each under a
# watchdog (a bio queued by dm-thin leaves its writer in D state, which no signal ends), then
# write /out as a tar onto the results disk and power off. Builtins where possible: every fork+exec
# costs milliseconds under emulation.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export DM_DISABLE_UDEV=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
now() { read UP _ < /proc/uptime; }
now; echo "DMCHECK boot uptime=$UP"
while read ko; do
  insmod /mods/$ko 2>/tmp/insmod.err || echo "DMCHECK insmod $ko failed: $(cat /tmp/insmod.err)"
done < /mods/order
i=0; while [ ! -b /dev/vdd ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
now; echo "DMCHECK modules uptime=$UP"
{ echo "kernel $(uname -r)"; echo "modules_loaded $UP"; dmsetup targets | sed 's/^/target /'
  for p in /sys/module/dm_thin_pool/parameters/*; do read v < $p; echo "param \${p##*/} $v"; done; } > /out/info
# each case announces its end on this fifo; init waits in read -t (no polling loop)
mkfifo /tmp/done; exec 3<>/tmp/done
for c in $(cat /cases/order); do
  mkdir -p /out/$c
  read limit < /cases/$c.limit
  dmesg -c > /dev/null
  now; echo "start $UP" > /out/$c/timing; dl=$((\${UP%.*} + limit))
  ( sh /cases/$c.sh 3>&- > /out/$c/log 2>&1; echo "$?" > /out/$c/rc; echo "$c" >&3 ) &
  # wait for this case's own name (one that hit its watchdog may finish later) until the deadline:
  # each read waits only for what is left of it; a signal ending read early costs another round
  x=
  while [ "$x" != "$c" ]; do
    now; [ \${UP%.*} -ge $dl ] && break
    read -t $((dl - \${UP%.*})) x <&3 || x=
  done
  if [ "$x" != "$c" ]; then
    echo "@- watchdog $limit" >> /out/$c/log
    dmsetup status >> /out/$c/log 2>&1
    echo watchdog > /out/$c/rc
  fi
  now; echo "end $UP" >> /out/$c/timing
  dmesg -c > /out/$c/dmesg
  read rc < /out/$c/rc; now; echo "DMCHECK case $c rc=$rc uptime=$UP"
  # results so far go to the disk after every case: a host-side kill keeps the finished cases
  tar -cf /dev/vdd -C /out . && sync
done
now; echo "done $UP" >> /out/info
tar -cf /dev/vdd -C /out . && sync
echo "DMCHECK poweroff uptime=$UP"
poweroff -f
`;

/** Where a case's devices live on the shared disks (all in 512-byte sectors). */
export interface CaseSlot {
  readonly prefix: string;
  readonly metaOffset: number;
  readonly metaSectors: number;
  readonly dataOffset: number;
  readonly dataSectors: number;
  readonly logOffset: number;
  readonly logSectors: number;
}

export interface DiskLayout {
  readonly slots: readonly CaseSlot[];
  readonly metaDiskBytes: number;
  readonly dataDiskBytes: number;
  readonly logDiskBytes: number;
}

const MiB = 1 << 20;
const SECTORS_PER_MIB = MiB / 512;

/** Lay the cases side by side on the disks, each slice rounded up to whole MiB. */
export function layoutCases(cases: readonly KCase[]): DiskLayout {
  let meta = 0, data = 0, log = 0;
  const slots = cases.map((c, i): CaseSlot => {
    const metaSectors = Math.ceil((c.maxMetaBlocks * SECTORS_PER_META_BLOCK) / SECTORS_PER_MIB) * SECTORS_PER_MIB;
    const dataSectors = Math.ceil((c.maxDataBlocks * c.blockSectors) / SECTORS_PER_MIB) * SECTORS_PER_MIB;
    // the log holds a copy of every metadata write plus one sector per entry
    const logSectors = Math.max(16 * SECTORS_PER_MIB, metaSectors * 8);
    const slot = { prefix: `c${i}`, metaOffset: meta, metaSectors, dataOffset: data, dataSectors, logOffset: log, logSectors };
    meta += metaSectors; data += dataSectors; log += logSectors;
    return slot;
  });
  return { slots, metaDiskBytes: meta * 512, dataDiskBytes: data * 512, logDiskBytes: log * 512 };
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function poolTableLine(blockSectors: number, e: { dataBlocks: number; lowWater: number; features: readonly string[] }, prefix: string): string {
  const feats = e.features.length ? ` ${e.features.length} ${e.features.join(' ')}` : ' 0';
  return `0 ${e.dataBlocks * blockSectors} thin-pool /dev/mapper/${prefix}-meta /dev/mapper/${prefix}-data ${blockSectors} ${e.lowWater}${feats}`;
}

/** Blocks per dd record for a write of `count` blocks at `block`: the largest aligned power of two <= 16. */
export function ioChunk(count: number, block: number): number {
  return [16, 8, 4, 2, 1].find((n) => count % n === 0 && block % n === 0) ?? 1;
}

/** Shell lines for one event; `$I` is set by the caller. */
function renderEvent(c: KCase, slot: CaseSlot, e: KEvent): string[] {
  const P = slot.prefix;
  const thin = (dev: number): string => `/dev/mapper/${P}-t${dev}`;
  const BB = c.blockSectors * 512;
  switch (e.type) {
    case 'pool_create':
      return [
        // a re-created pool reuses the metadata device, grown to the new size
        `if [ $MSZ -eq 0 ]; then MSZ=${e.metaBlocks * SECTORS_PER_META_BLOCK}; run dmsetup create ${P}-meta --table "0 $MSZ $METATGT"; ` +
          `else MSZ=${e.metaBlocks * SECTORS_PER_META_BLOCK}; run dmsetup reload ${P}-meta --table "0 $MSZ $METATGT"; run dmsetup resume ${P}-meta; fi`,
        `run dmsetup create ${P}-pool --table ${q(poolTableLine(c.blockSectors, e, P))}`,
        `POOL=1`,
      ];
    case 'pool_reload': {
      const grow = `[ $MSZ -ne ${e.metaBlocks * SECTORS_PER_META_BLOCK} ]`;
      return [
        `if ${grow}; then run dmsetup suspend ${P}-pool; MSZ=${e.metaBlocks * SECTORS_PER_META_BLOCK}; ` +
          `run dmsetup reload ${P}-meta --table "0 $MSZ $METATGT"; run dmsetup resume ${P}-meta; fi`,
        `run dmsetup reload ${P}-pool --table ${q(poolTableLine(c.blockSectors, e, P))}`,
        `run dmsetup resume ${P}-pool`,
      ];
    }
    case 'pool_remove':
      return [`for t in $THINS; do run dmsetup remove ${P}-t$t; done; THINS=`, `run dmsetup remove ${P}-pool`, `POOL=`];
    case 'message':
      return [`run dmsetup message ${P}-pool 0 ${q(e.text)}`];
    case 'thin_activate':
      return [`run dmsetup create ${P}-t${e.dev} --table "0 ${e.blocks * c.blockSectors} thin /dev/mapper/${P}-pool ${e.dev}" && THINS="$THINS ${e.dev}"`];
    case 'thin_remove':
      return [`run dmsetup remove ${P}-t${e.dev} && THINS=$(echo $THINS | tr ' ' '\\n' | grep -vx ${e.dev} | tr '\\n' ' ')`];
    case 'thin_suspend':
      return [`run dmsetup suspend ${P}-t${e.dev}`];
    case 'thin_resume':
      return [`run dmsetup resume ${P}-t${e.dev}`];
    case 'write': {
      // bigger IOs where alignment allows: same blocks provisioned, far fewer emulated syscalls
      const k = ioChunk(e.count, e.block);
      return [`run dd if=/dev/zero of=${thin(e.dev)} bs=${BB * k} count=${e.count / k} seek=${e.block / k} oflag=direct conv=notrunc${e.flush ? ',fsync' : ''}`];
    }
    case 'write_async':
      return [
        `( o=$(dd if=/dev/zero of=${thin(e.dev)} bs=${BB} count=1 seek=${e.block} oflag=direct conv=notrunc 2>&1); ` +
          `echo "rc=$? $(echo $o)" > /tmp/${P}-bg-${e.id}.tmp; mv /tmp/${P}-bg-${e.id}.tmp /tmp/${P}-bg-${e.id} ) &`,
        `echo "@$I rc 0"`,
      ];
    case 'await':
      return [
        `n=0; while [ $n -lt ${Math.round(e.seconds * 10)} ]; do all=1; for id in ${e.ids.join(' ')}; do [ -f /tmp/${P}-bg-$id ] || all=; done; [ -n "$all" ] && break; sleep 0.1; n=$((n+1)); done`,
        `for id in ${e.ids.join(' ')}; do if [ -f /tmp/${P}-bg-$id ]; then echo "@$I bg $id done $(cat /tmp/${P}-bg-$id)"; else echo "@$I bg $id pending"; fi; done`,
      ];
    case 'read':
      return [`run dd if=${thin(e.dev)} of=/dev/null bs=${BB} count=1 skip=${e.block} iflag=direct`];
    case 'flush':
      return [`run dd if=/dev/zero of=${thin(e.dev)} bs=${BB} count=0 oflag=direct conv=notrunc,fsync`];
    case 'set_no_space_timeout':
      return [`echo ${e.seconds} > /sys/module/dm_thin_pool/parameters/no_space_timeout; echo "@$I rc $?"`];
    case 'sleep':
      return [`sleep ${e.seconds}`, `echo "@$I rc 0"`];
    case 'meta_fail_writes':
      // dm-flakey: up 0 s, down 1 s => always down; error_writes fails writes (and flushes), reads pass
      return [`METATGT="flakey /dev/mapper/${P}-mlog 0 0 1 1 error_writes"`, `run dmsetup suspend ${P}-meta`,
        `run dmsetup reload ${P}-meta --table "0 $MSZ $METATGT"`, `run dmsetup resume ${P}-meta`];
    case 'meta_heal':
      return [`METATGT="linear /dev/mapper/${P}-mlog 0"`, `run dmsetup suspend ${P}-meta`,
        `run dmsetup reload ${P}-meta --table "0 $MSZ $METATGT"`, `run dmsetup resume ${P}-meta`];
    case 'thin_check':
      return [`run thin_check ${e.clear ? '--clear-needs-check-flag ' : ''}/dev/mapper/${P}-meta`];
  }
}

/** The guest script of one case. */
export function renderCase(c: KCase, slot: CaseSlot): string {
  const P = slot.prefix;
  const lines: string[] = [
    `# dmcheck case ${c.name}: ${c.title.replace(/\n/g, ' ')}`,
    `now() { read UP _ < /proc/uptime; }`,
    // run: execute a command, print its exit code and its output lines tagged with the event index
    // (shell builtins only around the command: each fork+exec costs milliseconds under emulation)
    `run() { o=$("$@" 2>&1); r=$?; echo "@$I rc $r"; [ -n "$o" ] && printf '%s\\n' "$o" | while IFS= read -r l; do echo "@$I out $l"; done; return $r; }`,
    // one dmsetup call for every device of the case (dmsetup is the costly part of an event: ~35 ms)
    `st() { dmsetup status 2>&1 | while IFS= read -r l; do case "$l" in ${P}-pool:*|${P}-t[0-9]*) echo "@$I status \${l#${P}-}";; esac; done; }`,
    `THINS=; POOL=; MSZ=0; METATGT="linear /dev/mapper/${P}-mlog 0"`,
    `echo 0 > /sys/module/dm_thin_pool/parameters/no_space_timeout`,
    `I=setup`,
    `run dmsetup create ${P}-mslice --table "0 ${slot.metaSectors} linear /dev/vda ${slot.metaOffset}"`,
    `run dmsetup create ${P}-lslice --table "0 ${slot.logSectors} linear /dev/vdc ${slot.logOffset}"`,
    `run dmsetup create ${P}-mlog --table "0 ${slot.metaSectors} log-writes /dev/mapper/${P}-mslice /dev/mapper/${P}-lslice"`,
    `run dmsetup create ${P}-data --table "0 ${slot.dataSectors} linear /dev/vdb ${slot.dataOffset}"`,
  ];
  c.events.forEach((e, i) => {
    lines.push(`I=${i}`, `now; echo "@$I ev ${e.type} $UP ${JSON.stringify(e).replace(/["$`\\]/g, '\\$&')}"`);
    lines.push(...renderEvent(c, slot, e));
    lines.push('st');
  });
  lines.push(
    `I=teardown`,
    `for t in $THINS; do run dmsetup remove ${P}-t$t; done`,
    `[ -n "$POOL" ] && run dmsetup remove ${P}-pool`,
    `[ "$MSZ" -gt 0 ] && run dmsetup remove ${P}-meta`,
    // removing log-writes writes the final entry count into the log superblock
    `run dmsetup remove ${P}-mlog`,
    `run dmsetup remove ${P}-mslice`,
    `run dmsetup remove ${P}-lslice`,
    `run dmsetup remove ${P}-data`,
    `echo "@teardown done $(up)"`,
    `exit 0`,
  );
  return lines.join('\n') + '\n';
}

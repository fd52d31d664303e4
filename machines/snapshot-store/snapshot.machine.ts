// Follows drivers/md/dm-snap-persistent.c (Linux 3.14.1): read_header, read_exceptions /
// insert_exceptions, persistent_prepare_exception, persistent_commit_exception,
// persistent_drop_snapshot; and drivers/md/dm-snap.c: __origin_write, snapshot_map (full-chunk
// write), copy_callback (in-order completion), complete_exception, pending_complete,
// __invalidate_snapshot. Profile 'fixed' adds 385277bfb57f (commit even after a copy error).
//
// The persistent exception store and the snapshot's exception handling as one flat machine over a
// symbolic COW device: each chunk holds a header, an area of {old,new} records, copied origin data,
// snapshot-write data or leftover junk; writes sit in a volatile list until a FLUSH (or FUA). The
// state value is the snapshot's validity: active, invalid, or failed (activation error). Ghost
// fields (`g`) record what the environment was promised, for the invariants.

import { defineFlatMachine, type DmMachine } from '../../checker/machine.js';
import type { Ev } from '../../checker/model.js';

export type Content =
  | { k: 'h'; valid: number }
  | { k: 'a'; r: [number, number][] }
  | { k: 'd'; t: 'copy' | 'snapw'; o: number; v: number }
  | { k: 'j' };

export interface Pe {
  seq: number;
  old: number;
  nw: number;
  st: 'copying' | 'copied';
  err: boolean;
  full: boolean;
  held: number;
}

export interface SnapCtx {
  epa: number;
  cow: number;
  fixed: boolean;
  mutant: string | null;
  /** Durable contents per chunk (null = zeros), the current view, and the volatile writes in order. */
  dur: (Content | null)[];
  cur: (Content | null)[];
  vol: [number, Content | null][];
  valid: boolean;
  actErr: number;
  ps: { valid: number; nextFree: number; area: number; cc: number; pc: number; buf: [number, number][]; cbs: number[] };
  complete: [number, number][];
  pes: Pe[];
  startSeq: number;
  completeSeq: number;
  ooo: number[];
  origin: number[];
  acked: number[];
  g: { owValid: number[]; inval: boolean; ow: number[]; sw: number[]; ce: number; restarts: number; crashes: number; pastEnd: boolean; actMismatch: string | null };
}

export type SnapEvent =
  | { readonly type: 'OW'; readonly c: number }
  | { readonly type: 'SW'; readonly c: number }
  | { readonly type: 'CD'; readonly seq: number }
  | { readonly type: 'CE'; readonly seq: number }
  | { readonly type: 'RESTART' };

const SNAP_MAGIC = 0x70416e53;
const TWO32 = 2 ** 32;
const COPY_TAG = 0x434f5059;
const SNAPW_TAG = 0x534e4150;

export function areaLoc(c: { epa: number; mutant: string | null }, k: number): number {
  return 1 + (c.mutant === 'area-off-by-one' ? c.epa : c.epa + 1) * k;
}
const correctAreaLoc = (epa: number, k: number): number => 1 + (epa + 1) * k;
const skipMeta = (epa: number, n: number): number => (n % (epa + 1) === 1 ? n + 1 : n);

/** The records a chunk yields when read as an area (what the impl's bytes decode to). */
export function recordsOf(x: Content | null, epa: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < epa; i++) {
    if (x === null) out.push([0, 0]);
    else if (x.k === 'a') out.push(x.r[i] ?? [0, 0]);
    else if (x.k === 'h') out.push(i === 0 ? [SNAP_MAGIC + x.valid * TWO32, 1 + 8 * TWO32] : [0, 0]);
    else if (x.k === 'd') out.push([(x.t === 'copy' ? COPY_TAG : SNAPW_TAG) + x.o * TWO32, x.v + 0xdada * TWO32]);
    else out.push([SNAPW_TAG + 99 * TWO32, 99 + 0xdada * TWO32]);
  }
  return out;
}

/** The exception table a correct activation reads from `img` (for the invariants). */
export function tableOf(img: readonly (Content | null)[], epa: number): { table: [number, number][]; pastEnd: boolean } {
  const table: [number, number][] = [];
  for (let k = 0; ; k++) {
    const loc = correctAreaLoc(epa, k);
    if (loc >= img.length) return { table, pastEnd: true };
    const recs = recordsOf(img[loc] ?? null, epa);
    let full = true;
    for (const [o, n] of recs) {
      if (n === 0) {
        full = false;
        break;
      }
      table.push([o, n]);
    }
    if (!full) return { table, pastEnd: false };
  }
}

function write(c: SnapCtx, chunk: number, x: Content | null, fua = false): boolean {
  if (chunk >= c.cow) return false;
  c.cur[chunk] = x;
  if (fua) c.dur[chunk] = x;
  else c.vol.push([chunk, x]);
  return true;
}
function flush(c: SnapCtx): void {
  for (const [ch, x] of c.vol) c.dur[ch] = x;
  c.vol = [];
}

/** read_metadata on the current view (snapshot_ctr + resume). */
function activate(c: SnapCtx): void {
  c.complete = [];
  c.pes = [];
  c.ooo = [];
  c.startSeq = c.completeSeq = 0;
  c.valid = true;
  c.actErr = 0;
  c.ps = { valid: 1, nextFree: 2, area: 0, cc: 0, pc: 0, buf: zeros(c.epa), cbs: [] };
  const hdr = c.cur[0] ?? null;
  if (hdr === null) {
    write(c, 0, { k: 'h', valid: 1 });
    c.ps.area = 0;
    if (!write(c, areaLoc(c, 0), null)) c.actErr = -5;
    return;
  }
  if (hdr.k !== 'h') {
    c.actErr = -6; // -ENXIO: not a snapshot header
    c.valid = false;
    return;
  }
  c.ps.valid = hdr.valid;
  if (!hdr.valid) {
    c.valid = false;
    return;
  }
  for (c.ps.area = 0; ; c.ps.area++) {
    const loc = areaLoc(c, c.ps.area);
    if (loc >= c.cow) {
      c.g.pastEnd = true; // the bufio read past the end fails with -EIO
      c.actErr = -5;
      c.valid = false;
      return;
    }
    const recs = recordsOf(c.cur[loc] ?? null, c.epa);
    let full = true;
    for (let i = 0; i < recs.length; i++) {
      const [o, n] = recs[i]!;
      if (c.mutant === 'terminator-old-chunk' ? o === 0 : n === 0) {
        c.ps.cc = i;
        full = false;
        break;
      }
      if (c.ps.nextFree <= n) c.ps.nextFree = n + 1;
      setComplete(c, o, n);
    }
    if (!full) {
      c.ps.buf = c.mutant === 'no-area-copy' ? zeros(c.epa) : recs.map((r) => [r[0], r[1]]);
      break;
    }
  }
  c.ps.nextFree = skipMeta(c.epa, c.ps.nextFree);
  const want = tableOf(c.cur, c.epa).table;
  const got = c.complete;
  const missing = want.filter(([o, n]) => !got.some(([o2, n2]) => o2 === o && n2 === n));
  c.g.actMismatch = missing.length ? `activation lost exception(s) ${missing.map(([o, n]) => `${o}->${n}`).join(', ')} recorded on disk` : null;
}

function zeros(epa: number): [number, number][] {
  return Array.from({ length: epa }, (): [number, number] => [0, 0]);
}
function setComplete(c: SnapCtx, o: number, n: number): void {
  const i = c.complete.findIndex(([x]) => x === o);
  if (i >= 0) c.complete[i] = [o, n];
  else {
    c.complete.push([o, n]);
    c.complete.sort((a, b) => a[0] - b[0]);
  }
}

export function initialSnapCtx(o: { epa: number; cow: number; origins: number; fixed: boolean; mutant: string | null; junk: readonly number[] }): SnapCtx {
  const dur: (Content | null)[] = Array.from({ length: o.cow }, () => null);
  for (const j of o.junk) if (j < o.cow) dur[j] = { k: 'j' };
  const c: SnapCtx = {
    epa: o.epa,
    cow: o.cow,
    fixed: o.fixed,
    mutant: o.mutant,
    dur,
    cur: [...dur],
    vol: [],
    valid: true,
    actErr: 0,
    ps: { valid: 1, nextFree: 2, area: 0, cc: 0, pc: 0, buf: zeros(o.epa), cbs: [] },
    complete: [],
    pes: [],
    startSeq: 0,
    completeSeq: 0,
    ooo: [],
    origin: Array.from({ length: o.origins }, () => 0),
    acked: [],
    g: { owValid: [], inval: false, ow: Array.from({ length: o.origins }, () => 0), sw: Array.from({ length: o.origins }, () => 0), ce: 0, restarts: 0, crashes: 0, pastEnd: false, actMismatch: null },
  };
  activate(c);
  return c;
}

/**
 * Copy of everything an update may mutate. Contents are never mutated in place (writes replace
 * them), so chunk arrays are copied shallowly; structuredClone dominated exploration time.
 */
function clone(c: SnapCtx): SnapCtx {
  return {
    ...c,
    dur: [...c.dur],
    cur: [...c.cur],
    vol: c.vol.map((w): [number, Content | null] => [w[0], w[1]]),
    ps: { ...c.ps, buf: c.ps.buf.map((r): [number, number] => [r[0], r[1]]), cbs: [...c.ps.cbs] },
    complete: c.complete.map((r): [number, number] => [r[0], r[1]]),
    pes: c.pes.map((p) => ({ ...p })),
    ooo: [...c.ooo],
    origin: [...c.origin],
    acked: [...c.acked],
    g: { ...c.g, owValid: [...c.g.owValid], ow: [...c.g.ow], sw: [...c.g.sw] },
  };
}

function invalidate(c: SnapCtx): void {
  if (!c.valid) return;
  c.ps.valid = 0;
  // write_header is a plain WRITE in 3.14 (and later kernels); 'fixed' models a proposed FLUSH+FUA.
  if (c.fixed) flush(c);
  write(c, 0, { k: 'h', valid: 0 }, c.fixed);
  c.valid = false;
  c.g.inval = true;
}

function issueOrigin(c: SnapCtx, ch: number): void {
  c.origin[ch] = (c.origin[ch] ?? 0) + 1;
  if (c.valid && !c.g.owValid.includes(ch)) {
    c.g.owValid.push(ch);
    c.g.owValid.sort((a, b) => a - b);
  }
}

function newPe(c: SnapCtx, ch: number, full: boolean): Pe | null {
  if (c.cow < c.ps.nextFree + 1) {
    invalidate(c);
    return null;
  }
  const nw = c.ps.nextFree;
  c.ps.nextFree = skipMeta(c.epa, c.ps.nextFree + 1);
  c.ps.pc++;
  const pe: Pe = { seq: c.startSeq++, old: ch, nw, st: 'copying', err: false, full, held: 0 };
  c.pes.push(pe);
  return pe;
}

function ow(c: SnapCtx, ch: number): void {
  c.g.ow[ch] = (c.g.ow[ch] ?? 0) + 1;
  if (!c.valid || c.complete.some(([o]) => o === ch)) return issueOrigin(c, ch);
  const pe = c.pes.find((p) => p.old === ch) ?? newPe(c, ch, false);
  if (pe === null) return issueOrigin(c, ch);
  pe.held++;
}

function sw(c: SnapCtx, ch: number): void {
  c.g.sw[ch] = (c.g.sw[ch] ?? 0) + 1;
  newPe(c, ch, true);
}

function pendingComplete(c: SnapCtx, pe: Pe, success: boolean): void {
  let error = !success;
  if (!success) invalidate(c);
  else if (!c.valid) error = true;
  else setComplete(c, pe.old, pe.nw);
  c.pes = c.pes.filter((p) => p !== pe);
  if (pe.full && !error) {
    c.acked.push(pe.old);
    c.acked.sort((a, b) => a - b);
  }
  for (let i = 0; i < pe.held; i++) issueOrigin(c, pe.old);
}

function commit(c: SnapCtx, pe: Pe, valid: boolean): void {
  const ps = c.ps;
  if (!valid) ps.valid = 0;
  if (valid) ps.buf[ps.cc++] = [pe.old, pe.nw];
  ps.cbs.push(pe.seq);
  ps.pc--;
  if (ps.pc !== 0 && ps.cc !== c.epa) return;
  const full = ps.cc === c.epa;
  const areaWrite = (): boolean => {
    flush(c);
    return write(c, areaLoc(c, ps.area), { k: 'a', r: ps.buf.map((r) => [r[0], r[1]]) }, true);
  };
  if (c.mutant === 'area-before-zero') {
    if (ps.valid && !areaWrite()) ps.valid = 0;
    if (full && !write(c, areaLoc(c, ps.area + 1), null)) ps.valid = 0;
  } else {
    if (full && !write(c, areaLoc(c, ps.area + 1), null)) ps.valid = 0;
    if (ps.valid && !areaWrite()) ps.valid = 0;
  }
  if (full) {
    ps.cc = 0;
    ps.area++;
    ps.buf = zeros(c.epa);
  }
  const seqs = ps.cbs;
  ps.cbs = [];
  const ok = ps.valid !== 0;
  for (const s of seqs) {
    const p = c.pes.find((x) => x.seq === s);
    if (p) pendingComplete(c, p, ok);
  }
}

function completeException(c: SnapCtx, pe: Pe): void {
  if (pe.err && !c.fixed) return pendingComplete(c, pe, false);
  commit(c, pe, !pe.err);
}

function copyDone(c: SnapCtx, seq: number, err: boolean): void {
  const pe = c.pes.find((p) => p.seq === seq)!;
  pe.st = 'copied';
  pe.err = err;
  if (!err) write(c, pe.nw, pe.full ? { k: 'd', t: 'snapw', o: pe.old, v: 1 } : { k: 'd', t: 'copy', o: pe.old, v: c.origin[pe.old] ?? 0 });
  else c.g.ce++;
  if (c.mutant === 'origin-before-commit' && !err) {
    for (let i = 0; i < pe.held; i++) issueOrigin(c, pe.old);
    pe.held = 0;
  }
  if (pe.seq !== c.completeSeq) {
    c.ooo.push(pe.seq);
    c.ooo.sort((a, b) => a - b);
    return;
  }
  c.completeSeq++;
  completeException(c, pe);
  while (c.ooo.length > 0 && c.ooo[0] === c.completeSeq) {
    const s = c.ooo.shift()!;
    c.completeSeq++;
    const p = c.pes.find((x) => x.seq === s);
    if (p) completeException(c, p);
  }
}

export function snapUpdate(c0: SnapCtx, e: SnapEvent): SnapCtx {
  const c = clone(c0);
  switch (e.type) {
    case 'OW':
      ow(c, e.c);
      break;
    case 'SW':
      sw(c, e.c);
      break;
    case 'CD':
      copyDone(c, e.seq, false);
      break;
    case 'CE':
      copyDone(c, e.seq, true);
      break;
    case 'RESTART':
      flush(c);
      c.g.restarts++;
      activate(c);
      break;
  }
  return c;
}

/** Power cut keeping the volatile writes `keep` (in issue order), then a new activation. */
export function snapCrash(c0: SnapCtx, keep: readonly number[]): SnapCtx {
  const c = clone(c0);
  const img = [...c.dur];
  for (const i of [...keep].sort((a, b) => a - b)) {
    const w = c.vol[i];
    if (w) img[w[0]] = w[1];
  }
  c.dur = img;
  c.cur = [...img];
  c.vol = [];
  c.g.crashes++;
  activate(c);
  return c;
}

export function stateOf(c: SnapCtx): 'active' | 'invalid' | 'failed' {
  return c.actErr !== 0 ? 'failed' : c.valid ? 'active' : 'invalid';
}

export function snapMachine(ctx: SnapCtx): DmMachine<SnapCtx, SnapEvent> {
  let memo: { c: SnapCtx; e: SnapEvent; out: SnapCtx } | null = null;
  const run = (c: SnapCtx, e: SnapEvent): SnapCtx => {
    if (memo !== null && memo.c === c && memo.e === e) return memo.out;
    const out = snapUpdate(c, e);
    memo = { c, e, out };
    return out;
  };
  const hasPe = (c: SnapCtx, seq: number, st: Pe['st']): boolean => c.pes.some((p) => p.seq === seq && p.st === st);
  const enabled: Record<SnapEvent['type'], (c: SnapCtx, e: SnapEvent) => boolean> = {
    OW: () => true,
    SW: (c, e) => e.type === 'SW' && c.valid && !c.complete.some(([o]) => o === e.c) && !c.pes.some((p) => p.old === e.c),
    CD: (c, e) => e.type === 'CD' && hasPe(c, e.seq, 'copying'),
    CE: (c, e) => e.type === 'CE' && hasPe(c, e.seq, 'copying'),
    RESTART: (c) => c.pes.length === 0,
  };
  const to = (target: 'active' | 'invalid' | 'failed', type: SnapEvent['type']) => ({
    target,
    guard: (c: SnapCtx, e: SnapEvent) => enabled[type](c, e) && stateOf(run(c, e)) === target,
    update: run,
    label: `${type} → ${target}`,
  });
  const on = (types: readonly SnapEvent['type'][]) =>
    Object.fromEntries(types.map((t) => [t, (['active', 'invalid', 'failed'] as const).map((s) => to(s, t))]));
  return defineFlatMachine<SnapCtx, SnapEvent>({
    id: 'snapshot-store',
    context: ctx,
    initial: stateOf(ctx),
    states: {
      active: { on: on(['OW', 'SW', 'CD', 'CE', 'RESTART']) },
      invalid: { on: on(['OW', 'CD', 'CE', 'RESTART']) },
      failed: { on: on(['OW']) },
    },
  });
}

export type { Ev };

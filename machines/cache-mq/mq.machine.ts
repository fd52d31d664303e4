// Follows drivers/md/dm-cache-policy-mq.c (Linux 3.14.1): mq_map -> map (cache_entry_found,
// pre_cache_entry_found, no_entry_found, pre_cache_to_cache, insert_in_pre_cache, insert_in_cache,
// demote_cblock), requeue_and_update_tick, check_generation, adjusted_promote_threshold, the io
// tracker (iot_update_stats, iot_check_for_pattern_switch), mq_tick, mq_set_dirty/mq_clear_dirty,
// mq_set_config_value.
//
// The abstract policy as a flat machine whose state is the io tracker's pattern (RANDOM/SEQUENTIAL):
// every map decision is a pure function of the JSON context. Alongside the policy the context keeps a
// ghost (`g`) that counts accesses the way spec/cache-mq.md states the rule (distinct ticks while
// RANDOM), and `last`, the decision of the latest event with the reference verdict, so invariants can
// judge each step. Mutants change the policy part only, never the ghost.

import { defineFlatMachine, type DmMachine } from '../../checker/machine.js';
import type { Ev } from '../../checker/model.js';

export const NR_QUEUE_LEVELS = 16;
export const MAX_TO_AVERAGE = 20;

/** A queued entry: origin block, hit count, tick of last move, current queue level. */
export interface QEntry {
  o: number;
  h: number;
  t: number;
  l: number;
}
/** A cache entry also has its cblock. */
export interface CEntry extends QEntry {
  c: number;
}

export type Op = 'HIT' | 'MISS' | 'NEW' | 'REPLACE';

export interface LastMap {
  kind: 'map';
  o: number;
  dir: 'R' | 'W';
  disc: boolean;
  mig: boolean;
  /** Where the block was before: not tracked, in the pre-cache, or in the cache. */
  where: 'none' | 'pre' | 'cache';
  /** The spec's threshold for this access (promote_threshold + adjustment, or the discard value). */
  thr: number;
  /** Accesses counted before this one (ghost) and whether one was already counted in this tick. */
  prior: number;
  sameTick: boolean;
  /** Ghost io pattern after examining this bio. */
  seq: boolean;
  /** A free cblock or a clean cache entry existed before the decision. */
  room: boolean;
  op: Op;
  r: number;
  cblock: number | null;
  old: number | null;
  oldWasClean: boolean;
  preChanged: boolean;
}
export interface LastConfig {
  kind: 'config';
  key: string;
  value: string;
  r: number;
  before: number[];
  after: number[];
}

export interface MqCtx {
  cacheSize: number;
  /** tick_protected, advanced by mq_tick. */
  tick: number;
  /** mq->tick: the copy taken at the start of each map; every push stamps entries with it. */
  mt: number;
  hitCount: number;
  generation: number;
  genPeriod: number;
  promoteThreshold: number;
  /** [sequential_threshold, random_threshold, discard_adj, read_adj, write_adj] */
  tun: number[];
  nrSeq: number;
  nrRand: number;
  lastEnd: number;
  pre: QEntry[];
  preFree: number;
  clean: CEntry[];
  dirty: CEntry[];
  /** Free cblocks, head first (LIFO; n-1 at the head initially, as list_add builds it). */
  cfree: number[];
  mutant: string | null;
  /** The policy tracker's pattern; always equal to the machine's state value. */
  seq: boolean;
  g: { seq: boolean; nrSeq: number; nrRand: number; lastEnd: number; seen: Record<string, [number, number]> };
  last: LastMap | LastConfig | null;
}

export interface MapEv extends Ev {
  readonly type: 'MAP';
  readonly o: number;
  readonly dir: 'R' | 'W';
  readonly disc: boolean;
  readonly mig: boolean;
}
export type MqEvent =
  | MapEv
  | { readonly type: 'TICK' }
  | { readonly type: 'DIRTY'; readonly o: number }
  | { readonly type: 'CLEAN'; readonly o: number }
  | { readonly type: 'CONFIG'; readonly key: string; readonly value: string };

export const TUNABLE_KEYS = ['sequential_threshold', 'random_threshold', 'discard_promote_adjustment', 'read_promote_adjustment', 'write_promote_adjustment'] as const;

export function initialContext(cacheSize: number, tun: readonly number[], mutant: string | null): MqCtx {
  const cfree: number[] = [];
  for (let i = 0; i < cacheSize; i++) cfree.unshift(i);
  return {
    cacheSize,
    tick: 0,
    mt: 0,
    hitCount: 0,
    generation: 0,
    genPeriod: Math.max(cacheSize, 1024),
    promoteThreshold: 0,
    tun: [...tun],
    nrSeq: 0,
    nrRand: 0,
    lastEnd: 0,
    pre: [],
    preFree: cacheSize,
    clean: [],
    dirty: [],
    cfree,
    mutant,
    seq: false,
    g: { seq: false, nrSeq: 0, nrRand: 0, lastEnd: 0, seen: {} },
    last: null,
  };
}

const level = (h: number): number => Math.min(Math.floor(Math.log2(h)), NR_QUEUE_LEVELS - 1);

/** queue_pop on an array-encoded multiqueue: oldest of the lowest level; emptying level 0 shifts. */
function qpop<T extends QEntry>(q: T[]): T | null {
  if (q.length === 0) return null;
  let best = 0;
  for (let i = 1; i < q.length; i++) if (q[i]!.l < q[best]!.l) best = i;
  const [e] = q.splice(best, 1);
  if (e!.l === 0 && !q.some((x) => x.l === 0)) for (const x of q) if (x.l > 0) x.l--;
  return e!;
}

/** Pushing to the back of a level = appending (order within a level is array order). */
function qpush<T extends QEntry>(q: T[], e: T): void {
  e.l = level(e.h);
  q.push(e);
}

/** The spec's threshold (adjusted_promote_threshold), unaffected by mutants. */
export function specThreshold(c: MqCtx, disc: boolean, dir: 'R' | 'W'): number {
  const [, , dAdj, rAdj, wAdj] = c.tun as [number, number, number, number, number];
  if (dir === 'R') return (c.promoteThreshold + rAdj) >>> 0;
  if (disc && (c.cfree.length > 0 || c.clean.length > 0)) return dAdj;
  return (c.promoteThreshold + wAdj) >>> 0;
}

/** The threshold the policy under test uses (mutants distort it). */
function policyThreshold(c: MqCtx, disc: boolean, dir: 'R' | 'W'): number {
  const [, , dAdj, rAdj0, wAdj0] = c.tun as [number, number, number, number, number];
  const ignore = c.mutant === 'adjustments-ignored';
  const swap = c.mutant === 'read-write-swapped';
  const rAdj = ignore ? 0 : swap ? wAdj0 : rAdj0;
  const wAdj = ignore ? 0 : swap ? rAdj0 : wAdj0;
  if (dir === 'R') return (c.promoteThreshold + rAdj) >>> 0;
  if (disc && (c.cfree.length > 0 || c.clean.length > 0)) return ignore ? 0 : dAdj;
  return (c.promoteThreshold + wAdj) >>> 0;
}

function checkGeneration(c: MqCtx): void {
  if (c.hitCount < c.genPeriod || c.cfree.length > 0) return;
  c.hitCount = 0;
  c.generation++;
  let total = 0;
  let nr = 0;
  let count = 0;
  for (let lv = 0; lv < NR_QUEUE_LEVELS && count < MAX_TO_AVERAGE; lv++) {
    for (const q of [c.clean, c.dirty]) {
      for (const e of q) {
        if (e.l !== lv) continue;
        nr++;
        total += e.h;
        if (++count >= MAX_TO_AVERAGE) break;
      }
    }
  }
  c.promoteThreshold = nr ? Math.floor(total / nr) : 1;
  if (c.promoteThreshold * nr < total) c.promoteThreshold++;
}

type Where = { q: 'pre'; e: QEntry } | { q: 'clean' | 'dirty'; e: CEntry } | null;
function find(c: MqCtx, o: number): Where {
  for (const e of c.pre) if (e.o === o) return { q: 'pre', e };
  for (const e of c.clean) if (e.o === o) return { q: 'clean', e };
  for (const e of c.dirty) if (e.o === o) return { q: 'dirty', e };
  return null;
}
function removeFrom<T>(q: T[], e: T): void {
  q.splice(q.indexOf(e), 1);
}

/** requeue_and_update_tick on the entry's own queue. */
function requeue(c: MqCtx, q: QEntry[], e: QEntry): void {
  if (e.t === c.mt) return;
  e.h++;
  c.hitCount++;
  checkGeneration(c);
  removeFrom(q, e);
  e.t = c.mt;
  qpush(q, e);
}

function demote(c: MqCtx): number | null {
  const d = qpop(c.clean);
  if (!d) return null;
  c.cfree.unshift(d.c);
  return d.o;
}

function insertPre(c: MqCtx, o: number): void {
  if (c.preFree > 0) c.preFree--;
  else if (!qpop(c.pre)) return;
  qpush(c.pre, { o, h: 1, t: c.mt, l: 0 });
}

/** The tracker step shared by policy and ghost; `detect` false = pattern never switches. */
function track(t: { seq: boolean; nrSeq: number; nrRand: number; lastEnd: number }, o: number, tun: number[], detect: boolean): void {
  if (o === t.lastEnd + 1) t.nrSeq++;
  else {
    if (t.nrSeq) t.nrSeq = t.nrRand = 0;
    t.nrRand++;
  }
  t.lastEnd = o; // whole-block bios of one sector: the last sector is the block itself
  if (!detect) return;
  if (t.seq) {
    if (t.nrRand >= tun[1]!) {
      t.seq = false;
      t.nrSeq = t.nrRand = 0;
    }
  } else if (t.nrSeq >= tun[0]!) {
    t.seq = true;
    t.nrSeq = t.nrRand = 0;
  }
}

/** Deep copy of the mutable parts (hand-written: structuredClone dominated exploration time). */
function clone(c: MqCtx): MqCtx {
  const seen: Record<string, [number, number]> = {};
  for (const k of Object.keys(c.g.seen)) seen[k] = [...c.g.seen[k]!] as [number, number];
  return {
    ...c,
    tun: [...c.tun],
    pre: c.pre.map((e) => ({ ...e })),
    clean: c.clean.map((e) => ({ ...e })),
    dirty: c.dirty.map((e) => ({ ...e })),
    cfree: [...c.cfree],
    g: { ...c.g, seen },
  };
}

/** One mq_map call; returns the new context (policy, ghost and `last`). */
export function mapUpdate(c0: MqCtx, ev: MapEv): MqCtx {
  const c = clone(c0);
  c.mt = c.tick;
  const { o, dir, disc, mig } = ev;
  // Policy tracker (the mutant may disable pattern switching), encoded in the context fields.
  const pt = { seq: false, nrSeq: c.nrSeq, nrRand: c.nrRand, lastEnd: c.lastEnd };
  const ptSeq = isSeqCtx(c);
  pt.seq = ptSeq;
  track(pt, o, c.tun, c.mutant !== 'sequential-detection-off');
  c.nrSeq = pt.nrSeq;
  c.nrRand = pt.nrRand;
  c.lastEnd = pt.lastEnd;
  setSeq(c, pt.seq);
  track(c.g, o, c.tun, true);

  const room = c.cfree.length > 0 || c.clean.length > 0;
  // The tracker does not touch anything the threshold reads, so the pre-state's value is the one map uses.
  const thr = specThreshold(c0, disc, dir);
  const preBefore = c.pre.map((e) => e.o).join(',');
  const w = find(c, o);
  const key = String(o);
  const seen = c.g.seen[key];
  const where: LastMap['where'] = w === null ? 'none' : w.q === 'pre' ? 'pre' : 'cache';
  const prior = where === 'pre' && seen ? seen[0] : 0;
  const sameTick = where === 'pre' && seen ? seen[1] === c.tick : false;
  let op: Op = 'MISS';
  let r = 0;
  let cblock: number | null = null;
  let old: number | null = null;
  let oldWasClean = false;

  const promote = (fromPre: QEntry | null): void => {
    let n: CEntry;
    if (c.cfree.length === 0) {
      const before = c.clean.map((e) => e.o);
      old = demote(c);
      if (old === null) {
        op = 'MISS';
        if (fromPre === null) insertPre(c, o);
        return;
      }
      oldWasClean = before.includes(old);
      op = 'REPLACE';
    } else op = 'NEW';
    const cb = c.cfree.shift()!;
    if (fromPre) {
      removeFrom(c.pre, fromPre);
      c.preFree++;
      n = { o, h: fromPre.h, t: fromPre.t, l: 0, c: cb };
    } else n = { o, h: 1, t: c.mt, l: 0, c: cb };
    n.t = c.mt;
    qpush(c.clean, n);
    cblock = cb;
  };

  if (w !== null && w.q !== 'pre') {
    requeue(c, w.q === 'clean' ? c.clean : c.dirty, w.e);
    op = 'HIT';
    cblock = w.e.c;
  } else if (isSeqCtx(c)) {
    op = 'MISS';
  } else if (w !== null) {
    const e = w.e;
    const pthr = policyThreshold(c, disc, dir);
    const should = c.mutant === 'threshold-off-by-one' ? e.h > pthr : e.h >= pthr;
    if ((!disc && e.t === c.mt) || !should) {
      requeue(c, c.pre, e);
    } else if (!mig) {
      r = -11;
    } else {
      requeue(c, c.pre, e);
      promote(e);
    }
  } else if (policyThreshold(c, disc, dir) <= 1) {
    if (mig) promote(null);
    else r = -11;
  } else {
    insertPre(c, o);
  }

  // Ghost: count this access (once per tick, only while RANDOM and not bounced by !can_migrate).
  if (!c.g.seq && r === 0) {
    const inPre = c.pre.some((e) => e.o === o);
    if (where !== 'pre' && inPre) c.g.seen[key] = [1, c.tick];
    else if (where === 'pre' && inPre && seen && seen[1] !== c.tick) c.g.seen[key] = [seen[0] + 1, c.tick];
  }
  for (const k of Object.keys(c.g.seen)) if (!c.pre.some((e) => String(e.o) === k)) delete c.g.seen[k];
  c.last = {
    kind: 'map', o, dir, disc, mig, where, thr, prior, sameTick, seq: c.g.seq, room, op, r, cblock, old, oldWasClean,
    preChanged: c.pre.map((e) => e.o).join(',') !== preBefore,
  };
  return c;
}

function isSeqCtx(c: MqCtx): boolean {
  return c.seq;
}
function setSeq(c: MqCtx, seq: boolean): void {
  c.seq = seq;
}

function dirtyUpdate(c0: MqCtx, o: number, dirty: boolean): MqCtx {
  const c = clone(c0);
  const from = dirty ? c.clean : c.dirty;
  const to = dirty ? c.dirty : c.clean;
  const e = from.find((x) => x.o === o);
  if (e) {
    removeFrom(from, e);
    e.t = c.mt;
    qpush(to, e);
  } else {
    // Already in the target queue: del + push moves it to the back of its level.
    const f = to.find((x) => x.o === o)!;
    removeFrom(to, f);
    f.t = c.mt;
    qpush(to, f);
  }
  c.last = null;
  return c;
}

/** kstrtoul base 10 then a 32-bit store, as mq_set_config_value; returns the value or null. */
export function parseU32(v: string): number | null {
  let b = v.startsWith('+') ? v.slice(1) : v;
  if (b.endsWith('\n')) b = b.slice(0, -1);
  if (!/^[0-9]+$/.test(b)) return null;
  const n = BigInt(b);
  if (n > 2n ** 64n - 1n) return null;
  return Number(n & 0xffffffffn);
}

function configUpdate(c0: MqCtx, key: string, value: string): MqCtx {
  const c = clone(c0);
  const v = parseU32(value);
  const i = (TUNABLE_KEYS as readonly string[]).indexOf(key.toLowerCase());
  const before = [...c.tun];
  let r = 0;
  if (v === null || i < 0) r = -22;
  else c.tun[i] = v;
  c.last = { kind: 'config', key, value, r, before, after: [...c.tun] };
  return c;
}

const isCached = (c: MqCtx, o: number): boolean => c.clean.some((e) => e.o === o) || c.dirty.some((e) => e.o === o);

export function mqMachine(ctx: MqCtx): DmMachine<MqCtx, MqEvent> {
  const common = {
    TICK: { update: (c: MqCtx) => ({ ...c, tick: (c.tick + 1) >>> 0, last: null }) },
    DIRTY: { guard: function cached(c: MqCtx, e: MqEvent) { return e.type === 'DIRTY' && isCached(c, e.o); }, update: (c: MqCtx, e: MqEvent) => dirtyUpdate(c, (e as { o: number }).o, true) },
    CLEAN: { guard: function cached(c: MqCtx, e: MqEvent) { return e.type === 'CLEAN' && isCached(c, e.o); }, update: (c: MqCtx, e: MqEvent) => dirtyUpdate(c, (e as { o: number }).o, false) },
    CONFIG: { update: (c: MqCtx, e: MqEvent) => configUpdate(c, (e as { key: string }).key, (e as { value: string }).value) },
  };
  // The guard that picks the target state needs the map's outcome; remember it for the update.
  let memo: { c: MqCtx; e: MqEvent; out: MqCtx } | null = null;
  const map = (c: MqCtx, e: MqEvent): MqCtx => {
    if (memo !== null && memo.c === c && memo.e === e) return memo.out;
    const out = mapUpdate(c, e as MapEv);
    memo = { c, e, out };
    return out;
  };
  const becomesSeq = (c: MqCtx, e: MqEvent): boolean => isSeqCtx(map(c, e));
  return defineFlatMachine<MqCtx, MqEvent>({
    id: 'cache-mq',
    context: ctx,
    initial: 'random',
    states: {
      random: {
        on: {
          ...common,
          MAP: [
            { target: 'sequential', guard: becomesSeq, update: map, label: 'MAP [nr_seq >= sequential_threshold]' },
            { update: map, label: 'MAP' },
          ],
        },
      },
      sequential: {
        on: {
          ...common,
          MAP: [
            { target: 'random', guard: (c, e) => !becomesSeq(c, e), update: map, label: 'MAP [nr_rand >= random_threshold]' },
            { update: map, label: 'MAP' },
          ],
        },
      },
    },
  });
}

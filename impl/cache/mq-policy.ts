// Follows drivers/md/dm-cache-policy-mq.c (Linux 3.14.1, policy version 1.2.0): io_tracker
// (iot_update_stats, iot_check_for_pattern_switch), multiqueue (queue_push, queue_pop,
// queue_shift_down), entry pools (alloc_entry, free_entry), check_generation,
// requeue_and_update_tick, demote_cblock, adjusted_promote_threshold, pre_cache_entry_found,
// insert_in_pre_cache, insert_in_cache, no_entry_found, map, mq_map, mq_tick, mq_set_dirty,
// mq_clear_dirty, mq_set_config_value.
//
// The reference implementation is imperative on purpose (linked levels, free lists, a hash map) so
// that it is a genuinely different program from the functional machine in machines/cache-mq/.

import type { Json, Variant } from '../../checker/model.js';
import { MQ_DEFAULTS, mqSetConfigValue, emitConfigValues, type MqTunables } from './config.js';

export const NR_QUEUE_LEVELS = 16;
export const MAX_TO_AVERAGE = 20;
export const EWOULDBLOCK = 11;

export type PolicyOp = 'HIT' | 'MISS' | 'NEW' | 'REPLACE';
export type Dir = 'R' | 'W';

export interface PolicyResult {
  readonly op: PolicyOp;
  readonly cblock: number | null;
  readonly oldOblock: number | null;
  /** 0, or -EWOULDBLOCK when the promotion needed a migration the caller could not allow. */
  readonly r: number;
}

/** Mutants of this policy; each names the rule it breaks in spec/cache-mq.md. */
export const MQ_MUTANTS = ['adjustments-ignored', 'read-write-swapped', 'threshold-off-by-one', 'sequential-detection-off'] as const;
export type MqMutant = (typeof MQ_MUTANTS)[number];

interface Entry {
  oblock: number;
  dirty: boolean;
  hitCount: number;
  generation: number;
  tick: number;
  inCache: boolean;
  cblock: number; // index in its pool
}

/** A queue of NR_QUEUE_LEVELS FIFO lists; entries are moved by identity. */
class MultiQueue {
  readonly qs: Entry[][] = Array.from({ length: NR_QUEUE_LEVELS }, () => []);
  push(level: number, e: Entry): void {
    this.qs[level]!.push(e);
  }
  remove(e: Entry): void {
    for (const q of this.qs) {
      const i = q.indexOf(e);
      if (i >= 0) {
        q.splice(i, 1);
        return;
      }
    }
    throw new Error(`mq: entry for oblock ${e.oblock} is not on this queue (internal bug)`);
  }
  empty(): boolean {
    return this.qs.every((q) => q.length === 0);
  }
  /** queue_pop: oldest entry of the lowest populated level; emptying level 0 shifts levels down. */
  pop(): Entry | null {
    for (let level = 0; level < NR_QUEUE_LEVELS; level++) {
      const q = this.qs[level]!;
      if (q.length > 0) {
        const e = q.shift()!;
        if (level === 0 && q.length === 0) this.shiftDown();
        return e;
      }
    }
    return null;
  }
  private shiftDown(): void {
    for (let level = 1; level < NR_QUEUE_LEVELS; level++) {
      const moved = this.qs[level]!.splice(0);
      this.qs[level - 1]!.unshift(...moved);
    }
  }
}

/** epool: entries at fixed indices; the free list is LIFO with index n-1 at its head initially. */
class EntryPool {
  readonly entries: Entry[];
  private readonly free: number[];
  constructor(n: number, inCache: boolean) {
    this.entries = Array.from({ length: n }, (_, i) => ({ oblock: 0, dirty: false, hitCount: 0, generation: 0, tick: 0, inCache, cblock: i }));
    this.free = [];
    for (let i = 0; i < n; i++) this.free.unshift(i); // list_add of 0..n-1 leaves n-1 at the head
  }
  alloc(): Entry | null {
    const i = this.free.shift();
    return i === undefined ? null : this.entries[i]!;
  }
  release(e: Entry): void {
    this.free.unshift(e.cblock);
  }
  empty(): boolean {
    return this.free.length === 0;
  }
  allocated(): number {
    return this.entries.length - this.free.length;
  }
}

export interface MqOptions {
  readonly cacheSize: number;
  readonly tunables?: MqTunables;
  readonly variant?: Variant;
}

/** A bio as the policy sees it: the block, direction, and its sector range for the io tracker. */
export interface MapRequest {
  readonly oblock: number;
  readonly dir: Dir;
  readonly discarded: boolean;
  readonly canMigrate: boolean;
  /** First sector and length of the bio (whole-block bios: oblock*spb, spb). */
  readonly sector: number;
  readonly sectors: number;
}

export class MqPolicy {
  readonly cacheSize: number;
  private tunables: MqTunables;
  private readonly mutant: string | null;
  // io_tracker
  private pattern: 'random' | 'sequential' = 'random';
  private nrSeq = 0;
  private nrRand = 0;
  private lastEnd = 0;
  private readonly prePool: EntryPool;
  private readonly cachePool: EntryPool;
  private readonly preCache = new MultiQueue();
  private readonly cacheClean = new MultiQueue();
  private readonly cacheDirty = new MultiQueue();
  private readonly hash = new Map<number, Entry>();
  private tickProtected = 0;
  private tick = 0;
  private hitCount = 0;
  private generation = 0;
  readonly generationPeriod: number;
  private promoteThreshold = 0;

  constructor(o: MqOptions) {
    if (!Number.isInteger(o.cacheSize) || o.cacheSize < 1) {
      throw new Error(`mq: cache size must be a positive number of blocks, got ${o.cacheSize}`);
    }
    this.cacheSize = o.cacheSize;
    this.tunables = o.tunables ?? MQ_DEFAULTS;
    this.mutant = o.variant?.mutant ?? null;
    if (this.mutant !== null && !(MQ_MUTANTS as readonly string[]).includes(this.mutant)) {
      throw new Error(`mq: unknown mutant '${this.mutant}'; known: ${MQ_MUTANTS.join(', ')}`);
    }
    this.prePool = new EntryPool(o.cacheSize, false);
    this.cachePool = new EntryPool(o.cacheSize, true);
    this.generationPeriod = Math.max(o.cacheSize, 1024);
  }

  // ---- io tracker ----
  private examineBio(req: MapRequest): void {
    if (req.sector === this.lastEnd + 1) this.nrSeq++;
    else {
      if (this.nrSeq !== 0) {
        this.nrSeq = 0;
        this.nrRand = 0;
      }
      this.nrRand++;
    }
    this.lastEnd = req.sector + req.sectors - 1;
    if (this.mutant === 'sequential-detection-off') return;
    if (this.pattern === 'sequential') {
      if (this.nrRand >= this.tunables.randomThreshold) {
        this.pattern = 'random';
        this.nrSeq = this.nrRand = 0;
      }
    } else if (this.nrSeq >= this.tunables.sequentialThreshold) {
      this.pattern = 'sequential';
      this.nrSeq = this.nrRand = 0;
    }
  }

  // ---- queues ----
  private static level(e: Entry): number {
    return Math.min(Math.floor(Math.log2(e.hitCount)), NR_QUEUE_LEVELS - 1);
  }
  private queueOf(e: Entry): MultiQueue {
    return e.inCache ? (e.dirty ? this.cacheDirty : this.cacheClean) : this.preCache;
  }
  private push(e: Entry): void {
    e.tick = this.tick;
    this.hash.set(e.oblock, e);
    this.queueOf(e).push(MqPolicy.level(e), e);
  }
  private del(e: Entry): void {
    this.queueOf(e).remove(e);
    this.hash.delete(e.oblock);
  }
  private pop(q: MultiQueue): Entry | null {
    const e = q.pop();
    if (e) this.hash.delete(e.oblock);
    return e;
  }

  private checkGeneration(): void {
    if (this.hitCount < this.generationPeriod || !this.cachePool.empty()) return;
    this.hitCount = 0;
    this.generation++;
    let total = 0;
    let nr = 0;
    let count = 0;
    for (let level = 0; level < NR_QUEUE_LEVELS && count < MAX_TO_AVERAGE; level++) {
      // The break at MAX_TO_AVERAGE leaves only the list being walked, so the dirty list of the same
      // level still contributes one entry (a sample of 21).
      for (const q of [this.cacheClean.qs[level]!, this.cacheDirty.qs[level]!]) {
        for (const e of q) {
          nr++;
          total += e.hitCount;
          if (++count >= MAX_TO_AVERAGE) break;
        }
      }
    }
    this.promoteThreshold = nr ? Math.floor(total / nr) : 1;
    if (this.promoteThreshold * nr < total) this.promoteThreshold++;
  }

  private requeueAndUpdateTick(e: Entry): void {
    if (this.tick === e.tick) return; // at most one hit per entry per tick
    e.hitCount++;
    this.hitCount++;
    this.checkGeneration();
    e.generation = this.generation;
    this.del(e);
    this.push(e);
  }

  private anyFreeCblocks(): boolean {
    return !this.cachePool.empty();
  }
  private anyCleanCblocks(): boolean {
    return !this.cacheClean.empty();
  }

  /** adjusted_promote_threshold, with the mutants that distort it. */
  adjustedThreshold(discarded: boolean, dir: Dir): number {
    const t = this.tunables;
    const ignore = this.mutant === 'adjustments-ignored';
    const swapped = this.mutant === 'read-write-swapped';
    const readAdj = ignore ? 0 : swapped ? t.writePromoteAdjustment : t.readPromoteAdjustment;
    const writeAdj = ignore ? 0 : swapped ? t.readPromoteAdjustment : t.writePromoteAdjustment;
    // The field is `unsigned`: the sum wraps at 2^32 like the kernel's.
    if (dir === 'R') return (this.promoteThreshold + readAdj) >>> 0;
    if (discarded && (this.anyFreeCblocks() || this.anyCleanCblocks())) return ignore ? 0 : t.discardPromoteAdjustment;
    return (this.promoteThreshold + writeAdj) >>> 0;
  }

  private shouldPromote(e: Entry, discarded: boolean, dir: Dir): boolean {
    const thr = this.adjustedThreshold(discarded, dir);
    return this.mutant === 'threshold-off-by-one' ? e.hitCount > thr : e.hitCount >= thr;
  }

  /** demote_cblock: only clean entries are demoted; the demoted entry is forgotten. */
  private demote(): number | null {
    const d = this.pop(this.cacheClean);
    if (!d) return null;
    this.cachePool.release(d);
    return d.oblock;
  }

  private preCacheToCache(e: Entry): PolicyResult {
    let op: PolicyOp = 'NEW';
    let old: number | null = null;
    if (this.cachePool.empty()) {
      old = this.demote();
      if (old === null) return { op: 'MISS', cblock: null, oldOblock: null, r: 0 };
      op = 'REPLACE';
    }
    const n = this.cachePool.alloc();
    if (!n) throw new Error('mq: no cache entry after demotion (internal bug)');
    n.oblock = e.oblock;
    n.dirty = false;
    n.hitCount = e.hitCount;
    n.generation = e.generation;
    n.tick = e.tick;
    this.del(e);
    this.prePool.release(e);
    this.push(n);
    return { op, cblock: n.cblock, oldOblock: old, r: 0 };
  }

  private insertInPreCache(oblock: number): void {
    const e = this.prePool.alloc() ?? this.pop(this.preCache);
    if (!e) return; // "couldn't pop from pre cache": only if cache size were 0
    e.dirty = false;
    e.oblock = oblock;
    e.hitCount = 1;
    e.generation = this.generation;
    this.push(e); // push stamps e.tick with the current tick
  }

  private insertInCache(oblock: number): PolicyResult {
    let op: PolicyOp = 'NEW';
    let old: number | null = null;
    if (this.cachePool.empty()) {
      old = this.demote();
      if (old === null) {
        this.insertInPreCache(oblock);
        return { op: 'MISS', cblock: null, oldOblock: null, r: 0 };
      }
      op = 'REPLACE';
    }
    const e = this.cachePool.alloc();
    if (!e) throw new Error('mq: no cache entry after demotion (internal bug)');
    e.oblock = oblock;
    e.dirty = false;
    e.hitCount = 1;
    e.generation = this.generation;
    this.push(e);
    return { op, cblock: e.cblock, oldOblock: old, r: 0 };
  }

  /** mq_map with can_block = true (the worker's call; the fast path differs only by trylock). */
  map(req: MapRequest): PolicyResult {
    this.tick = this.tickProtected;
    this.examineBio(req);
    const e = this.hash.get(req.oblock);
    const miss: PolicyResult = { op: 'MISS', cblock: null, oldOblock: null, r: 0 };
    if (e && e.inCache) {
      this.requeueAndUpdateTick(e);
      return { op: 'HIT', cblock: e.cblock, oldOblock: null, r: 0 };
    }
    if (this.pattern === 'sequential') return miss;
    if (e) {
      const updated = this.tick === e.tick;
      if ((!req.discarded && updated) || !this.shouldPromote(e, req.discarded, req.dir)) {
        this.requeueAndUpdateTick(e);
        return miss;
      }
      if (!req.canMigrate) return { ...miss, r: -EWOULDBLOCK };
      this.requeueAndUpdateTick(e);
      return this.preCacheToCache(e);
    }
    if (this.adjustedThreshold(req.discarded, req.dir) <= 1) {
      if (!req.canMigrate) return { ...miss, r: -EWOULDBLOCK };
      return this.insertInCache(req.oblock);
    }
    this.insertInPreCache(req.oblock);
    return miss;
  }

  /** mq_tick: called on bio completion and by the periodic waker. */
  tickOnce(): void {
    this.tickProtected = (this.tickProtected + 1) >>> 0;
  }

  private cached(oblock: number, what: string): Entry {
    const e = this.hash.get(oblock);
    if (!e || !e.inCache) throw new Error(`mq: ${what} of oblock ${oblock}, which is not in the cache (the kernel would BUG)`);
    return e;
  }
  setDirty(oblock: number): void {
    const e = this.cached(oblock, 'set_dirty');
    this.del(e);
    e.dirty = true;
    this.push(e);
  }
  clearDirty(oblock: number): void {
    const e = this.cached(oblock, 'clear_dirty');
    this.del(e);
    e.dirty = false;
    this.push(e);
  }
  isCached(oblock: number): boolean {
    return this.hash.get(oblock)?.inCache === true;
  }

  /** `dmsetup message <dev> 0 <key> <value>` for a policy key; returns 0 or a negative errno. */
  setConfigValue(key: string, value: string): number {
    const r = mqSetConfigValue(this.tunables, key, value);
    if (!r.ok) return r.errno;
    this.tunables = r.value;
    return 0;
  }
  config(): MqTunables {
    return this.tunables;
  }
  emitConfig(): string {
    return emitConfigValues(this.tunables);
  }
  residency(): number {
    return this.cachePool.allocated();
  }

  /** The observable state compared with the machine: mappings, pre-cache counts, clocks, tracker. */
  project(): Json {
    const cache: [number, number, boolean][] = [];
    const pre: [number, number][] = [];
    for (const e of this.hash.values()) {
      if (e.inCache) cache.push([e.oblock, e.cblock, e.dirty]);
      else pre.push([e.oblock, e.hitCount]);
    }
    cache.sort((a, b) => a[0] - b[0]);
    pre.sort((a, b) => a[0] - b[0]);
    return {
      cache,
      pre,
      tick: this.tickProtected,
      hitCount: this.hitCount,
      promoteThreshold: this.promoteThreshold,
      pattern: this.pattern,
      nrSeq: this.nrSeq,
      nrRand: this.nrRand,
      tunables: [this.tunables.sequentialThreshold, this.tunables.randomThreshold, this.tunables.discardPromoteAdjustment, this.tunables.readPromoteAdjustment, this.tunables.writePromoteAdjustment],
    };
  }

  /** Self-check of the structural rules (CACHE-POOLS, CACHE-UNIQUE). Null when they hold. */
  selfCheck(): string | null {
    const seenO = new Set<number>();
    const seenC = new Set<number>();
    let pre = 0;
    for (const [o, e] of this.hash) {
      if (o !== e.oblock) return `hash key ${o} holds an entry for oblock ${e.oblock}`;
      if (e.inCache) {
        if (seenC.has(e.cblock)) return `cblock ${e.cblock} is mapped to two origin blocks`;
        seenC.add(e.cblock);
      } else pre++;
      seenO.add(o);
    }
    if (seenC.size !== this.cachePool.allocated()) return `cache pool has ${this.cachePool.allocated()} allocated but ${seenC.size} hashed`;
    if (pre > this.cacheSize) return `pre-cache holds ${pre} entries, more than the cache size ${this.cacheSize}`;
    return null;
  }
}

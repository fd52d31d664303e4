// The explorer's visited set: every stored state's key, as 16-bit units in one arena, found through
// an open-addressing hash table of state indices (the classic explicit-state store, as SPIN's and
// DiVinE's are). Against a Map from key strings it makes no string per transition, hashes the units
// the encoder just wrote while they are hot, and keeps keys and table in a few typed arrays.

export class StateStore {
  private units = new Uint16Array(1 << 16);
  private used = 0;
  /** Where each stored key starts in `units` (a key ends where the next one starts), and its value. */
  private starts = new Int32Array(1 << 14);
  private values = new Int32Array(1 << 14);
  private count = 0;
  /**
   * Slot i is table[2i] = key number + 1 (0 = empty) and table[2i + 1] = the key's full hash (to
   * skip most comparisons), side by side so a probe touches one cache line.
   */
  private table = new Int32Array(2 << 15);
  private mask = (1 << 15) - 1;

  get size(): number {
    return this.count;
  }

  /** The units of every stored key (valid until the next add). */
  get arena(): Uint16Array {
    return this.units;
  }

  /** Where key number k starts in the arena. */
  start(k: number): number {
    return this.starts[k]!;
  }

  /**
   * The value stored with the key `key[0..len)`; when there is none, the key is stored with `value`
   * (a non-negative integer) and -1 is returned.
   */
  findOrAdd(key: Uint16Array, len: number, value: number): number {
    // FNV-1a over 32-bit words (two units a step: half the multiply chain), then a murmur-style
    // finaliser, since the table index is taken from the low bits.
    let h = 0x811c9dc5 ^ len;
    let i = 0;
    for (; i + 1 < len; i += 2) h = Math.imul(h ^ (key[i]! | (key[i + 1]! << 16)), 0x01000193);
    if (i < len) h = Math.imul(h ^ key[i]!, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    const table = this.table;
    let slot = h & this.mask;
    for (;;) {
      const at = table[2 * slot]!;
      if (at === 0) break;
      if (table[2 * slot + 1] === h && this.equals(at - 1, key, len)) return this.values[at - 1]!;
      slot = (slot + 1) & this.mask;
    }
    const k = this.count++;
    table[2 * slot] = k + 1;
    table[2 * slot + 1] = h;
    this.append(key, len, k, value);
    if (this.count * 2 > this.mask) this.grow();
    return -1;
  }

  private equals(index: number, key: Uint16Array, len: number): boolean {
    const start = this.starts[index]!;
    const end = index + 1 < this.count ? this.starts[index + 1]! : this.used;
    if (end - start !== len) return false;
    const u = this.units;
    for (let i = 0; i < len; i++) if (u[start + i] !== key[i]) return false;
    return true;
  }

  private append(key: Uint16Array, len: number, k: number, value: number): void {
    if (this.used + len > this.units.length) {
      const next = new Uint16Array(Math.max(this.units.length * 2, this.used + len));
      next.set(this.units.subarray(0, this.used));
      this.units = next;
    }
    const u = this.units;
    for (let i = 0; i < len; i++) u[this.used + i] = key[i]!;
    if (k >= this.starts.length) {
      const starts = new Int32Array(this.starts.length * 2);
      starts.set(this.starts);
      this.starts = starts;
      const values = new Int32Array(this.values.length * 2);
      values.set(this.values);
      this.values = values;
    }
    this.starts[k] = this.used;
    this.values[k] = value;
    this.used += len;
  }

  /** Doubles the table and re-inserts every slot by its stored hash. */
  private grow(): void {
    const size = (this.mask + 1) * 2;
    const table = new Int32Array(2 * size);
    const mask = size - 1;
    const old = this.table;
    for (let s = 0; s <= this.mask; s++) {
      const at = old[2 * s]!;
      if (at === 0) continue;
      const h = old[2 * s + 1]!;
      let slot = h & mask;
      while (table[2 * slot] !== 0) slot = (slot + 1) & mask;
      table[2 * slot] = at;
      table[2 * slot + 1] = h;
    }
    this.table = table;
    this.mask = mask;
  }
}

/**
 * The explorer's visited states, numbered 0, 1, ... in the order they were first seen. A system
 * that can encode and decode its states keeps only their units (states are decoded again when
 * expanded or reported: no live object per stored state for the garbage collector to trace);
 * otherwise states are kept as objects under their string keys.
 */
export interface Visited<S> {
  readonly size: number;
  /** The number of a state seen before, or -1 after numbering it `size` (as it was). */
  readonly add: (s: S) => number;
  /** State number i (a decoded copy when units are kept). */
  readonly at: (i: number) => S;
}

export interface Codec<S> {
  readonly key: (s: S) => string;
  readonly units?: { readonly of: (s: S) => string; readonly encode: (s: S, out: Uint16Array) => number; readonly decode: (units: Uint16Array, start: number) => S };
}

export function visitedStates<S>(c: Codec<S>): Visited<S> {
  // Units stand for the key only when they were made for this very key (see System.units).
  if (c.units === undefined || c.units.of !== c.key) return keyedStates(c.key);
  const { encode, decode } = c.units;
  const store = new StateStore();
  // A state off its encoder's fast path is kept as an object under its string key.
  const slowIndex = new Map<string, number>();
  const slowStates = new Map<number, S>();
  let storeKey = new Int32Array(1024);
  let size = 0;
  let units = new Uint16Array(1024);
  return {
    get size() {
      return size;
    },
    add(s) {
      let n = encode(s, units);
      if (n > units.length) {
        units = new Uint16Array(2 * n);
        n = encode(s, units);
      }
      if (size === storeKey.length) {
        const next = new Int32Array(size * 2);
        next.set(storeKey);
        storeKey = next;
      }
      if (n >= 0) {
        const seen = store.findOrAdd(units, n, size);
        if (seen >= 0) return seen;
        storeKey[size++] = store.size - 1;
        return -1;
      }
      const k = c.key(s);
      const seen = slowIndex.get(k);
      if (seen !== undefined) return seen;
      slowIndex.set(k, size);
      slowStates.set(size, s);
      storeKey[size++] = -1;
      return -1;
    },
    at(i) {
      const k = storeKey[i]!;
      return k >= 0 ? decode(store.arena, store.start(k)) : slowStates.get(i)!;
    },
  };
}

function keyedStates<S>(key: (s: S) => string): Visited<S> {
  const index = new Map<string, number>();
  const states: S[] = [];
  return {
    get size() {
      return states.length;
    },
    add(s) {
      const k = key(s);
      const seen = index.get(k);
      if (seen !== undefined) return seen;
      index.set(k, states.length);
      states.push(s);
      return -1;
    },
    at: (i) => states[i]!,
  };
}

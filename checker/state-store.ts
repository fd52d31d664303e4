// The explorer's visited set: every stored state's key, as 16-bit units in one arena, found through
// an open-addressing hash table of state indices (the classic explicit-state store, as SPIN's and
// DiVinE's are). Against a Map from key strings it makes no string per transition, hashes the units
// the encoder just wrote while they are hot, and keeps keys and table in a few typed arrays.

export class StateStore {
  private units = new Uint16Array(1 << 16);
  private used = 0;
  /** Where each stored key starts in `units` (a key ends where the next one starts), and its value. */
  private starts = new Int32Array(1 << 12);
  private values = new Int32Array(1 << 12);
  private count = 0;
  /** Slot -> key number + 1 (0 = empty), and the slot's full hash (to skip most comparisons). */
  private slots = new Int32Array(1 << 12);
  private hashes = new Int32Array(1 << 12);
  private mask = (1 << 12) - 1;

  get size(): number {
    return this.count;
  }

  /** Bytes held by the store's arrays (for the benchmark's memory figures). */
  get bytes(): number {
    return this.units.byteLength + this.starts.byteLength + this.values.byteLength + this.slots.byteLength + this.hashes.byteLength;
  }

  /**
   * The value stored with the key `key[0..len)`; when there is none, the key is stored with `value`
   * (a non-negative integer) and -1 is returned.
   */
  findOrAdd(key: Uint16Array, len: number, value: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    let slot = h & this.mask;
    for (;;) {
      const at = this.slots[slot]!;
      if (at === 0) break;
      if (this.hashes[slot] === h && this.equals(at - 1, key, len)) return this.values[at - 1]!;
      slot = (slot + 1) & this.mask;
    }
    const k = this.count++;
    this.slots[slot] = k + 1;
    this.hashes[slot] = h;
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
    const slots = new Int32Array(size);
    const hashes = new Int32Array(size);
    const mask = size - 1;
    for (let s = 0; s <= this.mask; s++) {
      const at = this.slots[s]!;
      if (at === 0) continue;
      const h = this.hashes[s]!;
      let slot = h & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = at;
      hashes[slot] = h;
    }
    this.slots = slots;
    this.hashes = hashes;
    this.mask = mask;
  }
}

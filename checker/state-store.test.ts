import { describe, expect, it } from 'vitest';
import { StateStore } from './state-store.js';

const units = (...u: number[]): Uint16Array => Uint16Array.from(u);

describe('StateStore', () => {
  it('finds a key it holds and adds one it does not, with the given value', () => {
    const st = new StateStore();
    expect(st.findOrAdd(units(1, 2, 3), 3, 0)).toBe(-1);
    expect(st.findOrAdd(units(1, 2), 2, 1)).toBe(-1);
    expect(st.findOrAdd(units(1, 2, 3), 3, 9)).toBe(0);
    expect(st.findOrAdd(units(1, 2, 3, 99), 2, 9)).toBe(1); // only the first len units count
    expect(st.findOrAdd(units(1, 2, 4), 3, 2)).toBe(-1);
    expect(st.size).toBe(3);
  });

  it('keeps every key distinct across table growth (a 100k-key differential with a Set)', () => {
    const st = new StateStore();
    const seen = new Map<string, number>();
    let x = 12345;
    const buf = new Uint16Array(8);
    for (let i = 0; i < 100_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const len = 1 + (x % 7);
      for (let k = 0; k < len; k++) buf[k] = (x >>> (k * 3)) & 0xf;
      const k = Array.from(buf.subarray(0, len)).join(',');
      const want = seen.get(k);
      const got = st.findOrAdd(buf, len, seen.size);
      if (want === undefined) {
        expect(got).toBe(-1);
        seen.set(k, seen.size);
      } else expect(got).toBe(want);
    }
    expect(st.size).toBe(seen.size);
  });
});

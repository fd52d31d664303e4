import { describe, expect, it } from 'vitest';
import { machineKey } from './compose.js';
import { defineMachine, type MState } from './machine.js';

type C = { n: number; b: boolean; s: string; a: number[]; o: { x: number; y?: number }; l: { j: number }[]; z: null; e: Record<string, number> };
const context: C = { n: 0, b: false, s: '', a: [1, 2], o: { x: 1 }, l: [{ j: 0 }], z: null, e: {} };
const m = defineMachine<C, { type: string }>({
  id: 'keyed',
  context,
  regions: { p: { initial: 'idle', states: { idle: {}, open: {} } }, q: { initial: 'open', states: { idle: {}, open: {} } } },
});
const base: MState<C> = m.initial();

/** States that differ from `base` in one way each, some keeping the template's shape and some not. */
function variants(): MState<C>[] {
  const c = base.context;
  const ctx = (d: Record<string, unknown>): MState<C> => ({ value: base.value, context: { ...c, ...d } as C });
  return [
    base,
    { value: ['open', 'idle'], context: c },
    { value: ['idle', 'idle'], context: c },
    ctx({ n: 1 }),
    ctx({ n: -1 }),
    ctx({ n: -257 }),
    ctx({ n: 0.5 }),
    ctx({ n: 1e9 }),
    ctx({ n: '0' }),
    ctx({ b: true }),
    ctx({ b: 0 }),
    ctx({ s: 'x' }),
    ctx({ s: '\u0001' }),
    ctx({ s: 5 }),
    ctx({ a: [1] }),
    ctx({ a: [1, 2, 3] }),
    ctx({ a: [12] }),
    ctx({ a: [] }),
    ctx({ a: [1, 2.5] }),
    ctx({ o: { x: 1, y: 2 } }),
    ctx({ o: { x: 2 } }),
    ctx({ o: { y: 1 } }),
    ctx({ o: null }),
    ctx({ l: [] }),
    ctx({ l: [{ j: 0 }, { j: 1 }] }),
    ctx({ l: [{ j: 1 }] }),
    ctx({ l: [{ j: 0, k: 1 }] }),
    ctx({ z: 0 }),
    ctx({ extra: 1 }),
    ctx({ e: { k: 1 } }),
    ctx({ extra: undefined }),
  ];
}

describe('the compiled machine key', () => {
  it('identifies exactly the states machineKey identifies, in and out of the template shape', () => {
    const key = m.key;
    const vs = variants();
    for (const p of vs) {
      for (const q of vs) expect(key(p) === key(q), `${machineKey(p)} vs ${machineKey(q)}`).toBe(machineKey(p) === machineKey(q));
    }
  });

  it('ignores property order (same state, different insertion order)', () => {
    const reordered: MState<C> = { value: ['idle', 'open'], context: { e: {}, z: null, l: [{ j: 0 }], b: false, n: 0, s: '', a: [1, 2], o: { x: 1 } } };
    expect(m.key(reordered)).toBe(m.key(base));
  });

  it('keys plain and interned state values alike', () => {
    expect(m.key({ value: ['idle', 'open'], context: base.context })).toBe(m.key(base));
  });

  it('refuses a state value the machine cannot have, naming the region', () => {
    expect(() => m.key({ value: ['idle', 'gone'], context: base.context })).toThrow(/region q has no state 'gone'/);
  });
});

describe('the compiled decoder', () => {
  it('gives back every fast-path state exactly (JSON, region values and key)', () => {
    const enc = m.encode!;
    const dec = m.decode!;
    const buf = new Uint16Array(256);
    let decoded = 0;
    for (const s of variants()) {
      const n = enc(s, buf);
      if (n < 0) continue;
      const back = dec(buf, 0);
      expect(machineKey(back)).toBe(machineKey(s));
      expect(m.key(back)).toBe(m.key(s));
      decoded++;
    }
    expect(decoded).toBe(variants().length);
  });

  it('decodes units stored at an offset, and wide values', () => {
    const s: MState<C> = { value: ['open', 'idle'], context: { ...base.context, n: 9000, a: Array.from({ length: 300 }, (_, i) => i - 20), s: 'x' } };
    const buf = new Uint16Array(1024);
    const n = m.encode!(s, buf.subarray(7));
    expect(n).toBeGreaterThan(300);
    expect(machineKey(m.decode!(buf, 7))).toBe(machineKey(s));
  });

  it('writes off-template values (even a context that is no object) as JSON runs inside the units, and decodes them', () => {
    const buf = new Uint16Array(256);
    const offTemplate: MState<C>[] = [
      { value: base.value, context: { ...base.context, n: 0.5 } },
      { value: base.value, context: { ...base.context, extra: 1 } as C },
      { value: base.value, context: { ...base.context, l: [{ j: 0 }, null] } as unknown as C },
      { value: base.value, context: 5 as unknown as C },
    ];
    for (const s of offTemplate) {
      const n = m.encode!(s, buf);
      expect(n).toBeGreaterThan(0);
      expect(machineKey(m.decode!(buf, 0))).toBe(machineKey(s));
    }
  });
});

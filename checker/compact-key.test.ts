import { describe, expect, it } from 'vitest';
import { machineKey } from './compose.js';
import { compactMachineKey } from './compact-key.js';
import type { MState } from './machine.js';

type C = { n: number; b: boolean; s: string; a: number[]; o: { x: number; y?: number } };
const base: MState<C> = { value: ['idle', 'open'], context: { n: 0, b: false, s: '', a: [1, 2], o: { x: 1 } } };

describe('compactMachineKey', () => {
  it('identifies exactly the states machineKey identifies (on shape-stable states)', () => {
    const key = compactMachineKey(base);
    const variants: MState<C>[] = [
      base,
      { ...base, value: ['open', 'idle'] },
      { ...base, context: { ...base.context, n: 1 } },
      { ...base, context: { ...base.context, n: -1 } },
      { ...base, context: { ...base.context, n: 0.5 } },
      { ...base, context: { ...base.context, n: 1e9 } },
      { ...base, context: { ...base.context, b: true } },
      { ...base, context: { ...base.context, s: 'x' } },
      { ...base, context: { ...base.context, s: '\u0001' } },
      { ...base, context: { ...base.context, a: [1] } },
      { ...base, context: { ...base.context, a: [1, 2, 3] } },
      { ...base, context: { ...base.context, a: [12] } },
      { ...base, context: { ...base.context, o: { x: 1, y: 2 } } },
      { ...base, context: { ...base.context, o: { x: 2 } } },
    ];
    for (const p of variants) {
      for (const q of variants) expect(key(p) === key(q), `${machineKey(p)} vs ${machineKey(q)}`).toBe(machineKey(p) === machineKey(q));
    }
  });

  it('ignores property order (same state, different insertion order)', () => {
    const key = compactMachineKey(base);
    const reordered: MState<C> = { value: base.value, context: { b: false, n: 0, s: '', a: [1, 2], o: { x: 1 } } };
    expect(key(reordered)).toBe(key(base));
  });
});

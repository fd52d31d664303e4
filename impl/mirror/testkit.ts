// Test and bench helpers for the mirror implementation: build a stack under a manual gate, drive
// its internal steps (optionally in a chosen order), and check the crash rule at every leg write.
// Spec: spec/mirror-log.md ULOG-1 (mark durable before a write reaches a leg), ULOG-6 (crash).

import type { Ev, Variant } from '../../checker/model.js';
import { ManualGate, notTimer, settle } from './sim.js';
import { buildStack, type Stack, type StackOptions } from './stack.js';

export interface Rig {
  readonly gate: ManualGate;
  readonly s: Stack;
  /** ULOG-1 / ULOG-6 violations seen while driving. */
  readonly violations: string[];
}

export async function rig(o: Omit<StackOptions, 'gate' | 'variant'> & { variant?: Variant }): Promise<Rig> {
  const gate = new ManualGate();
  const p = buildStack({ ...o, gate, variant: o.variant ?? { profile: 'linux-3.14', mutant: null } });
  await gate.drain(notTimer);
  return { gate, s: await p, violations: [] };
}

/** Checks the crash rule: a region clean on the log device has identical legs (ULOG-6). */
export function crashRule(s: Stack): string | null {
  for (let r = 0; r < s.device.clean.length; r++) {
    if (s.device.clean[r] !== 1) continue;
    const v = s.legs.map((l) => l.read(r));
    const durable = s.legs.map((l) => l.durable[r]);
    if (new Set(v).size > 1 || new Set(durable).size > 1) return `region ${r} is clean on the log device but the legs hold ${JSON.stringify(durable)} (durable) / ${JSON.stringify(v)} (with caches)`;
  }
  return null;
}

/**
 * Releases held steps until none matching `include` is left. `choose(n)` picks which of the n
 * candidates goes next (default: the oldest). Before each leg write, ULOG-1 is checked: the log
 * device must not record the region clean.
 */
export async function drive(
  r: Rig,
  opts: { include?: (e: Ev) => boolean; choose?: (n: number) => number; maxSteps?: number; stopIf?: () => boolean } = {},
): Promise<number> {
  const include = opts.include ?? notTimer;
  let steps = 0;
  for (;;) {
    await settle(); // let threads that are between steps reach their next one
    if (opts.stopIf?.()) return steps;
    r.gate.pending(); // drops steps whose condition no longer holds
    const cands = r.gate.held.filter((h) => include(h.e));
    if (cands.length === 0) return steps;
    const pick = cands[opts.choose ? opts.choose(cands.length) % cands.length : 0]!;
    if (pick.e.type === 'legio') {
      const region = pick.e['r'] as number;
      if (r.s.device.clean[region] === 1) {
        r.violations.push(`ULOG-1: a write to region ${region} reached leg ${String(pick.e['leg'])} while the log device records it clean`);
      }
    }
    await r.gate.release((e) => e === pick.e);
    steps++;
    if (opts.maxSteps !== undefined && steps >= opts.maxSteps) return steps;
  }
}

/** Kernel requests by type name, in order (from the transfer layer, resends included). */
export function sentTypes(s: Stack, from = 0, flushPathOnly = true): string[] {
  const names: Record<number, string> = { 9: 'FLUSH', 10: 'MARK', 11: 'CLEAR', 8: 'IN_SYNC', 12: 'RESYNC_WORK', 13: 'SET_SYNC', 5: 'RESUME', 1: 'CTR', 6: 'REGION_SIZE', 14: 'SYNC_COUNT', 4: 'POSTSUSPEND' };
  return s.transfer.sent
    .slice(from)
    .filter((x) => !flushPathOnly || x.type === 9 || x.type === 10 || x.type === 11)
    .map((x) => (names[x.type] ?? String(x.type)) + (x.type === 9 && x.dataSize ? `(${x.dataSize / 8})` : ''));
}

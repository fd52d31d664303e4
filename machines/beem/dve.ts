// Translating DVE (the BEEM benchmark language, DiVinE 2) processes into dmcheck machine regions.
// Source of the semantics: the BEEM benchmark, plug-obp/beem-benchmark, original-benchmark/*.dve
// and the DVE language description of DiVinE 2 ("system async": interleaving of processes).
//
// The mapping is one to one: a DVE process becomes one region of a parallel machine, its control
// states the region's states, and each of its transitions one machine transition with its own event
// type `<process>_t<n>` (n = the transition's position in the process's `trans` list). Giving every
// transition instance its own event makes the machine's synchronous-over-regions step fire exactly
// one DVE transition per event, which is DVE's asynchronous interleaving; and because every enabled
// (state, transition) pair is a distinct event, the explorer's transition count is BEEM's edge count.
// Globals and process locals live in the one shared context. Effects run their assignments in order
// (DVE applies `effect a = ..., b = ...` left to right), which the `effect` functions below do by hand.
// None of the three translated models use committed states, channels or `system sync`.

import { defineMachine, type DmMachine, type RegionDef, type TransitionDef } from '../../checker/machine.js';
import type { Ev } from '../../checker/model.js';

export type BeemEvent = Ev;

/** One DVE transition `from -> to { guard ...; effect ...; }`. */
export interface DveTransition<C> {
  readonly from: string;
  readonly to: string;
  readonly guard?: (c: C) => boolean;
  readonly effect?: (c: C) => C;
}

/** One DVE process: its name, control states (the first listed need not be initial), init, trans. */
export interface DveProcess<C> {
  readonly name: string;
  readonly states: readonly string[];
  readonly init: string;
  readonly trans: readonly DveTransition<C>[];
}

/** The event of transition n of a process. */
export const dveEventType = (proc: string, n: number): string => `${proc}_t${n}`;

function region<C>(p: DveProcess<C>): RegionDef<C, BeemEvent> {
  const on: Record<string, Record<string, TransitionDef<C, BeemEvent>>> = {};
  for (const s of p.states) on[s] = {};
  p.trans.forEach((t, n) => {
    const from = on[t.from];
    if (from === undefined || !p.states.includes(t.to)) {
      throw new Error(`DVE process ${p.name}: transition ${n} ${t.from} -> ${t.to} names a state the process does not declare`);
    }
    const guard = t.guard;
    const effect = t.effect;
    from[dveEventType(p.name, n)] = {
      // A self-loop keeps the control state; leaving out the target says so to XState as well.
      ...(t.to !== t.from ? { target: t.to } : {}),
      ...(guard ? { guard } : {}),
      ...(effect ? { update: effect } : {}),
      label: `t${n}`,
    };
  });
  return { initial: p.init, states: Object.fromEntries(p.states.map((s) => [s, { on: on[s]! }])) };
}

/** A DVE `system async` model: its machine and every transition instance as an event. */
export interface DveSystem<C> {
  readonly machine: DmMachine<C, BeemEvent>;
  readonly events: readonly BeemEvent[];
}

export function dveSystem<C>(id: string, context: C, processes: readonly DveProcess<C>[]): DveSystem<C> {
  const regions: Record<string, RegionDef<C, BeemEvent>> = {};
  const events: BeemEvent[] = [];
  for (const p of processes) {
    if (regions[p.name] !== undefined) throw new Error(`DVE model ${id}: process ${p.name} is declared twice`);
    regions[p.name] = region(p);
    p.trans.forEach((_, n) => events.push({ type: dveEventType(p.name, n) }));
  }
  // DVE state vectors have a fixed shape (declared globals and locals), so the engine's compiled
  // key applies; the BEEM count tests check it against the published numbers.
  return { machine: defineMachine({ id, context, regions }), events };
}

/** A copy of `a` with a[i] = v (DVE array assignment on immutable context). */
export function setAt(a: readonly number[], i: number, v: number): number[] {
  if (i < 0 || i >= a.length) throw new Error(`DVE array index ${i} out of bounds [0, ${a.length})`);
  const out = a.slice();
  out[i] = v;
  return out;
}

/** Read a[i]; DiVinE treats an out-of-bounds read as an error, so do we. */
export function at(a: readonly number[], i: number): number {
  const v = a[i];
  if (v === undefined) throw new Error(`DVE array index ${i} out of bounds [0, ${a.length})`);
  return v;
}

/** DVE byte arithmetic: assignments to a byte must stay in 0..255 (the models never overflow). */
export function byte(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`DVE byte assignment out of range: ${v}`);
  return v;
}

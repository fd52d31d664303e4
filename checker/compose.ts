// Turning machines into the transition system the explorer walks.
// One machine: its states. Several: the synchronous product over shared event types (an event is
// enabled when every machine whose alphabet has its type can take it, as CSP/BEEM handshakes do).

import type { DmMachine, MState } from './machine.js';
import type { Ev, System } from './model.js';

/** Canonical key of a machine state: region values then the context as JSON. */
export function machineKey<C>(s: MState<C>): string {
  return s.value.join('|') + '#' + JSON.stringify(s.context);
}

export function machineSystem<C, E extends Ev>(
  m: DmMachine<C, E>,
  events: (s: MState<C>) => readonly E[],
  initial: MState<C> = m.initial(),
  key: (s: MState<C>) => string = m.key,
): System<MState<C>, E> {
  // The fast path needs the event list to be one array reused across states (most models' is);
  // a list made afresh per state is stepped event by event.
  let lastEvents: readonly E[] | null = null;
  let lastSuccessors: ((s: MState<C>, emit: (e: E, next: MState<C>) => void) => void) | null = null;
  const step = (s: MState<C>, e: E): MState<C> | null => m.step(s, e);
  const each = (s: MState<C>, evs: readonly E[], emit: (e: E, next: MState<C>) => void): void => {
    if (evs !== lastEvents) {
      // A new list: step it plainly; compile it once it comes back for the next state.
      lastEvents = evs;
      lastSuccessors = null;
      for (const e of evs) {
        const next = m.step(s, e);
        if (next !== null) emit(e, next);
      }
      return;
    }
    lastSuccessors ??= m.successorsOf(evs);
    lastSuccessors(s, emit);
  };
  return {
    initial: () => [initial],
    events,
    step,
    successors: { of: step, each },
    key,
    // Units identify states exactly as the machine's own key does; a custom key has none.
    ...(key === m.key ? { units: { of: key, encode: m.encode, decode: m.decode } } : {}),
  };
}

export type ProductState = readonly MState<unknown>[];

export function productSystem<E extends Ev>(
  machines: readonly DmMachine<unknown, E>[],
  events: (s: ProductState) => readonly E[],
): System<ProductState, E> {
  return {
    initial: () => [machines.map((m) => m.initial())],
    events,
    step: (s, e) => {
      let out: MState<unknown>[] | null = null;
      for (let i = 0; i < machines.length; i++) {
        const m = machines[i]!;
        if (!m.handles(e.type)) continue;
        const next = m.step(s[i]!, e);
        if (next === null) return null;
        out ??= s.slice();
        out[i] = next;
      }
      return out;
    },
    key: (s) => s.map((st, i) => machines[i]!.key(st)).join('||'),
  };
}

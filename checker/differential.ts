// The compiled stepper against XState itself: run the same events through DmMachine.step and an
// XState actor of the machine's `.xstate`, and report the first step where value or context differ.
// Every protocol's tests call this on random event sequences, so the fast path the explorer uses is
// held to XState's semantics.

import { createActor } from 'xstate';
import type { DmMachine, MState } from './machine.js';
import type { Ev } from './model.js';

/**
 * `events` is a fixed list, or a chooser called before each step with the current state (return
 * null to stop), for alphabets that depend on the state; `steps` bounds a chooser's walk.
 */
export function disagreementWithXState<C, E extends Ev>(
  m: DmMachine<C, E>,
  from: MState<C>,
  events: readonly E[] | ((s: MState<C>, step: number) => E | null),
  steps = Array.isArray(events) ? events.length : 100,
): string | null {
  const choose = typeof events === 'function' ? events : (_s: MState<C>, i: number): E | null => (events as readonly E[])[i] ?? null;
  const start = m.xstate.resolveState({ value: xstateValue(m, from), context: from.context as Record<string, unknown> });
  const actor = createActor(m.xstate, { snapshot: start }).start();
  let s = from;
  try {
    for (let i = 0; i < steps; i++) {
      const e = choose(s, i);
      if (e === null) break;
      const next = m.step(s, e);
      actor.send(e);
      if (next !== null) s = next;
      const snap = actor.getSnapshot();
      const value = m.valueFromXState(snap.value);
      if (JSON.stringify(value) !== JSON.stringify(s.value)) {
        return `after step ${i + 1} (${e.type}): compiled value ${JSON.stringify(s.value)}, XState ${JSON.stringify(value)}`;
      }
      if (JSON.stringify(snap.context) !== JSON.stringify(s.context)) {
        return `after step ${i + 1} (${e.type}): compiled context ${JSON.stringify(s.context)}, XState ${JSON.stringify(snap.context)}`;
      }
    }
    return null;
  } finally {
    actor.stop();
  }
}

function xstateValue<C, E extends Ev>(m: DmMachine<C, E>, s: MState<C>): string | Record<string, string> {
  const names = m.regionNames;
  return names.length === 1 && names[0] === m.id ? s.value[0]! : Object.fromEntries(names.map((r, i) => [r, s.value[i]!]));
}

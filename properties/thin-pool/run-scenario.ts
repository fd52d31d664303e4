// Replays a named scenario (scenarios.ts) through the abstract machine step and reports the observed
// outcome in the scenario's own terms, so tests and the CLI can compare it with the expectation.

import { boundsWithDefaults, type Bounds, type Json } from '../../checker/model.js';
import { initialPoolState, poolStep } from '../../machines/thin-pool/semantics.js';
import type { Mode, PoolState, Profile } from '../../machines/thin-pool/types.js';
import { poolBounds, poolConfig } from './config.js';
import type { Scenario, ScenarioExpect } from './scenarios.js';
import { modeWord, statusLine } from './status.js';

export interface Observed {
  readonly mode: string;
  readonly status: string;
  readonly io: string | null;
  readonly released: readonly string[];
  readonly errno: string | null;
  readonly needsCheck: boolean;
  readonly queued: number;
  readonly events: readonly string[];
}

export function observeMachine(s: PoolState, profile: Profile): Observed {
  const l = s.ctx.last;
  return {
    mode: modeWord(s.mode),
    status: statusLine(s.mode, s.ctx, profile),
    io: l?.io?.result ?? null,
    released: l ? l.released.map((r) => r.result) : [],
    errno: l?.errno ?? null,
    needsCheck: s.ctx.needsCheck,
    queued: s.ctx.retry.length,
    events: l ? l.events.filter((e) => !e.startsWith('mode:')) : [],
  };
}

/**
 * A scenario runs at the model's default bounds except where it says otherwise, so `dmcheck check`
 * can tell which scenarios lie inside the explored state space.
 */
export function scenarioBounds(sc: Scenario): Bounds {
  return boundsWithDefaults({ bounds: poolBounds }, sc.bounds);
}

/** Run the scenario on the machine; throws with the failing step if an event is not enabled. */
export function runScenarioOnMachine(sc: Scenario, profile: Profile): PoolState {
  const cfg = poolConfig(scenarioBounds(sc), { profile, mutant: null });
  let s: PoolState = initialPoolState(cfg);
  sc.events.forEach((e, i) => {
    const next = poolStep(cfg, s, e);
    if (next === null) throw new Error(`scenario ${sc.name}: step ${i + 1} (${JSON.stringify(e)}) is not enabled in mode ${s.mode}`);
    s = next;
  });
  return s;
}

/** Differences between what a scenario expects and what was observed; empty = pass. */
export function compareExpect(exp: ScenarioExpect, got: Observed): string[] {
  const out: string[] = [];
  const eq = (k: string, want: Json | undefined, have: Json) => {
    if (want !== undefined && JSON.stringify(want) !== JSON.stringify(have)) out.push(`${k}: expected ${JSON.stringify(want)}, got ${JSON.stringify(have)}`);
  };
  eq('mode', exp.mode, got.mode);
  eq('io', exp.io, got.io);
  eq('released', exp.released as Json | undefined, got.released as Json);
  eq('errno', exp.errno, got.errno);
  eq('needsCheck', exp.needsCheck, got.needsCheck);
  eq('queued', exp.queued, got.queued);
  eq('events', exp.events as Json | undefined, got.events as Json);
  for (const w of exp.words ?? []) if (!got.status.includes(w)) out.push(`status '${got.status}' lacks '${w}'`);
  return out;
}

export type { Mode };

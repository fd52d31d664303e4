// The mirror-log machines: one parallel machine per (log mode, server) pairing.
// Follows drivers/md/dm-log-userspace-base.c (userspace_flush, do_flush), dm-raid1.c (do_mirror),
// dm-region-hash.c and lvm2 cmirrord functions.c; the transition logic lives in ./logic.ts.
//
// Regions: `mirror` owns the context (every event is one of its self-loops, guarded by whether the
// event is enabled); `kmirrord`, `dmlogd` and `cmirrord` follow with their control state, each
// transition guarded by the phase the owner's update leads to. One memo entry makes the guard and
// the update share a single evaluation per (state, event).

import { defineMachine, type DmMachine, type RegionDef, type TransitionDef } from '../../checker/machine.js';
import { applyEvent, initialCtx } from './logic.js';
import type { Cfg, Ctx, KPhase, LPhase, MirrorEv } from './types.js';

export const EVENT_TYPES = [
  'bio',
  'pass',
  'srv',
  'reply',
  'timeout',
  'lazyfire',
  'done',
  'nsdone',
  'legerr',
  'dec2',
  'copy',
  'legflush',
  'pmark',
  'pwrite',
  'pdone',
  'pclear',
] as const;

export const K_STATES: Record<KPhase, string> = { i: 'idle', u: 'updateFlush', w: 'writeFlush' };
export const L_STATES: Record<LPhase, string> = { i: 'idle', q: 'queued', s: 'sending', sq: 'sendingQueued' };

export function machineId(cfg: Pick<Cfg, 'integrated' | 'aware' | 'batch'>): string {
  return `mirror-log-${cfg.integrated ? 'integrated' : 'plain'}-${cfg.aware ? 'aware' : 'upstream'}${cfg.batch ? '-batch' : ''}`;
}

export function buildMirrorLogMachine(cfg: Cfg): DmMachine<Ctx, MirrorEv> {
  let memoC: Ctx | null = null;
  let memoE: MirrorEv | null = null;
  let memoOut: Ctx | null = null;
  const run = (c: Ctx, e: MirrorEv): Ctx | null => {
    if (c !== memoC || e !== memoE) {
      memoOut = applyEvent(cfg, c, e);
      memoC = c;
      memoE = e;
    }
    return memoOut;
  };

  const ownerOn: Record<string, TransitionDef<Ctx, MirrorEv>> = {};
  for (const t of EVENT_TYPES) {
    ownerOn[t] = { guard: (c, e) => run(c, e) !== null, update: (c, e) => run(c, e)!, label: t };
  }

  /** A follower region: on each listed event, move to the state the owner's update leads to. */
  const follower = <P extends string>(
    names: Record<P, string>,
    phaseOf: (c: Ctx) => P,
    events: readonly string[],
    initial: P,
  ): RegionDef<Ctx, MirrorEv> => {
    const states: Record<string, { on: Record<string, TransitionDef<Ctx, MirrorEv>[]> }> = {};
    const phases = Object.keys(names) as P[];
    for (const from of phases) {
      const on: Record<string, TransitionDef<Ctx, MirrorEv>[]> = {};
      for (const ev of events) {
        on[ev] = phases.map((to) => ({
          target: names[to],
          guard: (c: Ctx, e: MirrorEv) => {
            const out = run(c, e);
            return out !== null && phaseOf(c) === from && phaseOf(out) === to && from !== to;
          },
          label: ev,
        }));
      }
      states[names[from]] = { on };
    }
    return { initial: names[initial], states };
  };

  const ctx = initialCtx(cfg);
  return defineMachine<Ctx, MirrorEv>({
    id: machineId(cfg),
    context: ctx,
    regions: {
      mirror: { initial: 'run', states: { run: { on: ownerOn } } },
      kmirrord: follower(K_STATES, (c) => c.kp, ['pass', 'reply'], 'i'),
      dmlogd: follower(L_STATES, (c) => c.lz, ['pass', 'reply', 'lazyfire'], 'i'),
      // The log device failing is an engine fault (see the model's FaultSurface), so cmirrord's
      // second state is entered by the operator, not by a protocol event.
      cmirrord: { initial: 'up', states: { up: {}, logFailed: {} } },
    },
  });
}

/** The candidate events of the model (the explorer tries each; disabled ones return null). */
export function eventAlphabet(cfg: Cfg): MirrorEv[] {
  const out: MirrorEv[] = [];
  const rs = Array.from({ length: cfg.n }, (_, r) => r);
  for (const r of rs) out.push({ type: 'bio', r });
  out.push({ type: 'pass', drop: 0 });
  if (cfg.allocFail || cfg.mutant === 'mark-drop') out.push({ type: 'pass', drop: 1 });
  out.push({ type: 'srv' }, { type: 'reply' });
  if (cfg.resends > 0) out.push({ type: 'timeout', w: 'k' });
  if (cfg.resends > 0 && cfg.integrated) out.push({ type: 'timeout', w: 'l' });
  if (cfg.integrated) out.push({ type: 'lazyfire' });
  for (const r of rs) out.push({ type: 'done', r }, { type: 'nsdone', r });
  if (cfg.legErrors > 0) for (const r of rs) out.push({ type: 'legerr', r });
  if (cfg.mutant === 'rh-race') for (const r of rs) out.push({ type: 'dec2', r });
  for (const r of rs) out.push({ type: 'copy', r });
  if (cfg.cache) out.push({ type: 'legflush' });
  if (cfg.peer) for (const r of rs) out.push({ type: 'pmark', r }, { type: 'pwrite', r }, { type: 'pdone', r }, { type: 'pclear', r });
  return out;
}

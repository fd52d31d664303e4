// XState machine of the thin-pool modes (drivers/md/dm-thin.c, Linux 3.14.1: set_pool_mode and its
// callers). One flat machine: the state value is pool->pf.mode; the context is the abstract pool
// (types.ts). Every event type has, in every mode, one guarded transition per mode it can lead to;
// guard and update both come from the pure step in semantics.ts, so the compiled stepper, the XState
// machine and the diagrams agree by construction.

import { defineFlatMachine, type DmMachine, type MState, type TransitionDef } from '../../checker/machine.js';
import { MODES, type Mode, type PoolConfig, type PoolCtx, type PoolEvent, type PoolEventType, type PoolState } from './types.js';
import { initialPoolState, poolStep } from './semantics.js';

const EVENT_TYPES: readonly PoolEventType[] = [
  'read',
  'write',
  'flush',
  'discard',
  'create_thin',
  'create_snap',
  'delete',
  'tick',
  'status',
  'resume',
  'reload',
  'reactivate',
  'fault',
  'timer_expire',
  'set_timeout',
];

/** Events that never change the mode (their only transition is a self-loop). */
const SELF_ONLY: ReadonlySet<PoolEventType> = new Set(['read', 'fault', 'set_timeout']);

/** Why a transition of this event type reaches this mode (diagram labels). */
function label(type: PoolEventType, from: Mode, to: Mode): string {
  if (from === to) return '';
  switch (to) {
    case 'fail':
      return 'abort failed';
    case 'read_only':
      if (type === 'reactivate') return 'needs_check';
      if (type === 'timer_expire') return 'timeout (mutant #19)';
      return 'metadata op failed';
    case 'out_of_data_space':
      return 'no free data block';
    case 'out_of_metadata_space':
      return 'metadata reserve used';
    case 'write':
      if (type === 'reload' || type === 'reactivate') return 'new table';
      return 'space freed by commit';
  }
}

export function modesOf(cfg: PoolConfig): readonly Mode[] {
  return cfg.profile === 'fixed' ? MODES : MODES.filter((m) => m !== 'out_of_metadata_space');
}

export type PoolMachine = DmMachine<PoolCtx, PoolEvent>;

export function buildPoolMachine(cfg: PoolConfig): PoolMachine {
  // Guards and the update of one event share a single evaluation of the step.
  let memoCtx: PoolCtx | null = null;
  let memoEv: PoolEvent | null = null;
  let memoMode: Mode | null = null;
  let memoOut: PoolState | null = null;
  const run = (mode: Mode, c: PoolCtx, e: PoolEvent): PoolState | null => {
    if (memoCtx !== c || memoEv !== e || memoMode !== mode) {
      memoOut = poolStep(cfg, { mode, ctx: c }, e);
      memoCtx = c;
      memoEv = e;
      memoMode = mode;
    }
    return memoOut;
  };
  const modes = modesOf(cfg);
  const states: Record<string, { on: Record<string, TransitionDef<PoolCtx, PoolEvent>[]> }> = {};
  for (const from of modes) {
    const on: Record<string, TransitionDef<PoolCtx, PoolEvent>[]> = {};
    for (const type of EVENT_TYPES) {
      if (type === 'timer_expire' || type === 'set_timeout') {
        if (cfg.profile !== 'fixed') continue;
      }
      const targets = SELF_ONLY.has(type) ? [from] : modes;
      on[type] = targets.map((to) => {
        const l = label(type, from, to);
        return {
          ...(to !== from ? { target: to } : {}),
          guard: (c: PoolCtx, e: PoolEvent) => run(from, c, e)?.mode === to,
          update: (c: PoolCtx, e: PoolEvent) => run(from, c, e)!.ctx,
          ...(l ? { label: l } : { label: type }),
        };
      });
    }
    states[from] = { on };
  }
  const init = initialPoolState(cfg);
  return defineFlatMachine<PoolCtx, PoolEvent>({ id: 'thin-pool', context: init.ctx, initial: init.mode, states });
}

export const toPoolState = (s: MState<PoolCtx>): PoolState => ({ mode: s.value[0] as Mode, ctx: s.context });

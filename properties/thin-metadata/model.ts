// The thin-metadata model: thin-pool metadata transactions and crash consistency.
// Follows drivers/md/dm-thin-metadata.c (__commit_transaction, __open_metadata and the message
// helpers) and drivers/md/dm-thin.c (process_bio, issue, overwrite_endio) of Linux 3.14; the machine
// is machines/thin/pool-txn.ts, the rules spec/thin-metadata.md.

import { machineSystem } from '../../checker/compose.js';
import type { MState } from '../../checker/machine.js';
import type { Bounds, Ev, Instance, Model, System, Variant } from '../../checker/model.js';
import {
  META_BLOCKS_GROWN,
  PROFILES,
  crashRecover,
  readCore,
  thinEvents,
  thinPoolMachine,
  tidEvents,
  type ThinCfg,
  type ThinCtx,
  type ThinEv,
  type ThinEvent,
} from '../../machines/thin/pool-txn.js';
import { blockMachine } from '../../machines/thin/block.js';
import { thinInvariants } from './invariants.js';
import { thinImplMutants, thinMutants, thinShipped } from './mutants.js';
import { thinProjection, thinProjectionSpec } from './projection.js';
import { thinBounds } from './bounds.js';
import { THIN_METADATA_MUTANT_IDS } from '../../impl/thin/mutants.js';
import { thinImplAdapter } from './adapter.js';

export { thinBounds };

export type ThinState = MState<ThinCtx>;


export function cfgOf(bounds: Bounds, variant: Variant): ThinCfg {
  const get = (k: string): number => {
    const v = bounds[k] ?? thinBounds[k]?.default;
    if (v === undefined) throw new Error(`thin-metadata: bound ${k} is missing`);
    return v;
  };
  if (!(PROFILES as readonly string[]).includes(variant.profile)) {
    throw new Error(`thin-metadata: unknown profile '${variant.profile}'; use one of ${PROFILES.join(', ')}`);
  }
  // Implementation mutants (impl/thin/mutants.ts) leave the machine correct: lockstep must catch them.
  const known = [...thinMutants.map((m) => m.id), ...THIN_METADATA_MUTANT_IDS];
  if (variant.mutant !== null && !known.includes(variant.mutant)) {
    throw new Error(`thin-metadata: unknown mutant '${variant.mutant}'; known: ${known.join(', ')}`);
  }
  return {
    devices: get('devices'),
    vblocks: get('vblocks'),
    dblocks: get('dblocks'),
    writes: get('writes'),
    tids: get('tids'),
    metasnap: get('metasnap'),
    close: get('close'),
    fua: get('fua'),
    phased: get('phased'),
    metaresize: get('metaresize'),
    faults: get('faults'),
    autocommit: get('autocommit'),
    variant,
  };
}

/**
 * Canonical key, hand-encoded because it is computed for every transition the explorer takes. The
 * reply is left out: it is only an echo for lockstep, so two states that differ only in it behave
 * the same.
 */
function stateKey(s: ThinState): string {
  const c = s.context;
  const dm = (d: { map: readonly number[]; sh: readonly number[] } | null): string => (d === null ? '_' : d.map.join(',') + '/' + d.sh.join(''));
  const snap = (x: ThinCtx['disk']['snap']): string => (x === null ? '' : x.map((m) => (m === null ? '_' : m.join(','))).join(';'));
  const view = (v: ThinCtx['disk']): string => v.devs.map(dm).join(';') + '|' + v.tid + (v.held ? 'h' : '') + (v.mgrown ? 'g' : '') + snap(v.snap) + '|' + v.rc.join(',');
  const core = c.core.devs.map((d) => (d === null ? '_' : dm(d) + (d.open ? 'o' : '') + (d.changed ? 'c' : ''))).join(';');
  const pend = c.pending.map((p) => (p.k === 'data' ? `${p.b}=${p.v}` : p.k)).join(',');
  const fua = c.fuaWait.map((f) => `${f.d}.${f.v}=${f.val}`).join(',');
  const want = c.want.map((w) => w.map((x) => x.join(',')).join(':')).join(';');
  const broken = c.broken === null ? '' : c.broken.spec.join(',');
  return [
    s.value[0],
    core,
    `${c.core.tid}${c.core.held ? 'h' : ''}${snap(c.core.snap)}${c.core.msgDirty ? 'm' : ''}${c.core.sbDirty ? 's' : ''}${c.core.mgrown ? 'g' : ''}@${c.core.begin}+${c.core.allocs}`,
    view(c.disk),
    c.staged === null ? '-' : view(c.staged),
    c.nodesDurable ? 'N' : 'n',
    c.data.join(','),
    pend,
    fua,
    want,
    String(c.seq),
    broken,
  ].join('#');
}

function describe(s: ThinState): string {
  const c = s.context;
  const devs = c.core.devs
    .map((d, i) => (d === null ? null : `${i}${d.open ? '*' : ''}[${d.map.map((b, v) => (b < 0 ? '-' : `${b}${d.sh[v] ? 's' : ''}`)).join(',')}]`))
    .filter((x) => x !== null)
    .join(' ');
  const disk = c.disk.devs
    .map((d, i) => (d === null ? null : `${i}[${d.map.map((b) => (b < 0 ? '-' : String(b))).join(',')}]`))
    .filter((x) => x !== null)
    .join(' ');
  const pend = c.pending.map((p) => (p.k === 'data' ? `d${p.b}=${p.v}` : p.k)).join(',');
  return `${s.value[0]} tid=${c.core.tid}${c.core.held ? ' held' : ''}${c.core.mgrown ? ` metadata=${META_BLOCKS_GROWN}blocks` : ''} core{${devs}} disk{${disk}} data[${c.data.join(',')}] cache[${pend}]${
    c.broken ? ` BROKEN ${c.broken.spec.join('/')}` : ''
  }`;
}

export function thinInstance(bounds: Bounds, variant: Variant): Instance<ThinState, Ev> {
  const cfg = cfgOf(bounds, variant);
  const m = thinPoolMachine(cfg);
  const alphabet = thinEvents(cfg) as ThinEvent[];
  const base = machineSystem(m, (s) => [...alphabet, ...(tidEvents(s.context, cfg) as ThinEvent[])], m.initial(), stateKey);
  // Events arrive untyped from traces and the engine; the machine simply rejects unknown ones.
  // (The machine system's fast successors are typed by ThinEvent; this system steps any Ev, so it
  // keeps the plain step, which the explorer uses anyway beside the crash operator.)
  const system: System<ThinState, Ev> = { initial: base.initial, events: base.events, key: base.key, step: (s, e) => base.step(s, e as ThinEvent) };
  return {
    system,
    invariants: thinInvariants(cfg),
    quiescent: (s) => s.value[0] === 'clean',
    describe,
    valueOf: (s) => s.value[0]!,
    project: (s) => thinProjection(s.context, cfg),
    projectionSpec: thinProjectionSpec,
    crash: {
      volatileWrites: (s) => s.context.pending.length,
      // Metadata blocks can tear (then fail their checksum); data tears are not modelled.
      tearable: (s, i) => s.context.pending[i]?.k !== 'data',
      crash: (s, keep, torn) => ({ value: ['clean'], context: crashRecover(s.context, keep, torn, cfg) }),
    },
  };
}

export { readCore };
export type { ThinEv };

export const thinMetadataModel: Model<ThinState, Ev> = {
  id: 'thin-metadata',
  title: 'thin-pool metadata transactions and crash consistency (Linux 3.14)',
  spec: 'spec/thin-metadata.md',
  profiles: PROFILES,
  defaultProfile: 'linux-3.14',
  bounds: thinBounds,
  mutants: [...thinMutants, ...thinImplMutants],
  shipped: thinShipped,
  machines: [thinPoolMachine(cfgOf({}, { profile: 'fixed', mutant: null })), blockMachine],
  instance: thinInstance,
  impl: thinImplAdapter,
};

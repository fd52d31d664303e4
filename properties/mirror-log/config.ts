// Bounds, profiles and configurations of the mirror-log model (spec/mirror-log.md §1), shared by
// the model and its impl adapter.

import type { Bounds, BoundSpec, Variant } from '../../checker/model.js';
import type { Cfg } from '../../machines/mirror-log/types.js';
import { MIRROR_MUTANTS } from './mutants.js';

export const PROFILES = ['linux-3.14', 'fixed'] as const;

export const MIRROR_BOUNDS: Record<string, BoundSpec> = {
  regions: { default: 2, min: 1, max: 3, describe: 'mirror regions' },
  nodes: { default: 2, min: 1, max: 2, describe: 'cluster nodes sharing the log (node 2 is an abstract peer)' },
  writes: { default: 2, min: 0, max: 4, describe: 'write bios node 1 submits' },
  peerWrites: { default: 1, min: 0, max: 2, describe: 'mark/write/clear cycles node 2 performs' },
  integrated: { default: 2, min: 0, max: 2, describe: '0 = plain log, 1 = the table says integrated_flush, 2 = both (two initial states)' },
  server: { default: 1, min: 0, max: 1, describe: '1 = server applies FLUSH payload as marks, 0 = upstream lvm2 cmirrord' },
  batch: {
    default: 2,
    min: 0,
    max: 2,
    describe: '0 = dm-raid1 pass order, 1 = a dirty-log caller that queues clears and marks before one flush, 2 = both',
  },
  resends: { default: 1, min: 0, max: 2, describe: 'request timeouts (resend with a new seq)' },
  resync: { default: 0, min: 0, max: 1, describe: '1 = created with "sync": all regions start out of sync' },
  legErrors: { default: 0, min: 0, max: 1, describe: 'leg write errors' },
  logFaults: { default: 0, min: 0, max: 1, describe: 'log device failures (engine fault)' },
  cache: { default: 0, min: 0, max: 1, describe: '1 = mirror legs have volatile write caches' },
  handleErrors: { default: 1, min: 0, max: 1, describe: '1 = handle_errors feature' },
  allocFail: { default: 0, min: 0, max: 1, describe: "1 = clear_region's GFP_ATOMIC allocation may fail" },
  crashes: { default: 0, min: 0, max: 1, describe: 'machine crashes (engine operator) followed by resume and resync' },
};

/** The configurations one bounds/variant pair explores (integrated=2 or batch=2 give several). */
export function cfgsFrom(bounds: Bounds, variant: Variant): Cfg[] {
  const b = (k: string): number => bounds[k] ?? MIRROR_BOUNDS[k]!.default;
  if (!(PROFILES as readonly string[]).includes(variant.profile)) {
    throw new Error(`unknown profile '${variant.profile}' for mirror-log; use one of: ${PROFILES.join(', ')}`);
  }
  const known = MIRROR_MUTANTS.map((m) => m.id);
  if (variant.mutant !== null && !known.includes(variant.mutant)) {
    throw new Error(`unknown mutant '${variant.mutant}' for mirror-log; known: ${known.join(', ')}`);
  }
  const both = (v: number): boolean[] => (v === 2 ? [false, true] : [v === 1]);
  const out: Cfg[] = [];
  for (const integrated of both(b('integrated'))) {
    for (const batch of both(b('batch'))) {
      out.push({
        n: b('regions'),
        integrated,
        aware: b('server') === 1,
        peer: b('nodes') === 2,
        batch,
        cache: b('cache') === 1,
        handleErrors: b('handleErrors') === 1,
        allocFail: b('allocFail') === 1,
        fixed: variant.profile === 'fixed',
        mutant: variant.mutant,
        writes: b('writes'),
        peerWrites: b('peerWrites'),
        resends: b('resends'),
        resync: b('resync') === 1,
        legErrors: b('legErrors'),
        logFaults: b('logFaults'),
        crashes: b('crashes'),
      });
    }
  }
  return out;
}

/** A single configuration (the bounds must not ask for both of anything). */
export function cfgFrom(bounds: Bounds, variant: Variant): Cfg {
  const all = cfgsFrom(bounds, variant);
  if (all.length !== 1) throw new Error('cfgFrom: the bounds select several configurations; use cfgsFrom');
  return all[0]!;
}

// Bounds and variant → static configuration of the thin-pool model (drivers/md/dm-thin.c pool).

import type { Bounds, BoundSpec, Variant } from '../../checker/model.js';
import { UsageError } from '../../checker/model.js';
import { PROFILES, type PoolConfig, type Profile } from '../../machines/thin-pool/types.js';
import { poolMutants } from './mutants.js';

export const poolBounds: Readonly<Record<string, BoundSpec>> = {
  // Defaults: two virtual blocks over one data block (out of data space by two writes), one data
  // grow (1 → 2) and one metadata grow (6 → 8) by reload; 6 metadata blocks leave room for two
  // provisioning writes under both profiles (fixed keeps one in reserve).
  vblocks: { default: 2, min: 1, max: 4, describe: 'virtual blocks per thin device' },
  data: { default: 1, min: 1, max: 4, describe: 'data blocks in the initial table' },
  dataMax: { default: 2, min: 1, max: 6, describe: 'largest data size a reload may ask for' },
  md: { default: 6, min: 4, max: 16, describe: 'metadata blocks at creation' },
  mdMax: { default: 8, min: 4, max: 20, describe: 'largest metadata size a reload may ask for' },
  lowWater: { default: 1, min: 0, max: 4, describe: 'data low-water mark in blocks' },
  queue: { default: 2, min: 1, max: 4, describe: 'most bios parked on the retry list at once' },
  eins: { default: 0, min: 0, max: 1, describe: '1 = table has error_if_no_space' },
};

export function poolConfig(bounds: Bounds, variant: Variant): PoolConfig {
  if (!PROFILES.includes(variant.profile as Profile)) {
    throw new UsageError(`unknown profile '${variant.profile}'; thin-pool has: ${PROFILES.join(', ')}`);
  }
  if (variant.mutant !== null && !poolMutants.some((m) => m.id === variant.mutant)) {
    throw new UsageError(`unknown mutant '${variant.mutant}'; thin-pool has: ${poolMutants.map((m) => m.id).join(', ')}`);
  }
  const b = (k: string) => {
    const v = bounds[k] ?? poolBounds[k]!.default;
    return v;
  };
  return {
    profile: variant.profile as Profile,
    mutant: variant.mutant,
    vblocks: b('vblocks'),
    data: b('data'),
    dataMax: Math.max(b('dataMax'), b('data')),
    md: b('md'),
    mdMax: Math.max(b('mdMax'), b('md')),
    lowWater: b('lowWater'),
    maxQueue: b('queue'),
    eins: b('eins') === 1,
  };
}


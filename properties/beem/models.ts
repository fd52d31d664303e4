// BEEM self-validation models: three benchmark instances of the BEEM suite (phils.1, peterson.1,
// bakery.1) translated from their DVE files (machines/beem/) so the explorer's state, edge and BFS
// level counts can be checked against the published ones (/work/shared/corpus/beem-state-counts.csv).
// They model no kernel code; profile 'beem' only, no implementation, no mutants. The few invariants
// (properties/beem/README.md, BEEM-*) are the algorithms' textbook properties.
//
// DVE allows deadlock and BEEM counts deadlocked states, so every state is a valid end state and
// there is no progress check.

import { machineSystem } from '../../checker/compose.js';
import type { MState } from '../../checker/machine.js';
import type { Bounds, Instance, Invariant, Model, Variant } from '../../checker/model.js';
import { UsageError } from '../../checker/model.js';
import { bakerySystem, BAKERY_1_MAX, BAKERY_1_N, type BakeryCtx } from '../../machines/beem/bakery.js';
import type { BeemEvent, DveSystem } from '../../machines/beem/dve.js';
import { petersonSystem, PETERSON_1_N, type PetersonCtx } from '../../machines/beem/peterson.js';
import { philsSystem, PHILS_1_N, type PhilsCtx } from '../../machines/beem/phils.js';

export const BEEM_PROFILE = 'beem';

function checkVariant(id: string, v: Variant): void {
  if (v.profile !== BEEM_PROFILE) throw new UsageError(`model ${id} has only the profile '${BEEM_PROFILE}', not '${v.profile}'`);
  if (v.mutant !== null) throw new UsageError(`model ${id} has no mutants (asked for '${v.mutant}')`);
}

function dveInstance<C>(sys: DveSystem<C>, invariants: readonly Invariant<MState<C>>[]): Instance<MState<C>, BeemEvent> {
  const regions = sys.machine.regionNames;
  return {
    system: machineSystem(sys.machine, () => sys.events),
    invariants,
    validEnd: () => true,
    describe: (s) => `${regions.map((r, i) => `${r}:${s.value[i]}`).join(' ')} ${JSON.stringify(s.context)}`,
    valueOf: (s) => s.value.join(' '),
  };
}

/** Names of the processes in control state `st`. */
function procsIn<C>(s: MState<C>, regions: readonly string[], st: string): string[] {
  return regions.filter((_, i) => s.value[i] === st);
}

// ---- phils.1 ----

export type PhilsState = MState<PhilsCtx>;

export const philsModel: Model<PhilsState, BeemEvent> = {
  id: 'beem-phils.1',
  title: 'BEEM phils.1: dining philosophers (self-validation of the explorer)',
  spec: 'properties/beem/README.md',
  profiles: [BEEM_PROFILE],
  defaultProfile: BEEM_PROFILE,
  bounds: { n: { default: PHILS_1_N, min: 2, max: 8, describe: 'philosophers (4 is BEEM phils.1)' } },
  mutants: [],
  shipped: [],
  machines: [philsSystem().machine],
  instance(bounds: Bounds, variant: Variant) {
    checkVariant(this.id, variant);
    const n = bounds['n'] ?? PHILS_1_N;
    const sys = philsSystem(n);
    const regions = sys.machine.regionNames;
    // Philosopher i holds its left fork i in one/eat and its right fork i+1 in eat/finish.
    const holders = (s: PhilsState, f: number): number => {
      const left = s.value[f];
      const right = s.value[(f + n - 1) % n];
      return (left === 'one' || left === 'eat' ? 1 : 0) + (right === 'eat' || right === 'finish' ? 1 : 0);
    };
    return dveInstance(sys, [
      {
        spec: ['BEEM-PHILS-1'],
        name: 'fork-held-once',
        check: (s) => {
          for (let f = 0; f < n; f++) {
            const h = holders(s, f);
            if (h > 1) return `fork ${f} is held by ${h} philosophers`;
            if (h !== s.context.fork[f]) return `fork[${f}] = ${s.context.fork[f]} but ${h} philosopher(s) hold it (${regions.join(',')})`;
          }
          return null;
        },
      },
    ]);
  },
};

// ---- peterson.1 ----

export type PetersonState = MState<PetersonCtx>;

export const petersonModel: Model<PetersonState, BeemEvent> = {
  id: 'beem-peterson.1',
  title: "BEEM peterson.1: Peterson's filter lock, 3 processes (self-validation of the explorer)",
  spec: 'properties/beem/README.md',
  profiles: [BEEM_PROFILE],
  defaultProfile: BEEM_PROFILE,
  bounds: { n: { default: PETERSON_1_N, min: 2, max: 4, describe: 'processes (3 is BEEM peterson.1)' } },
  mutants: [],
  shipped: [],
  machines: [petersonSystem().machine],
  instance(bounds: Bounds, variant: Variant) {
    checkVariant(this.id, variant);
    const sys = petersonSystem(bounds['n'] ?? PETERSON_1_N);
    const regions = sys.machine.regionNames;
    return dveInstance(sys, [
      {
        spec: ['BEEM-PETERSON-1'],
        name: 'mutual-exclusion',
        check: (s) => {
          const cs = procsIn(s, regions, 'CS');
          return cs.length > 1 ? `${cs.length} processes are in the critical section at once: ${cs.join(', ')}` : null;
        },
      },
    ]);
  },
};

// ---- bakery.1 ----

export type BakeryState = MState<BakeryCtx>;

export const bakeryModel: Model<BakeryState, BeemEvent> = {
  id: 'beem-bakery.1',
  title: "BEEM bakery.1: Lamport's bakery, 2 processes, tickets below 10 (self-validation of the explorer)",
  spec: 'properties/beem/README.md',
  profiles: [BEEM_PROFILE],
  defaultProfile: BEEM_PROFILE,
  bounds: {
    n: { default: BAKERY_1_N, min: 2, max: 3, describe: 'processes (2 is BEEM bakery.1)' },
    cap: { default: BAKERY_1_MAX, min: 1, max: 20, describe: 'a ticket is drawn only while max < cap (9 is BEEM bakery.1)' },
  },
  mutants: [],
  shipped: [],
  machines: [bakerySystem().machine],
  instance(bounds: Bounds, variant: Variant) {
    checkVariant(this.id, variant);
    const sys = bakerySystem(bounds['n'] ?? BAKERY_1_N, bounds['cap'] ?? BAKERY_1_MAX);
    const regions = sys.machine.regionNames;
    return dveInstance(sys, [
      {
        spec: ['BEEM-BAKERY-1'],
        name: 'mutual-exclusion',
        check: (s) => {
          const cs = procsIn(s, regions, 'CS');
          return cs.length > 1 ? `${cs.length} processes are in the critical section at once: ${cs.join(', ')}` : null;
        },
      },
    ]);
  },
};

export const beemModels = [philsModel, petersonModel, bakeryModel] as const;

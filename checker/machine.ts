// One machine definition, two executions: an XState v5 machine (the reference semantics, used for
// diagrams, replay cross-checks and the differential test) and a compiled stepper with the same
// semantics that the explorer can afford to call millions of times.
//
// Supported XState subset, on purpose: a flat machine, or a parallel machine of flat regions; each
// transition has an optional guard, an optional target (a sibling state) and an optional context
// update. Guards are evaluated on the pre-event context; updates run in region (document) order,
// each seeing the previous one's result, exactly as XState applies assign actions.

import { assign, createMachine, setup, type AnyStateMachine } from 'xstate';
import type { Ev, StatechartShape, DiagramSource } from './model.js';
import { compactMachineKey } from './compact-key.js';

export interface TransitionDef<C, E extends Ev> {
  readonly target?: string;
  readonly guard?: (c: C, e: E) => boolean;
  readonly update?: (c: C, e: E) => C;
  /** Shown on diagrams; defaults to the guard's function name. */
  readonly label?: string;
}

type OneOrMany<T> = T | readonly T[];

export interface StateDef<C, E extends Ev> {
  readonly on?: { readonly [type: string]: OneOrMany<TransitionDef<C, E>> };
}

export interface RegionDef<C, E extends Ev> {
  readonly initial: string;
  readonly states: { readonly [name: string]: StateDef<C, E> };
}

export interface MachineDef<C, E extends Ev> {
  readonly id: string;
  readonly context: C;
  /**
   * How states are keyed: 'json' (default, any context) or 'compiled' (a serializer generated from
   * the initial context; only for contexts whose keys are the same in every state).
   */
  readonly key?: 'json' | 'compiled';
  /** A flat machine has one region named after the machine. */
  readonly regions: { readonly [region: string]: RegionDef<C, E> };
}

/** A machine state: one state name per region (in region order) plus the context. */
export interface MState<C> {
  readonly value: readonly string[];
  readonly context: C;
}

interface CompiledTransition<C, E extends Ev> {
  readonly target: number; // state index within the region, or -1 to stay
  readonly guard: ((c: C, e: E) => boolean) | undefined;
  readonly update: ((c: C, e: E) => C) | undefined;
}

export class DmMachine<C, E extends Ev> implements DiagramSource {
  readonly id: string;
  readonly regionNames: readonly string[];
  readonly stateNames: readonly (readonly string[])[];
  /** table[region][stateIndex] -> event type -> candidate transitions in order. */
  private readonly table: readonly (readonly Map<string, readonly CompiledTransition<C, E>[]>[])[];
  private readonly stateIndex: readonly Map<string, number>[];
  readonly alphabet: ReadonlySet<string>;
  /** For each event type, the regions that handle it in some state (the others never need a look). */
  private readonly regionsFor: ReadonlyMap<string, readonly number[]>;
  private xstateMachine: AnyStateMachine | undefined;
  /** Canonical key of a state of this machine (see MachineDef.key). */
  readonly key: (s: MState<C>) => string;
  /** Reused by step: which transition each region takes (step never re-enters itself). */
  private readonly scratch: (CompiledTransition<C, E> | undefined)[];

  constructor(readonly def: MachineDef<C, E>) {
    this.id = def.id;
    this.regionNames = Object.keys(def.regions);
    if (this.regionNames.length === 0) throw new Error(`machine ${def.id}: needs at least one region`);
    const alphabet = new Set<string>();
    const stateNames: string[][] = [];
    const stateIndex: Map<string, number>[] = [];
    const table: Map<string, CompiledTransition<C, E>[]>[][] = [];
    for (const r of this.regionNames) {
      const region = def.regions[r]!;
      const names = Object.keys(region.states);
      if (!names.includes(region.initial)) {
        throw new Error(`machine ${def.id}: region ${r} has initial '${region.initial}' that is not one of its states`);
      }
      const idx = new Map(names.map((n, i) => [n, i]));
      stateNames.push(names);
      stateIndex.push(idx);
      table.push(
        names.map((n) => {
          const m = new Map<string, CompiledTransition<C, E>[]>();
          for (const [type, defs] of Object.entries(region.states[n]!.on ?? {})) {
            alphabet.add(type);
            m.set(
              type,
              asArray(defs).map((t) => {
                let target = -1;
                if (t.target !== undefined) {
                  const ti = idx.get(t.target);
                  if (ti === undefined) {
                    throw new Error(`machine ${def.id}: ${r}.${n} on ${type} targets unknown state '${t.target}'`);
                  }
                  target = ti;
                }
                return { target, guard: t.guard, update: t.update };
              }),
            );
          }
          return m;
        }),
      );
    }
    this.stateNames = stateNames;
    this.stateIndex = stateIndex;
    this.table = table;
    this.alphabet = alphabet;
    const regionsFor = new Map<string, number[]>();
    table.forEach((states, r) => {
      for (const byType of states) {
        for (const type of byType.keys()) {
          const list = regionsFor.get(type) ?? [];
          if (!list.includes(r)) list.push(r);
          regionsFor.set(type, list);
        }
      }
    });
    this.regionsFor = regionsFor;
    this.scratch = new Array<CompiledTransition<C, E> | undefined>(this.regionNames.length);
    if (def.key === 'compiled') {
      this.key = compactMachineKey<C>(this.initial());
    } else {
      this.key = (s) => s.value.join('|') + '#' + JSON.stringify(s.context);
    }
  }

  initial(context: C = this.def.context): MState<C> {
    return {
      value: this.regionNames.map((r) => this.def.regions[r]!.initial),
      context,
    };
  }

  /** The compiled step. Null when no region has an enabled transition for `e`. */
  step(s: MState<C>, e: E): MState<C> | null {
    const regions = this.regionsFor.get(e.type);
    if (regions === undefined) return null;
    const chosen = this.scratch;
    let any = false;
    for (const r of regions) {
      chosen[r] = undefined;
      const cands = this.table[r]![this.stateIndex[r]!.get(s.value[r]!)!]!.get(e.type);
      if (cands === undefined) continue;
      for (const t of cands) {
        if (t.guard === undefined || t.guard(s.context, e)) {
          chosen[r] = t;
          any = true;
          break;
        }
      }
    }
    if (!any) return null;
    let context = s.context;
    let value = s.value;
    for (const r of regions) {
      const t = chosen[r];
      if (t === undefined) continue;
      if (t.update !== undefined) context = t.update(context, e);
      if (t.target >= 0) {
        const name = this.stateNames[r]![t.target]!;
        if (value[r] !== name) {
          if (value === s.value) value = s.value.slice();
          (value as string[])[r] = name;
        }
      }
    }
    return { value, context };
  }

  /** Whether any region could handle this event type at all (in some state). */
  handles(type: string): boolean {
    return this.alphabet.has(type);
  }

  /** The same machine as an XState v5 machine. Built lazily; cached. */
  get xstate(): AnyStateMachine {
    this.xstateMachine ??= this.buildXState();
    return this.xstateMachine;
  }

  private buildXState(): AnyStateMachine {
    const regionConfig = (region: RegionDef<C, E>) => ({
      initial: region.initial,
      states: Object.fromEntries(
        Object.entries(region.states).map(([name, st]) => [
          name,
          {
            on: Object.fromEntries(
              Object.entries(st.on ?? {}).map(([type, defs]) => [
                type,
                asArray(defs).map((t) => {
                  const guard = t.guard;
                  const update = t.update;
                  return {
                    ...(t.target !== undefined ? { target: t.target } : {}),
                    ...(guard ? { guard: ({ context, event }: { context: C; event: E }) => guard(context, event) } : {}),
                    ...(update
                      ? { actions: assign(({ context, event }: { context: C; event: E }) => update(context, event) as object) }
                      : {}),
                  };
                }),
              ]),
            ),
          },
        ]),
      ),
    });
    const names = this.regionNames;
    const config =
      names.length === 1 && names[0] === this.def.id
        ? { id: this.def.id, context: this.def.context, ...regionConfig(this.def.regions[names[0]]!) }
        : {
            id: this.def.id,
            context: this.def.context,
            type: 'parallel' as const,
            states: Object.fromEntries(names.map((r) => [r, regionConfig(this.def.regions[r]!)])),
          };
    // The config is built from data, so XState's inference cannot type it; setup() adds nothing here.
    void setup;
    return createMachine(config as Parameters<typeof createMachine>[0]);
  }

  /** XState snapshot value -> our per-region value. */
  valueFromXState(v: unknown): string[] {
    if (typeof v === 'string') return [v];
    const obj = v as Record<string, string>;
    return this.regionNames.map((r) => obj[r]!);
  }

  statechart(): StatechartShape {
    return {
      id: this.id,
      regions: this.regionNames.map((r) => {
        const region = this.def.regions[r]!;
        const transitions: { from: string; to: string; label: string }[] = [];
        for (const [from, st] of Object.entries(region.states)) {
          for (const [type, defs] of Object.entries(st.on ?? {})) {
            for (const t of asArray(defs)) {
              const g = t.label ?? (t.guard && t.guard.name && !t.guard.name.startsWith('guard') ? t.guard.name : '');
              transitions.push({ from, to: t.target ?? from, label: g ? `${type} [${g}]` : type });
            }
          }
        }
        return { name: r, initial: region.initial, states: Object.keys(region.states), transitions };
      }),
    };
  }
}

function asArray<T>(x: OneOrMany<T>): readonly T[] {
  return Array.isArray(x) ? (x as readonly T[]) : [x as T];
}

export function defineMachine<C, E extends Ev>(def: MachineDef<C, E>): DmMachine<C, E> {
  return new DmMachine(def);
}

/** A flat machine: one region named after the machine. */
export function defineFlatMachine<C, E extends Ev>(def: {
  id: string;
  context: C;
  initial: string;
  states: { readonly [name: string]: StateDef<C, E> };
}): DmMachine<C, E> {
  return new DmMachine({ id: def.id, context: def.context, regions: { [def.id]: { initial: def.initial, states: def.states } } });
}

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
import { compileMachineKey } from './compact-key.js';

/** Event parameters a transition is for (e.g. `{ r: 2 }`: only reader 2's events). */
export type EventMatch = Readonly<Record<string, string | number | boolean>>;

export interface TransitionDef<C, E extends Ev> {
  readonly target?: string;
  /**
   * The transition only considers events whose fields equal these. The same as a guard testing
   * them, but declared, so the compiled step never looks at regions an event instance cannot move.
   */
  readonly match?: EventMatch;
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
  /**
   * The initial context. Contexts must be JSON data (no undefined, NaN, Infinity, Map or Set): the
   * explorer stores states by a key generated from this one (checker/compact-key.ts, fastest when
   * contexts keep its shape) and decodes them again, so only what JSON keeps survives.
   */
  readonly context: C;
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
  readonly match: EventMatch | undefined;
  readonly guard: ((c: C, e: E) => boolean) | undefined;
  readonly update: ((c: C, e: E) => C) | undefined;
}

/**
 * What an event instance can do: the regions it may move, and per region, the candidate transitions
 * in each of the region's states (indexed by state index), its `match` already applied.
 */
interface Plan<C, E extends Ev> {
  readonly regions: readonly number[];
  readonly byState: readonly (readonly (readonly CompiledTransition<C, E>[] | undefined)[])[];
}

/**
 * The states the compiled step makes: an MState that also carries its per-region state indices,
 * so that neither the next step nor the key looks a state name up by string. The indices are a
 * private field, invisible to JSON, equality checks and printing; any other MState (a model's own,
 * one read from a trace) works too, its indices are looked up from its names.
 */
class MachineState<C> implements MState<C> {
  readonly #ix: readonly number[];
  constructor(
    readonly value: readonly string[],
    readonly context: C,
    ix: readonly number[],
  ) {
    this.#ix = ix;
  }
  static indices(s: MState<unknown>): readonly number[] | undefined {
    return #ix in s ? s.#ix : undefined;
  }
}

/** Plans are cached per event object; events made afresh per state would grow the cache forever. */
const PLAN_CACHE_LIMIT = 1 << 14;

function matches(m: EventMatch | undefined, e: Ev): boolean {
  if (m === undefined) return true;
  for (const k in m) if (e[k] !== m[k]) return false;
  return true;
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
  /** The same key as units, and back, for the explorer's state store (System.units). */
  readonly encode: (s: MState<C>, out: Uint16Array) => number;
  readonly decode: (units: Uint16Array, start: number) => MState<C>;
  /** Reused by step: which transition each region takes (step never re-enters itself). */
  private readonly scratch: (CompiledTransition<C, E> | undefined)[];
  /** Plans of event objects seen, and of event types no transition matches on (shared by instances). */
  private readonly plans = new Map<E, Plan<C, E>>();
  private readonly typePlans = new Map<string, Plan<C, E> | null>();
  private readonly matchedTypes = new Set<string>();
  /** The state step saw last and its indices: the explorer tries every event on one state in a row. */
  private lastState: MState<C> | undefined;
  private lastIndices: readonly number[] | undefined;

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
                if (t.match !== undefined) this.matchedTypes.add(type);
                return { target, match: t.match, guard: t.guard, update: t.update };
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
    const k = compileMachineKey<C>(def.context, stateNames, (s) => this.indicesOf(s), (value, context, ix) => new MachineState(value, context, ix));
    this.key = k.key;
    this.encode = k.encode;
    this.decode = k.decode;
  }

  initial(context: C = this.def.context): MState<C> {
    const value = this.regionNames.map((r) => this.def.regions[r]!.initial);
    return new MachineState(value, context, this.lookUp(value));
  }

  /** Per-region state indices of a state (the compiled step's states carry them). */
  indicesOf(s: MState<C>): readonly number[] {
    return MachineState.indices(s) ?? this.lookUp(s.value);
  }

  private lookUp(v: readonly string[]): number[] {
    if (v.length !== this.regionNames.length) {
      throw new Error(`machine ${this.id}: a state value has ${v.length} region(s), the machine has ${this.regionNames.length} (${this.regionNames.join(', ')})`);
    }
    const ix = new Array<number>(v.length);
    for (let r = 0; r < v.length; r++) {
      const i = this.stateIndex[r]!.get(v[r]!);
      if (i === undefined) throw new Error(`machine ${this.id}: region ${this.regionNames[r]} has no state '${v[r]}'`);
      ix[r] = i;
    }
    return ix;
  }

  private planOf(e: E): Plan<C, E> | null {
    const cached = this.plans.get(e);
    if (cached !== undefined) return cached;
    if (!this.matchedTypes.has(e.type)) {
      // No transition of this type matches on parameters: one plan serves every instance.
      let p = this.typePlans.get(e.type);
      if (p === undefined) this.typePlans.set(e.type, (p = this.buildPlan(e)));
      return p;
    }
    const p = this.buildPlan(e);
    if (p !== null && this.plans.size < PLAN_CACHE_LIMIT) this.plans.set(e, p);
    return p;
  }

  private buildPlan(e: E): Plan<C, E> | null {
    const regions: number[] = [];
    const byState: (readonly CompiledTransition<C, E>[] | undefined)[][] = [];
    for (const r of this.regionsFor.get(e.type) ?? []) {
      const perState = this.table[r]!.map((byType) => {
        const cands = byType.get(e.type)?.filter((t) => matches(t.match, e));
        return cands !== undefined && cands.length > 0 ? cands : undefined;
      });
      if (perState.some((c) => c !== undefined)) {
        regions.push(r);
        byState.push(perState);
      }
    }
    return regions.length > 0 ? { regions, byState } : null;
  }

  /** The compiled step. Null when no region has an enabled transition for `e`. */
  step(s: MState<C>, e: E): MState<C> | null {
    const plan = this.planOf(e);
    if (plan === null) return null;
    let ix = this.lastIndices;
    if (s !== this.lastState || ix === undefined) {
      ix = this.indicesOf(s);
      this.lastState = s;
      this.lastIndices = ix;
    }
    return this.fire(s, ix, plan, e);
  }

  /** Take `e` by `plan` from `s` (whose indices are `ix`), or null when nothing is enabled. */
  private fire(s: MState<C>, ix: readonly number[], plan: Plan<C, E>, e: E): MState<C> | null {
    const regions = plan.regions;
    if (regions.length === 1) {
      const cands = plan.byState[0]![ix[regions[0]!]!];
      return cands === undefined ? null : this.fireOne(s, ix, regions[0]!, cands, e);
    }
    const chosen = this.scratch;
    let any = false;
    for (let j = 0; j < regions.length; j++) {
      const r = regions[j]!;
      chosen[r] = undefined;
      const cands = plan.byState[j]![ix[r]!];
      if (cands === undefined) continue;
      for (let k = 0; k < cands.length; k++) {
        const t = cands[k]!;
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
    let nix = ix;
    for (let j = 0; j < regions.length; j++) {
      const r = regions[j]!;
      const t = chosen[r];
      if (t === undefined) continue;
      if (t.update !== undefined) context = t.update(context, e);
      if (t.target >= 0 && t.target !== nix[r]) {
        if (nix === ix) {
          nix = ix.slice();
          value = value.slice();
        }
        (nix as number[])[r] = t.target;
        (value as string[])[r] = this.stateNames[r]![t.target]!;
      }
    }
    return new MachineState(value, context, nix);
  }

  /** Most events move one region (r): its first enabled candidate, with no per-region choice to remember. */
  private fireOne(s: MState<C>, ix: readonly number[], r: number, cands: readonly CompiledTransition<C, E>[], e: E): MState<C> | null {
    for (let k = 0; k < cands.length; k++) {
      const t = cands[k]!;
      if (t.guard !== undefined && !t.guard(s.context, e)) continue;
      const context = t.update !== undefined ? t.update(s.context, e) : s.context;
      if (t.target < 0 || t.target === ix[r]) return new MachineState(s.value, context, ix);
      const nix = ix.slice();
      const value = s.value.slice();
      nix[r] = t.target;
      value[r] = this.stateNames[r]![t.target]!;
      return new MachineState(value, context, nix);
    }
    return null;
  }

  /**
   * Every enabled event of a fixed event list, in list order, with its successor: what stepping
   * each event would give, without trying the events no region's current state has a transition
   * for. Precomputed per list: for each region state, which list entries it can take.
   */
  successorsOf(events: readonly E[]): (s: MState<C>, emit: (e: E, next: MState<C>) => void) => void {
    const plans = events.map((e) => this.planOf(e));
    const takers: number[][][] = this.stateNames.map((names) => names.map(() => []));
    plans.forEach((p, j) => {
      p?.regions.forEach((r, k) => {
        p.byState[k]!.forEach((cands, st) => {
          if (cands !== undefined) takers[r]![st]!.push(j);
        });
      });
    });
    // When every event moves one region and the list is ordered by region (each thread's events
    // together, as models list them), list order is region order: walk each region's current state's
    // events directly.
    let lastRegion = -1;
    const direct = plans.every((p) => {
      if (p === null) return true;
      if (p.regions.length !== 1 || p.regions[0]! < lastRegion) return false;
      lastRegion = p.regions[0]!;
      return true;
    });
    if (direct) {
      const table = takers.map((perState) => perState.map((js, st) => js.map((j) => ({ e: events[j]!, cands: plans[j]!.byState[0]![st]! }))));
      return (s, emit) => {
        const ix = this.indicesOf(s);
        for (let r = 0; r < ix.length; r++) {
          const here = table[r]![ix[r]!]!;
          for (let k = 0; k < here.length; k++) {
            const { e, cands } = here[k]!;
            const next = this.fireOne(s, ix, r, cands, e);
            if (next !== null) emit(e, next);
          }
        }
      };
    }
    const byRegionState = takers.map((perState) => perState.map((js) => Int32Array.from(js)));
    const mark = new Int32Array(events.length);
    let stamp = 0;
    return (s, emit) => {
      const ix = this.indicesOf(s);
      if (++stamp === 0x7fffffff) {
        mark.fill(0);
        stamp = 1;
      }
      let lo = events.length;
      let hi = -1;
      for (let r = 0; r < ix.length; r++) {
        const js = byRegionState[r]![ix[r]!]!;
        for (let k = 0; k < js.length; k++) {
          const j = js[k]!;
          mark[j] = stamp;
          if (j < lo) lo = j;
          if (j > hi) hi = j;
        }
      }
      for (let j = lo; j <= hi; j++) {
        if (mark[j] !== stamp) continue;
        const e = events[j]!;
        const next = this.fire(s, ix, plans[j]!, e);
        if (next !== null) emit(e, next);
      }
    };
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
                  const match = t.match;
                  const update = t.update;
                  const holds = (context: C, event: E): boolean => matches(match, event) && (guard === undefined || guard(context, event));
                  return {
                    ...(t.target !== undefined ? { target: t.target } : {}),
                    ...(guard || match ? { guard: ({ context, event }: { context: C; event: E }) => holds(context, event) } : {}),
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

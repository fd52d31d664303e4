// Engine self-validation on BEEM: the explorer must reproduce the published state, edge and BFS
// level counts of phils.1, peterson.1 and bakery.1 exactly, and the compiled machine stepper must
// build the same state graph as XState's own transition() (on phils.1 and on the kobject model).
// Deterministic: exhaustive exploration only, no random input.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// Both sides of a differential use the JSON machineKey, whatever key a machine's System defaults to.
import { machineKey, machineSystem } from '../../checker/compose.js';
import { explore } from '../../checker/explore.js';
import type { MState } from '../../checker/machine.js';
import { boundsWithDefaults, type AnyModel, type Ev, type Instance, type Model, type Variant } from '../../checker/model.js';
import { kobjectEvents, kobjectMachine } from '../../machines/kobject/machine.js';
import { philsSystem } from '../../machines/beem/phils.js';
import { kobjectModel } from '../kobject/model.js';
import { sharedDir } from '../shared-corpus.js';
import { stateGraph, xstateSystem } from './graph.js';
import { bakeryModel, beemModels, petersonModel, philsModel } from './models.js';

const shared = sharedDir();
const SHARED_CSV = shared === null ? null : join(shared, 'corpus', 'beem-state-counts.csv');
// A committed copy, so the test runs where shared/ is absent; checked equal when both exist.
const LOCAL_CSV = fileURLToPath(new URL('./beem-state-counts.csv', import.meta.url));

interface BeemCounts {
  readonly states: number;
  readonly edges: number;
  readonly levels: number;
}

function readCounts(file: string): Map<string, BeemCounts> {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const header = lines.shift();
  if (header?.trim() !== 'instance,states,edges,bfs_levels') throw new Error(`${file}: unexpected header '${header}'`);
  const out = new Map<string, BeemCounts>();
  for (const line of lines) {
    const [name, states, edges, levels] = line.trim().split(',');
    if (name === undefined || levels === undefined) throw new Error(`${file}: malformed line '${line}'`);
    out.set(name, { states: Number(states), edges: Number(edges), levels: Number(levels) });
  }
  return out;
}

/** Invariant messages for the initial state with every process moved to CS (and none for the initial state itself). */
function mutexMessages<C>(model: Model<MState<C>, Ev>): (string | null)[] {
  const inst = model.instance(boundsWithDefaults(model), beem);
  const init = inst.system.initial()[0]!;
  if (inst.invariants.some((i) => i.check(init) !== null)) throw new Error(`${model.id}: an invariant fails in the initial state`);
  const bad: MState<C> = { ...init, value: init.value.map(() => 'CS') };
  return inst.invariants.map((i) => i.check(bad)).filter((m) => m !== null);
}

const counts = readCounts(SHARED_CSV !== null && existsSync(SHARED_CSV) ? SHARED_CSV : LOCAL_CSV);
const beem: Variant = { profile: 'beem', mutant: null };
const asInstance = (m: AnyModel): Instance<unknown, Ev> => m.instance(boundsWithDefaults(m), beem);

describe('BEEM state counts', () => {
  // Nothing to compare against without shared/ (the counts then come from the committed copy).
  it.skipIf(SHARED_CSV === null || !existsSync(SHARED_CSV))('the committed CSV copy matches the shared corpus', () => {
    expect(readCounts(LOCAL_CSV)).toEqual(readCounts(SHARED_CSV!));
  });

  for (const model of beemModels) {
    const beemName = model.id.replace(/^beem-/, '');
    it(`${beemName}: explorer reproduces BEEM's states, edges and BFS levels exactly`, () => {
      const want = counts.get(beemName);
      expect(want, `${beemName} in the CSV`).toBeDefined();
      const r = explore(asInstance(model as unknown as AnyModel), { checkDeadlock: false, checkProgress: false });
      expect(r.complete).toBe(true);
      expect(r.violations).toEqual([]);
      // BEEM numbers BFS levels from 0 and reports how many there are: max depth + 1.
      expect({ states: r.states, edges: r.transitions, levels: r.depth + 1 }).toEqual(want);
    });
  }

  it('phils.1: the explorer does not flag BEEM deadlocks (all states are valid ends) yet they exist', () => {
    const inst = asInstance(philsModel as unknown as AnyModel);
    expect(explore(inst).violations).toEqual([]);
    // Without validEnd the same graph has a deadlock: all four philosophers hold their left fork.
    const r = explore({ ...inst, validEnd: () => false }, { checkProgress: false });
    expect(r.violations.map((v) => v.kind)).toEqual(['deadlock']);
    expect(r.violations[0]!.path).toHaveLength(4);
  });

  it('phils.1: per-level BFS state counts equal phils.1.stat.xml', () => {
    const sys = philsSystem();
    const g = stateGraph(machineSystem(sys.machine, () => sys.events, sys.machine.initial(), machineKey));
    // <bfs-levels> of original-benchmark/phils/generated_files/phils.1.stat.xml
    expect(g.perLevel).toEqual([1, 4, 10, 16, 15, 12, 10, 4, 4, 4]);
  });

  it('the mutual-exclusion invariants can fail: they flag a state with two processes in CS', () => {
    expect(mutexMessages(petersonModel)).toEqual(['3 processes are in the critical section at once: P_0, P_1, P_2']);
    expect(mutexMessages(bakeryModel)).toEqual(['2 processes are in the critical section at once: P_0, P_1']);
  });
});

describe('compiled stepper agrees with XState transition()', () => {
  it('phils.1: same keys, same labelled edges', () => {
    const sys = philsSystem();
    const compiled = stateGraph(machineSystem(sys.machine, () => sys.events, sys.machine.initial(), machineKey));
    const viaXState = stateGraph(xstateSystem(sys.machine, () => sys.events));
    expect(compiled.keys.size).toBe(80);
    expect(viaXState.keys).toEqual(compiled.keys);
    expect(viaXState.edges.length).toBe(212);
    expect(viaXState.edges).toEqual(compiled.edges);
  });

  for (const profile of ['fixed', 'linux-3.14']) {
    it(`kobject at default bounds under '${profile}': same keys, same labelled edges`, () => {
      const b = boundsWithDefaults(kobjectModel);
      const kb = { readers: b['readers']!, getters: b['getters']!, foreign: b['foreign']!, openers: b['openers']! };
      const m = kobjectMachine(kb, { profile, mutant: null });
      const events = kobjectEvents(kb);
      const compiled = stateGraph(machineSystem(m, () => events, m.initial(), machineKey));
      const viaXState = stateGraph(xstateSystem(m, () => events));
      expect(compiled.keys.size).toBeGreaterThan(100);
      expect(viaXState.keys).toEqual(compiled.keys);
      expect(viaXState.edges.length).toBe(compiled.edges.length);
      expect(viaXState.edges).toEqual(compiled.edges);
      // And the explorer, walking the registered model's instance, counts the same graph.
      const r = explore(kobjectModel.instance(b, { profile, mutant: null }), { checkDeadlock: false, checkProgress: false, allViolations: true });
      expect({ states: r.states, edges: r.transitions }).toEqual({ states: compiled.keys.size, edges: compiled.edges.length });
    }, 300_000); // XState's interpreter is slow: ~100k transition() calls under linux-3.14
  }
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  counterexampleDot,
  generateDiagrams,
  groupGraph,
  layoutOf,
  participantsFromStatechart,
  renderSvg,
  sequenceMermaid,
  stateGraphDot,
  stateGraphMermaid,
  statechartDot,
  statechartMermaid,
  tracePath,
} from './diagram.js';
import type { ExploredGraph } from './explore.js';
import { machineSystem } from './compose.js';
import { defineFlatMachine, defineMachine, type MState } from './machine.js';
import type { Ev, Instance, StatechartShape } from './model.js';
import { testSeed } from './seed.js';
import { makeTrace, type Trace } from './trace.js';
import { models } from '../properties/registry.js';

type C = { busy: boolean };
// A 2-region machine: a worker thread and a device, synchronised on STOP.
const twoRegions = defineMachine<C, Ev>({
  id: 'pair',
  context: { busy: false },
  regions: {
    worker: {
      initial: 'idle',
      states: {
        idle: { on: { GO: { target: 'running', guard: function ready(c) { return !c.busy; }, update: () => ({ busy: true }) } } },
        running: { on: { STOP: { target: 'idle', update: () => ({ busy: false }) } } },
      },
    },
    device: {
      initial: 'up',
      states: {
        up: { on: { STOP: { target: 'down' } } },
        down: {},
      },
    },
  },
});

const flat = defineFlatMachine<C, Ev>({
  id: 'flat',
  context: { busy: false },
  initial: 'a',
  states: { a: { on: { NEXT: { target: 'b' } } }, b: { on: { NEXT: { target: 'a', label: 'wrap' } } } },
});

function graph(values: string[], edges: [number, number, string][], initial: number[] = [0]): ExploredGraph {
  return {
    values,
    edgeFrom: Int32Array.from(edges.map((e) => e[0])),
    edgeTo: Int32Array.from(edges.map((e) => e[1])),
    edgeType: edges.map((e) => e[2]),
    initial,
  };
}

function trace(steps: Ev[], over: Partial<Trace> = {}): Trace {
  return makeTrace({
    model: 'pair',
    bounds: { readers: 1 },
    profile: 'linux-3.14',
    mutant: 'demo-mutant',
    engine: 'explore',
    initialIndex: 0,
    steps,
    violation: { kind: 'invariant', property: 'no-stop-while-busy', spec: ['PAIR-1', 'PAIR-2'], message: 'stopped while busy' },
    ...over,
  });
}

describe('statecharts', () => {
  it('draws each region of a parallel machine as a cluster with labelled transitions and initial marks', () => {
    const dot = statechartDot(twoRegions.statechart());
    expect(dot).toContain('subgraph "cluster_worker"');
    expect(dot).toContain('subgraph "cluster_device"');
    expect(dot).toContain('"worker/idle" -> "worker/running" [label="GO [ready]"]');
    expect(dot).toContain('"worker/running" -> "worker/idle" [label="STOP"]');
    expect(dot).toContain('"device/__initial" -> "device/up"');
    expect(dot).toContain('"worker/__initial" -> "worker/idle"');
    // 'down' has no way out: drawn as a final state.
    expect(dot).toMatch(/"device\/down" \[label="down", peripheries=2\]/);
    expect(layoutOf(dot)).toBe('dot');
  });

  it('draws a flat machine without clusters and merges transitions that share an arrow', () => {
    const shape: StatechartShape = {
      id: 'm',
      regions: [
        {
          name: 'm',
          initial: 'a',
          states: ['a', 'b'],
          transitions: [
            { from: 'a', to: 'b', label: 'X' },
            { from: 'a', to: 'b', label: 'Y [ok]' },
            { from: 'b', to: 'a', label: 'Z [Z]' },
          ],
        },
      ],
    };
    const dot = statechartDot(shape);
    expect(dot).not.toContain('cluster');
    expect(dot).toContain('"m/a" -> "m/b" [label="X\\nY [ok]"]');
    // A guard named after its event is not repeated.
    expect(dot).toContain('"m/b" -> "m/a" [label="Z"]');
    expect(statechartDot(flat.statechart())).toContain('"flat/b" -> "flat/a" [label="NEXT [wrap]"]');
  });

  it('writes Mermaid with concurrent regions, region-qualified ids and initial states', () => {
    const mmd = statechartMermaid(twoRegions.statechart());
    expect(mmd).toContain('stateDiagram-v2');
    expect(mmd).toContain('state pair {');
    expect(mmd).toContain('state worker {');
    expect(mmd).toContain('\n    --\n');
    expect(mmd).toContain('[*] --> worker_idle');
    expect(mmd).toContain('[*] --> device_up');
    expect(mmd).toContain('worker_idle --> worker_running : GO [ready]');
    const flatMmd = statechartMermaid(flat.statechart());
    expect(flatMmd).not.toContain('\n  --\n');
    expect(flatMmd).toContain('[*] --> flat_a');
  });

  it('keeps Mermaid ids unique when region and state names collide after sanitising', () => {
    const shape: StatechartShape = {
      id: 'x',
      regions: [
        { name: 'a-b', initial: 'c', states: ['c'], transitions: [] },
        { name: 'a_b', initial: 'c', states: ['c'], transitions: [] },
      ],
    };
    const mmd = statechartMermaid(shape);
    expect(mmd).toContain('state "c" as a_b_c\n');
    expect(mmd).toContain('state "c" as a_b_c_2\n');
  });

  it('keeps DOT ASCII so the WebAssembly Graphviz never measures a non-ASCII glyph', () => {
    const dot = statechartDot({ id: 'é', regions: [{ name: 'r', initial: 'café', states: ['café', '→λ'], transitions: [{ from: 'café', to: '→λ', label: 'a × b' }] }] });
    expect(dot).toMatch(/^[\x00-\x7f]*$/);
    expect(dot).toContain('"r/cafe" [label="cafe"');
    expect(dot).toContain('[label="a x b"]');
    expect(dot).toContain('"r/->?"');
  });

  it('renders any statechart, whatever its names, and renders it identically twice', async () => {
    const seed = testSeed('diagram statechart names');
    const name = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'Z', '"', '\\', '\n', ' ', ';', '#', '{', '-', '>', 'é') });
    const shape = fc
      .tuple(fc.uniqueArray(name, { minLength: 1, maxLength: 3 }), fc.uniqueArray(name, { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.nat(), name), { maxLength: 6 }))
      .map(([regions, states, ts]): StatechartShape => ({
        id: 'random',
        regions: regions.map((r) => ({
          name: r,
          initial: states[0]!,
          states,
          transitions: ts.map(([f, t, l]) => ({ from: states[f % states.length]!, to: states[t % states.length]!, label: l })),
        })),
      }));
    await fc.assert(
      fc.asyncProperty(shape, async (s) => {
        const dot = statechartDot(s);
        const svg = await renderSvg(dot);
        expect(svg).toContain('<svg');
        expect(await renderSvg(dot)).toBe(svg);
        // Every Mermaid state id is declared once.
        const ids = [...statechartMermaid(s).matchAll(/ as (\S+)/g)].map((m) => m[1]);
        expect(new Set(ids).size).toBe(ids.length);
      }),
      { seed, numRuns: 15 },
    );
  });
});

describe('state graphs', () => {
  const g = graph(
    ['A', 'A', 'B', 'C'],
    [
      [0, 1, 'tick'],
      [1, 0, 'tick'],
      [0, 2, 'go'],
      [1, 2, 'go'],
      [2, 3, 'go'],
      [3, 0, '@crash'],
    ],
  );

  it('groups states by abstract value with one counted edge per (value, value, event)', () => {
    const gg = groupGraph(g);
    expect(gg.values).toEqual(['A', 'B', 'C']);
    expect(gg.states).toEqual([2, 1, 1]);
    expect(gg.initial).toEqual([0]);
    expect(gg.edges).toEqual([
      { from: 0, to: 0, type: 'tick', count: 2 },
      { from: 0, to: 1, type: 'go', count: 2 },
      { from: 1, to: 2, type: 'go', count: 1 },
      { from: 2, to: 0, type: '@crash', count: 1 },
    ]);
  });

  it('draws the grouped graph with counts, operator edges dashed and the initial value marked', () => {
    const dot = stateGraphDot(g, { title: 'demo' });
    // DOT stays ASCII (× is written x); Mermaid keeps the ×.
    expect(dot).toContain('v0 -> v0 [label="tick x2", color="#aaaaaa"]');
    expect(dot).toContain('v0 -> v1 [label="go x2"]');
    expect(dot).toMatch(/v2 -> v0 \[label="@crash", style=dashed/);
    expect(dot).toMatch(/v0 \[label="A", tooltip="2 concrete states", peripheries=2/);
    expect(dot).toContain('init0 -> v0');
    expect(dot).toContain('4 states grouped into 3 abstract values');
    const mmd = stateGraphMermaid(g, { title: 'demo' });
    expect(mmd).toContain('flowchart TD');
    expect(mmd).toContain('v0 -->|"go ×2"| v1');
    expect(mmd).toContain('v2 -.->|"@crash"| v0');
    expect(mmd).toContain('class v0 initial');
  });

  it('bundles the events of one arrow into one label', () => {
    const dot = stateGraphDot(graph(['A', 'B'], [[0, 1, 'x'], [0, 1, 'y'], [0, 1, '@fault']]));
    expect(dot).toContain('v0 -> v1 [label="x\\ny"]');
    expect(dot).toMatch(/v0 -> v1 \[label="@fault", style=dashed/);
  });

  it('caps the node count, keeps the shallowest values, says so and switches to neato', () => {
    const n = 200;
    const chain = graph(
      Array.from({ length: n }, (_, i) => `s${i}`),
      Array.from({ length: n - 1 }, (_, i): [number, number, string] => [i, i + 1, 'step']),
    );
    const dot = stateGraphDot(chain);
    // The caption is wrapped; read it as one line.
    const caption = dot.replace(/\\n/g, ' ');
    expect(caption).toContain('showing 150 of 200 abstract values');
    expect(caption).toContain('50 of 199 grouped edges are cut');
    expect((dot.match(/^ {2}v\d+ \[label=/gm) ?? []).length).toBe(150);
    expect(dot).toContain('v149 [label="s149"]');
    expect(dot).not.toContain('v150 [');
    expect(layoutOf(dot)).toBe('neato');
    expect(layoutOf(stateGraphDot(chain, { maxNodes: 60 }))).toBe('dot');
  });

  it('is deterministic: same graph, same DOT, same SVG bytes (neato included)', async () => {
    const n = 70;
    const ring = graph(
      Array.from({ length: n }, (_, i) => `state ${i} of a ring`),
      Array.from({ length: n }, (_, i): [number, number, string] => [i, (i + 1) % n, i % 2 ? 'odd' : 'even']),
    );
    const a = stateGraphDot(ring);
    expect(stateGraphDot(ring)).toBe(a);
    expect(layoutOf(a)).toBe('neato');
    const svg = await renderSvg(a);
    expect(await renderSvg(a)).toBe(svg);
  });
});

describe('counterexamples', () => {
  const g = graph(['A', 'B', 'C', 'D'], [[0, 1, 'go'], [0, 3, 'alt'], [1, 2, 'go'], [2, 0, 'back']]);

  it('highlights the path in red with numbered steps and marks the violating value', () => {
    const t = trace([{ type: 'go' }, { type: 'go' }, { type: 'back' }, { type: 'go' }]);
    const dot = counterexampleDot({ graph: g, path: ['A', 'B', 'C', 'A', 'B'] }, t);
    // Steps that share an arrow are listed on it, numbered.
    expect(dot).toContain('v0 -> v1 [label="1. go\\n4. go", color="#cc0000"');
    expect(dot).toContain('v1 -> v2 [label="2. go", color="#cc0000"');
    expect(dot).toContain('v2 -> v0 [label="3. back", color="#cc0000"');
    // The grey copies of path edges are not drawn; the alternative is.
    expect(dot.match(/v0 -> v1 /g)?.length).toBe(1);
    expect(dot).toContain('v0 -> v3 [label="alt"]');
    expect(dot).toContain('VIOLATION no-stop-while-busy');
    expect(dot).toContain('violates no-stop-while-busy [PAIR-1, PAIR-2]: stopped while busy');
    expect(dot).toContain('mutant demo-mutant');
  });

  it('draws a path alone when there is no graph, adding values the graph lacks', () => {
    const t = trace([{ type: 'x' }]);
    const dot = counterexampleDot({ path: ['P', 'Q'] }, t);
    expect(dot).toContain('v0 -> v1 [label="1. x"');
    expect(counterexampleDot({ path: ['P', 'Q'] }, trace([{ type: 'x', n: 3 }]))).toContain('[label="1. x n=3"');
    expect(dot).toContain('init0 -> v0');
    const dot2 = counterexampleDot({ graph: g, path: ['A', 'Z'] }, t);
    expect(dot2).toMatch(/v4 \[label="Z\\n\\nVIOLATION/);
  });

  it('says when a trace no longer replays', () => {
    const t = trace([{ type: 'go' }, { type: 'nope' }]);
    const dot = counterexampleDot({ graph: g, path: ['A', 'B'], stale: { step: 2, reason: 'nope is not enabled' } }, t);
    expect(dot).toContain('STALE: step 2 does not replay (nope is not enabled)');
    expect(dot).not.toContain('VIOLATION');
  });

  it('follows a trace through an instance and collects the one-step neighbourhood', () => {
    const inst: Instance<MState<C>, Ev> = {
      system: machineSystem(twoRegions, () => [{ type: 'GO' }, { type: 'STOP' }]),
      invariants: [],
      describe: (s) => s.value.join(' '),
      valueOf: (s) => s.value.join(' '),
    };
    const tp = tracePath(inst as unknown as Instance<unknown, Ev>, trace([{ type: 'GO' }, { type: 'STOP' }]));
    expect(tp.path).toEqual(['idle up', 'running up', 'idle down']);
    expect(tp.stale).toBeUndefined();
    const gg = groupGraph(tp.graph);
    // The path's values first, then what the path's states could reach in one step.
    expect(gg.values).toEqual(['idle up', 'running up', 'idle down', 'running down']);
    // From 'idle up' GO and STOP are enabled (STOP moves the device alone).
    expect(gg.edges.filter((e) => e.from === 0).map((e) => e.type).sort()).toEqual(['GO', 'STOP']);
    const stale = tracePath(inst as unknown as Instance<unknown, Ev>, trace([{ type: 'STOP' }, { type: 'STOP' }]));
    expect(stale.stale?.step).toBe(2);
    expect(stale.path).toEqual(['idle up', 'idle down']);
  });

  it('writes a sequence diagram: thread parameters pick participants, operators are notes, the violation ends it', () => {
    const t = trace([
      { type: 'CREATE' },
      { type: 'READ_OPEN', r: 0 },
      { type: 'GETMD_FIND', g: 1 },
      { type: '@crash', keep: [0], torn: null },
      { type: 'REMOVE' },
    ]);
    const mmd = sequenceMermaid(t, ['device', 'reader0', 'getter1'], {
      participantOf: (e) => (e.type === 'REMOVE' ? 'remover' : 'device'),
      isExternal: (e) => e.type === 'CREATE' || e.type === 'REMOVE',
    });
    expect(mmd).toContain('sequenceDiagram');
    expect(mmd).toContain('participant p_environment as environment');
    expect(mmd).toMatch(/participant p_device as device\n {2}participant p_reader0 as reader0\n {2}participant p_getter1 as getter1\n {2}participant p_remover as remover/);
    expect(mmd).toContain('p_environment->>p_device: 1. CREATE');
    expect(mmd).toContain('p_reader0->>p_reader0: 2. READ_OPEN r=0');
    expect(mmd).toContain('p_getter1->>p_getter1: 3. GETMD_FIND g=1');
    expect(mmd).toContain('Note over p_environment,p_remover: 4. @crash keep=[0] torn=null');
    expect(mmd).toContain('p_environment->>p_remover: 5. REMOVE');
    expect(mmd.trimEnd().split('\n').at(-1)).toBe(
      '  Note over p_environment,p_remover: VIOLATION no-stop-while-busy [PAIR-1, PAIR-2]: stopped while busy',
    );
    // 'r' that names no region of this machine (a region number, say) does not invent a reader.
    expect(sequenceMermaid(trace([{ type: 'bio', r: 0 }]), ['mirror'], { participantOf: () => 'mirror' })).toContain('p_mirror->>p_mirror: 1. bio r=0');
    // Without a participant function every unparameterised event goes to 'system'.
    expect(sequenceMermaid(trace([{ type: 'X' }]), [])).toContain('p_system->>p_system: 1. X');
  });
});

describe('participants from a statechart', () => {
  it('gives an event to the most specific region that handles it', () => {
    const of = participantsFromStatechart({
      id: 'm',
      regions: [
        { name: 'driver', initial: 'run', states: ['run'], transitions: ['a', 'b', 'c'].map((t) => ({ from: 'run', to: 'run', label: `${t} [${t}]` })) },
        { name: 'worker', initial: 'idle', states: ['idle', 'busy'], transitions: [{ from: 'idle', to: 'busy', label: 'b [ok]' }] },
      ],
    });
    expect(of({ type: 'a' })).toBe('driver');
    expect(of({ type: 'b' })).toBe('worker');
    expect(of({ type: 'zzz' })).toBe('system');
  });
});

describe('committed diagrams', () => {
  // Statecharts and counterexamples are cheap to regenerate; the state graphs need every model's full
  // exploration (minutes on a loaded machine), so the default run leaves them to the full check:
  // `npx dmcheck diagram --check` (CI) or DMCHECK_DIAGRAMS=full npx vitest run checker/diagram.test.ts.
  it(
    'statecharts and counterexample diagrams in diagrams/ are up to date (run `npx dmcheck diagram` to refresh)',
    async () => {
      const log: string[] = [];
      const stale = await generateDiagrams(models, 'diagrams', { check: true, stateGraphs: false, log: (l) => log.push(l) });
      expect(stale, log.join('\n')).toEqual([]);
    },
    600_000,
  );

  it.runIf(process.env['DMCHECK_DIAGRAMS'] === 'full')(
    'all of diagrams/, state graphs and README included, is up to date',
    async () => {
      const log: string[] = [];
      const stale = await generateDiagrams(models, 'diagrams', { check: true, log: (l) => log.push(l) });
      expect(stale, log.join('\n')).toEqual([]);
    },
    1_800_000,
  );

  it('refuses to write without the state graphs', async () => {
    await expect(generateDiagrams([], '/nonexistent', { check: false, stateGraphs: false, log: () => {} })).rejects.toThrow(/only for check=true/);
  });
});

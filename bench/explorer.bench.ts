// Explorer benchmark: distinct states per second and heap bytes per stored state of the engine's BFS
// explorer (checker/explore.ts over a defineMachine machine), against the same model written as a
// hand-written reducer (bench/reducers/) explored by a plain BFS with a string-key Set — what plain
// JavaScript can do. Subjects: the kobject model (machines/kobject/machine.ts, 'fixed') at bounds
// that give more than 50k states, and BEEM peterson.1 (machines/beem/peterson.ts).
//
//   npx tsx bench/explorer.bench.ts [--runs 3] [--min-cpu 2] [--only kobject|peterson]
//        [--kobject readers=3,getters=2,foreign=2,openers=1] [--cpu-profile] [--no-write]
//
// Speed is the median of --runs samples, explorer and hand-written BFS interleaved so both see the
// same machine load; a sample repeats the exploration until it used --min-cpu CPU seconds. States/s is given per CPU second of this process (robust on a shared machine) and per
// wall second. Bytes/state = (heapUsed with every state stored − heapUsed before) / states, both
// after a forced GC (the script re-executes itself with --expose-gc when needed). The table goes to
// stdout and to bench/results.md.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { explore } from '../checker/explore.js';
import { boundsWithDefaults, type Ev, type Instance, type Invariant } from '../checker/model.js';
import { petersonModel } from '../properties/beem/models.js';
import { kobjectModel } from '../properties/kobject/model.js';
import { KobjReducer, type KobjBenchBounds } from './reducers/kobject.js';
import { PetersonReducer } from './reducers/peterson.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // Bytes per state needs a forced GC: run again with --expose-gc, passing the arguments through.
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const forceGc: () => void = gc ?? (() => undefined);

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'min-cpu': { type: 'string', default: '2' },
    only: { type: 'string' },
    kobject: { type: 'string', default: 'readers=3,getters=2,foreign=2,openers=1' },
    'cpu-profile': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});
const runs = Number(opt.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number, not '${opt.runs}'`);
const minCpu = Number(opt['min-cpu']);
if (!(minCpu >= 0)) throw new Error(`--min-cpu must be a number of CPU seconds, not '${opt['min-cpu']}'`);

interface Count {
  readonly states: number;
  readonly edges: number;
  readonly levels: number;
}

interface Timed extends Count {
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
}

/**
 * One sample: repeat `run` until it has used `minCpu` CPU seconds (small models finish in
 * milliseconds, below the noise of a shared machine), and report the time per run.
 */
function timed(run: () => Count, minCpu: number): Timed {
  forceGc();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let r: Count;
  let reps = 0;
  let cpu = 0;
  do {
    r = run();
    reps++;
    const c = process.cpuUsage(c0);
    cpu = (c.user + c.system) / 1e6;
  } while (cpu < minCpu);
  const wallSeconds = (performance.now() - t0) / 1000 / reps;
  return { ...r, cpuSeconds: cpu / reps, wallSeconds };
}

/** Live memory: the JS heap plus ArrayBuffer stores (the explorer keeps its states in typed arrays). */
function heapNow(): number {
  forceGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// ---- the engine ----

function runExplorer(inst: Instance<unknown, Ev>): Count {
  // The progress check (AG EF quiescent) is a separate pass over a kept edge list; it is left out.
  // The explorer still records every state's parent, depth and event (for counterexamples), event
  // coverage, and checks deadlock; `withoutInvariants` gives the job the plain BFS does.
  const r = explore(inst, { checkProgress: false });
  if (!r.complete || r.violations.length) throw new Error(`explorer run was not clean: complete=${r.complete}, ${r.violations.length} violation(s)`);
  return { states: r.states, edges: r.transitions, levels: r.depth + 1 };
}

/** Explorer heap per stored state, read when the last new state is checked (everything is stored then). */
function explorerBytesPerState(inst: Instance<unknown, Ev>, states: number): number {
  let seen = 0;
  let at = -1;
  const probe: Invariant<unknown> = {
    spec: [],
    name: 'bench-heap-probe',
    check: () => {
      if (++seen === states) at = heapNow();
      return null;
    },
  };
  const base = heapNow();
  const r = explore({ ...inst, invariants: [...inst.invariants, probe] }, { checkProgress: false });
  if (at < 0 || r.states !== states) throw new Error(`heap probe saw ${seen} of ${states} states`);
  return (at - base) / states;
}

/** The same instance with no invariants: the job the hand-written plain BFS does. */
const withoutInvariants = (inst: Instance<unknown, Ev>): Instance<unknown, Ev> => ({ ...inst, invariants: [] });

// ---- the hand-written side ----

interface Reducer<S, E> {
  readonly events: readonly E[];
  initial(): S;
  step(s: S, e: E): S | null;
  key(s: S): string;
}

/** Plain BFS: a queue of states, a Set of keys, level by level. `atEnd` runs while all are stored. */
function handBfs<S, E>(r: Reducer<S, E>, atEnd?: () => void): Count {
  const seen = new Set<string>();
  const queue: S[] = [];
  const s0 = r.initial();
  seen.add(r.key(s0));
  queue.push(s0);
  let edges = 0;
  let levels = 0;
  let head = 0;
  while (head < queue.length) {
    const levelEnd = queue.length;
    levels++;
    for (; head < levelEnd; head++) {
      const s = queue[head]!;
      for (const e of r.events) {
        const n = r.step(s, e);
        if (n === null) continue;
        edges++;
        const k = r.key(n);
        if (!seen.has(k)) {
          seen.add(k);
          queue.push(n);
        }
      }
    }
  }
  atEnd?.();
  return { states: queue.length, edges, levels };
}

function handBytesPerState<S, E>(r: Reducer<S, E>, states: number): number {
  let at = -1;
  const base = heapNow();
  const c = handBfs(r, () => (at = heapNow()));
  if (c.states !== states) throw new Error(`hand BFS stored ${c.states} states, expected ${states}`);
  return (at - base) / states;
}

// ---- profiling (why the explorer is slower, when it is) ----

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function profileTop(label: string, run: () => unknown, top = 15): Promise<string[]> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  run();
  const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
  session.disconnect();
  const file = `${os.tmpdir()}/explorer-${label}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  // Count samples rather than summing time deltas: on a loaded machine a descheduled sample carries
  // a long delta that says nothing about this code. Inspector frames (the profiler's own) are left out.
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (const id of profile.samples) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === 'dispatch' || f.url.startsWith('node:inspector') || f.functionName === '(idle)' || f.functionName === '(program)') continue;
    total++;
    // tsx emits each module on one line: the column tells anonymous closures apart.
    const where = f.url ? `${f.url.replace(/^.*\/work\/main\//, '').replace(/^file:\/\//, '')}@${f.lineNumber + 1}:${f.columnNumber}` : '(native)';
    const k = `${f.functionName || '(anonymous)'} ${where}`;
    self.set(k, (self.get(k) ?? 0) + 1);
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `CPU profile of the explorer on ${label}: self samples, ${total} in all (full profile: ${file}):`,
    ...rows.map(([k, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`),
  ];
}

/**
 * Where the explorer's time goes, measured without a profiler: a plain Set BFS over the model's own
 * System (compiled machine step + machine key, none of the explorer's bookkeeping), timing the step
 * and key calls separately. Explorer time minus this BFS is the explorer's own overhead.
 */
function systemBfsBreakdown(inst: Instance<unknown, Ev>): { total: number; step: number; key: number; count: Count } {
  const sys = inst.system;
  let tStep = 0n;
  let tKey = 0n;
  const t0 = process.cpuUsage();
  const seen = new Set<string>();
  const queue: unknown[] = [];
  for (const s of sys.initial()) {
    const k = sys.key(s);
    if (!seen.has(k)) {
      seen.add(k);
      queue.push(s);
    }
  }
  let edges = 0;
  for (let head = 0; head < queue.length; head++) {
    const s = queue[head];
    for (const e of sys.events(s)) {
      const a = process.hrtime.bigint();
      const n = sys.step(s, e);
      const b = process.hrtime.bigint();
      tStep += b - a;
      if (n === null) continue;
      edges++;
      const k = sys.key(n);
      tKey += process.hrtime.bigint() - b;
      if (!seen.has(k)) {
        seen.add(k);
        queue.push(n);
      }
    }
  }
  const c = process.cpuUsage(t0);
  return { total: (c.user + c.system) / 1e6, step: Number(tStep) / 1e9, key: Number(tKey) / 1e9, count: { states: queue.length, edges, levels: 0 } };
}

// ---- subjects ----

interface Subject {
  readonly name: string;
  readonly bounds: string;
  readonly instance: () => Instance<unknown, Ev>;
  readonly reducer: () => Reducer<unknown, unknown>;
}

function parseKobjBounds(text: string): KobjBenchBounds {
  const given: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (k === undefined || v === undefined || !/^\d+$/.test(v)) throw new Error(`--kobject wants k=v pairs like readers=3,getters=2; got '${part}'`);
    given[k.trim()] = Number(v);
  }
  const b = boundsWithDefaults(kobjectModel, given);
  return { readers: b['readers']!, getters: b['getters']!, foreign: b['foreign']!, openers: b['openers']! };
}

const kb = parseKobjBounds(opt.kobject);
const subjects: Subject[] = [
  {
    name: 'kobject (fixed)',
    bounds: `readers=${kb.readers} getters=${kb.getters} foreign=${kb.foreign} openers=${kb.openers}`,
    instance: () => kobjectModel.instance({ ...kb }, { profile: 'fixed', mutant: null }) as unknown as Instance<unknown, Ev>,
    reducer: () => new KobjReducer(kb) as unknown as Reducer<unknown, unknown>,
  },
  {
    name: 'BEEM peterson.1',
    bounds: 'N=3',
    instance: () => petersonModel.instance(boundsWithDefaults(petersonModel), { profile: 'beem', mutant: null }) as unknown as Instance<unknown, Ev>,
    reducer: () => new PetersonReducer(3) as unknown as Reducer<unknown, unknown>,
  },
].filter((s) => opt.only === undefined || s.name.toLowerCase().includes(opt.only.toLowerCase()));
if (subjects.length === 0) throw new Error(`--only ${opt.only} matches no subject (kobject, peterson)`);

const eventsPerState = (inst: Instance<unknown, Ev>): number => inst.system.events(inst.system.initial()[0]).length;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const fmtInt = (x: number): string => Math.round(x).toLocaleString('en-US');

interface Row {
  subject: Subject;
  engine: string;
  count: Count;
  cpuRate: number;
  wallRate: number;
  bytes: number;
}

const rows: Row[] = [];
const notes: string[] = [];
const ratios: string[] = [];
for (const subj of subjects) {
  const inst = subj.instance();
  const red = subj.reducer();
  const bare = withoutInvariants(inst);
  const e: Timed[] = [];
  const f: Timed[] = [];
  const h: Timed[] = [];
  for (let i = 0; i < runs; i++) {
    e.push(timed(() => runExplorer(bare), minCpu));
    f.push(timed(() => runExplorer(inst), minCpu));
    h.push(timed(() => handBfs(red), minCpu));
    process.stderr.write(
      `${subj.name} run ${i + 1}/${runs}: explorer ${e[i]!.cpuSeconds.toFixed(2)} CPU s (with invariants ${f[i]!.cpuSeconds.toFixed(2)}), hand ${h[i]!.cpuSeconds.toFixed(2)} CPU s\n`,
    );
  }
  const ec = e[0]!;
  const hc = h[0]!;
  // The two sides must walk the same graph, or the comparison means nothing.
  if (ec.states !== hc.states || ec.edges !== hc.edges || ec.levels !== hc.levels) {
    throw new Error(`${subj.name}: explorer found ${ec.states} states/${ec.edges} edges/${ec.levels} levels, the hand-written reducer ${hc.states}/${hc.edges}/${hc.levels}`);
  }
  const eCpu = median(e.map((r) => r.cpuSeconds));
  const hCpu = median(h.map((r) => r.cpuSeconds));
  const fCpu = median(f.map((r) => r.cpuSeconds));
  const eWall = median(e.map((r) => r.wallSeconds));
  const fWall = median(f.map((r) => r.wallSeconds));
  const hWall = median(h.map((r) => r.wallSeconds));
  const eBytes = explorerBytesPerState(inst, ec.states);
  const hBytes = handBytesPerState(red, hc.states);
  rows.push({ subject: subj, engine: 'dmcheck explorer (the plain BFS job)', count: ec, cpuRate: ec.states / eCpu, wallRate: ec.states / eWall, bytes: eBytes });
  rows.push({ subject: subj, engine: 'dmcheck explorer + the model\'s invariants', count: ec, cpuRate: ec.states / fCpu, wallRate: ec.states / fWall, bytes: eBytes });
  rows.push({ subject: subj, engine: 'hand-written reducer + Set BFS', count: hc, cpuRate: hc.states / hCpu, wallRate: hc.states / hWall, bytes: hBytes });
  const ratio = hCpu / eCpu;
  // On a shared machine the fastest sample is the least disturbed one: give that ratio too.
  const best = Math.min(...h.map((r) => r.cpuSeconds)) / Math.min(...e.map((r) => r.cpuSeconds));
  const spread = (xs: Timed[]): string => xs.map((r) => r.cpuSeconds.toFixed(3)).join(', ');
  ratios.push(
    `- ${subj.name}: on the same job (no invariants on either side) the explorer reaches **${(100 * ratio).toFixed(1)}%** of the hand-written BFS's states/s (median CPU time; best-vs-best ${(100 * best).toFixed(1)}%; median wall ${((100 * hWall) / eWall).toFixed(1)}%); target ≥ 50% — ${ratio >= 0.5 ? 'met' : 'NOT met'}. With the model's ${inst.invariants.length} invariants checked on every state: ${((100 * hCpu) / fCpu).toFixed(1)}%. CPU s per exploration: explorer ${spread(e)}; with invariants ${spread(f)}; hand-written ${spread(h)}.`,
  );
  if (opt['cpu-profile'] || ratio < 0.5) {
    const bd = systemBfsBreakdown(inst);
    notes.push(
      `Breakdown on ${subj.name} (one run, CPU s; step/key timed per call with hrtime, wall inside the process):`,
      `  explorer (median)                      ${eCpu.toFixed(2)}`,
      `  plain Set BFS over the model's System  ${bd.total.toFixed(2)}   (explorer bookkeeping ≈ ${(eCpu - bd.total).toFixed(2)})`,
      `    of which machine step (all events)   ${bd.step.toFixed(2)}   (${fmtInt(bd.count.edges)} enabled of ${fmtInt(bd.count.states * eventsPerState(inst))} tried)`,
      `    of which state key (System.key)      ${bd.key.toFixed(2)}`,
      `  hand-written BFS (median)              ${hCpu.toFixed(2)}`,
      '',
    );
    notes.push(...(await profileTop(subj.name.replace(/[^a-z0-9.]+/gi, '-'), () => runExplorer(inst))), '');
  }
}

/** Which engine was measured: HEAD and whether checker/ had uncommitted edits. */
function engineVersion(): string {
  const git = (args: string[]): string => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain', '--', 'checker/']);
  return `commit ${head}${dirty ? ' with uncommitted changes in checker/ (' + dirty.split('\n').length + ' file(s))' : ''}`;
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
const header = '| model | bounds | states | edges | BFS levels | engine | states/s (CPU) | states/s (wall) | bytes/state (heap + typed arrays) |';
const table = [
  header,
  '|---|---|---:|---:|---:|---|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.subject.name} | ${r.subject.bounds} | ${fmtInt(r.count.states)} | ${fmtInt(r.count.edges)} | ${r.count.levels} | ${r.engine} | ${fmtInt(r.cpuRate)} | ${fmtInt(r.wallRate)} | ${fmtInt(r.bytes)} |`,
  ),
];
const out = [
  '# Explorer benchmark',
  '',
  `Generated by \`npx tsx bench/explorer.bench.ts\` on ${new Date().toISOString()}: Node ${process.version}, ${os.cpus().length} CPU(s) (${os.cpus()[0]?.model ?? 'unknown'}), load average ${load}; engine at ${engineVersion()}. Median of ${runs} interleaved samples, each repeating the exploration for at least ${minCpu} CPU s.`,
  '',
  ...table,
  '',
  ...ratios,
  '',
  ...(notes.length ? ['```', ...notes, '```', ''] : []),
].join('\n');
console.log(out);
if (!opt['no-write']) {
  const file = fileURLToPath(new URL('./results.md', import.meta.url));
  writeFileSync(file, out);
  console.error(`written: ${file}`);
}

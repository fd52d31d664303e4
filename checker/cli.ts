// The dmcheck command line. Exit codes: 0 all properties hold (or the run did what was asked),
// 1 a property failed, 2 bad usage or bad input.

import { parseArgs } from 'node:util';
import { relative } from 'node:path';
import { explore, type ExploreResult } from './explore.js';
import { counterexamplePath, fixedProfile, hunt, listCounterexamples, targetsOf, type HuntResult } from './hunt.js';
import { lockstep, LockstepUnavailable } from './lockstep.js';
import { boundsWithDefaults, UsageError, type AnyModel, type Bounds, type Variant } from './model.js';
import { fmt, replayTrace } from './replay.js';
import { loadTrace, makeTrace, writeTrace } from './trace.js';
import { coverAtOwnBounds, scenarioCoverage } from './scenarios.js';
import { TOOL_VERSION } from './version.js';

export const HELP = `dmcheck ${TOOL_VERSION}: model checker and property tests for the Linux 3.14 device-mapper changes

usage: dmcheck <command> [options]

commands:
  list                       the models, their bounds, profiles, mutants and shipped defects
  check [MODEL...]           with no --profile/--mutant: the whole job for each model (explore every
                             profile at default bounds, lockstep under 'fixed', find every shipped
                             defect and seeded mutant, replay counterexamples/) and a summary table.
                             With --profile or --mutant: explore (and lockstep) that one variant.
  replay FILE                re-run a trace step by step through machine and implementation
  kill [MODEL...]            find every seeded mutant and shipped defect; --write saves the minimal
                             traces under counterexamples/<model>/
  diagram                    regenerate diagrams/ (statecharts, state graphs, counterexamples)
  conform [SCENARIO...]      compare the model with golden records of the real kernel (--vm: run the VM)

options:
  --profile P                kernel profile (linux-3.14 | fixed | a model's own)
  --mutant ID                switch on a seeded mutant ('none' for the correct code, with replay)
  --bound k=v                set a bound (repeatable); see 'dmcheck list'
  --max-states N             stop exploring after N states (result marked incomplete)
  --max-seconds S            stop exploring after S seconds (result marked incomplete)
  --seed N                   fast-check seed (default 42; 'random' for a fresh one, printed)
  --runs N                   fast-check runs per lockstep property (default 100)
  --no-lockstep              explorer only
  --no-impl                  replay through the machine only
  --json                     machine-readable output on stdout
  --write                    (kill) write the traces; (diagram) is the default
  --check                    (diagram) write nothing, fail if diagrams/ is stale
  --save DIR                 (check) where to save counterexample traces (default out/)
  --vm                       (conform) boot the real kernel instead of reading golden records
  -h, --help                 this text
  --version                  the version

exit codes: 0 all hold, 1 a property failed, 2 bad usage or input
`;

interface Opts {
  profile?: string | undefined;
  mutant?: string | undefined;
  bound?: string[] | undefined;
  'max-states'?: string | undefined;
  'max-seconds'?: string | undefined;
  seed?: string | undefined;
  runs?: string | undefined;
  'no-lockstep'?: boolean | undefined;
  'no-impl'?: boolean | undefined;
  json?: boolean | undefined;
  write?: boolean | undefined;
  check?: boolean | undefined;
  save?: string | undefined;
  vm?: boolean | undefined;
  help?: boolean | undefined;
  version?: boolean | undefined;
}

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly tty: boolean;
}

const stdio: Io = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  tty: Boolean(process.stderr.isTTY),
};

function int(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} takes a whole number, not '${v}'`);
  return n;
}

function parseBounds(model: AnyModel, list: readonly string[] | undefined): Bounds {
  const given: Record<string, number> = {};
  for (const kv of list ?? []) {
    const m = /^([A-Za-z][\w-]*)=(-?\d+)$/.exec(kv);
    if (!m) throw new UsageError(`--bound takes k=v with a whole number, not '${kv}'`);
    given[m[1]!] = Number(m[2]);
  }
  return boundsWithDefaults(model, given);
}

function pickModels(all: readonly AnyModel[], names: readonly string[]): AnyModel[] {
  if (names.length === 0) return [...all];
  return names.map((n) => {
    const m = all.find((x) => x.id === n);
    if (!m) throw new UsageError(`unknown model '${n}'; known models: ${all.map((x) => x.id).join(', ')}`);
    return m;
  });
}

function seedOf(o: Opts, io: Io): number {
  if (o.seed === 'random') {
    const s = (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
    io.err(`seed: ${s} (rerun with --seed ${s})`);
    return s;
  }
  return int('seed', o.seed, 42);
}

function table(rows: readonly (readonly string[])[]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => '| ' + r.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
  return [line(rows[0]!), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}

function progress(io: Io, label: string): ((p: { states: number; transitions: number; seconds: number }) => void) | undefined {
  if (!io.tty) return undefined;
  return (p) => process.stderr.write(`\r${label}: ${p.states} states, ${p.transitions} transitions, ${p.seconds.toFixed(1)} s   `);
}

export async function main(argv: readonly string[], models: readonly AnyModel[], io: Io = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        profile: { type: 'string' },
        mutant: { type: 'string' },
        bound: { type: 'string', multiple: true },
        'max-states': { type: 'string' },
        'max-seconds': { type: 'string' },
        seed: { type: 'string' },
        runs: { type: 'string' },
        'no-lockstep': { type: 'boolean' },
        'no-impl': { type: 'boolean' },
        json: { type: 'boolean' },
        write: { type: 'boolean' },
        check: { type: 'boolean' },
        save: { type: 'string' },
        vm: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    io.err(`dmcheck: ${(err as Error).message}\nrun 'dmcheck --help' for usage`);
    return 2;
  }
  const o = parsed.values as Opts;
  const [cmd, ...rest] = parsed.positionals;
  if (o.version) {
    io.out(TOOL_VERSION);
    return 0;
  }
  if (o.help || cmd === undefined || cmd === 'help') {
    io.out(HELP);
    return cmd === undefined && !o.help ? 2 : 0;
  }
  try {
    switch (cmd) {
      case 'list':
        return list(pickModels(models, rest), io, o);
      case 'check':
        return await check(pickModels(models, rest), io, o);
      case 'replay':
        if (rest.length !== 1) throw new UsageError('replay takes exactly one trace file');
        return await replay(models, rest[0]!, io, o);
      case 'kill':
        return await kill(pickModels(models, rest), io, o);
      case 'diagram':
        return await diagram(models, io, o);
      case 'conform':
        return await conform(rest, io, o);
      default:
        throw new UsageError(`unknown command '${cmd}'; commands: list, check, replay, kill, diagram, conform`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`dmcheck: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

function list(models: readonly AnyModel[], io: Io, o: Opts): number {
  if (o.json) {
    io.out(
      JSON.stringify(
        models.map((m) => ({ id: m.id, title: m.title, spec: m.spec, profiles: m.profiles, bounds: m.bounds, mutants: m.mutants, shipped: m.shipped })),
        null,
        2,
      ),
    );
    return 0;
  }
  for (const m of models) {
    io.out(`${m.id}: ${m.title}`);
    io.out(`  spec      ${m.spec}`);
    io.out(`  profiles  ${m.profiles.join(', ')} (default ${m.defaultProfile})`);
    io.out(`  bounds    ${Object.entries(m.bounds).map(([k, b]) => `${k}=${b.default} (${b.min}..${b.max}, ${b.describe})`).join('; ') || '(none)'}`);
    const implKind = m.impl?.awaitApply ? 'async, every event issued through apply (lockstep)' : m.impl?.async ? 'async (lockstep with fast-check scheduler)' : 'sync (lockstep)';
    io.out(`  impl      ${m.impl ? implKind : 'none (explorer only)'}`);
    for (const d of m.shipped) io.out(`  shipped   ${d.id} under ${d.profile}: ${d.title} [${d.breaks.join(', ')}] fixed by ${d.fix}`);
    for (const x of m.mutants) io.out(`  mutant    ${x.id}: ${x.title} [${x.breaks.join(', ')}] (${x.fix})`);
    io.out('');
  }
  return 0;
}

function describeExplore(r: ExploreResult): string {
  const rate = r.seconds > 0 ? Math.round(r.states / r.seconds) : r.states;
  return `${r.states} states, ${r.transitions} transitions, depth ${r.depth}, ${r.seconds.toFixed(2)} s (${rate} states/s)${r.complete ? '' : ` INCOMPLETE (${r.stopped ?? 'crash subsets truncated'})`}`;
}

/** The explorer's result as the JSON summary reports it. */
function exploreSummary(r: ExploreResult): Record<string, unknown> {
  return { states: r.states, transitions: r.transitions, depth: r.depth, seconds: r.seconds, complete: r.complete, violations: r.violations.map((v) => ({ property: v.property, spec: v.spec, steps: v.path.length })) };
}

/** One variant: explore and lockstep, print violations with their counterexamples. */
async function checkVariant(model: AnyModel, variant: Variant, bounds: Bounds, io: Io, o: Opts): Promise<{ ok: boolean; summary: Record<string, unknown> }> {
  const inst = model.instance(bounds, variant);
  const r = explore(inst, {
    ...(o['max-states'] ? { maxStates: int('max-states', o['max-states'], 0) } : {}),
    ...(o['max-seconds'] ? { maxSeconds: int('max-seconds', o['max-seconds'], 0) } : {}),
    allViolations: true,
    ...(progress(io, model.id) ? { onProgress: progress(io, model.id)! } : {}),
  });
  if (io.tty) process.stderr.write('\r\x1b[K');
  let ok = r.violations.length === 0;
  const name = `${model.id} [${variant.profile}${variant.mutant ? ', mutant ' + variant.mutant : ''}]`;
  if (!o.json) {
    io.out(`${name} explore: ${describeExplore(r)}`);
    const never = model.machines.flatMap((mc) => mc.statechart().regions.flatMap((rg) => rg.transitions.map((t) => t.label.split(' ')[0]!)));
    const dead = [...new Set(never)].filter((t) => !(t in r.eventCoverage));
    io.out(`  coverage: ${Object.keys(r.eventCoverage).length} event types fired, ${Object.keys(r.valueCoverage).length} abstract states${dead.length ? `; never enabled: ${dead.join(', ')}` : ''}`);
  }
  const saveDir = o.save ?? 'out';
  for (const v of r.violations) {
    const file = `${saveDir}/${model.id}-${variant.profile}${variant.mutant ? '-' + variant.mutant : ''}-${v.property}.explore.json`;
    writeTrace(
      file,
      makeTrace({ model: model.id, bounds, profile: variant.profile, mutant: variant.mutant, engine: 'explore', initialIndex: v.initialIndex, steps: v.path, violation: v }),
    );
    if (!o.json) {
      io.out(`  VIOLATION ${v.property} [${v.spec.join(', ')}]: ${v.message}`);
      io.out(`  shortest counterexample (${v.path.length} steps): ${v.path.map(fmt).join(' → ')}`);
      io.out(`  saved: ${file}   (dmcheck replay ${file})`);
    }
  }
  let lock: Record<string, unknown> | null = null;
  if (model.impl && !o['no-lockstep']) {
    const runs = int('runs', o.runs, 100);
    const seed = seedOf(o, io);
    let l: Awaited<ReturnType<typeof lockstep>>;
    try {
      l = await lockstep(model, bounds, variant, { seed, numRuns: runs });
    } catch (err) {
      if (!(err instanceof LockstepUnavailable)) throw err;
      // Not a failure: the explorer's verdict stands; say why the second engine did not run.
      if (!o.json) io.out(`${name} lockstep: not run: ${err.message}`);
      return { ok, summary: { model: model.id, variant, bounds, explore: exploreSummary(r), lockstep: { notRun: err.message } } };
    }
    lock = { ok: l.ok, runs: l.runs, seed: l.seed };
    if (!o.json) io.out(`${name} lockstep: ${l.ok ? `${l.runs} runs agree` : 'FAILED'} (seed ${l.seed})`);
    if (l.failure) {
      ok = false;
      const file = `${saveDir}/${model.id}-${variant.profile}${variant.mutant ? '-' + variant.mutant : ''}-${l.failure.violation.property}.lockstep.json`;
      writeTrace(
        file,
        makeTrace({
          model: model.id,
          bounds,
          profile: variant.profile,
          mutant: variant.mutant,
          engine: 'lockstep',
          initialIndex: l.failure.initialIndex,
          steps: l.failure.steps,
          violation: l.failure.violation,
          fastcheck: { seed: l.failure.seed, path: l.failure.path },
        }),
      );
      if (!o.json) {
        io.out(`  VIOLATION ${l.failure.violation.property} [${l.failure.violation.spec.join(', ')}]: ${l.failure.violation.message}`);
        io.out(`  shrunk counterexample (${l.failure.steps.length} steps): ${l.failure.steps.map(fmt).join(' → ')}`);
        io.out(`  saved: ${file}`);
      }
    }
  }
  return {
    ok,
    summary: {
      model: model.id,
      variant,
      bounds,
      explore: exploreSummary(r),
      lockstep: lock,
    },
  };
}

async function check(models: readonly AnyModel[], io: Io, o: Opts): Promise<number> {
  if (o.profile !== undefined || o.mutant !== undefined) {
    let ok = true;
    const summaries: Record<string, unknown>[] = [];
    for (const m of models) {
      const profile = o.profile ?? m.defaultProfile;
      if (!m.profiles.includes(profile)) throw new UsageError(`model ${m.id} has no profile '${profile}'; it has: ${m.profiles.join(', ')}`);
      const mutant = o.mutant === undefined || o.mutant === 'none' ? null : o.mutant;
      if (mutant && !m.mutants.some((x) => x.id === mutant)) {
        throw new UsageError(`model ${m.id} has no mutant '${mutant}'; see 'dmcheck list ${m.id}'`);
      }
      const r = await checkVariant(m, { profile, mutant }, parseBounds(m, o.bound), io, o);
      ok &&= r.ok;
      summaries.push(r.summary);
    }
    if (o.json) io.out(JSON.stringify(summaries, null, 2));
    return ok ? 0 : 1;
  }
  return fullJob(models, io, o);
}

/** `npm run check`: everything the project promises, per model, as one table. */
async function fullJob(models: readonly AnyModel[], io: Io, o: Opts): Promise<number> {
  const seed = seedOf(o, io);
  const runs = int('runs', o.runs, 100);
  const rows: string[][] = [['model', 'explored (fixed, default bounds)', 'fixed holds', 'lockstep', 'shipped found', 'mutants killed', 'traces replay', 'scenarios']];
  const json: Record<string, unknown>[] = [];
  let allOk = true;
  const traces = listCounterexamples('counterexamples');
  for (const m of models) {
    const bounds = parseBounds(m, o.bound);
    const fixed = fixedProfile(m);
    const t0 = performance.now();
    const r = explore(m.instance(bounds, { profile: fixed, mutant: null }), {
      allViolations: true,
      ...(o['max-states'] ? { maxStates: int('max-states', o['max-states'], 0) } : {}),
      ...(o['max-seconds'] ? { maxSeconds: int('max-seconds', o['max-seconds'], 0) } : {}),
      ...(progress(io, m.id) ? { onProgress: progress(io, m.id)! } : {}),
    });
    if (io.tty) process.stderr.write('\r\x1b[K');
    const holds = r.violations.length === 0 && r.complete;
    for (const v of r.violations) io.err(`${m.id} [${fixed}]: VIOLATION ${v.property} [${v.spec.join(', ')}]: ${v.message}\n  path: ${v.path.map(fmt).join(' → ')}`);
    let lockCell = 'n/a (no impl)';
    let lockOk = true;
    if (m.impl && !o['no-lockstep']) {
      const l = await lockstep(m, bounds, { profile: fixed, mutant: null }, { seed, numRuns: runs });
      lockOk = l.ok;
      lockCell = l.ok ? `${l.runs} runs agree` : `FAILED: ${l.failure?.violation.property}`;
      if (l.failure) io.err(`${m.id} lockstep: ${l.failure.violation.message}\n  steps: ${l.failure.steps.map(fmt).join(' → ')}`);
    }
    const results: HuntResult[] = [];
    for (const t of targetsOf(m)) {
      for (const e of t.engines) {
        if (e === 'lockstep' && o['no-lockstep']) continue;
        const h = await hunt(m, t, e, { seed, numRuns: Math.max(runs, 300), maxSeconds: 120, minimize: false });
        results.push(h);
        if (h.problem) io.err(`${m.id}: ${t.kind} ${t.id} via ${e}: ${h.problem}`);
      }
    }
    const shipped = results.filter((h) => h.target.kind === 'shipped');
    const mutants = results.filter((h) => h.target.kind === 'mutant');
    const mine = traces.filter((f) => f.includes(`/${m.id}/`));
    let replayed = 0;
    for (const f of mine) {
      const t = loadTrace(f, models.map((x) => x.id));
      const again = await replayTrace(m, t);
      const clean = t.violation ? await replayTrace(m, t, { mutant: null, profile: fixed }) : null;
      const fine = again.reproduced && (clean === null || clean.found?.property !== t.violation!.property);
      if (fine) replayed++;
      else io.err(`${relative('.', f)}: ${again.reproduced ? 'also fails under the correct code' : 'does not reproduce'}`);
    }
    const atDefaults = scenarioCoverage(m, fixed, bounds);
    const scen = coverAtOwnBounds(m, fixed, atDefaults, { maxStates: 250_000, maxSeconds: 60 });
    for (const sc of scen) {
      const what = sc.covered ? `covered by ${sc.why ?? 'the explored state space'}` : sc.feasible ? `replays in the model (${sc.why})` : `DOES NOT REPLAY: ${sc.why}`;
      io.err(`${m.id} scenario ${sc.name} (${sc.source}): ${what}`);
    }
    const count = (hs: HuntResult[]): string => `${hs.filter((h) => !h.problem).length}/${hs.length}`;
    const ok = holds && lockOk && results.every((h) => !h.problem) && replayed === mine.length && scen.every((x) => x.feasible);
    allOk &&= ok;
    rows.push([
      m.id,
      `${r.states} states, ${r.transitions} edges, ${r.seconds.toFixed(1)} s (model total ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      holds ? 'yes' : r.complete ? 'NO' : 'INCOMPLETE',
      lockCell,
      count(shipped),
      count(mutants),
      `${replayed}/${mine.length}`,
      scen.length
        ? `${scen.filter((x) => x.feasible).length}/${scen.length} replay; explored: ${atDefaults.filter((x) => x.covered).length} at the defaults, ${scen.filter((x) => x.covered).length - atDefaults.filter((x) => x.covered).length} at their own bounds`
        : '-',
    ]);
    json.push({ model: m.id, states: r.states, transitions: r.transitions, holds, lockstep: lockCell, shipped: count(shipped), mutants: count(mutants), traces: `${replayed}/${mine.length}`, scenarios: scen, ok });
  }
  if (o.json) io.out(JSON.stringify(json, null, 2));
  else {
    io.out(table(rows));
    io.out(allOk ? '\nall properties hold; every shipped defect and seeded mutant was found; every counterexample replays' : '\nSOME CHECKS FAILED (details above)');
  }
  return allOk ? 0 : 1;
}

async function replay(models: readonly AnyModel[], file: string, io: Io, o: Opts): Promise<number> {
  const t = loadTrace(file, models.map((m) => m.id));
  const model = models.find((m) => m.id === t.model)!;
  if (!model.profiles.includes(t.profile)) throw new UsageError(`${file}: model ${model.id} has no profile '${t.profile}'`);
  if (t.mutant && !model.mutants.some((x) => x.id === t.mutant)) throw new UsageError(`${file}: model ${model.id} has no mutant '${t.mutant}'`);
  const mutant = o.mutant === undefined ? undefined : o.mutant === 'none' ? null : o.mutant;
  const res = await replayTrace(model, t, {
    impl: !o['no-impl'],
    ...(mutant !== undefined ? { mutant } : {}),
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    log: o.json ? () => {} : io.out,
  });
  if (o.json) io.out(JSON.stringify({ file, reproduced: res.reproduced, found: res.found, recorded: t.violation }, null, 2));
  else if (t.violation) {
    io.out(res.reproduced ? `REPRODUCED: ${t.violation.property} [${t.violation.spec.join(', ')}]` : `NOT REPRODUCED: the trace records ${t.violation.property}`);
  }
  return res.found ? 1 : 0;
}

async function kill(models: readonly AnyModel[], io: Io, o: Opts): Promise<number> {
  const seed = seedOf(o, io);
  const runs = int('runs', o.runs, 300);
  let ok = true;
  for (const m of models) {
    for (const t of targetsOf(m)) {
      for (const e of t.engines) {
        const h = await hunt(m, t, e, { seed, numRuns: runs, log: (line) => io.err(line) });
        const tag = `${m.id} ${t.kind} ${t.id} via ${e}`;
        if (h.problem || !h.trace) {
          ok = false;
          io.out(`MISSED ${tag}: ${h.problem}`);
          continue;
        }
        io.out(`killed ${tag}: ${h.trace.violation!.property} [${h.trace.violation!.spec.join(', ')}] in ${h.trace.steps.length} steps (${h.seconds.toFixed(1)} s)`);
        if (o.write) {
          const file = counterexamplePath('counterexamples', m.id, t.id, e);
          writeTrace(file, h.trace);
          io.out(`  wrote ${file}`);
        }
      }
    }
  }
  return ok ? 0 : 1;
}

async function diagram(models: readonly AnyModel[], io: Io, o: Opts): Promise<number> {
  const mod = (await import('./diagram.js')) as {
    generateDiagrams: (ms: readonly AnyModel[], out: string, opts: { check: boolean; log: (s: string) => void }) => Promise<readonly string[]>;
  };
  const stale = await mod.generateDiagrams(models, 'diagrams', { check: Boolean(o.check), log: io.out });
  if (o.check && stale.length) {
    io.out(`stale diagrams (run 'npx dmcheck diagram'):\n  ${stale.join('\n  ')}`);
    return 1;
  }
  return 0;
}

async function conform(scenarios: readonly string[], io: Io, o: Opts): Promise<number> {
  let mod: { runConformance: (opts: { scenarios?: string[]; vm: boolean; log: (line: string) => void }) => Promise<{ ok: boolean; table: string }> };
  try {
    mod = (await import('../kernel/conform.js')) as typeof mod;
  } catch (err) {
    io.err(`dmcheck conform: the kernel harness is not available: ${(err as Error).message}`);
    return 2;
  }
  const r = await mod.runConformance({ ...(scenarios.length ? { scenarios: [...scenarios] } : {}), vm: Boolean(o.vm), log: io.err });
  io.out(r.table);
  return r.ok ? 0 : 1;
}

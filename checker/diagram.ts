// Diagrams for every registered model: the statechart of each machine, the explored state graph
// grouped by abstract value, and each committed counterexample (its path through the grouped graph,
// and a sequence diagram of its events). Engine code: it follows no kernel file, it draws what the
// models under properties/ define.
//
// The DOT and Mermaid builders are pure (data in, text out, same input -> same bytes). The one
// writer, generateDiagrams, renders SVG with the WebAssembly Graphviz of @viz-js/viz so CI needs no
// system Graphviz, and with check=true compares instead of writing (diagrams/ is committed).

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Viz } from '@viz-js/viz';
import { explore, type ExploredGraph } from './explore.js';
import { boundsWithDefaults, type AnyModel, type Ev, type Instance, type StatechartShape } from './model.js';
import { isOperatorEvent, withOperators } from './operators.js';
import { loadTrace, type Trace, type TraceViolation } from './trace.js';

/** Node cap of a state-graph diagram: beyond this a drawing stops being readable. */
export const MAX_GRAPH_NODES = 150;
/** Node cap of a counterexample diagram (the path plus its neighbourhood). */
export const MAX_COUNTEREXAMPLE_NODES = 60;
/** Above this many nodes the layered 'dot' layout gets slow (super-linear); use 'neato' (sfdp lays out differently on its first call in a process, so its SVG is not reproducible). */
export const DOT_LAYOUT_LIMIT = 60;
/** Explorations for diagrams stop here; a bigger model gets no state-graph diagram (and a note). */
export const DIAGRAM_MAX_STATES = 200_000;

// ---------------------------------------------------------------------------------------------
// Text helpers

/**
 * A DOT double-quoted string. Newlines become centred line breaks. Only ASCII goes in: the WebAssembly
 * Graphviz warns on the first non-ASCII character it measures and its next renders may then trap
 * ("null function or function signature mismatch"), so accents are dropped and anything else is '?'.
 */
function q(s: string): string {
  const ascii = s
    .replace(/×/g, 'x')
    .replace(/→/g, '->')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x00-\x7f]/g, '?');
  return `"${ascii.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

/** Greedy word wrap at spaces, so long abstract values stay narrow boxes. */
export function wrapLabel(s: string, width = 28): string {
  const words = s.split(' ');
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur !== '' && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = w;
    } else {
      cur = cur === '' ? w : `${cur} ${w}`;
    }
  }
  lines.push(cur);
  return lines.join('\n');
}

/** Text safe inside a Mermaid label: no statement separators, quotes or entity starts. */
function mmText(s: string): string {
  return s
    .replace(/\r?\n/g, '<br/>')
    .replace(/;/g, ',')
    .replace(/#/g, 'no.')
    .replace(/"/g, "'")
    .replace(/[{}]/g, (c) => (c === '{' ? '(' : ')'))
    .replace(/-->/g, '→')
    .replace(/->>/g, '→');
}

/** Mermaid identifiers: [A-Za-z0-9_], unique within one diagram. */
class MermaidIds {
  private readonly used = new Map<string, string>();
  private readonly taken = new Set<string>();
  id(key: string): string {
    const known = this.used.get(key);
    if (known !== undefined) return known;
    let base = key.replace(/[^A-Za-z0-9_]/g, '_');
    if (!/^[A-Za-z]/.test(base)) base = `s_${base}`;
    // Mermaid reserves a few words as state ids.
    if (['end', 'state', 'note', 'direction', 'class', 'default'].includes(base.toLowerCase())) base = `s_${base}`;
    let id = base;
    for (let n = 2; this.taken.has(id); n++) id = `${base}_${n}`;
    this.taken.add(id);
    this.used.set(key, id);
    return id;
  }
}

/** The layout engine a DOT file of ours asks for (its `layout=` graph attribute). */
export function layoutOf(dot: string): string {
  const m = /\blayout=("?)([a-z0-9]+)\1/.exec(dot);
  return m?.[2] ?? 'dot';
}

function engineFor(nodes: number): 'dot' | 'neato' {
  return nodes > DOT_LAYOUT_LIMIT ? 'neato' : 'dot';
}

// ---------------------------------------------------------------------------------------------
// 1. Statecharts

interface MergedTransition {
  readonly from: string;
  readonly to: string;
  readonly labels: string[];
}

/** One edge per (from, to) in first-appearance order, with every distinct label on it. */
function mergeTransitions(ts: StatechartShape['regions'][number]['transitions']): MergedTransition[] {
  const out = new Map<string, MergedTransition>();
  for (const t of ts) {
    const k = `${t.from}\u0000${t.to}`;
    let m = out.get(k);
    if (!m) {
      m = { from: t.from, to: t.to, labels: [] };
      out.set(k, m);
    }
    const label = cleanLabel(t.label);
    if (!m.labels.includes(label)) m.labels.push(label);
  }
  return [...out.values()];
}

/** A guard named after its own event ('bio [bio]') says nothing more than the event. */
function cleanLabel(label: string): string {
  return label.replace(/^(\S+) \[\1\]$/, '$1');
}

/** A flat machine is one region named after the machine; it is drawn without a cluster. */
function isFlat(shape: StatechartShape): boolean {
  return shape.regions.length === 1 && shape.regions[0]!.name === shape.id;
}

/**
 * The statechart as DOT: a parallel machine draws each region as a cluster; transitions are labelled
 * `EVENT [guard]` (several on one arrow when they share source and target); a small dot points at each
 * region's initial state.
 */
export function statechartDot(shape: StatechartShape): string {
  const flat = isFlat(shape);
  const lines: string[] = [
    `digraph ${q(shape.id)} {`,
    `  graph [layout=dot, rankdir=LR, fontname="Helvetica", fontsize=12, labelloc=t, label=${q(
      `${shape.id}: ${flat ? 'flat machine' : `parallel machine, ${shape.regions.length} regions`}`,
    )}, nodesep=0.25, ranksep=0.4];`,
    '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10, height=0.3];',
    '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.7];',
  ];
  // With rankdir=LR dot stacks clusters bottom-up, so emit them last-first to read top-down.
  for (const region of [...shape.regions].reverse()) {
    const ind = flat ? '  ' : '    ';
    const nid = (state: string): string => q(`${region.name}/${state}`);
    if (!flat) {
      lines.push(`  subgraph ${q(`cluster_${region.name}`)} {`);
      lines.push(`    graph [label=${q(region.name)}, style="rounded,dashed", color="#888888", fontsize=11];`);
    }
    lines.push(`${ind}${q(`${region.name}/__initial`)} [shape=point, width=0.1, label=""];`);
    for (const s of region.states) {
      const attrs = [`label=${q(s)}`];
      if (s === region.initial) attrs.push('penwidth=1.6');
      if (!region.transitions.some((t) => t.from === s && t.to !== s)) attrs.push('peripheries=2');
      lines.push(`${ind}${nid(s)} [${attrs.join(', ')}];`);
    }
    lines.push(`${ind}${q(`${region.name}/__initial`)} -> ${nid(region.initial)};`);
    for (const t of mergeTransitions(region.transitions)) {
      lines.push(`${ind}${nid(t.from)} -> ${nid(t.to)} [label=${q(t.labels.join('\n'))}];`);
    }
    if (!flat) lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/**
 * The statechart as a Mermaid stateDiagram-v2. A parallel machine is one composite state whose
 * regions are nested composites separated by `--` (concurrent regions); state ids carry the region
 * name because Mermaid ids are global, the shown name is the state's own.
 */
export function statechartMermaid(shape: StatechartShape): string {
  const ids = new MermaidIds();
  const flat = isFlat(shape);
  const lines: string[] = ['---', `title: ${mmText(shape.id)}`, '---', 'stateDiagram-v2'];
  const body = (region: StatechartShape['regions'][number], ind: string): void => {
    const sid = (s: string): string => ids.id(`${region.name}_${s}`);
    for (const s of region.states) lines.push(`${ind}state "${mmText(s)}" as ${sid(s)}`);
    lines.push(`${ind}[*] --> ${sid(region.initial)}`);
    for (const t of region.transitions) lines.push(`${ind}${sid(t.from)} --> ${sid(t.to)} : ${mmText(cleanLabel(t.label))}`);
  };
  if (flat) {
    body(shape.regions[0]!, '  ');
  } else {
    // Composite states are named by plain ids (the `state "text" as id {` form is not in every Mermaid).
    lines.push(`  state ${ids.id(shape.id)} {`);
    shape.regions.forEach((region, i) => {
      if (i > 0) lines.push('    --');
      lines.push(`    state ${ids.id(region.name)} {`);
      body(region, '      ');
      lines.push('    }');
    });
    lines.push('  }');
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// 2. State graphs grouped by abstract value

export interface GroupedEdge {
  readonly from: number;
  readonly to: number;
  readonly type: string;
  readonly count: number;
}

export interface GroupedGraph {
  /** Distinct abstract values in first-reached (breadth-first) order. */
  readonly values: readonly string[];
  /** Indices into `values` of the initial states' values. */
  readonly initial: readonly number[];
  /** One edge per (value, value, event type), sorted by (from, to, type). */
  readonly edges: readonly GroupedEdge[];
  /** How many concrete states each value stands for. */
  readonly states: readonly number[];
}

/** Groups an explored graph by abstract value: the context is hidden, so the drawing stays readable. */
export function groupGraph(g: ExploredGraph): GroupedGraph {
  const index = new Map<string, number>();
  const values: string[] = [];
  const states: number[] = [];
  const valueIndex = new Int32Array(g.values.length);
  g.values.forEach((v, i) => {
    let k = index.get(v);
    if (k === undefined) {
      k = values.length;
      index.set(v, k);
      values.push(v);
      states.push(0);
    }
    states[k]!++;
    valueIndex[i] = k;
  });
  const counts = new Map<string, GroupedEdge>();
  for (let e = 0; e < g.edgeFrom.length; e++) {
    const from = valueIndex[g.edgeFrom[e]!]!;
    const to = valueIndex[g.edgeTo[e]!]!;
    const type = g.edgeType[e]!;
    const k = `${from}\u0000${to}\u0000${type}`;
    const prev = counts.get(k);
    counts.set(k, { from, to, type, count: (prev?.count ?? 0) + 1 });
  }
  const edges = [...counts.values()].sort((a, b) => a.from - b.from || a.to - b.to || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  const initial = [...new Set(g.initial.map((i) => valueIndex[i]!))].sort((a, b) => a - b);
  return { values, initial, edges, states };
}

export interface StateGraphOptions {
  /** First line of the diagram's caption. */
  readonly title?: string;
  /** Node cap (default MAX_GRAPH_NODES); the shallowest values are kept and a note says so. */
  readonly maxNodes?: number;
}

interface Selection {
  readonly keep: readonly number[];
  readonly kept: ReadonlySet<number>;
  readonly note: string | null;
}

/** Keeps `first` (in order), then fills up to the cap in breadth-first order. */
function selectNodes(gg: GroupedGraph, cap: number, first: readonly number[] = [], candidates?: readonly number[]): Selection {
  const kept = new Set<number>();
  // `first` (a counterexample's path) is always drawn whole, even past the cap.
  for (const v of first) kept.add(v);
  const rest = candidates ?? gg.values.map((_, i) => i);
  for (const v of rest) {
    if (kept.size >= cap) break;
    kept.add(v);
  }
  const keep = [...kept].sort((a, b) => a - b);
  const total = candidates ? new Set([...first, ...candidates]).size : gg.values.length;
  let note: string | null = null;
  if (keep.length < total) {
    const edgesShown = gg.edges.filter((e) => kept.has(e.from) && kept.has(e.to)).length;
    note = `showing ${keep.length} of ${total} abstract values (${first.length ? 'the path first, then ' : ''}the shallowest in breadth-first order); ${
      gg.edges.length - edgesShown
    } of ${gg.edges.length} grouped edges are cut`;
  }
  return { keep, kept, note };
}

const edgeLabel = (type: string, count: number): string => (count > 1 ? `${type} ×${count}` : type);

interface EdgeBundle {
  readonly from: number;
  readonly to: number;
  readonly operator: boolean;
  readonly labels: string[];
}

/**
 * Grouped edges that share source and target are drawn as one arrow listing each event with its
 * count (protocol events and engine operators apart): parallel arrows, self-loops above all, would
 * stack their labels on top of each other.
 */
function bundleEdges(edges: readonly GroupedEdge[]): EdgeBundle[] {
  const out = new Map<string, EdgeBundle>();
  for (const e of edges) {
    const operator = e.type.startsWith('@');
    const k = `${e.from}\u0000${e.to}\u0000${operator ? 1 : 0}`;
    let b = out.get(k);
    if (!b) {
      b = { from: e.from, to: e.to, operator, labels: [] };
      out.set(k, b);
    }
    b.labels.push(edgeLabel(e.type, e.count));
  }
  return [...out.values()];
}

/** Caption lines wrapped so a long title does not overflow a narrow drawing. */
function wrapCaption(lines: readonly string[], width = 80): string {
  return lines.map((l) => wrapLabel(l, width)).join('\n');
}

interface DotGraphParts {
  readonly name: string;
  readonly caption: readonly string[];
  readonly gg: GroupedGraph;
  readonly sel: Selection;
  /** Extra node attributes by value index. */
  readonly nodeAttrs?: (v: number) => string[];
  /** Edges to leave out (drawn separately by the caller). */
  readonly skipEdge?: (e: GroupedEdge) => boolean;
  readonly extra?: readonly string[];
  /** Hover text with the number of concrete states per value (off where counts mean nothing). */
  readonly tooltips?: boolean;
}

function groupedDot(p: DotGraphParts): string {
  const { gg, sel } = p;
  const engine = engineFor(sel.keep.length);
  const graphAttrs =
    engine === 'dot'
      ? 'layout=dot, rankdir=TB, nodesep=0.3, ranksep=0.45'
      : 'layout=neato, overlap=prism, sep="+6", outputorder=edgesfirst';
  const lines: string[] = [
    `digraph ${q(p.name)} {`,
    `  graph [${graphAttrs}, fontname="Helvetica", fontsize=12, labelloc=t, label=${q(wrapCaption(p.caption))}];`,
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica", fontsize=9, margin="0.12,0.05"];',
    '  edge [fontname="Helvetica", fontsize=8, color="#666666", fontcolor="#333333", arrowsize=0.6];',
  ];
  for (const v of sel.keep) {
    const attrs = [`label=${q(wrapLabel(gg.values[v]!))}`];
    if ((p.tooltips ?? true) && gg.states[v]! > 1) attrs.push(`tooltip=${q(`${gg.states[v]} concrete states`)}`);
    if (gg.initial.includes(v)) attrs.push('peripheries=2', 'fillcolor="#e3ecfa"');
    attrs.push(...(p.nodeAttrs?.(v) ?? []));
    lines.push(`  v${v} [${dedupeAttrs(attrs).join(', ')}];`);
  }
  for (const v of gg.initial) {
    if (!sel.kept.has(v)) continue;
    lines.push(`  init${v} [shape=point, width=0.1, label="", style=filled, fillcolor="#000000"];`);
    lines.push(`  init${v} -> v${v};`);
  }
  for (const b of bundleEdges(gg.edges.filter((e) => sel.kept.has(e.from) && sel.kept.has(e.to) && !p.skipEdge?.(e)))) {
    const attrs = [`label=${q(b.labels.join('\n'))}`];
    if (b.operator) attrs.push('style=dashed', 'color="#b35900"', 'fontcolor="#b35900"');
    else if (b.from === b.to) attrs.push('color="#aaaaaa"');
    lines.push(`  v${b.from} -> v${b.to} [${attrs.join(', ')}];`);
  }
  lines.push(...(p.extra ?? []));
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Later attributes of the same name win (so callers can restyle a node). */
function dedupeAttrs(attrs: readonly string[]): string[] {
  const byName = new Map<string, string>();
  for (const a of attrs) byName.set(a.slice(0, a.indexOf('=')), a);
  return [...byName.values()];
}

function graphCaption(title: string | undefined, gg: GroupedGraph, note: string | null): string[] {
  const n = gg.states.reduce((a, b) => a + b, 0);
  return [
    title ?? 'state graph',
    `${n} states grouped into ${gg.values.length} abstract values, ${gg.edges.length} edges (value, value, event); doubled border = initial`,
    ...(note ? [note] : []),
  ];
}

/** The explored state graph as DOT, one node per abstract value and one edge per (value, value, event). */
export function stateGraphDot(graph: ExploredGraph | GroupedGraph, opts: StateGraphOptions = {}): string {
  const gg = 'edgeFrom' in graph ? groupGraph(graph) : graph;
  const sel = selectNodes(gg, opts.maxNodes ?? MAX_GRAPH_NODES);
  return groupedDot({ name: opts.title ?? 'state graph', caption: graphCaption(opts.title, gg, sel.note), gg, sel });
}

/** The same grouped graph as a Mermaid flowchart (quoted labels survive any value text). */
export function stateGraphMermaid(graph: ExploredGraph | GroupedGraph, opts: StateGraphOptions = {}): string {
  const gg = 'edgeFrom' in graph ? groupGraph(graph) : graph;
  const sel = selectNodes(gg, opts.maxNodes ?? MAX_GRAPH_NODES);
  const caption = graphCaption(opts.title, gg, sel.note);
  const lines: string[] = ['---', `title: ${mmText(caption[0]!)}`, '---', 'flowchart TD'];
  for (const c of caption.slice(1)) lines.push(`  %% ${c}`);
  for (const v of sel.keep) lines.push(`  v${v}("${mmText(gg.values[v]!)}")`);
  for (const b of bundleEdges(gg.edges.filter((e) => sel.kept.has(e.from) && sel.kept.has(e.to)))) {
    const arrow = b.operator ? '-.->' : '-->';
    lines.push(`  v${b.from} ${arrow}|"${b.labels.map(mmText).join('<br/>')}"| v${b.to}`);
  }
  const init = gg.initial.filter((v) => sel.kept.has(v));
  if (init.length) {
    lines.push('  classDef initial fill:#e3ecfa,stroke:#000,stroke-width:2px');
    lines.push(`  class ${init.map((v) => `v${v}`).join(',')} initial`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// 3. Counterexamples

export interface CounterexampleSource {
  /** The graph to draw around the path (typically the path's one-step neighbourhood); may be absent. */
  readonly graph?: ExploredGraph;
  /** The abstract value after each step: path[0] is the initial value, path[i] follows trace.steps[i-1]. */
  readonly path: readonly string[];
  /** Set when the trace no longer replays: the 1-based step that was not enabled, and why. */
  readonly stale?: { readonly step: number; readonly reason: string };
  /** Diagram name (defaults to the model id). */
  readonly name?: string;
  readonly maxNodes?: number;
}

function violationLine(v: TraceViolation | null): string {
  if (!v) return 'expected to run clean (no violation recorded)';
  const spec = v.spec.length ? ` [${v.spec.join(', ')}]` : '';
  return `violates ${v.property}${spec}: ${v.message}`;
}

function variantLine(t: Trace): string {
  return `${t.engine} trace, profile ${t.profile}, mutant ${t.mutant ?? '(none)'}, bounds ${Object.entries(t.bounds)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '(none)'}`;
}

/**
 * A counterexample drawn on the grouped graph: the trace's path in bold red with numbered steps, its
 * states shaded, the violating state in red; the rest of the graph (the alternatives at each step)
 * in grey. Path values missing from the graph are added.
 */
export function counterexampleDot(src: CounterexampleSource, trace: Trace): string {
  const base: ExploredGraph = src.graph ?? { values: [], edgeFrom: new Int32Array(0), edgeTo: new Int32Array(0), edgeType: [], initial: [] };
  // Make sure every path value is a node: append them as extra states of the base graph.
  const values = [...base.values, ...src.path];
  const initial = base.initial.length ? base.initial : src.path.length ? [base.values.length] : [];
  const gg = groupGraph({ ...base, values, initial });
  const idx = new Map(gg.values.map((v, i) => [v, i]));
  const pathIdx = src.path.map((v) => idx.get(v)!);
  // The path's steps, one red arrow per (from, to) listing each numbered step on it, so a path that
  // stays on one value for several steps does not stack arrows on top of each other.
  const pathArrows = new Map<string, { from: number; to: number; labels: string[] }>();
  const pathTriples = new Set<string>();
  for (let i = 0; i + 1 < pathIdx.length; i++) {
    const from = pathIdx[i]!;
    const to = pathIdx[i + 1]!;
    const step = trace.steps[i]!;
    pathTriples.add(`${from}\u0000${to}\u0000${step.type}`);
    const k = `${from}\u0000${to}`;
    const pa = pathArrows.get(k) ?? { from, to, labels: [] };
    pa.labels.push(`${i + 1}. ${eventText(step)}`);
    pathArrows.set(k, pa);
  }
  const onPath = new Set(pathIdx);
  // Neighbours of the path in breadth-first order of the base graph, after the path itself.
  const near: number[] = [];
  for (const e of gg.edges) {
    if (onPath.has(e.from) && !onPath.has(e.to)) near.push(e.to);
    if (onPath.has(e.to) && !onPath.has(e.from)) near.push(e.from);
  }
  const candidates = [...new Set(near)].sort((a, b) => a - b);
  const sel = selectNodes(gg, src.maxNodes ?? MAX_COUNTEREXAMPLE_NODES, [...new Set(pathIdx)], candidates);
  const last = pathIdx[pathIdx.length - 1];
  const bad = trace.violation !== null && src.stale === undefined ? last : undefined;
  const caption = [
    `${src.name ?? trace.model}: ${violationLine(trace.violation)}`,
    variantLine(trace),
    `${trace.steps.length} steps in red; grey: the other moves from the path's states; doubled border = initial`,
    ...(src.stale ? [`STALE: step ${src.stale.step} does not replay (${src.stale.reason}); the path stops there`] : []),
    ...(sel.note ? [sel.note] : []),
  ];
  const extra: string[] = [];
  for (const pa of pathArrows.values()) {
    extra.push(`  v${pa.from} -> v${pa.to} [label=${q(pa.labels.join('\n'))}, color="#cc0000", fontcolor="#cc0000", penwidth=2.4, style=bold, weight=4];`);
  }
  return groupedDot({
    name: src.name ?? trace.model,
    caption,
    gg,
    sel,
    nodeAttrs: (v) => {
      if (v === bad) {
        return [`fillcolor="#f4cccc"`, 'color="#cc0000"', 'penwidth=2', `label=${q(`${wrapLabel(gg.values[v]!)}\n\nVIOLATION ${trace.violation!.property}`)}`];
      }
      return onPath.has(v) ? [`fillcolor="#fff2cc"`, 'color="#cc0000"'] : ['fontcolor="#555555"', 'color="#999999"'];
    },
    skipEdge: (e) => pathTriples.has(`${e.from}\u0000${e.to}\u0000${e.type}`),
    extra,
    tooltips: false,
  });
}

export interface SequenceOptions {
  /** Who takes an event that carries no thread parameter (default: 'system'). */
  readonly participantOf?: (e: Ev) => string;
  /** External events are drawn as messages from the environment; internal ones as a thread's own step. */
  readonly isExternal?: (e: Ev) => boolean;
  readonly title?: string;
}

/** Thread parameters of machine events and the region names they select (reader{r}, getter{g}, ...). */
const THREAD_PARAMS: readonly (readonly [string, string])[] = [
  ['r', 'reader'],
  ['g', 'getter'],
  ['o', 'opener'],
  ['f', 'foreign'],
];

/** The thread an r/g/o/f parameter names, when the machine has that region (elsewhere 'r' may be a region number). */
function threadOf(e: Ev, regions: readonly string[]): string | null {
  for (const [p, name] of THREAD_PARAMS) {
    const v = e[p];
    if (typeof v === 'number' && (regions.length === 0 || regions.includes(`${name}${v}`))) return `${name}${v}`;
  }
  return null;
}

function eventText(e: Ev): string {
  const params = Object.entries(e)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return params.length ? `${e.type} ${params.join(' ')}` : e.type;
}

/**
 * The trace as a Mermaid sequenceDiagram. Participants: the environment plus the machine's regions
 * (those the trace touches, in region order, then any others it names). An event with an r/g/o/f
 * parameter belongs to reader{r}/getter{g}/opener{o}/foreign{f} (when `regions` is empty or has that
 * region); any other to participantOf(e).
 * Engine operators (@crash, @fault) are notes across the whole diagram. It ends with a note naming
 * the violated property and spec IDs.
 */
export function sequenceMermaid(trace: Trace, regions: readonly string[], opts: SequenceOptions = {}): string {
  const participantOf = opts.participantOf ?? (() => 'system');
  const isExternal = opts.isExternal ?? (() => false);
  const ENV = 'environment';
  const actors = trace.steps.map((e) => (isOperatorEvent(e) ? null : (threadOf(e, regions) ?? participantOf(e))));
  const used = new Set(actors.filter((a): a is string => a !== null && a !== ENV));
  const order = [...regions.filter((r) => used.has(r)), ...[...used].filter((a) => !regions.includes(a)).sort()];
  const ids = new MermaidIds();
  const pid = (name: string): string => ids.id(`p_${name}`);
  const lines: string[] = [
    '---',
    `title: ${mmText(opts.title ?? `${trace.model}: ${trace.violation ? trace.violation.property : 'trace'}`)}`,
    '---',
    'sequenceDiagram',
    `  %% ${mmText(variantLine(trace))}`,
    `  participant ${pid(ENV)} as ${ENV}`,
  ];
  for (const a of order) lines.push(`  participant ${pid(a)} as ${mmText(a)}`);
  const lastP = order.length ? pid(order[order.length - 1]!) : pid(ENV);
  const span = `${pid(ENV)},${lastP}`;
  trace.steps.forEach((e, i) => {
    const text = `${i + 1}. ${mmText(eventText(e))}`;
    const a = actors[i];
    if (a === null || a === undefined) {
      lines.push(`  Note over ${span}: ${text}`);
    } else if (a === ENV) {
      lines.push(`  ${pid(ENV)}->>${pid(ENV)}: ${text}`);
    } else if (isExternal(e)) {
      lines.push(`  ${pid(ENV)}->>${pid(a)}: ${text}`);
    } else {
      lines.push(`  ${pid(a)}->>${pid(a)}: ${text}`);
    }
  });
  lines.push(`  Note over ${span}: ${mmText(trace.violation ? `VIOLATION ${violationLine(trace.violation).slice('violates '.length)}` : 'end: no violation')}`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// 4. SVG

let vizInstance: Promise<Viz> | undefined;

async function viz(): Promise<Viz> {
  vizInstance ??= import('@viz-js/viz').then((m) => m.instance());
  return vizInstance;
}

/** Renders our DOT to SVG with the engine it names (dot for small graphs, neato above the limit). */
export async function renderSvg(dot: string): Promise<string> {
  let r;
  try {
    r = (await viz()).render(dot, { format: 'svg', engine: layoutOf(dot) });
  } catch {
    // A trapped WebAssembly instance stays broken: start a fresh one and try once more.
    vizInstance = undefined;
    r = (await viz()).render(dot, { format: 'svg', engine: layoutOf(dot) });
  }
  if (r.status !== 'success') {
    throw new Error(`graphviz could not render this DOT: ${r.errors.map((e) => e.message.trim()).join('; ')}`);
  }
  return r.output;
}

// ---------------------------------------------------------------------------------------------
// 5. The writer

export interface GenerateOptions {
  /** Write nothing; return the files that are stale or missing (and stray files under outDir). */
  readonly check: boolean;
  readonly log: (line: string) => void;
  /** Where committed traces live (default 'counterexamples'). */
  readonly counterexamplesDir?: string;
  readonly maxStates?: number;
  /**
   * False skips the explorations (the slow part: minutes for the bigger models on a loaded machine):
   * state-graph files and README.md are then neither generated nor checked, and are left as they are.
   * Only allowed with check=true, so a write never leaves a README that disagrees with the graphs.
   */
  readonly stateGraphs?: boolean;
}

interface ModelReport {
  readonly id: string;
  readonly title: string;
  readonly statecharts: string[];
  graph: string;
  readonly counterexamples: { readonly name: string; readonly what: string }[];
  readonly notes: string[];
}

/** The path of a trace through the model, with the one-step neighbourhood of every state on it. */
export function tracePath(inst: Instance<unknown, Ev>, trace: Trace): Required<Pick<CounterexampleSource, 'graph' | 'path'>> & Pick<CounterexampleSource, 'stale'> {
  const sys = withOperators(inst);
  const values: string[] = [];
  const edgeFrom: number[] = [];
  const edgeTo: number[] = [];
  const edgeType: string[] = [];
  const init = sys.initial()[trace.initialIndex];
  if (init === undefined) {
    return { graph: { values: [], edgeFrom: new Int32Array(0), edgeTo: new Int32Array(0), edgeType: [], initial: [] }, path: [], stale: { step: 0, reason: `the model has no initial state #${trace.initialIndex}` } };
  }
  const path: string[] = [inst.valueOf(init)];
  let s: unknown = init;
  let stale: CounterexampleSource['stale'];
  const states: unknown[] = [s];
  values.push(path[0]!);
  for (let i = 0; i < trace.steps.length; i++) {
    const next = sys.step(s, trace.steps[i]!);
    if (next === null) {
      stale = { step: i + 1, reason: `${eventText(trace.steps[i]!)} is not enabled in ${inst.describe(s)}` };
      break;
    }
    s = next;
    states.push(s);
    path.push(inst.valueOf(s));
  }
  // Index 0..k are the path's states; their one-step successors follow.
  for (let i = 1; i < states.length; i++) values.push(path[i]!);
  for (let i = 0; i < states.length; i++) {
    const here = states[i];
    for (const e of sys.events(here)) {
      const t = sys.step(here, e);
      if (t === null) continue;
      edgeFrom.push(i);
      edgeTo.push(values.length);
      edgeType.push(e.type);
      values.push(inst.valueOf(t));
    }
  }
  const graph: ExploredGraph = { values, edgeFrom: Int32Array.from(edgeFrom), edgeTo: Int32Array.from(edgeTo), edgeType, initial: [0] };
  return stale ? { graph, path, stale } : { graph, path };
}

/**
 * Which region takes an event type: of the regions with a transition on it, the most specific one
 * (the fewest event types; the first in region order on a tie), so an event a driver region passes
 * through everywhere is shown on the thread that really acts on it.
 */
export function participantsFromStatechart(shape: StatechartShape | undefined): (e: Ev) => string {
  const regions = (shape?.regions ?? []).map((r) => ({ name: r.name, types: new Set(r.transitions.map((t) => t.label.split(' ')[0]!)) }));
  const byType = new Map<string, string>();
  for (const type of new Set(regions.flatMap((r) => [...r.types]))) {
    let best: { name: string; types: Set<string> } | undefined;
    for (const r of regions) if (r.types.has(type) && (!best || r.types.size < best.types.size)) best = r;
    if (best) byType.set(type, best.name);
  }
  return (e) => byType.get(e.type) ?? 'system';
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/**
 * Generates every diagram of every model into outDir (or, with check=true, writes nothing and returns
 * the files that are stale, missing or no longer generated). Per model:
 *   <model>/<machine>.statechart.{dot,svg,mmd}  each machine of model.machines
 *   <model>/state-graph.{dot,svg,mmd}           explored at default bounds under model.defaultProfile
 *   <model>/counterexamples/<trace>.{dot,svg}, <trace>.sequence.mmd   each counterexamples/<model>/*.json
 * plus <outDir>/README.md indexing them. A model whose exploration passes opts.maxStates (default
 * DIAGRAM_MAX_STATES) gets no state graph and a note saying so.
 */
export async function generateDiagrams(models: readonly AnyModel[], outDir: string, opts: GenerateOptions): Promise<readonly string[]> {
  const files = new Map<string, string>();
  const dots: [string, string][] = [];
  const reports: ModelReport[] = [];
  const ceDir = opts.counterexamplesDir ?? 'counterexamples';
  const maxStates = opts.maxStates ?? DIAGRAM_MAX_STATES;
  const withGraphs = opts.stateGraphs ?? true;
  if (!withGraphs && !opts.check) throw new Error('generateDiagrams: stateGraphs=false is only for check=true (a write must regenerate everything)');
  const knownIds = models.map((m) => m.id);
  const put = (rel: string, text: string): void => {
    files.set(join(outDir, rel), text);
  };
  const putDot = (rel: string, dot: string): void => {
    put(`${rel}.dot`, dot);
    dots.push([join(outDir, `${rel}.svg`), dot]);
  };

  for (const model of models) {
    const t0 = performance.now();
    let exploreSeconds = 0;
    const rep: ModelReport = { id: model.id, title: model.title, statecharts: [], graph: '', counterexamples: [], notes: [] };
    reports.push(rep);
    const shapes = model.machines.map((m) => m.statechart());
    const seen = new Set<string>();
    for (const shape of shapes) {
      let name = shape.id;
      for (let n = 2; seen.has(name); n++) name = `${shape.id}-${n}`;
      seen.add(name);
      putDot(`${model.id}/${name}.statechart`, statechartDot(shape));
      put(`${model.id}/${name}.statechart.mmd`, statechartMermaid(shape));
      rep.statecharts.push(name);
    }
    if (shapes.length === 0) rep.notes.push('the model lists no machines, so there is no statechart');

    // The explored graph at default bounds, the same run `dmcheck check` does.
    const bounds = boundsWithDefaults(model);
    if (withGraphs) try {
      // Invariants are `dmcheck check`'s business; the drawing only needs the graph.
      const inst = { ...model.instance(bounds, { profile: model.defaultProfile, mutant: null }), invariants: [] };
      const te = performance.now();
      const r = explore(inst, { keepGraph: true, maxStates, checkProgress: false, checkDeadlock: false });
      exploreSeconds = (performance.now() - te) / 1000;
      if (r.stopped !== null || !r.graph) {
        const why = r.stopped === 'max-states' ? `exploration passed ${maxStates} states` : `exploration stopped (${r.stopped ?? 'no graph kept'})`;
        rep.notes.push(`no state graph: ${why} at default bounds ${JSON.stringify(bounds)}`);
        opts.log(`diagram ${model.id}: skipping the state graph, ${why}`);
      } else {
        const title = `${model.id}: state graph, profile ${model.defaultProfile}, bounds ${Object.entries(bounds).map(([k, v]) => `${k}=${v}`).join(' ') || '(none)'}`;
        const gg = groupGraph(r.graph);
        putDot(`${model.id}/state-graph`, stateGraphDot(gg, { title }));
        put(`${model.id}/state-graph.mmd`, stateGraphMermaid(gg, { title }));
        if (r.crashSubsetsTruncated) rep.notes.push('the state graph is partial: crash subsets were truncated (more volatile writes than the crash operator enumerates)');
        rep.graph = `${r.states} states, ${r.transitions} transitions, ${gg.values.length} abstract values${
          gg.values.length > MAX_GRAPH_NODES ? ` (the ${MAX_GRAPH_NODES} shallowest drawn)` : ''
        }`;
      }
    } catch (err) {
      rep.notes.push(`no state graph: exploration failed: ${(err as Error).message}`);
      opts.log(`diagram ${model.id}: exploration failed: ${(err as Error).message}`);
    }

    // Counterexamples committed for this model.
    const dir = join(ceDir, model.id);
    const traceFiles = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
    const regions = shapes[0]?.regions.map((r) => r.name) ?? [];
    const participantOf = participantsFromStatechart(shapes[0]);
    for (const f of traceFiles) {
      const name = f.slice(0, -'.json'.length);
      let trace: Trace;
      try {
        trace = loadTrace(join(dir, f), knownIds);
      } catch (err) {
        rep.notes.push(`${f} skipped: ${(err as Error).message}`);
        continue;
      }
      try {
        const inst = model.instance(boundsWithDefaults(model, trace.bounds), { profile: trace.profile, mutant: trace.mutant });
        const tp = tracePath(inst, trace);
        if (tp.stale) rep.notes.push(`${f} is stale: step ${tp.stale.step} does not replay`);
        putDot(`${model.id}/counterexamples/${name}`, counterexampleDot({ ...tp, name: `${model.id}/${name}` }, trace));
        put(
          `${model.id}/counterexamples/${name}.sequence.mmd`,
          sequenceMermaid(trace, regions, {
            participantOf,
            ...(model.impl ? { isExternal: model.impl.isExternal } : {}),
            title: `${model.id}/${name}`,
          }),
        );
        const v = trace.violation;
        const what = `${v ? `${v.property}${v.spec.length ? ` [${v.spec.join(', ')}]` : ''}` : 'runs clean'}; ${trace.profile}${trace.mutant ? `, mutant ${trace.mutant}` : ''}${tp.stale ? `; STALE at step ${tp.stale.step}` : ''}`;
        rep.counterexamples.push({ name, what });
      } catch (err) {
        rep.notes.push(`${f} skipped: ${(err as Error).message}`);
      }
    }
    opts.log(`diagram ${model.id}: ${rep.statecharts.length} statechart(s), ${rep.graph ? 'state graph' : 'no state graph'}, ${rep.counterexamples.length} counterexample(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s (exploring ${exploreSeconds.toFixed(1)} s)`);
  }
  if (withGraphs) put('README.md', readme(reports));
  // Files this run does not produce but must leave alone (stateGraphs=false).
  const untouched = (p: string): boolean => !withGraphs && (p === join(outDir, 'README.md') || /[\\/]state-graph\.(dot|svg|mmd)$/.test(p));

  const tr = performance.now();
  for (const [svgPath, dot] of dots) files.set(svgPath, await renderSvg(dot));
  opts.log(`diagram: rendered ${dots.length} SVGs in ${((performance.now() - tr) / 1000).toFixed(1)} s`);

  if (opts.check) {
    const problems: string[] = [];
    for (const [p, text] of files) {
      if (!existsSync(p)) {
        problems.push(p);
        opts.log(`missing: ${p}`);
      } else if (readFileSync(p, 'utf8') !== text) {
        problems.push(p);
        opts.log(`stale: ${p}`);
      }
    }
    for (const p of listFiles(outDir)) {
      if (!files.has(p) && !untouched(p)) {
        problems.push(p);
        opts.log(`no longer generated: ${p}`);
      }
    }
    return problems;
  }
  for (const p of listFiles(outDir)) if (!files.has(p)) rmSync(p);
  for (const [p, text] of files) {
    mkdirSync(join(p, '..'), { recursive: true });
    if (!existsSync(p) || readFileSync(p, 'utf8') !== text) writeFileSync(p, text);
  }
  opts.log(`diagram: ${files.size} files in ${outDir}/`);
  return [];
}

function readme(reports: readonly ModelReport[]): string {
  const out: string[] = [
    '# Diagrams',
    '',
    'Generated by `npx dmcheck diagram` (checker/diagram.ts); do not edit. `npx dmcheck diagram --check` fails when',
    'these files are stale. Each `.svg` is rendered from the `.dot` beside it; `.mmd` files are Mermaid.',
    '',
    '- `*.statechart.*`: a machine of the model; a parallel machine draws each region as a cluster;',
    '  arrows are labelled `EVENT [guard]`; a small dot marks each initial state; doubled boxes have no way out.',
    '- `state-graph.*`: every state reached at the default bounds, grouped by abstract value (context hidden);',
    '  one arrow per (value, value, event) with its count; dashed orange arrows are crashes and injected faults.',
    '- `counterexamples/<trace>.*`: a committed trace drawn on the grouped graph around it (red, numbered steps;',
    '  the violating state in red), and `<trace>.sequence.mmd`, its events per thread.',
    '',
  ];
  for (const r of reports) {
    out.push(`## ${r.id}: ${r.title}`, '');
    for (const s of r.statecharts) {
      out.push(`- statechart \`${s}\`: [svg](${r.id}/${s}.statechart.svg), [dot](${r.id}/${s}.statechart.dot), [mermaid](${r.id}/${s}.statechart.mmd)`);
    }
    if (r.graph) {
      out.push(`- state graph (${r.graph}): [svg](${r.id}/state-graph.svg), [dot](${r.id}/state-graph.dot), [mermaid](${r.id}/state-graph.mmd)`);
    }
    for (const n of r.notes) out.push(`- note: ${n}`);
    if (r.counterexamples.length) {
      out.push('', '| counterexample | shows | diagram | sequence |', '|---|---|---|---|');
      for (const { name: c, what } of r.counterexamples) {
        out.push(
          `| \`${c}\` | ${what.replace(/\|/g, '\\|')} | [svg](${r.id}/counterexamples/${c}.svg) · [dot](${r.id}/counterexamples/${c}.dot) | [mermaid](${r.id}/counterexamples/${c}.sequence.mmd) |`,
        );
      }
    }
    out.push('');
  }
  return out.join('\n');
}

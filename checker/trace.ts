// The one trace format both engines write and `dmcheck replay` reads. Versioned JSON, written
// atomically (temp file + rename), validated on load with messages that say what to fix.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Bounds, Ev, Json } from './model.js';
import { UsageError } from './model.js';
import { TOOL_VERSION } from './version.js';

export const TRACE_FORMAT = 'dmcheck-trace';
export const TRACE_VERSION = 1;

export interface TraceViolation {
  readonly kind: 'invariant' | 'deadlock' | 'progress' | 'lockstep' | 'impl';
  readonly property: string;
  readonly spec: readonly string[];
  readonly message: string;
}

export interface Trace {
  readonly format: typeof TRACE_FORMAT;
  readonly version: typeof TRACE_VERSION;
  readonly tool: { readonly name: 'dmcheck'; readonly version: string };
  readonly model: string;
  readonly bounds: Bounds;
  readonly profile: string;
  readonly mutant: string | null;
  readonly engine: 'explore' | 'lockstep';
  /** Which of the model's initial states the steps start from. */
  readonly initialIndex: number;
  /**
   * Every step in order: protocol events, engine operator events ('@crash', '@fault') and, for async
   * implementations, the internal steps in the order the scheduler released them.
   */
  readonly steps: readonly Ev[];
  /** What the trace shows; null for a trace that is expected to run clean. */
  readonly violation: TraceViolation | null;
  /** fast-check replay data for lockstep traces. */
  readonly fastcheck?: { readonly seed: number; readonly path: string };
  readonly note?: string;
}

export function makeTrace(fields: Omit<Trace, 'format' | 'version' | 'tool'>): Trace {
  return { format: TRACE_FORMAT, version: TRACE_VERSION, tool: { name: 'dmcheck', version: TOOL_VERSION }, ...fields };
}

/** One event per line keeps committed traces readable in review and diffs small. */
export function serializeTrace(t: Trace): string {
  const { steps, ...rest } = t;
  const head = JSON.stringify(rest, null, 2);
  if (steps.length === 0) return head.slice(0, -2) + `,\n  "steps": []\n}\n`;
  const body = steps.map((s) => '    ' + JSON.stringify(s)).join(',\n');
  return head.slice(0, -2) + `,\n  "steps": [\n${body}\n  ]\n}\n`;
}

export function writeTrace(file: string, t: Trace): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, serializeTrace(t));
  renameSync(tmp, file);
}

/** Reads and validates a trace file. `knownModels` are the ids the registry has. */
export function loadTrace(file: string, knownModels: readonly string[]): Trace {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read trace ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON (${(err as Error).message}); a trace is the JSON file dmcheck writes under counterexamples/`);
  }
  return validateTrace(raw, file, knownModels);
}

export function validateTrace(raw: unknown, where: string, knownModels: readonly string[]): Trace {
  const bad = (what: string): never => {
    throw new UsageError(`${where}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('a trace must be a JSON object');
  const o = raw as Record<string, Json | undefined>;
  if (o['format'] !== TRACE_FORMAT) bad(`not a dmcheck trace (format is ${JSON.stringify(o['format'])}, expected "${TRACE_FORMAT}")`);
  if (o['version'] !== TRACE_VERSION) {
    bad(`trace format version ${JSON.stringify(o['version'])} is not supported; this dmcheck ${TOOL_VERSION} reads version ${TRACE_VERSION}`);
  }
  const model = o['model'];
  if (typeof model !== 'string') return bad('field "model" must be a string');
  if (!knownModels.includes(model)) bad(`unknown model '${model}'; known models: ${knownModels.join(', ')}`);
  const str = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : bad(`field "${k}" must be a string`));
  const profile = str('profile');
  const mutant = o['mutant'];
  if (mutant !== null && typeof mutant !== 'string') bad('field "mutant" must be a string or null');
  const engine = o['engine'];
  if (engine !== 'explore' && engine !== 'lockstep') bad('field "engine" must be "explore" or "lockstep"');
  const bounds = o['bounds'];
  if (typeof bounds !== 'object' || bounds === null || Array.isArray(bounds)) return bad('field "bounds" must be an object');
  for (const [k, v] of Object.entries(bounds)) if (typeof v !== 'number') bad(`bound "${k}" must be a number`);
  const steps = o['steps'];
  if (!Array.isArray(steps)) return bad('field "steps" must be an array of events');
  steps.forEach((s, i) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s) || typeof (s as Record<string, unknown>)['type'] !== 'string') {
      bad(`step ${i + 1} must be an event object with a string "type"`);
    }
  });
  const initialIndex = o['initialIndex'] ?? 0;
  if (typeof initialIndex !== 'number') bad('field "initialIndex" must be a number');
  const v = o['violation'];
  if (v !== null) {
    if (typeof v !== 'object' || Array.isArray(v) || v === undefined) return bad('field "violation" must be an object or null');
    const vo = v as Record<string, Json | undefined>;
    if (typeof vo['property'] !== 'string' || typeof vo['kind'] !== 'string' || !Array.isArray(vo['spec'])) {
      bad('field "violation" needs "kind", "property" and "spec"');
    }
  }
  return raw as unknown as Trace;
}

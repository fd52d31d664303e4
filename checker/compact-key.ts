// Compact canonical state keys: the explorer stores one key per state and hashes one per transition,
// so the key is the engine's hottest code after the machine's own guards and updates.
//
// An encoder (and its decoder) is generated once per machine from a template context (the initial
// one). It reads the template's fields directly (generated property reads, no loops over key names)
// and writes UTF-16 code units: region state indices, small integers, booleans, strings interned to
// small ids, array lengths — one unit each for common values. A value that does not fit its place
// in the template (another type, a float, a big number, an object with other properties, a null
// where the template has an array...) is written as a JSON run: the JSON marker, its length and
// its JSON text. At every position the typed codes and the JSON marker differ, so the encoding is
// injective; two states get equal units exactly when they are equal as JSON values up to property
// order (checker/compact-key.test.ts checks this against machineKey on many shapes). Only a state
// whose JSON run does not fit a count unit (tens of thousands of characters) takes the slow path:
// the whole state keyed by machineKey behind its own marker.

import { machineKey } from './compose.js';
import type { MState } from './machine.js';

const FAST = 1;
const SLOW = 2;
// Leaf units: one unit below 256 for the common values (so keys are one-byte strings, hashed and
// stored at half the cost), or the WIDE marker and one unit for the rest. Which leaf sits at a
// position is fixed by the template, so the codes of different leaf kinds may overlap.
const WIDE = 1;
const TRUE = 3;
const FALSE = 4;
const JSON_RUN = 5; // then a count n, then the n units of the value's JSON text
const OBJ = 6; // an object in the template's shape follows, field by field
const NUL = 7; // null, where the template has null
const NARROW = 16; // a small non-negative count or id n is the unit NARROW + n (n < 240)
const NUM_LO = -16; // numbers NUM_LO..223 are the unit v + 32
const NUM_NARROW = 32;
const NUM_HI = 223;
const WIDE_BIAS = 0x8000; // wide numbers -0x4000..0x3fff are the unit v + WIDE_BIAS
const WIDE_MIN = -0x4000;
const WIDE_MAX = 0x3fff;
const MAX_IDS = 0xd700 - 0x100; // wide ids are id + 0x100, below the surrogate range

/** The slow path: what machineKey writes, behind its own marker. */
function slowKey(s: MState<unknown>): string {
  return String.fromCharCode(SLOW) + machineKey(s);
}

interface Gen {
  readonly lines: string[];
  vars: number;
}

/** Code writing the count or id in variable `n` (0 <= n < MAX_IDS). */
function countCode(n: string): string {
  return `if (${n} < 240) out[p++] = ${NARROW} + ${n}; else { out[p++] = ${WIDE}; out[p++] = ${n} + 0x100; }`;
}

/**
 * Writes the JSON run of `v` (JSON's null for an undefined array element) at out[p]; returns the
 * next position, or -1 when the text is too long for a run. Kept out of the generated code, which
 * stays small where values fit.
 */
function writeJsonRun(v: unknown, out: Uint16Array, p: number): number {
  const j = JSON.stringify(v) ?? 'null';
  const n = j.length;
  if (n >= MAX_IDS) return -1;
  out[p++] = JSON_RUN;
  if (n < 240) out[p++] = NARROW + n;
  else {
    out[p++] = WIDE;
    out[p++] = n + 0x100;
  }
  for (let c = 0; c < n; c++) out[p++] = j.charCodeAt(c);
  return p;
}

/** Code writing the JSON run of the value in variable `v`. */
function jsonRunCode(v: string): string {
  return `{ p = jsonRun(${v}, out, p); if (p < 0) return -1; }`;
}

/**
 * Code that encodes the value in variable `v` shaped like template `t` into out[p++]; a value that
 * does not fit is written as a JSON run. Nested arrays use the template's first element as the
 * element shape; an empty array or a null in the template accepts only itself in typed form.
 */
function genValue(t: unknown, v: string, g: Gen): void {
  const L = g.lines;
  const fallback = jsonRunCode(v);
  if (typeof t === 'boolean') {
    L.push(`if (${v} === true) out[p++] = ${TRUE}; else if (${v} === false) out[p++] = ${FALSE}; else ${fallback}`);
  } else if (typeof t === 'number') {
    L.push(`if (typeof ${v} === 'number' && (${v} | 0) === ${v} && ${v} >= ${NUM_LO} && ${v} <= ${NUM_HI}) out[p++] = ${v} + ${NUM_NARROW};`);
    L.push(`else if (typeof ${v} === 'number' && (${v} | 0) === ${v} && ${v} >= ${WIDE_MIN} && ${v} <= ${WIDE_MAX}) { out[p++] = ${WIDE}; out[p++] = ${v} + ${WIDE_BIAS}; }`);
    L.push(`else ${fallback}`);
  } else if (typeof t === 'string') {
    const id = `i${g.vars++}`;
    L.push(`let ${id} = typeof ${v} === 'string' ? strings.get(${v}) : -1;`);
    L.push(`if (${id} === undefined && strings.size < ${MAX_IDS}) { ${id} = strings.size; strings.set(${v}, ${id}); names.push(${v}); }`);
    L.push(`if (${id} !== undefined && ${id} >= 0) { ${countCode(id)} } else ${fallback}`);
  } else if (t === null) {
    L.push(`if (${v} === null) out[p++] = ${NUL}; else ${fallback}`);
  } else if (Array.isArray(t)) {
    const n = `n${g.vars++}`;
    L.push(`if (Array.isArray(${v}) && ${v}.length < ${MAX_IDS} && (${t.length > 0 ? 'true' : `${v}.length === 0`})) {`);
    L.push(`const ${n} = ${v}.length;`);
    L.push(countCode(n));
    if (t.length > 0) {
      const i = `k${g.vars++}`;
      const e = `e${g.vars++}`;
      L.push(`for (let ${i} = 0; ${i} < ${n}; ${i}++) {`);
      L.push(`const ${e} = ${v}[${i}];`);
      genValue(t[0], e, g);
      L.push('}');
    }
    L.push(`} else ${fallback}`);
  } else if (typeof t === 'object') {
    const o = t as Record<string, unknown>;
    const keys = Object.keys(o);
    const c = `c${g.vars++}`;
    const fields = keys.map(() => `f${g.vars++}`);
    // Exactly the template's properties, all defined (JSON drops undefined ones): then no extra
    // property can hide from the typed form. Anything else is one JSON run for the whole object.
    // Each field is read once, here.
    L.push(`let ${c} = -1;`);
    L.push(`if (${v} !== null && typeof ${v} === 'object' && !Array.isArray(${v})) { ${c} = 0; for (const k in ${v}) if (${v}[k] !== undefined) ${c}++; }`);
    if (fields.length > 0) L.push(`const ${fields.map((f, i) => `${f} = ${c} === ${keys.length} ? ${v}[${JSON.stringify(keys[i]!)}] : undefined`).join(', ')};`);
    L.push(`if (${c} === ${keys.length}${fields.map((f) => ` && ${f} !== undefined`).join('')}) {`);
    L.push(`out[p++] = ${OBJ};`);
    keys.forEach((k, i) => genValue(o[k], fields[i]!, g));
    L.push(`} else ${fallback}`);
  } else {
    // undefined, functions, bigints in the template: no typed form; JSON says what they are.
    L.push(fallback);
  }
}

/**
 * The inverse of genValue: code reading a value shaped like template `t` from u[p++] into a new
 * variable, whose name it returns. Objects are rebuilt with the template's property order, which is
 * the order every state of the machine has (updates spread the previous context, and JSON order is
 * insertion order); a JSON run is parsed.
 */
function genDecode(t: unknown, g: Gen): string {
  const L = g.lines;
  const v = `d${g.vars++}`;
  L.push(`let ${v};`);
  L.push(`if (u[p] === ${JSON_RUN}) { p++; const n = ${readCountExpr()}; ${v} = JSON.parse(String.fromCharCode.apply(null, u.subarray(p, p + n))); p += n; } else {`);
  if (typeof t === 'boolean') {
    L.push(`${v} = u[p++] === ${TRUE};`);
  } else if (typeof t === 'number') {
    L.push(`${v} = u[p] === ${WIDE} ? u[(p += 2) - 1] - ${WIDE_BIAS} : u[p++] - ${NUM_NARROW};`);
  } else if (typeof t === 'string') {
    L.push(`${v} = names[${readCountExpr()}];`);
  } else if (t === null) {
    L.push(`p++; ${v} = null;`);
  } else if (Array.isArray(t)) {
    const n = `n${g.vars++}`;
    L.push(`const ${n} = ${readCountExpr()};`);
    L.push(`${v} = new Array(${n});`);
    if (t.length > 0) {
      const i = `k${g.vars++}`;
      L.push(`for (let ${i} = 0; ${i} < ${n}; ${i}++) {`);
      const e = genDecode(t[0], g);
      L.push(`${v}[${i}] = ${e};`);
      L.push('}');
    }
  } else if (typeof t === 'object') {
    const o = t as Record<string, unknown>;
    L.push('p++;'); // the OBJ unit
    const fields = Object.keys(o).map((k) => `${JSON.stringify(k)}: ${genDecode(o[k], g)}`);
    L.push(`${v} = { ${fields.join(', ')} };`);
  } else {
    L.push(`throw new Error('compact key: no typed form to decode');`);
  }
  L.push('}');
  return v;
}

/** An expression reading a count or id written by countCode (advances p). */
function readCountExpr(): string {
  return `(u[p] === ${WIDE} ? u[(p += 2) - 1] - 0x100 : u[p++] - ${NARROW})`;
}

/** A machine's compiled key, as a string and as units (see System.encode). */
export interface CompiledKey<C> {
  readonly key: (s: MState<C>) => string;
  /**
   * Writes the fast-path units into `out` from 0 and returns their count (which may exceed
   * `out.length`: then nothing past the end was written and the caller retries with a larger
   * buffer), or -1 when the state takes the slow path and must be keyed by `key`.
   */
  readonly encode: (s: MState<C>, out: Uint16Array) => number;
  /** The state whose units (as encode wrote them) start at units[start]. */
  readonly decode: (units: Uint16Array, start: number) => MState<C>;
}

/**
 * A compact canonical key for states of a machine with `regions` regions whose contexts are shaped
 * like `template`. `indices` gives a state's per-region state indices (the machine's states carry them).
 */
export function compileMachineKey<C>(
  template: C,
  stateNames: readonly (readonly string[])[],
  indices: (s: MState<C>) => readonly number[],
  make: (value: string[], context: C, ix: number[]) => MState<C>,
): CompiledKey<C> {
  const regions = stateNames.length;
  const g: Gen = { lines: [], vars: 0 };
  genValue(template, 'ctx', g);
  const region = `q${g.vars++}`;
  // Writes past the end of a typed array are dropped, so the generated code needs no bounds checks:
  // a count above out.length tells the caller to retry with more room.
  const body = [
    'return function encode(s, out) {',
    'const ix = indices(s);',
    'const ctx = s.context;',
    'let p = 0;',
    `out[p++] = ${FAST};`,
    `for (let r = 0; r < ${regions}; r++) {`,
    `const ${region} = ix[r];`,
    countCode(region),
    '}',
    ...g.lines,
    'return p;',
    '};',
  ].join('\n');
  const strings = new Map<string, number>();
  const names: string[] = [];
  // Generated once per machine from its template's property names (quoted with JSON.stringify), so
  // the encoder reads its fields as directly as hand-written code would.
  const makeEncode = new Function('indices', 'strings', 'names', 'jsonRun', body) as (
    indices: (s: MState<C>) => readonly number[],
    strings: Map<string, number>,
    names: string[],
    jsonRun: typeof writeJsonRun,
  ) => (s: MState<C>, out: Uint16Array) => number;
  const encode = makeEncode(indices, strings, names, writeJsonRun);

  const d: Gen = { lines: [], vars: 0 };
  const r = `r${d.vars++}`;
  d.lines.push(`for (let ${r} = 0; ${r} < ${regions}; ${r}++) {`);
  d.lines.push(`const q = ${readCountExpr()};`, `ix[${r}] = q;`, `value[${r}] = states[${r}][q];`, '}');
  const ctx = genDecode(template, d);
  const decodeBody = [
    'return function decode(u, start) {',
    `let p = start + 1;`, // past the FAST marker
    `const ix = new Array(${regions});`,
    `const value = new Array(${regions});`,
    ...d.lines,
    `return make(value, ${ctx}, ix);`,
    '};',
  ].join('\n');
  const makeDecode = new Function('names', 'states', 'make', decodeBody) as (
    names: string[],
    states: readonly (readonly string[])[],
    make: (value: string[], context: C, ix: number[]) => MState<C>,
  ) => (u: Uint16Array, start: number) => MState<C>;
  const decode = makeDecode(names, stateNames, make);
  let buf = new Uint16Array(256);
  const key = (s: MState<C>): string => {
    let n = encode(s, buf);
    if (n < 0) return slowKey(s);
    if (n > buf.length) {
      buf = new Uint16Array(2 * n);
      n = encode(s, buf);
    }
    return String.fromCharCode.apply(null, buf.subarray(0, n) as unknown as number[]);
  };
  return { key, encode, decode };
}

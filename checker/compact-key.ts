// Compact canonical state keys (proposal from the explorer benchmark, bench/results.md).
import type { MState } from './machine.js';

// The explorer spends most of its time building and hashing state keys; JSON spells every property
// name and digit. A compact key is compiled once from a template state (the machine's initial one):
// it writes only the values, as UTF-16 code units, in the template's key order. Every encoding is
// self-delimiting given the template, and anything that does not fit the template (an extra or
// missing property, a float, a big number) is written as escaped JSON, so two states get the same
// compact key exactly when they are equal as JSON values up to property order.

const ESC = 0; // JSON follows, up to END (JSON.stringify never emits code units below 0x20)
const END = 1;
const TRUE = 2;
const FALSE = 3;
const NULL = 4;
const UNDEF = 5;
const STR = 6; // JSON string chars follow, up to END
const SMALL = 0x10; // small non-negative integer n is the one code unit SMALL + n
const SMALL_MAX = 0xd000 - SMALL; // stay below the surrogate range

type Enc = (v: unknown, out: number[]) => void;

function pushJson(v: unknown, out: number[], open: number): void {
  const j = JSON.stringify(v) ?? 'undefined';
  out.push(open);
  for (let i = 0; i < j.length; i++) out.push(j.charCodeAt(i));
  out.push(END);
}

const encodeLeaf: Enc = (v, out) => {
  if (typeof v === 'number') {
    if ((v | 0) === v && v >= 0 && v < SMALL_MAX) out.push(SMALL + v);
    else pushJson(v, out, ESC);
  } else if (v === true) out.push(TRUE);
  else if (v === false) out.push(FALSE);
  else if (v === null) out.push(NULL);
  else if (v === undefined) out.push(UNDEF);
  else if (typeof v === 'string') pushJson(v, out, STR);
  else pushJson(v, out, ESC);
};

function compileEnc(t: unknown): Enc {
  if (Array.isArray(t)) {
    const elem = t.length > 0 ? compileEnc(t[0]) : encodeLeaf;
    return (v, out) => {
      if (!Array.isArray(v) || v.length >= SMALL_MAX) return pushJson(v, out, ESC);
      out.push(SMALL + v.length);
      for (let i = 0; i < v.length; i++) elem(v[i], out);
    };
  }
  if (t !== null && typeof t === 'object') {
    const keys = Object.keys(t);
    const encs = keys.map((k) => compileEnc((t as Record<string, unknown>)[k]));
    const n = keys.length;
    return (v, out) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return pushJson(v, out, ESC);
      let count = 0;
      for (const k in v) if (Object.hasOwn(v, k)) count++;
      const o = v as Record<string, unknown>;
      for (let i = 0; i < n; i++) if (!Object.hasOwn(o, keys[i]!)) return pushJson(v, out, ESC);
      if (count !== n) return pushJson(v, out, ESC);
      out.push(TRUE); // marks the template form (an escape starts with ESC)
      for (let i = 0; i < n; i++) encs[i]!(o[keys[i]!], out);
    };
  }
  return encodeLeaf;
}

/** A compact canonical key for states shaped like `template` (any state is accepted; see above). */
export function compactMachineKey<C>(template: MState<C>): (s: MState<C>) => string {
  const enc = compileEnc(template.context);
  const names = new Map<string, number>();
  const out: number[] = [];
  return (s) => {
    out.length = 0;
    const v = s.value;
    for (let r = 0; r < v.length; r++) {
      const name = v[r]!;
      let code = names.get(name);
      if (code === undefined) names.set(name, (code = SMALL + names.size));
      out.push(code);
    }
    out.push(END);
    enc(s.context, out);
    return String.fromCharCode.apply(null, out);
  };
}

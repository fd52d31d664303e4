// Compiled state keys. JSON.stringify is general but slow and long; a machine whose context has a
// fixed shape (the same keys in every state, as a TypeScript interface without optional fields
// gives) can have a serializer generated from a sample context instead. Every scalar is written
// with a type test, so a field that changes type (number ↔ null, say) still gets a distinct key;
// arrays may change length. What it cannot see is a key that appears later: such contexts keep the
// default JSON key (the differential tests explore both ways and compare).

export type KeyFn = (v: unknown) => string;

let counter = 0;

function gen(sample: unknown, expr: string, lines: string[]): string {
  if (typeof sample === 'number' || typeof sample === 'boolean') {
    return `(typeof ${expr} === 'number' ? '' + ${expr} : ${expr} === true ? 'T' : ${expr} === false ? 'F' : J(${expr}))`;
  }
  if (Array.isArray(sample)) {
    const first: unknown = sample[0];
    if (sample.length === 0 || first === null || typeof first === 'string' || sample.some((x) => typeof x !== typeof first)) return `J(${expr})`;
    const v = `v${counter++}`;
    const acc = `a${counter++}`;
    const el = `e${counter++}`;
    lines.push(`const ${v} = (${el}) => { let ${acc} = '['; for (const x of ${el}) ${acc} += ${gen(first, 'x', lines)} + ','; return ${acc} + ']'; };`);
    return `(Array.isArray(${expr}) ? ${v}(${expr}) : J(${expr}))`;
  }
  if (sample !== null && typeof sample === 'object') {
    const keys = Object.keys(sample);
    const parts = keys.map((k) => gen((sample as Record<string, unknown>)[k], `${expr}[${JSON.stringify(k)}]`, lines));
    return `((${expr} !== null && typeof ${expr} === 'object') ? '{' + ${parts.join(" + ',' + ") || "''"} + '}' : J(${expr}))`;
  }
  return `J(${expr})`;
}

/** A key function specialised to the shape of `sample`. */
export function compileKey(sample: unknown): KeyFn {
  const lines: string[] = [];
  const body = gen(sample, 'c', lines);
  // Generated from data we control (the machine's own initial context), not from input.
  const make = new Function('J', `${lines.join('\n')}\nreturn (c) => ${body};`) as (j: (x: unknown) => string) => KeyFn;
  return make((x) => JSON.stringify(x) ?? 'undefined');
}

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from './model.js';
import { loadTrace, makeTrace, TRACE_VERSION, writeTrace } from './trace.js';
import { TOOL_VERSION } from './version.js';

const dir = mkdtempSync(join(tmpdir(), 'dmcheck-trace-'));
const sample = makeTrace({
  model: 'kobject',
  bounds: { readers: 1 },
  profile: 'fixed',
  mutant: null,
  engine: 'explore',
  initialIndex: 0,
  steps: [{ type: 'CREATE' }, { type: 'READ_OPEN', r: 0 }],
  violation: { kind: 'invariant', property: 'p', spec: ['KOBJ-1'], message: 'm' },
});

describe('trace files', () => {
  it('round-trip through write and load', () => {
    const f = join(dir, 'a.json');
    writeTrace(f, sample);
    expect(loadTrace(f, ['kobject'])).toEqual(sample);
    expect(readFileSync(f, 'utf8')).toContain('\n    {"type":"READ_OPEN","r":0}');
  });

  it('writes a trace with no steps (a violation of the initial state) as "steps": [] and loads it back', () => {
    const f = join(dir, 'empty.json');
    const t = { ...sample, steps: [] };
    writeTrace(f, t);
    expect(readFileSync(f, 'utf8')).toContain('"steps": []\n}');
    expect(loadTrace(f, ['kobject'])).toEqual(t);
  });

  it('records the tool version', () => {
    expect(sample.tool.version).toBe(TOOL_VERSION);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(TOOL_VERSION).toBe(pkg.version);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', [1], /must be a JSON object/],
    ['wrong format', { ...sample, format: 'other' }, /not a dmcheck trace/],
    ['wrong version', { ...sample, version: TRACE_VERSION + 1 }, /version 2 is not supported/],
    ['unknown model', { ...sample, model: 'nope' }, /unknown model 'nope'; known models: kobject/],
    ['bad step', { ...sample, steps: [{ t: 1 }] }, /step 1 must be an event object/],
    ['bad engine', { ...sample, engine: 'x' }, /"engine" must be/],
  ];
  for (const [name, raw, msg] of bad) {
    it(`refuses a trace with ${name}`, () => {
      const f = join(dir, `${name.replace(/ /g, '-')}.json`);
      writeFileSync(f, JSON.stringify(raw));
      expect(() => loadTrace(f, ['kobject'])).toThrow(UsageError);
      expect(() => loadTrace(f, ['kobject'])).toThrow(msg);
    });
  }

  it('refuses malformed JSON and missing files with a clear message', () => {
    const f = join(dir, 'broken.json');
    writeFileSync(f, '{"format":');
    expect(() => loadTrace(f, ['kobject'])).toThrow(/is not JSON/);
    expect(() => loadTrace(join(dir, 'missing.json'), ['kobject'])).toThrow(/cannot read trace/);
  });
});

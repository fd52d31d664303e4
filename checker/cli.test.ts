import { describe, expect, it } from 'vitest';
import { main, type Io } from './cli.js';
import { models } from '../properties/registry.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n'), tty: false };
  const code = await main(argv, models, io);
  return { code, out, err };
}

describe('dmcheck CLI', () => {
  it('prints help with exit 0, and usage with exit 2 when no command is given', async () => {
    expect((await run('--help')).out).toMatch(/usage: dmcheck <command>/);
    expect((await run('--help')).code).toBe(0);
    expect((await run()).code).toBe(2);
  });

  it('refuses bad usage with exit 2 and a message naming the fix', async () => {
    const cases: [string[], RegExp][] = [
      [['frob'], /unknown command 'frob'/],
      [['check', 'nosuchmodel'], /unknown model 'nosuchmodel'; known models: .*kobject/],
      [['check', 'kobject', '--profile', 'fixed', '--bound', 'readers=99'], /bound readers=99 is out of range/],
      [['check', 'kobject', '--profile', 'fixed', '--bound', 'cats=1'], /unknown bound 'cats'/],
      [['check', 'kobject', '--profile', 'fixed', '--bound', 'readers'], /--bound takes k=v/],
      [['check', 'kobject', '--profile', 'linux-2.6'], /has no profile 'linux-2.6'/],
      [['check', 'kobject', '--mutant', 'nope'], /has no mutant 'nope'/],
      [['replay'], /exactly one trace file/],
      [['replay', 'no/such/file.json'], /cannot read trace/],
      [['check', '--max-states', 'many'], /--max-states takes a whole number/],
      [['check', '--frobnicate'], /Unknown option/],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(msg);
    }
  });

  it('lists the models with their mutants', async () => {
    const r = await run('list', 'kobject');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/mutant {4}unlocked-get-from-kobject/);
  });

  it('check exits 0 when the properties hold and 1 with a saved counterexample when one fails', async () => {
    const ok = await run('check', 'kobject', '--profile', 'fixed', '--no-lockstep');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/explore: \d+ states/);
    const bad = await run('check', 'kobject', '--profile', 'linux-3.14', '--no-lockstep', '--save', 'out/cli-test');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/VIOLATION no-get-after-freeing \[KOBJ-3\]/);
    expect(bad.out).toMatch(/saved: out\/cli-test\//);
  });

  it('check says why lockstep did not run when the implementation supports none of the bounds, and keeps the explorer verdict', async () => {
    const r = await run('check', 'mirror-log', '--profile', 'fixed', '--bound', 'crashes=1', '--bound', 'writes=1', '--bound', 'regions=1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/explore: \d+ states/);
    expect(r.out).toMatch(/lockstep: not run: model mirror-log: the implementation supports none of the initial states/);
  });

  it('replay tells the story and ends in the violated invariant', async () => {
    const r = await run('replay', 'counterexamples/kobject/unlocked-get-from-kobject.explore.json');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/READ_TEST r=0/);
    expect(r.out).toMatch(/BUG_ON\(DMF_FREEING\)/);
    expect(r.out).toMatch(/REPRODUCED: no-get-after-freeing \[KOBJ-3\]/);
    const clean = await run('replay', 'counterexamples/kobject/unlocked-get-from-kobject.explore.json', '--mutant', 'none');
    expect(clean.out).toMatch(/NOT REPRODUCED/);
  });
});

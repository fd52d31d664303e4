// Where the project's read-only reference material is: `shared/` beside the checkout (as every
// developer machine and CI lay it out), or /work/shared. Tests that need it skip with a message
// when it is absent, and fail under CI=true, where it is always laid out.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The shared/ folder, or null when neither place has it. */
export function sharedDir(): string | null {
  for (const d of [join(repo, '..', 'shared'), '/work/shared']) if (existsSync(join(d, 'corpus'))) return d;
  return null;
}

/** A corpus folder under shared/corpus, or a reason to skip (an Error under CI=true). */
export function corpusDir(name: string): { dir: string } | { skip: string } {
  const d = sharedDir();
  if (d !== null) return { dir: join(d, 'corpus', name) };
  const why = `shared/corpus/${name} not found beside the checkout (${join(repo, '..', 'shared')}) or at /work/shared`;
  if (process.env['CI'] === 'true') throw new Error(why);
  return { skip: why };
}

// Entry point: the CLI over the registered models.
import { main } from './cli.js';
import { models } from '../properties/registry.js';

export function run(argv: readonly string[]): Promise<number> {
  return main(argv, models);
}

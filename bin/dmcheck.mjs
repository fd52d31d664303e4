#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so `npx dmcheck` works from a checkout with no build step.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../checker/main.ts');
process.exitCode = await run(process.argv.slice(2));

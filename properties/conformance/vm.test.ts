// The real-kernel run: boots Debian's kernel under qemu and re-runs every conformance case, then
// compares the fresh kernel records with the golden ones (timing-independent fields) and with the
// model. Opt-in with DMCHECK_VM=1 even in CI (CI=true): a heavy run, while golden.test.ts replays
// the committed records in every `npm test`. Needs the Debian packages in HOST_PACKAGES
// (DMCHECK_VM_INSTALL=1 installs them with apt-get).

import { describe, expect, it } from 'vitest';
import { runConformance } from '../../kernel/conform.js';
import { HOST_PACKAGES, missingHostPackages } from '../../kernel/setup.js';

const enabled = process.env['DMCHECK_VM'] === '1';
const install = process.env['DMCHECK_VM_INSTALL'] === '1';
const missing = missingHostPackages();

// The skip reason is in the suite title, so a skipped run says what it would need.
const why = enabled
  ? ''
  : ` (skipped: set DMCHECK_VM=1 to run it; needs ${HOST_PACKAGES.map((p) => p.pkg).join(' ')}` +
    `${missing.length ? `; missing here: ${missing.join(' ')}` : '; all installed'})`;

if (!enabled) console.info(`real-kernel VM test${why}`);

describe.skipIf(!enabled)(`real kernel in a VM${why}`, () => {
  it('has the host packages (or may install them)', () => {
    // asked for explicitly, so a missing package is a failure that names it, not a silent skip
    expect(install || missing.length === 0, `missing Debian packages: ${missing.join(' ')} (apt-get install ${missing.join(' ')}, or DMCHECK_VM_INSTALL=1)`).toBe(true);
  });

  it('reproduces the golden records and agrees with the model', async () => {
    const r = await runConformance({ vm: true, log: (l) => console.log(l) });
    console.log(r.table);
    expect(r.ok).toBe(true);
  }, 900_000);
});

// The real-kernel run: boots Debian's kernel under qemu and re-runs every conformance case. Only
// with DMCHECK_VM=1 (needs qemu-system-x86 busybox-static dmsetup thin-provisioning-tools kmod;
// DMCHECK_VM_INSTALL=1 installs them). Fails when the kernel's record differs from the golden one
// (timing-independent fields) or the model disagrees with the kernel.

import { describe, expect, it } from 'vitest';
import { runConformance } from '../../kernel/conform.js';

const enabled = process.env['DMCHECK_VM'] === '1';

describe.skipIf(!enabled)('real kernel in a VM (DMCHECK_VM=1)', () => {
  it('reproduces the golden records and agrees with the model', async () => {
    const r = await runConformance({ vm: true, log: (l) => console.log(l) });
    console.log(r.table);
    expect(r.ok).toBe(true);
  }, 900_000);
});

// Replays the model against the real kernel's golden records (kernel/golden/, made by the VM run
// of kernel/scenarios.ts on Debian's 6.1 kernel). No VM needed. A step where the model and the
// kernel differ fails unless kernel/conform.ts lists the difference with the commit explaining it.

import { describe, expect, it } from 'vitest';
import { compareCase, KERNEL_PROFILE, KERNEL_SHAPE_FINDINGS as KERNEL_SHAPE_NOTES, KNOWN_DIFFERENCES, reportCase } from '../../kernel/conform.js';
import { hasGolden, readGolden } from '../../kernel/golden.js';
import { commitShape } from '../../kernel/logwrites.js';
import { asLwLog, runModelCase, runModelCaseFull } from '../../kernel/model-run.js';
import { CASES } from '../../kernel/scenarios.js';

// Cases whose kernel run has been recorded. The others (see the report in kernel/README.md) still
// need a VM run: npx tsx scripts/conform.ts --record <name>.
const RECORDED = CASES.filter((c) => hasGolden(c.name));
// Kernel logs where the commit shape (THIN-META-2) is violated by the kernel itself (listed in
// conform.ts): the log must still show it, and nothing else may fail.
const KERNEL_SHAPE_FINDINGS = new Set(Object.keys(KERNEL_SHAPE_NOTES));

describe('golden kernel records vs the model', () => {
  it('has golden records for at least the out-of-data-space and resize cases', () => {
    expect(RECORDED.map((c) => c.name)).toEqual(expect.arrayContaining(['oods-error', 'oods-queue-grow', 'oods-timeout', 'resize']));
  });

  for (const c of RECORDED) {
    describe(c.name, () => {
      it('has a complete golden record made from the current event list', () => {
        const g = readGolden(c.name);
        expect(g.record.events).toEqual(c.events);
        expect(g.record.watchdog).toBe(false);
        expect(g.record.steps.map((s) => s.index)).toEqual(c.events.map((_, i) => i));
      });

      it(`agrees with the model (${KERNEL_PROFILE} profile) on mode, flags, data use, transaction id, held root and IO outcomes`, () => {
        const g = readGolden(c.name);
        const diffs = compareCase(c.name, g.record.steps, runModelCase(c, KERNEL_PROFILE), KERNEL_PROFILE);
        const unexplained = diffs.filter((d) => !d.explainedBy).map((d) => `step ${d.step} ${d.field}: kernel ${d.kernel}, model ${d.model}`);
        expect(unexplained).toEqual([]);
      });

      it('metadata image decodes with the impl reader as thin_dump printed it; crash points check clean; negative control fails (THIN-META-1, THIN-META-2)', () => {
        const g = readGolden(c.name);
        const rep = reportCase(c, g, { thinCheck: false });
        console.log(rep.lines.slice(-2).join('\n'));
        const problems = rep.failures.filter((f) => !f.includes(' impl THIN-META-2') && / image| crash |THIN-META-2|negative control|log-writes/.test(f));
        expect(problems).toEqual([]);
        if (KERNEL_SHAPE_FINDINGS.has(c.name)) {
          // the listed kernel finding is still in the log (else the entry is stale)
          expect(rep.crash?.shape.violations.length ?? 0).toBeGreaterThan(0);
        } else expect(rep.crash?.shape.violations ?? []).toEqual([]);
        expect(rep.crash?.flushPoints ?? 0).toBeGreaterThan(0);
        expect(rep.crash?.negative?.failed ?? 0).toBeGreaterThan(0);
      }, 600_000); // every crash image is walked by two checkers: slow on a busy 2-core machine
    });
  }

  // The impl's own metadata writes must have the kernel's commit shape too (THIN-META-2): every
  // superblock write alone between two flushes, as in every recorded kernel log.
  for (const c of RECORDED) {
    it(`${c.name}: the impl's metadata writes have the kernel's commit shape (THIN-META-2)`, () => {
      const shape = commitShape(asLwLog(runModelCaseFull(c, KERNEL_PROFILE).metaLog));
      expect(shape.commits).toBeGreaterThan(0);
      expect(shape.violations).toEqual([]);
    });
  }

  it('txid-metasnap: the shape check catches the pre-fix held-root code and the 3.14 commit (negative controls)', () => {
    const c = CASES.find((x) => x.name === 'txid-metasnap');
    if (!c || !hasGolden(c.name)) throw new Error('txid-metasnap golden record missing');
    // Before stable 3dc9ae10, reserve/release dirtied the superblock buffer and the next
    // pre-commit flush wrote it with the other blocks (old roots, new held root).
    const preFix = commitShape(asLwLog(runModelCaseFull(c, KERNEL_PROFILE, 'held-root-in-buffer').metaLog));
    expect(preFix.violations.length).toBeGreaterThan(0);
    expect(preFix.violations.every((v) => v.includes('writes the superblock together with blocks'))).toBe(true);
    // 3.14 writes the dirty superblock, already holding the new roots, in the first write-back.
    const old = commitShape(asLwLog(runModelCaseFull(c, 'linux-3.14').metaLog));
    expect(old.violations.length).toBeGreaterThan(0);
  });

  it('every listed known difference is still needed (no stale explanations)', () => {
    for (const k of KNOWN_DIFFERENCES) {
      const c = CASES.find((x) => x.name === k.scenario);
      expect(c, `known difference names unknown scenario ${k.scenario}`).toBeDefined();
      if (!c || !hasGolden(c.name)) continue;
      const diffs = compareCase(c.name, readGolden(c.name).record.steps, runModelCase(c, k.profile), k.profile);
      expect(diffs.some((d) => d.explainedBy === k), `${k.scenario} ${k.field} (${k.commit}) no longer differs`).toBe(true);
    }
  });

  it('an injected difference is reported as unexplained (the comparison can fail)', () => {
    const c = CASES.find((x) => x.name === 'oods-error');
    if (!c || !hasGolden(c.name)) throw new Error('oods-error golden record missing');
    const steps = readGolden(c.name).record.steps.map((s) =>
      s.index === 4 && s.pool?.kind === 'ok' ? { ...s, pool: { ...s.pool, mode: 'rw' } } : s,
    );
    const diffs = compareCase(c.name, steps, runModelCase(c, KERNEL_PROFILE), KERNEL_PROFILE);
    expect(diffs.filter((d) => !d.explainedBy).map((d) => `${d.step}:${d.field}`)).toContain('4:mode');
  });
});

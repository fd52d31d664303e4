// Message cost (spec/mirror-log.md §6, fact sheet A.8): with integrated_flush every userspace_flush
// that carries marks costs one request = one cluster round (FLUSH with the marks as payload); the
// plain log needs two (MARK, then FLUSH). Clears-only flushes cost one request instead of two, the
// commit being deferred to the lazy FLUSH. Counts from the implementation, not timings.
import { describe, expect, it } from 'vitest';
import { measure, WORKLOADS } from '../../bench/mirror-rounds.js';

describe('cluster rounds per flush with marks', () => {
  for (const w of WORKLOADS) {
    it(w.name, async () => {
      const plain = await measure('plain', w);
      const integ = await measure('integrated', w);
      expect(plain.markFlushes).toBe(integ.markFlushes);
      expect(plain.markFlushRequests).toBe(2 * plain.markFlushes);
      expect(integ.markFlushRequests).toBe(integ.markFlushes);
      expect(plain.clearFlushRequests).toBe(2 * plain.clearFlushes);
      expect(integ.clearFlushRequests).toBe(integ.clearFlushes);
      expect(plain.lazyFlushes).toBe(0);
      expect(integ.lazyFlushes).toBeGreaterThanOrEqual(1);
      expect(integ.clusterRounds).toBe(integ.flushPathRequests);
      expect(integ.clusterRounds).toBeLessThan(plain.clusterRounds);
    });
  }
});

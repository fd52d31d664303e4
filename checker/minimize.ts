// Delta debugging (Zeller's ddmin) over a trace's steps: the smallest subsequence that still
// reproduces the recorded violation through machine and implementation. fast-check's shrinking
// works on the commands it generated; this works on the steps that actually ran, including the
// scheduler's interleaving, so a lockstep counterexample ends up 1-minimal.

import type { Ev, Model } from './model.js';
import { replayTrace } from './replay.js';
import type { Trace } from './trace.js';

export async function minimizeTrace<S>(model: Model<S, Ev>, trace: Trace, budget = 2000): Promise<Trace> {
  let runs = 0;
  const reproduces = async (steps: readonly Ev[]): Promise<boolean> => {
    runs++;
    return (await replayTrace(model, { ...trace, steps })).reproduced;
  };
  let steps = [...trace.steps];
  if (!trace.violation || !(await reproduces(steps))) return trace;
  let n = 2;
  while (steps.length >= 2 && runs < budget) {
    const size = Math.ceil(steps.length / n);
    let reduced = false;
    for (let i = 0; i < n && runs < budget; i++) {
      const complement = [...steps.slice(0, i * size), ...steps.slice((i + 1) * size)];
      if (complement.length < steps.length && (await reproduces(complement))) {
        steps = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= steps.length) break;
      n = Math.min(n * 2, steps.length);
    }
  }
  return { ...trace, steps };
}

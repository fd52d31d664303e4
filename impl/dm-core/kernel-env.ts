// What the dm-core reference implementation needs from "the kernel" around it: a scheduler gate for
// its threads, a way to sleep until a condition holds (msleep loops, wait_for_completion), and an
// oops recorder (BUG_ON, KASAN-style use-after-free). Nothing here is dm-specific.

import type { Ev, Gate } from '../../checker/model.js';

export class KernelEnv {
  oops = '';
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  constructor(readonly gate: Gate<Ev>) {}

  /** Record the first oops; later ones are consequences. */
  bug(what: string): void {
    if (!this.oops) this.oops = what;
  }

  /** Resolves once `pred` holds; re-checked whenever state changes (see wake). */
  waitUntil(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  /** Called after every state change: wakes the sleepers whose condition now holds. */
  wake(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.pred() ? w.resolve : () => still.push(w))();
    this.waiters = still;
  }

  /**
   * Take step `e` once `cond` holds, atomically with the engine's release of the step: the condition
   * is re-checked at release and the thread goes back to sleep if another thread undid it meanwhile.
   */
  async stepWhen(e: Ev, cond: () => boolean = () => true): Promise<void> {
    for (;;) {
      await this.waitUntil(cond);
      if (await this.gate.step(e, cond)) return;
    }
  }
}

// Scheduling support for the mirror implementation: a gate that holds every internal step until a
// test (or the engine) releases it, so the interleaving of kmirrord, dmlogd, the server and the
// network is chosen from outside and replays exactly. See checker/model.ts (Gate).

import type { Ev, Gate } from '../../checker/model.js';

export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface HeldStep {
  readonly e: Ev;
  readonly ready: (() => boolean) | undefined;
  readonly release: (go: boolean) => void;
}

/** Holds steps in announcement order. */
export class ManualGate implements Gate<Ev> {
  readonly held: HeldStep[] = [];
  /** Every released step, in order (the trace of internal steps). */
  readonly log: Ev[] = [];

  /** `passThrough`: steps answered at once, never held (e.g. RPCs a driver treats as atomic). */
  constructor(private readonly passThrough: (e: Ev) => boolean = () => false) {}

  step = (e: Ev, ready?: () => boolean): Promise<boolean> => {
    if (this.passThrough(e)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      this.held.push({ e, ready, release: resolve });
    });
  };

  /** Steps whose condition no longer holds are answered false and forgotten. */
  private prune(): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i]!;
      if (h.ready && !h.ready()) {
        this.held.splice(i, 1);
        h.release(false);
      }
    }
  }

  /** Releases the first held step matching `pred` now, without waiting; false if none is held. */
  releaseNow(pred: (e: Ev) => boolean = () => true): boolean {
    this.prune();
    const i = this.held.findIndex((h) => pred(h.e));
    if (i < 0) return false;
    const [h] = this.held.splice(i, 1);
    this.log.push(h!.e);
    h!.release(true);
    return true;
  }

  /** Lets pending work announce its steps, releases the first matching one, and lets it run. */
  async release(pred: (e: Ev) => boolean = () => true): Promise<boolean> {
    await settle();
    if (!this.releaseNow(pred)) return false;
    await settle();
    return true;
  }

  /** The held steps matching `pred` (after dropping those whose condition no longer holds). */
  find(pred: (e: Ev) => boolean): Ev[] {
    this.prune();
    return this.held.filter((h) => pred(h.e)).map((h) => h.e);
  }

  /** Releases matching steps (including ones they cause) until none is held; returns how many. */
  async drain(pred: (e: Ev) => boolean = () => true, max = 100_000): Promise<number> {
    let n = 0;
    while (n < max && (await this.release(pred))) n++;
    if (n >= max) throw new Error(`drain: still busy after ${max} steps; a livelock in the implementation?`);
    return n;
  }

  /** Power cut: every held step is forgotten (its thread never runs again). */
  dropAll(): void {
    this.held.length = 0;
  }

  pending(): string[] {
    this.prune();
    return this.held.map((h) => h.e.type);
  }
}

export const notTimer = (e: Ev): boolean => e.type !== 'lazyfire' && e.type !== 'timeout';

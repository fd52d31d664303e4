// Hand-written reducer of the kobject release-sequencing model, for the explorer benchmark only: the
// same semantics as machines/kobject/machine.ts under the 'fixed' profile with no mutant (which
// follows drivers/md/dm.c __dm_destroy/free_dev/dm_get/dm_get_md, dm-sysfs.c, dm-builtin.c and
// lib/kobject.c), written the way a performance-minded engineer would without a machine library:
// the state is one flat array of small integers, an event is (kind, thread index), and `step` is a
// switch. It must reach exactly the states and edges the explorer reaches (the benchmark checks).

export interface KobjBenchBounds {
  readonly readers: number;
  readonly getters: number;
  readonly foreign: number;
  readonly openers: number;
}

// Flat layout: scalar fields, then one slot per thread.
const DEV = 0; // 0 absent, 1 live, 2 freed
const DST = 1; // device region state, see D_*
const DELETING = 2;
const FREEING = 3;
const SYSFS = 4;
const KREF = 5;
const HOLDERS = 6;
const OPEN_COUNT = 7;
const ACTIVE = 8;
const COMPLETIONS = 9;
const SYSFS_EXITS = 10;
const MODREF = 11;
const DEVREF = 12;
const LOADED = 13;
const REL_PENDING = 14;
const OOPS = 15; // 0 none, else 1 + index into the oops table
const REL = 16; // release region: 0 idle, 1 running
const MOD = 17; // module region: 0 loaded, 1 unloaded
const THREADS = 18;

// Device region states.
const D_ABSENT = 0, D_LIVE = 1, D_EBUSY = 2, D_DELETING = 3, D_FREEING = 4, D_DRAINED = 5, D_PUT = 6, D_COMPLETED = 7, D_TABLE = 8, D_MODPUT = 9, D_FREED = 10;
// Reader states.
const R_IDLE = 0, R_OPEN = 1, R_HOLDING = 2, R_SHOWN = 3, R_EINVAL = 4, R_DONE = 5;
// Getter states.
const G_IDLE = 0, G_HOLDING = 1, G_DONE = 2;
// Opener states.
const O_CLOSED = 0, O_OPEN = 1;
// Foreign holder states.
const F_NONE = 0, F_HOLDING = 1, F_DONE = 2;

// Event kinds.
export const enum K {
  CREATE, REMOVE, SET_FREEING, HOLDERS_DRAINED, SYSFS_PUT, WAIT_DONE, TABLE_DESTROY, MODULE_PUT, KFREE,
  RELEASE_RUN, RELEASE_RETURN,
  READ_OPEN, READ_GET, READ_EINVAL, READ_PUT, READ_CLOSE,
  GETMD_FIND, GETMD_NOTFOUND, GETMD_PUT,
  OPEN, CLOSE, FOREIGN_GET, FOREIGN_PUT, RMMOD,
}

export interface KEvent {
  readonly k: K;
  /** Thread index for per-thread events, else 0. */
  readonly i: number;
}

export type KState = readonly number[];

export class KobjReducer {
  private readonly r0: number;
  private readonly g0: number;
  private readonly o0: number;
  private readonly f0: number;
  private readonly size: number;
  /** Oops messages in order of first appearance; the state stores 1 + index. */
  private readonly oopsTable: string[] = [];
  readonly events: readonly KEvent[];

  constructor(readonly b: KobjBenchBounds) {
    this.r0 = THREADS;
    this.g0 = this.r0 + b.readers;
    this.o0 = this.g0 + b.getters;
    this.f0 = this.o0 + b.openers;
    this.size = this.f0 + b.foreign;
    const ev: KEvent[] = [];
    for (let k = K.CREATE; k <= K.RELEASE_RETURN; k++) ev.push({ k, i: 0 });
    for (let r = 0; r < b.readers; r++) for (let k = K.READ_OPEN; k <= K.READ_CLOSE; k++) ev.push({ k, i: r });
    for (let g = 0; g < b.getters; g++) for (let k = K.GETMD_FIND; k <= K.GETMD_PUT; k++) ev.push({ k, i: g });
    for (let o = 0; o < b.openers; o++) ev.push({ k: K.OPEN, i: o }, { k: K.CLOSE, i: o });
    for (let f = 0; f < b.foreign; f++) ev.push({ k: K.FOREIGN_GET, i: f }, { k: K.FOREIGN_PUT, i: f });
    ev.push({ k: K.RMMOD, i: 0 });
    this.events = ev;
  }

  initial(): KState {
    const s = new Array<number>(this.size).fill(0);
    s[LOADED] = 1;
    return s;
  }

  key(s: KState): string {
    return String.fromCharCode.apply(null, s as number[]);
  }

  private oops(n: number[], what: string): void {
    if (n[OOPS] !== 0) return;
    let i = this.oopsTable.indexOf(what);
    if (i < 0) i = this.oopsTable.push(what) - 1;
    n[OOPS] = i + 1;
  }

  /** Any access to a freed md is a use-after-free. */
  private touch(n: number[], what: string): void {
    if (n[DEV] === 2) this.oops(n, `UAF: ${what} on freed mapped_device`);
  }

  private dmGet(n: number[], who: string): void {
    this.touch(n, `${who} dm_get`);
    if (n[FREEING]) this.oops(n, `BUG_ON(DMF_FREEING) in dm_get from ${who}`);
    n[HOLDERS]!++;
  }

  private dmPut(n: number[], who: string): void {
    this.touch(n, `${who} dm_put`);
    n[HOLDERS]!--;
  }

  private kobjPut(n: number[], who: string): void {
    this.touch(n, `${who} kobject_put`);
    const kref = n[KREF]! - 1;
    n[KREF] = kref;
    if (kref === 0) n[REL_PENDING] = 1;
  }

  /** The successor of `s` under `e`, or null when `e` is disabled. */
  step(s: KState, e: KEvent): KState | null {
    const flags = s[DELETING]! | s[FREEING]!;
    switch (e.k) {
      case K.CREATE: {
        if (s[DST] !== D_ABSENT || !s[LOADED]) return null;
        const n = s.slice();
        n[DST] = D_LIVE;
        n[DEV] = 1;
        n[KREF] = 1;
        n[SYSFS] = 1;
        n[MODREF]!++;
        n[DEVREF] = 1;
        return n;
      }
      case K.REMOVE: {
        if (s[DST] !== D_LIVE && s[DST] !== D_EBUSY) return null;
        if (s[DEV] === 1 && !s[DELETING] && s[OPEN_COUNT] === 0) {
          const n = s.slice();
          n[DST] = D_DELETING;
          n[DELETING] = 1;
          n[MODREF]!++;
          return n;
        }
        if (s[DEV] === 1 && s[OPEN_COUNT]! > 0) {
          const n = s.slice();
          n[DST] = D_EBUSY;
          return n;
        }
        return null;
      }
      case K.SET_FREEING: {
        if (s[DST] !== D_DELETING) return null;
        const n = s.slice();
        n[DST] = D_FREEING;
        n[FREEING] = 1;
        return n;
      }
      case K.HOLDERS_DRAINED: {
        if (s[DST] !== D_FREEING || s[HOLDERS] !== 0) return null;
        const n = s.slice();
        n[DST] = D_DRAINED;
        return n;
      }
      case K.SYSFS_PUT: {
        if (s[DST] !== D_DRAINED) return null;
        const n = s.slice();
        n[DST] = D_PUT;
        n[SYSFS_EXITS]!++;
        this.kobjPut(n, 'dm_sysfs_exit');
        return n;
      }
      case K.WAIT_DONE: {
        if (s[DST] !== D_PUT || s[COMPLETIONS] === 0) return null;
        const n = s.slice();
        n[DST] = D_COMPLETED;
        return n;
      }
      case K.TABLE_DESTROY: {
        if (s[DST] !== D_COMPLETED) return null;
        const n = s.slice();
        n[DST] = D_TABLE;
        return n;
      }
      case K.MODULE_PUT: {
        if (s[DST] !== D_TABLE) return null;
        const n = s.slice();
        n[DST] = D_MODPUT;
        n[MODREF]!--;
        n[DEVREF] = 0;
        return n;
      }
      case K.KFREE: {
        if (s[DST] !== D_MODPUT) return null;
        const n = s.slice();
        n[DST] = D_FREED;
        n[DEV] = 2;
        n[MODREF]!--;
        return n;
      }
      case K.RELEASE_RUN: {
        if (s[REL] !== 0 || !s[REL_PENDING] || s[ACTIVE] !== 0) return null;
        const n = s.slice();
        n[REL] = 1;
        n[REL_PENDING] = 0;
        n[SYSFS] = 0;
        this.touch(n, 'kobject_cleanup');
        n[COMPLETIONS]!++;
        return n;
      }
      case K.RELEASE_RETURN: {
        if (s[REL] !== 1) return null;
        const n = s.slice();
        n[REL] = 0;
        return n;
      }
      case K.READ_OPEN: {
        const at = this.r0 + e.i;
        if (s[at] !== R_IDLE || !s[SYSFS]) return null;
        const n = s.slice();
        n[at] = R_OPEN;
        this.touch(n, `sysfs reader ${e.i} open`);
        n[ACTIVE]!++;
        return n;
      }
      case K.READ_GET: {
        const at = this.r0 + e.i;
        if (s[at] !== R_OPEN || flags) return null;
        const n = s.slice();
        n[at] = R_HOLDING;
        this.dmGet(n, `sysfs reader ${e.i}`);
        return n;
      }
      case K.READ_EINVAL: {
        const at = this.r0 + e.i;
        if (s[at] !== R_OPEN || !flags) return null;
        const n = s.slice();
        n[at] = R_EINVAL;
        this.touch(n, `sysfs reader ${e.i} dm_get_from_kobject`);
        return n;
      }
      case K.READ_PUT: {
        const at = this.r0 + e.i;
        if (s[at] !== R_HOLDING) return null;
        const n = s.slice();
        n[at] = R_SHOWN;
        this.dmPut(n, `sysfs reader ${e.i}`);
        return n;
      }
      case K.READ_CLOSE: {
        const at = this.r0 + e.i;
        if (s[at] !== R_SHOWN && s[at] !== R_EINVAL) return null;
        const n = s.slice();
        n[at] = R_DONE;
        n[ACTIVE]!--;
        return n;
      }
      case K.GETMD_FIND: {
        const at = this.g0 + e.i;
        if (s[at] !== G_IDLE || s[DEV] !== 1 || flags) return null;
        const n = s.slice();
        n[at] = G_HOLDING;
        this.dmGet(n, `dm_get_md ${e.i}`);
        return n;
      }
      case K.GETMD_NOTFOUND: {
        const at = this.g0 + e.i;
        if (s[at] !== G_IDLE || (s[DEV] === 1 && !flags)) return null;
        const n = s.slice();
        n[at] = G_DONE;
        return n;
      }
      case K.GETMD_PUT: {
        const at = this.g0 + e.i;
        if (s[at] !== G_HOLDING) return null;
        const n = s.slice();
        n[at] = G_DONE;
        this.dmPut(n, `dm_get_md ${e.i}`);
        return n;
      }
      case K.OPEN: {
        const at = this.o0 + e.i;
        if (s[at] !== O_CLOSED || s[DEV] !== 1 || flags) return null;
        const n = s.slice();
        n[at] = O_OPEN;
        n[OPEN_COUNT]!++;
        n[HOLDERS]!++;
        return n;
      }
      case K.CLOSE: {
        const at = this.o0 + e.i;
        if (s[at] !== O_OPEN) return null;
        const n = s.slice();
        n[at] = O_CLOSED;
        this.dmPut(n, `opener ${e.i}`);
        n[OPEN_COUNT]!--;
        return n;
      }
      case K.FOREIGN_GET: {
        const at = this.f0 + e.i;
        if (s[at] !== F_NONE || s[DEV] !== 1 || s[KREF]! <= 0) return null;
        const n = s.slice();
        n[at] = F_HOLDING;
        n[KREF]!++;
        return n;
      }
      case K.FOREIGN_PUT: {
        const at = this.f0 + e.i;
        if (s[at] !== F_HOLDING) return null;
        const n = s.slice();
        n[at] = F_DONE;
        this.kobjPut(n, `foreign holder ${e.i}`);
        return n;
      }
      case K.RMMOD: {
        if (s[MOD] !== 0 || s[MODREF] !== 0) return null;
        const n = s.slice();
        n[MOD] = 1;
        n[LOADED] = 0;
        return n;
      }
    }
  }
}

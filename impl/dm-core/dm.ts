// drivers/md/dm.c and dm-ioctl.c, the parts that govern a mapped_device's lifetime in Linux 3.14:
// alloc_dev/dm_sysfs_init (create), dev_remove → dm_lock_for_deletion → __dm_destroy → free_dev,
// dm_get/dm_put, dm_get_md, dm_blk_open/close, and the kobject release wiring. Each thread is an
// async function that announces every atomic step through the engine's gate, so fast-check's
// scheduler can interleave the threads and a trace can replay one interleaving exactly.

import type { Ev, Gate, Json } from '../../checker/model.js';
import { kobjCode, removeSteps, afterStep, type KobjBounds, type KobjCode } from '../../machines/kobject/machine.js';
import type { Variant } from '../../checker/model.js';
import { dmKobjectRelease } from './dm-builtin.js';
import { dmSysfsExitPut, sysfsRead } from './dm-sysfs.js';
import { KernelEnv } from './kernel-env.js';
import { Kobject } from './kobject.js';
import { Module } from './module.js';

export class Completion {
  done = 0;
  constructor(private readonly env: KernelEnv) {}
  complete(): void {
    this.done++;
    this.env.wake();
  }
}

export class MappedDevice {
  deleting = false;
  freeing = false;
  holders = 0;
  openCount = 0;
  sysfsExits = 0;
  freed = false;
  /** alloc_dev's try_module_get, until free_dev's module_put. */
  devRef = true;
  readonly completion: Completion;
  readonly kobj: Kobject;

  constructor(core: DmCore) {
    this.completion = new Completion(core.env);
    const release = core.code.hasRelease ? () => dmKobjectRelease(this.completion) : null;
    this.kobj = new Kobject({ release }, (what) => core.touch(what), () => core.startRelease());
  }
}

export class DmCore {
  readonly env: KernelEnv;
  readonly code: KobjCode;
  readonly module = new Module();
  md: MappedDevice | null = null;
  /** Where each thread is, named as the machine names its region states. */
  private readonly threads: Record<string, string> = {};

  constructor(variant: Variant, readonly bounds: KobjBounds, gate: Gate<Ev>) {
    this.env = new KernelEnv(gate);
    this.code = kobjCode(variant);
    this.threads['device'] = 'absent';
    this.threads['release'] = 'idle';
    for (let i = 0; i < bounds.readers; i++) this.threads[`reader${i}`] = 'idle';
    for (let i = 0; i < bounds.getters; i++) this.threads[`getter${i}`] = 'idle';
    for (let i = 0; i < bounds.openers; i++) this.threads[`opener${i}`] = 'closed';
    for (let i = 0; i < bounds.foreign; i++) this.threads[`foreign${i}`] = 'none';
    this.threads['module'] = 'loaded';
  }

  setThread(name: string, state: string): void {
    this.threads[name] = state;
    this.env.wake();
  }

  /** A KASAN-style check: any access to a freed md is an oops. */
  touch(what: string): void {
    if (this.md?.freed) this.env.bug(`UAF: ${what} on freed mapped_device`);
  }

  dmGet(md: MappedDevice, who: string): void {
    this.touch(`${who} dm_get`);
    if (md.freeing) this.env.bug(`BUG_ON(DMF_FREEING) in dm_get from ${who}`);
    md.holders++;
    this.env.wake();
  }

  dmPut(md: MappedDevice, who: string): void {
    this.touch(`${who} dm_put`);
    md.holders--;
    this.env.wake();
  }

  // ---- external events -------------------------------------------------------------------------

  /** alloc_dev + dm_sysfs_init. */
  create(): void {
    if (this.md || !this.module.get()) throw new Error('CREATE: device exists or module unloaded');
    this.md = new MappedDevice(this);
    this.md.kobj.initAndAdd();
    this.setThread('device', 'live');
  }

  /** dev_remove: dm_lock_for_deletion, then __dm_destroy in the background of this thread. */
  remove(): Promise<void> | void {
    const md = this.md;
    if (!md || md.freed || md.deleting) throw new Error('REMOVE: no live device');
    if (md.openCount > 0) {
      this.setThread('device', 'ebusy'); // -EBUSY
      return;
    }
    md.deleting = true;
    // The ioctl's open /dev/mapper/control pins dm-mod until dev_remove returns.
    this.module.get();
    this.setThread('device', afterStep['REMOVE']!);
    return this.destroy(md);
  }

  private async destroy(md: MappedDevice): Promise<void> {
    const env = this.env;
    for (const step of removeSteps(this.code)) {
      switch (step) {
        case 'SET_FREEING':
          await env.stepWhen({ type: step });
          md.freeing = true;
          break;
        case 'HOLDERS_DRAINED':
          // The msleep(1) loop until md->holders == 0 (dm_destroy_immediate does not wait).
          await env.stepWhen({ type: step }, this.code.waitHolders ? () => md.holders === 0 : undefined);
          break;
        case 'SYSFS_PUT':
          await env.stepWhen({ type: step });
          dmSysfsExitPut(this, md);
          break;
        case 'WAIT_DONE':
          await env.stepWhen({ type: step }, () => md.completion.done > 0);
          break;
        case 'TABLE_DESTROY':
          await env.stepWhen({ type: step });
          break;
        case 'MODULE_PUT':
          await env.stepWhen({ type: step });
          this.module.put();
          md.devRef = false;
          break;
        case 'KFREE':
          await env.stepWhen({ type: step });
          md.freed = true;
          this.module.put();
          break;
      }
      this.setThread('device', afterStep[step]!);
    }
  }

  /** The final kobject_put happened: kobject_cleanup runs later in a worker (DEBUG_KOBJECT_RELEASE). */
  startRelease(): void {
    const md = this.md!;
    void (async () => {
      await this.env.stepWhen({ type: 'RELEASE_RUN' }, () => md.kobj.active === 0);
      md.kobj.cleanup();
      this.setThread('release', 'running');
      await this.env.stepWhen({ type: 'RELEASE_RETURN' });
      if (this.code.releaseInModule && !this.module.loaded) this.env.bug('executing unloaded dm-mod text: dm_kobject_release returns');
      this.setThread('release', 'idle');
    })();
  }

  readOpen(r: number): Promise<void> {
    const md = this.md;
    if (!md || !md.kobj.inSysfs) throw new Error(`READ_OPEN: no sysfs directory for reader ${r}`);
    this.touch(`sysfs reader ${r} open`);
    md.kobj.active++;
    this.setThread(`reader${r}`, 'open');
    return sysfsRead(this, r);
  }

  /** dm_get_md: dm_find_md under _minor_lock; 3.14 takes the reference after the unlock. */
  getMd(g: number): Promise<void> | void {
    const md = this.md;
    const me = `getter${g}`;
    const who = `dm_get_md ${g}`;
    if (!md || md.freed || md.deleting || md.freeing) {
      this.setThread(me, 'done'); // NULL: -ENXIO to the caller
      return;
    }
    if (this.code.lockedGetMd) {
      this.dmGet(md, who);
      this.setThread(me, 'holding');
    } else {
      this.setThread(me, 'found');
    }
    return (async () => {
      if (!this.code.lockedGetMd) {
        await this.env.stepWhen({ type: 'GETMD_GET', g });
        this.dmGet(md, who);
        this.setThread(me, 'holding');
      }
      await this.env.stepWhen({ type: 'GETMD_PUT', g });
      this.dmPut(md, who);
      this.setThread(me, 'done');
    })();
  }

  /** dm_blk_open: under _minor_lock, refuses a device being deleted or freed. */
  open(o: number): void {
    const md = this.md;
    if (!md || md.freed || md.deleting || md.freeing) throw new Error(`OPEN: opener ${o} found no openable device`);
    md.openCount++;
    md.holders++;
    this.setThread(`opener${o}`, 'open');
  }

  close(o: number): void {
    const md = this.md!;
    this.dmPut(md, `opener ${o}`);
    md.openCount--;
    this.setThread(`opener${o}`, 'closed');
  }

  foreignGet(f: number): void {
    this.md!.kobj.get();
    this.setThread(`foreign${f}`, 'holding');
  }

  foreignPut(f: number): void {
    this.md!.kobj.put(`foreign holder ${f}`);
    this.setThread(`foreign${f}`, 'done');
  }

  rmmod(): void {
    if (!this.module.unload()) throw new Error('RMMOD: module still referenced');
    this.setThread('module', 'unloaded');
  }

  /** The observable state, in the machine's vocabulary (see properties/kobject/model.ts). */
  project(): Json {
    const md = this.md;
    return {
      value: { ...this.threads },
      dev: md === null ? 0 : md.freed ? 2 : 1,
      deleting: md?.deleting ?? false,
      freeing: md?.freeing ?? false,
      sysfs: md?.kobj.inSysfs ?? false,
      kref: md?.kobj.kref ?? 0,
      holders: md?.holders ?? 0,
      openCount: md?.openCount ?? 0,
      active: md?.kobj.active ?? 0,
      completions: md?.completion.done ?? 0,
      sysfsExits: md?.sysfsExits ?? 0,
      modref: this.module.refs,
      devRef: md?.devRef ?? false,
      loaded: this.module.loaded,
      relPending: md?.kobj.releasePending ?? false,
      oops: this.env.oops,
    };
  }
}

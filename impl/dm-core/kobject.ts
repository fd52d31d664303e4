// lib/kobject.c and the sysfs active references of fs/kernfs: kref counting, the final put, and
// kobject_cleanup (kobject_del drains in-flight show() calls, then ktype->release runs). With
// CONFIG_DEBUG_KOBJECT_RELEASE the release is delayed, so it runs in a thread of its own.

export interface KobjectType {
  /** ktype->release; null in the pre-be35f486 dm_ktype, which had none. */
  readonly release: (() => void) | null;
}

export class Kobject {
  kref = 0;
  /** The sysfs directory exists (kobject_add until kobject_del). */
  inSysfs = false;
  /** kernfs active references held by show() calls in flight. */
  active = 0;
  releasePending = false;

  constructor(
    readonly ktype: KobjectType,
    /** Reports an access to the kobject's memory, so the owner can flag a use after free. */
    private readonly touch: (what: string) => void,
    /** Called when the last reference goes: the owner starts the (delayed) release. */
    private readonly onLastPut: () => void,
  ) {}

  initAndAdd(): void {
    this.kref = 1;
    this.inSysfs = true;
  }

  get(): void {
    this.touch('kobject_get');
    this.kref++;
  }

  put(who: string): void {
    this.touch(`${who} kobject_put`);
    this.kref--;
    if (this.kref === 0) {
      this.releasePending = true;
      this.onLastPut();
    }
  }

  /** kobject_cleanup: remove from sysfs (the caller has waited for active == 0), then release. */
  cleanup(): void {
    this.touch('kobject_cleanup');
    this.releasePending = false;
    this.inSysfs = false;
    this.ktype.release?.();
  }
}

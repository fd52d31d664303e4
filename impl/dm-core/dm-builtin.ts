// drivers/md/dm-builtin.c: dm_kobject_release, the kobject release of a mapped_device. It lives in
// code that is always built in, so a release thread preempted after complete() never resumes in the
// text of an unloaded dm-mod ("dm sysfs: fix a module unload race").

import type { Completion } from './dm.js';

export function dmKobjectRelease(completion: Completion): void {
  completion.complete();
}

// drivers/md/dm-sysfs.c: dm_sysfs_exit (put the md's kobject reference, then wait for the release)
// and dm_attr_show (take the md through dm_get_from_kobject, -EINVAL once it is going away).

import type { DmCore, MappedDevice } from './dm.js';

/** dm_sysfs_exit's first half; the wait is the caller's next step (see DmCore.destroy). */
export function dmSysfsExitPut(core: DmCore, md: MappedDevice): void {
  md.sysfsExits++;
  md.kobj.put('dm_sysfs_exit');
  // Mutant complete-in-sysfs-exit: signal here instead of in the release.
  if (core.code.completeInExit) md.completion.complete();
}

/** One sysfs read of /sys/block/dm-N/dm/<attr>, from kernfs open to close. */
export async function sysfsRead(core: DmCore, r: number): Promise<void> {
  const env = core.env;
  const me = `reader${r}`;
  const md = core.md!;
  const going = (): boolean => md.deleting || md.freeing;
  for (;;) {
    if (core.code.lockedGetFromKobject) {
      // dm_get_from_kobject under _minor_lock: test and get in one step.
      const e = going() ? 'READ_EINVAL' : 'READ_GET';
      if (!(await env.gate.step({ type: e, r }, () => going() === (e === 'READ_EINVAL')))) continue;
      core.touch(`sysfs reader ${r} dm_get_from_kobject`);
      if (e === 'READ_EINVAL') {
        core.setThread(me, 'einval');
        break;
      }
      core.dmGet(md, `sysfs reader ${r}`);
      core.setThread(me, 'holding');
    } else {
      // 3.14: the flag test and dm_get are separate steps, so __dm_destroy can set FREEING between them.
      const e = going() ? 'READ_EINVAL' : 'READ_TEST';
      if (!(await env.gate.step({ type: e, r }, () => going() === (e === 'READ_EINVAL')))) continue;
      core.touch(e === 'READ_EINVAL' ? `sysfs reader ${r} dm_get_from_kobject` : `sysfs reader ${r} flag test`);
      if (e === 'READ_EINVAL') {
        core.setThread(me, 'einval');
        break;
      }
      core.setThread(me, 'tested');
      await env.gate.step({ type: 'READ_GET', r });
      core.dmGet(md, `sysfs reader ${r}`);
      core.setThread(me, 'holding');
    }
    await env.gate.step({ type: 'READ_PUT', r });
    core.dmPut(md, `sysfs reader ${r}`);
    core.setThread(me, 'shown');
    break;
  }
  await env.gate.step({ type: 'READ_CLOSE', r });
  md.kobj.active--;
  core.setThread(me, 'done');
}

// The IO outcome table of dm-thin.md §2.1 (drivers/md/dm-thin.c, Linux 3.14.1: thin_bio_map,
// process_bio, process_bio_read_only, process_bio_fail, process_discard, issue,
// should_error_unserviceable_bio), written as a declarative function independent of the machine's
// step, so the THIN-POOL-4 invariant compares two separate descriptions of the same rule.

import type { IoRecord, IoResult, Mode, Profile } from '../../machines/thin-pool/types.js';

/** What an unserviceable bio gets in this mode (should_error_unserviceable_bio + errno by profile). */
export function unserviceableOutcome(profile: Profile, mode: Mode, eins: boolean): IoResult {
  if (mode === 'out_of_data_space') return eins ? (profile === 'fixed' ? 'ENOSPC' : 'EIO') : 'queued';
  return 'EIO';
}

/** Outcome of a flush that reached issue(): a commit is needed only when thin 0 changed. */
function flushOutcome(profile: Profile, mode: Mode, r: IoRecord): IoResult {
  if (!r.changed) return 'ok';
  if (r.aborted) return 'EIO';
  const commitAllowed = mode === 'write' || (profile === 'fixed' && mode === 'out_of_data_space');
  if (!commitAllowed) return 'EIO';
  return r.mdFail ? 'EIO' : 'ok';
}

/** The expected result for one bio record; null when the record's facts do not pin one down. */
export function expectedOutcome(profile: Profile, r: IoRecord): IoResult | null {
  const mode = r.mode;
  if (mode === 'fail') return 'EIO';
  switch (r.cls) {
    case 'read-mapped':
    case 'write-mapped':
      return 'remap';
    case 'read-unmapped':
      return 'zero';
    case 'discard-mapped':
    case 'discard-unmapped':
      return 'ok';
    case 'flush-mapped':
      return flushOutcome(profile, mode, r);
    case 'flush-unmapped':
      return mode === 'write' ? flushOutcome(profile, mode, r) : unserviceableOutcome(profile, mode, r.eins);
    case 'write-unmapped':
    case 'write-shared':
      if (mode !== 'write') return unserviceableOutcome(profile, mode, r.eins);
      // Provisioning: ENOSPC switches to out_of_data_space and the bio follows that mode's rule.
      if (r.noSpace) return unserviceableOutcome(profile, 'out_of_data_space', r.eins);
      if (r.noMdSpace) return null; // fixed: out_of_metadata_space (EIO) or a failed early commit (EIO)
      return r.mdFail ? 'EIO' : 'remap';
  }
}

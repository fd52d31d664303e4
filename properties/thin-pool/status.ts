// The pool INFO status line (drivers/md/dm-thin.c pool_status, Linux 3.14.1; the `fixed` profile
// adds the later needs_check word and reports out_of_metadata_space as `ro`).

import type { Mode, PoolCtx, Profile } from '../../machines/thin-pool/types.js';
import { dataUsed, mdFree } from '../../machines/thin-pool/semantics.js';

export function modeWord(mode: Mode): string {
  switch (mode) {
    case 'write':
      return 'rw';
    case 'out_of_data_space':
      return 'out_of_data_space';
    case 'read_only':
    case 'out_of_metadata_space':
      return 'ro';
    case 'fail':
      return 'Fail';
  }
}

export function statusLine(mode: Mode, c: PoolCtx, profile: Profile): string {
  if (mode === 'fail') return 'Fail';
  const words = [
    '0',
    `${c.mdNrNew - mdFree(c)}/${c.mdNrNew}`,
    `${dataUsed(c)}/${c.dataNr}`,
    '-',
    modeWord(mode),
    'discard_passdown',
    c.eins ? 'error_if_no_space' : 'queue_if_no_space',
  ];
  if (profile === 'fixed') words.push(c.needsCheck ? 'needs_check' : '-');
  return words.join(' ');
}

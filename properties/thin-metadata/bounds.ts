// Bounds of the thin-metadata model (machines/thin/pool-txn.ts; drivers/md/dm-thin-metadata.c).
// Defaults are small enough that exhaustive exploration takes seconds.

import type { BoundSpec } from '../../checker/model.js';

export const thinBounds: Readonly<Record<string, BoundSpec>> = {
  devices: { default: 2, min: 1, max: 4, describe: 'thin device ids' },
  vblocks: { default: 1, min: 1, max: 64, describe: 'virtual blocks per thin device (above 4: lockstep and replay only)' },
  dblocks: { default: 2, min: 1, max: 128, describe: 'data blocks in the pool (above 8: lockstep and replay only)' },
  writes: { default: 2, min: 0, max: 128, describe: 'user writes (each carries a fresh value; above 8: lockstep and replay only)' },
  tids: { default: 0, min: 0, max: 4, describe: 'highest transaction id set_transaction_id may set (0: no set_transaction_id)' },
  metasnap: { default: 0, min: 0, max: 2, describe: '1: reserve/release_metadata_snap messages are tried; 2: also a reserve raced by a provisioning write' },
  metaresize: { default: 0, min: 0, max: 1, describe: '1: the metadata device may be grown once, past the first space-map bitmap' },
  faults: { default: 0, min: 0, max: 1, describe: '1: a commit may fail with a metadata write error (abort, reopen from disk)' },
  autocommit: { default: 0, min: 0, max: 1, describe: '1: a successful message is committed at once, as pool_message does (no crash point between)' },
  run: { default: 1, min: 1, max: 8192, describe: 'kernel blocks per modelled block (implementation only: a write or discard covers a run of this many blocks; 126 is one mapping leaf)' },
  fua: { default: 1, min: 0, max: 2, describe: 'writes tried: 0 plain only, 1 plain and FUA, 2 FUA only' },
  close: { default: 0, min: 0, max: 1, describe: '1: thin devices may be closed again (deactivated)' },
  phased: { default: 1, min: 0, max: 1, describe: '1: commit in four crash-interruptible steps; 0: atomic commit' },
};

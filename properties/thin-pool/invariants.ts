// Invariants THIN-POOL-1..15 of spec/thin-pool.md over the abstract pool (machines/thin-pool).
// Kernel: drivers/md/dm-thin.c (Linux 3.14.1) set_pool_mode, metadata_operation_failed, commit,
// alloc_data_block, pool_preresume, pool_resume, pool_message, check_low_water_mark; dm-space-map-
// metadata.c check_threshold. Transition rules read the ghost `last` record the step leaves behind.

import type { Invariant } from '../../checker/model.js';
import type { MState } from '../../checker/machine.js';
import type { Mode, PoolCtx, Profile } from '../../machines/thin-pool/types.js';
import { metadataThreshold } from '../../machines/thin-pool/semantics.js';
import { expectedOutcome } from './io-table.js';

type S = MState<PoolCtx>;
const modeOf = (s: S): Mode => s.value[0] as Mode;
const evType = (s: S): string => s.context.last?.type ?? '';

export function poolInvariants(profile: Profile): Invariant<S>[] {
  const fixed = profile === 'fixed';
  const inv: Invariant<S>[] = [
    {
      spec: ['THIN-POOL-1'],
      name: 'mode lattice',
      check: (s) => {
        const c = s.context;
        const l = c.last;
        const m = modeOf(s);
        if (c.needsCheck && m === 'write') return 'pool is in write mode while needs_check is set';
        if (!l) return null;
        const ev = evType(s);
        if (l.modeFrom === 'fail' && m !== 'fail' && ev !== 'reactivate') return `left fail mode on '${l.ev}'`;
        if (l.modeFrom !== 'write' && m === 'write') {
          const byReload = ev === 'reload' || ev === 'reactivate';
          const byFreedSpace = fixed && l.committed && l.modeFrom === 'out_of_data_space';
          if (!byReload && !byFreedSpace) return `${l.modeFrom} -> write on '${l.ev}', which is neither a table reload nor (fixed) a commit that freed space`;
        }
        if (ev === 'resume' && m !== l.modeFrom && l.mdFailures.length === 0 && !(fixed && l.committed)) {
          return `a plain suspend/resume changed the mode ${l.modeFrom} -> ${m}`;
        }
        if (ev === 'reload' && l.bind !== null && l.bind !== 'write' && l.modeFrom !== 'fail' && !c.needsCheck) {
          return `a table reload bound the pool in ${l.bind} although neither fail mode nor needs_check holds`;
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-2'],
      name: 'degradation side effects',
      check: (s) => {
        const c = s.context;
        const l = c.last;
        const m = modeOf(s);
        if ((m === 'read_only' || m === 'fail' || m === 'out_of_metadata_space') && c.retry.length > 0) return `${c.retry.length} bio(s) still queued in ${m}`;
        if (!l) return null;
        if (l.aborts.some((a) => a !== 'metadata')) return `transaction aborted without a metadata failure (cause: ${l.aborts.join(', ')})`;
        if (evType(s) === 'reactivate') return null;
        for (const f of l.mdFailures) {
          if (f.op === 'message' || f.op === 'remove') continue; // returned to the caller / logged only
          if (!l.aborts.includes('metadata')) return `metadata operation '${f.op}' failed (${f.r}) without an abort`;
          if (m !== 'read_only' && m !== 'fail' && evType(s) !== 'reload') return `metadata operation '${f.op}' failed (${f.r}) but the pool is in ${m}`;
        }
        if (l.aborts.length > 0 && !c.needsCheck) return 'an abort did not leave needs_check set';
        return null;
      },
    },
    {
      spec: ['THIN-POOL-3'],
      name: 'commit gating',
      check: (s) => {
        const l = s.context.last;
        if (!l) return null;
        if (l.writeWhileRo) return 'a metadata commit was attempted while the block manager is read-only';
        if (!fixed && evType(s) !== 'reactivate' && l.commitModes.some((m) => m !== 'write')) {
          return 'a commit happened in out_of_data_space under the 3.14 profile';
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-4'],
      name: 'IO outcome table',
      check: (s) => {
        const c = s.context;
        // fixed: the timeout's error_if_no_space lasts until write mode returns.
        const afterTimeout = fixed && c.eins && !c.einsTable && modeOf(s) !== 'write';
        // Checked after each step (replay does not judge the initial state on its own).
        if (c.last && c.eins !== c.einsTable && !afterTimeout) {
          return `the pool ${c.eins ? 'errors' : 'queues'} when out of data space, but its table says ${c.einsTable ? 'error_if_no_space' : 'queue_if_no_space'}`;
        }
        const l = c.last;
        if (!l) return null;
        for (const r of [...(l.io ? [l.io] : []), ...l.released]) {
          const want = expectedOutcome(profile, r);
          if (want !== null && want !== r.result) {
            return `${r.cls} in ${r.mode}${r.eins ? ' (error_if_no_space)' : ''}${r.noSpace ? ' after running out of data space' : ''} gave ${r.result}, the table says ${want}`;
          }
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-5'],
      name: 'no bio dropped or completed twice',
      check: (s) => {
        const c = s.context;
        if (c.balance !== 0) return `bio accounting is off by ${c.balance} (issued - completed - queued)`;
        // A pool left suspended by a failed resume keeps its retry list until the next pool_resume,
        // whatever mode bind_control_target chose (dm_table_resume_targets stops before pool_resume).
        if (c.retry.length > 0 && !(modeOf(s) === 'out_of_data_space' && !c.eins) && !c.suspended) {
          return `${c.retry.length} bio(s) queued although the pool is in ${modeOf(s)}${c.eins ? ' with error_if_no_space' : ''}`;
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-6'],
      name: 'resize monotonicity',
      check: (s) => {
        const c = s.context;
        const l = c.last;
        if (c.dataNrNew < c.dataNr || c.mdNrNew < c.mdNr) return 'an in-core space map is smaller than the committed one';
        if (!l) return null;
        if (c.dataNr < l.dataBefore || c.mdNrNew < l.mdBefore) return 'a space map shrank';
        if (c.dataNr !== l.dataBefore && !l.committed) return 'new data blocks became visible without a commit';
        // In-core sizes against in-core sizes before this step (not old_ll): a grow that was left
        // behind by an earlier step is not a grow of this one.
        if (l.ev.startsWith('reload') && c.needsCheck && (c.dataNrNew > l.dataNewBefore || c.mdNrNew > l.mdBefore) && l.aborts.length === 0) {
          return 'a device grew while needs_check is set';
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-7'],
      name: 'messages per mode',
      check: (s) => {
        const l = s.context.last;
        if (!l || l.errno === null) return null;
        const ev = evType(s);
        if (ev !== 'create_thin' && ev !== 'create_snap' && ev !== 'delete') return null;
        if (fixed && (l.modeFrom === 'read_only' || l.modeFrom === 'fail' || l.modeFrom === 'out_of_metadata_space') && l.errno !== 'EOPNOTSUPP') {
          return `message '${l.ev}' in ${l.modeFrom} returned ${l.errno}, not EOPNOTSUPP`;
        }
        if (!fixed && l.modeFrom === 'fail' && l.errno === 'ok') return `message '${l.ev}' succeeded in fail mode`;
        if (!fixed && l.modeFrom === 'read_only' && l.errno === 'ok') return `message '${l.ev}' changed metadata in read-only mode`;
        return null;
      },
    },
    {
      spec: ['THIN-POOL-8'],
      name: 'threshold events',
      check: (s) => {
        const c = s.context;
        const l = c.last;
        if (l && c.mdThr !== metadataThreshold(c.mdDevCtr)) {
          return `metadata threshold is ${c.mdThr} blocks; min(1024, ${c.mdDevCtr}/4) = ${metadataThreshold(c.mdDevCtr)}`;
        }
        if (!l) return null;
        const lw = l.events.filter((e) => e === 'low-water').length;
        const rearmed = evType(s) === 'resume' || evType(s) === 'reload' || evType(s) === 'reactivate';
        if (lw > 1 || (lw === 1 && l.lwBefore && !rearmed)) return 'data low-water event sent twice without a resume';
        // Each observation against the threshold registered when it happened (its value is judged
        // against min(1024, dev/4) above, whenever it is the current one).
        let want = 0;
        for (const o of l.mdObs) if (o.armed && o.v <= o.thr && !(o.prev >= 0 && o.prev <= o.thr)) want++;
        const got = l.events.filter((e) => e === 'md-threshold').length;
        if (got !== want) return `metadata threshold event sent ${got} time(s) in this step; downward crossings: ${want}`;
        return null;
      },
    },
    {
      spec: ['THIN-POOL-9'],
      name: 'flushed writes survive',
      check: (s) => {
        const c = s.context;
        const t0 = c.cmap[0];
        for (const v of c.durable) {
          if (!t0 || (t0[v] ?? -1) < 0) return `block ${v} was written and flushed successfully but has no committed mapping`;
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-10'],
      name: 'needs_check persists',
      check: (s) => (s.context.ncGhost && !s.context.needsCheck ? 'needs_check was lost without an offline repair' : null),
    },
    {
      spec: ['THIN-POOL-11'],
      name: 'commit possible in out_of_data_space',
      check: (s) => {
        const l = s.context.last;
        if (!l) return null;
        const io = l.io;
        if (io && io.cls === 'flush-mapped' && io.mode === 'out_of_data_space' && io.changed && !io.aborted && !io.mdFail && io.result !== 'ok') {
          return `a flush in out_of_data_space failed with ${io.result}: no commit is possible, so acknowledged writes cannot be made durable`;
        }
        if (l.ev.startsWith('delete') && l.errno === 'ok' && l.modeFrom === 'out_of_data_space' && l.mdFailures.length === 0 && !l.committed) {
          return 'a delete in out_of_data_space was accepted but not committed, so it cannot free space';
        }
        return null;
      },
    },
    {
      spec: ['THIN-POOL-12'],
      name: 'resume re-processes queued IO',
      check: (s) => {
        const c = s.context;
        const ev = evType(s);
        if ((ev === 'resume' || ev === 'reload') && c.last?.errno === 'ok' && c.retry.length > 0 && !(modeOf(s) === 'out_of_data_space' && !c.eins)) {
          return 'bios are still parked after a resume although the pool can service or error them';
        }
        if (ev === 'reload' && c.last?.errno === 'ok' && modeOf(s) === 'write' && c.retry.length > 0) return 'bios still parked after a resume into write mode';
        return null;
      },
    },
    {
      spec: ['THIN-POOL-13'],
      name: 'data block size fixed',
      check: (s) => (s.context.blockSize !== s.context.sbBlockSize ? `pool uses block size ${s.context.blockSize}, metadata says ${s.context.sbBlockSize}` : null),
    },
  ];
  if (fixed) {
    inv.push(
      {
        spec: ['THIN-POOL-14'],
        name: 'no_space_timeout',
        check: (s) => {
          const c = s.context;
          if (c.timer && !(modeOf(s) === 'out_of_data_space' && !c.eins && c.timeoutOn)) {
            return `no_space_timeout armed in ${modeOf(s)}${c.eins ? ' with error_if_no_space' : ''}${c.timeoutOn ? '' : ' although no_space_timeout=0'}`;
          }
          if (evType(s) === 'timer_expire' && !(modeOf(s) === 'out_of_data_space' && c.eins && c.retry.length === 0)) {
            return `no_space_timeout expiry left the pool in ${modeOf(s)} (expected out_of_data_space, error_if_no_space, queue emptied)`;
          }
          return null;
        },
      },
      {
        spec: ['THIN-POOL-15'],
        name: 'metadata exhaustion never aborts',
        check: (s) => {
          const l = s.context.last;
          const f = l?.mdFailures.find((x) => x.r === 'ENOSPC' && x.op !== 'message');
          return f ? `metadata space ran out in '${f.op}' and the transaction was aborted` : null;
        },
      },
    );
  }
  return inv;
}

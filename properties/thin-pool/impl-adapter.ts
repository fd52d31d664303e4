// Drives impl/thin/pool-target.ts (over the abstract-accounting metadata) with the model's events
// and projects it the way model.ts projects the machine, for the lockstep runner and replay.
// Kernel: drivers/md/dm-thin.c (Linux 3.14.1), the pool target's entry points.

import type { Bounds, Ev, ImplAdapter, ImplHandle, Json, Variant } from '../../checker/model.js';
import { AbstractMetadata, type AbstractDisk, type AbstractFault } from '../../impl/thin/target/abstract-metadata.js';
import { PoolTarget, type BioResult, type MessageErrno, type PoolTable } from '../../impl/thin/pool-target.js';
import type { PoolEvent } from '../../machines/thin-pool/types.js';
import { poolConfig } from './config.js';

export interface PoolHarness {
  readonly target: PoolTarget;
  current(): AbstractMetadata;
  apply(e: PoolEvent | { type: '@fault'; site: string }): void;
  project(): Json;
}

export function createPoolHarness(variant: Variant, bounds: Bounds): PoolHarness {
  const cfg = poolConfig(bounds, variant);
  const disk: AbstractDisk = AbstractMetadata.format(cfg.vblocks, cfg.data, cfg.md);
  let md = new AbstractMetadata(disk, cfg.vblocks);
  const reopen = (clear: boolean) => {
    if (clear) disk.needsCheck = false;
    md = new AbstractMetadata(disk, cfg.vblocks);
    return md;
  };
  let table: PoolTable = { dataBlocks: cfg.data, metadataBlocks: cfg.md, errorIfNoSpace: cfg.eins, blockSize: 1, lowWaterBlocks: cfg.lowWater };
  const target = new PoolTarget(variant, md, reopen, table);
  let nextId = 0;
  let current = -1;
  let io: BioResult | null = null;
  let released: BioResult[] = [];
  let errno: MessageErrno | null = null;
  let events: string[] = [];
  const bio = (op: 'read' | 'write' | 'flush' | 'discard', vblock: number) => {
    const id = nextId++;
    current = id;
    let done = false;
    target.submit({
      id,
      op,
      vblock,
      endio: (r) => {
        if (done) throw new Error(`bio ${id} completed twice`);
        done = true;
        if (id === current) io = r;
        else released.push(r);
      },
    });
    if (!done) io = 'queued';
  };
  const apply = (e: PoolEvent | { type: '@fault'; site: string }): void => {
    if (e.type === '@fault') {
      // An engine operator, not a pool step: the last step's outcome stays visible.
      md.fault = e.site as AbstractFault;
      return;
    }
    io = null;
    released = [];
    errno = null;
    current = -1;
    switch (e.type) {
      case 'read':
      case 'write':
      case 'discard':
        bio(e.type, e.v);
        break;
      case 'flush':
        bio('flush', 0);
        break;
      case 'create_thin':
        errno = target.message(['create_thin', String(e.id)]);
        break;
      case 'create_snap':
        errno = target.message(['create_snap', String(e.id), String(e.origin)]);
        break;
      case 'delete':
        errno = target.message(['delete', String(e.id)]);
        break;
      case 'tick':
        target.tick();
        break;
      case 'status':
        target.status();
        break;
      case 'resume':
        errno = target.suspendResume();
        break;
      case 'reload':
        table = { ...table, dataBlocks: e.data, metadataBlocks: e.md, errorIfNoSpace: e.eins, blockSize: e.bs };
        errno = target.reload(table);
        break;
      case 'reactivate':
        target.reactivate(e.clear);
        break;
      case 'fault':
        md.fault = e.kind;
        break;
      case 'timer_expire':
        target.noSpaceTimeout();
        break;
      case 'set_timeout':
        target.noSpaceTimeoutSecs = e.on ? 60 : 0;
        break;
    }
    events = target.takeEvents();
  };
  const project = (): Json => {
    const fail = target.mode === 'fail';
    const mapping: number[] = [];
    if (!fail) for (let v = 0; v < cfg.vblocks; v++) mapping.push(md.lookup(0, v)?.dataBlock ?? -1);
    return {
      mode: target.mode,
      status: target.statusLine(),
      needsCheck: md.needsCheck(),
      queued: target.queued,
      mapping: fail ? null : mapping,
      thin1: fail ? null : md.devices().includes(1),
      io,
      released,
      errno,
      events,
      mdThreshold: target.threshold,
      suspended: target.suspended,
      timer: target.timerArmed,
    };
  };
  return { target, current: () => md, apply, project };
}

export const poolImplAdapter: ImplAdapter<PoolEvent> = {
  create: (variant: Variant, bounds: Bounds): ImplHandle<PoolEvent> => {
    const h = createPoolHarness(variant, bounds);
    return {
      apply: (e: Ev) => h.apply(e as PoolEvent),
      project: h.project,
    };
  },
  isExternal: () => true,
};

// Assembles one cluster-mirror device: cmirrord-like server and log device, the connector link,
// dm-log-userspace (with or without integrated_flush) and dm-raid1 on two legs. The table line is
// what lvm2 would load: "userspace <#args> <UUID> [integrated_flush] clustered-disk <#args>
// <log dev> <region_size> [no]sync" (drivers/md/dm-log-userspace-base.c userspace_ctr).

import type { Ev, Gate, Variant } from '../../checker/model.js';
import { CmirrordCluster, LogDevice } from './cmirrord.js';
import { UserspaceLog } from './log-userspace.js';
import { Leg, MirrorSet } from './raid1.js';
import { UlogTransfer } from './transfer.js';
import { RequestType } from './wire.js';

export interface StackOptions {
  readonly regions: number;
  readonly integrated: boolean;
  readonly aware: boolean;
  readonly gate: Gate<Ev>;
  readonly variant: Variant;
  readonly handleErrors?: boolean;
  readonly legCache?: boolean;
  /** "sync" creation: nothing is in sync until recovered. Default "nosync". */
  readonly resync?: boolean;
  /** Survivors of an earlier life (crash tests). */
  readonly device?: LogDevice;
  readonly legs?: readonly Leg[];
  /** Whether a GFP_ATOMIC allocation fails now, asked by clear_region (and mark_region under mark-drop). */
  readonly clearAllocFails?: (kind: 'mark' | 'clear') => boolean;
  /** Server answers the request a released step names (see ServerOptions.bySeq). */
  readonly serveBySeq?: boolean;
}

/**
 * Another node of the cluster running the same kernel, reduced to what the shared state sees: its
 * log client's rounds (a mark or a clear, each followed by its flush) and its writes to the shared
 * legs. Under 'fixed' it flushes the legs' caches before it commits clears, as this node's
 * UserspaceLog.flushInner does through its flush callback.
 */
export class PeerNode {
  constructor(
    private readonly cluster: CmirrordCluster,
    private readonly legs: readonly Leg[],
    private readonly node: number,
    private readonly variant: Variant,
  ) {}

  mark(region: number): void {
    this.cluster.peer(this.node, RequestType.MARK_REGION, [region]);
    this.cluster.peer(this.node, RequestType.FLUSH, []);
  }

  /** The node's write completes on every leg (a volatile write where the leg has a cache). */
  write(region: number, version: number): void {
    for (const leg of this.legs) leg.write(region, version);
  }

  clear(region: number): void {
    if (this.variant.profile === 'fixed') for (const leg of this.legs) leg.flushCache();
    this.cluster.peer(this.node, RequestType.CLEAR_REGION, [region]);
    this.cluster.peer(this.node, RequestType.FLUSH, []);
  }
}

export interface Stack {
  readonly cluster: CmirrordCluster;
  readonly device: LogDevice;
  readonly transfer: UlogTransfer;
  readonly log: UserspaceLog;
  readonly mirror: MirrorSet;
  readonly legs: readonly Leg[];
  /** Node 2 (the machine's abstract peer). */
  readonly peer: PeerNode;
}

export const REGION_SIZE = 1024; // sectors

export async function buildStack(o: StackOptions): Promise<Stack> {
  const device = o.device ?? new LogDevice(o.regions, !o.resync);
  const legs = o.legs ?? [new Leg(o.regions, o.legCache ?? false), new Leg(o.regions, o.legCache ?? false, o.resync ? -1 : 0)];
  const cluster = new CmirrordCluster({ aware: o.aware, mutant: o.variant.mutant, gate: o.gate, device, regionSize: REGION_SIZE, bySeq: o.serveBySeq ?? false });
  let transfer: UlogTransfer | null = null;
  const sendto = cluster.attach((bytes) => transfer?.receive(bytes));
  transfer = new UlogTransfer(sendto, o.gate);
  const uuid = 'LVM-mirrorlogtestuuid0000000000000000000000000000000000000000000';
  const argv = [uuid, ...(o.integrated ? ['integrated_flush'] : []), 'clustered-disk', '4', '253:2', String(REGION_SIZE), o.resync ? 'sync' : 'nosync'];
  const log = await UserspaceLog.create({
    transfer,
    gate: o.gate,
    argv,
    tiLen: o.regions * REGION_SIZE,
    luid: 0xffff8800deadbeefn,
    variant: o.variant,
    ...(o.clearAllocFails ? { clearAllocFails: o.clearAllocFails } : {}),
  });
  const r = await log.resume();
  if (r !== 0) throw new Error(`RESUME failed (${r})`);
  const mirror = new MirrorSet({ log, legs, gate: o.gate, variant: o.variant, handleErrors: o.handleErrors ?? true });
  mirror.resume();
  return { cluster, device, transfer, log, mirror, legs, peer: new PeerNode(cluster, legs, 2, o.variant) };
}

// A cmirrord-like userspace log server for a cluster of nodes with totally ordered delivery.
// Follows lvm2 daemons/cmirrord: local.c do_local_work (which requests are answered locally, which
// go to the cluster, CLEAR_REGION acked at once), cluster.c (cpg_mcast_joined in agreed order,
// the lowest node id is the server and multicasts the response), functions.c (clog_ctr,
// clog_resume, mark_region, clear_region, clog_flush, clog_get_resync_work,
// clog_set_region_sync, clog_get_sync_count, clog_in_sync, clog_is_remote_recovering).
//
// One cluster round = the request multicast + the server's response multicast. Every member
// applies each delivered request to its replica in the same order; the replicas are identical, so
// one replicated state stands for all of them here, and only the server writes the log device.
// `aware` = the FLUSH handler first applies a payload as marks (the integrated_flush server of the
// 5066a4df cover letter); upstream lvm2 ignores the payload.

import type { Ev, Gate } from '../../checker/model.js';
import { EIO, EINVAL } from './transfer.js';
import {
  CN_IDX_DM,
  CN_VAL_DM_USERSPACE_LOG,
  decodeCnMsg,
  decodePair,
  decodeRegions,
  decodeRequest,
  decodeS64,
  encodeCnMsg,
  encodePair,
  encodeRequest,
  encodeU64,
  RequestType,
  type UlogRequest,
} from './wire.js';

/** The on-disk clean bits (the log device). `failing` makes every write fail with EIO. */
export class LogDevice {
  clean: number[];
  failing = false;
  writes = 0;
  constructor(regions: number, initiallyClean: boolean) {
    this.clean = Array.from({ length: regions }, () => (initiallyClean ? 1 : 0));
  }
}

export interface ClusterLogState {
  regionSize: number;
  regionCount: number;
  clean: number[];
  sync: number[];
  marks: { region: number; node: number }[];
  touched: boolean;
  recovering: number | null;
}

export interface ServerOptions {
  readonly aware: boolean;
  readonly mutant: string | null;
  readonly gate: Gate<Ev>;
  readonly device: LogDevice;
  readonly regionSize: number;
  /**
   * Serve the request a released `srv` step names instead of the oldest one. The socket is FIFO, so
   * the default is off; the lockstep adapter turns it on to answer the RPCs the machine treats as
   * atomic (IN_SYNC, GET_RESYNC_WORK, SET_REGION_SYNC, GET_SYNC_COUNT) ahead of queued flush requests.
   */
  readonly bySeq?: boolean;
  /** Log device name returned by CTR (version ≥ 2 reply), or '' for none. */
  readonly logDevName?: string;
}

/** Counters for the message-cost result. */
export interface Cost {
  kernelRequests: number;
  clusterRounds: number;
  byType: Record<string, number>;
}

export class CmirrordCluster {
  state: ClusterLogState | null = null;
  readonly cost: Cost = { kernelRequests: 0, clusterRounds: 0, byType: {} };
  /** Requests from node 1's kernel, waiting for the daemon (FIFO socket), with their seq. */
  private readonly inbox: { readonly seq: number; readonly bytes: Uint8Array }[] = [];
  private toKernel: ((bytes: Uint8Array) => void) | null = null;
  private listening = true;
  readonly errors: string[] = [];

  constructor(private readonly o: ServerOptions) {}

  /** Connect node 1's kernel; returns dm_ulog_sendto_server for the transfer layer. */
  attach(toKernel: (bytes: Uint8Array) => void): (bytes: Uint8Array) => number {
    this.toKernel = toKernel;
    return (bytes) => {
      if (!this.listening) return -3; // -ESRCH: no listener
      const { seq, req } = headerOf(bytes);
      this.inbox.push({ seq, bytes });
      // The step names the request; with `bySeq` the released step's request is served (see ServerOptions).
      void this.o.gate.step({ type: 'srv', seq, req }).then((go) => (go ? this.serveOne(seq) : undefined));
      return 0;
    };
  }

  /** The daemon dies (its socket closes) or comes back. */
  setListening(on: boolean): void {
    this.listening = on;
  }

  /** An abstract peer node's request, delivered in the same total order (one cluster round). */
  peer(node: number, type: number, regions: readonly number[]): number {
    return this.clusterRound(node, type, regions.length ? encodeRegionsLocal(regions) : new Uint8Array(0)).error;
  }

  private reply(req: UlogRequest, error: number, data: Uint8Array): void {
    const tfr = encodeRequest({ ...req, error, data });
    const msg = encodeCnMsg({ idx: CN_IDX_DM, val: CN_VAL_DM_USERSPACE_LOG, seq: req.seq, ack: 0, flags: 0, data: tfr });
    void this.o.gate.step({ type: 'reply', seq: req.seq, req: req.requestType & 0xff, err: error }).then((go) => (go ? this.toKernel?.(msg) : undefined));
  }

  private ack(seq: number, error: number): void {
    const msg = encodeCnMsg({ idx: CN_IDX_DM, val: CN_VAL_DM_USERSPACE_LOG, seq, ack: error, flags: 0, data: new Uint8Array(0) });
    void this.o.gate.step({ type: 'reply', seq, req: RequestType.CLEAR_REGION, err: error }).then((go) => (go ? this.toKernel?.(msg) : undefined));
  }

  /** Kernel requests not yet served, oldest first (decoded; null for bytes that do not decode). */
  queued(): { readonly seq: number; readonly req: UlogRequest | null }[] {
    return this.inbox.map((x) => {
      try {
        return { seq: x.seq, req: decodeRequest(decodeCnMsg(x.bytes).data) };
      } catch {
        return { seq: x.seq, req: null };
      }
    });
  }

  /** do_local_work for the oldest kernel request (with `bySeq`: the one with this seq). */
  private serveOne(seq: number): void {
    const at = this.o.bySeq ? this.inbox.findIndex((x) => x.seq === seq) : 0;
    const item = this.inbox.splice(at < 0 ? 0 : at, 1)[0];
    if (!item) return;
    const bytes = item.bytes;
    let req: UlogRequest;
    try {
      req = decodeRequest(decodeCnMsg(bytes).data);
    } catch (err) {
      this.errors.push(`dropped a malformed kernel request: ${(err as Error).message}`);
      return;
    }
    this.cost.kernelRequests++;
    const t = req.requestType & 0xff;
    const name = Object.entries(RequestType).find(([, v]) => v === t)?.[0] ?? String(t);
    this.cost.byType[name] = (this.cost.byType[name] ?? 0) + 1;
    switch (t) {
      case RequestType.CTR: {
        const regionCount = parseCtrRegionCount(req.data, this.o.regionSize);
        if (regionCount === null) return this.reply(req, -EINVAL, new Uint8Array(0));
        this.state ??= {
          regionSize: this.o.regionSize,
          regionCount,
          clean: Array.from({ length: regionCount }, () => 0),
          sync: Array.from({ length: regionCount }, () => 0),
          marks: [],
          touched: false,
          recovering: null,
        };
        const name = new TextEncoder().encode(this.o.logDevName ?? '');
        const out = new Uint8Array(name.length + 1);
        out.set(name);
        return this.reply(req, 0, req.version > 1 ? out : new Uint8Array(0));
      }
      case RequestType.DTR:
      case RequestType.PRESUSPEND:
        return this.reply(req, 0, new Uint8Array(0));
      case RequestType.GET_REGION_SIZE:
        return this.reply(req, 0, encodeU64(BigInt(this.o.regionSize)));
      case RequestType.IN_SYNC: {
        const s = this.need(req);
        const r = Number(decodeS64(req.data));
        return this.reply(req, 0, encodeU64(s && s.sync[r] === 1 ? 1n : 0n));
      }
      case RequestType.GET_SYNC_COUNT: {
        const s = this.need(req);
        return this.reply(req, 0, encodeU64(BigInt(s ? s.sync.filter((x) => x === 1).length : 0)));
      }
      case RequestType.CLEAR_REGION: {
        // Acked to the kernel before the cluster sees it; a cluster error is never reported.
        this.ack(req.seq, 0);
        this.clusterRound(1, t, req.data);
        return;
      }
      default: {
        const res = this.clusterRound(1, t, req.data);
        return this.reply(req, res.error, res.data);
      }
    }
  }

  private need(_req: UlogRequest): ClusterLogState | null {
    return this.state;
  }

  /** One agreed-order multicast, applied by every member, answered by the server. */
  private clusterRound(node: number, type: number, data: Uint8Array): { error: number; data: Uint8Array } {
    this.cost.clusterRounds++;
    const s = this.state;
    if (!s) return { error: -EINVAL, data: new Uint8Array(0) };
    switch (type) {
      case RequestType.RESUME:
        return this.resume(s);
      case RequestType.MARK_REGION:
        for (const r of decodeRegions(data)) this.mark(s, r, node);
        return { error: 0, data: new Uint8Array(0) };
      case RequestType.CLEAR_REGION:
        for (const r of decodeRegions(data)) this.clear(s, r, node);
        return { error: 0, data: new Uint8Array(0) };
      case RequestType.FLUSH: {
        if (data.length > 0 && this.o.aware) for (const r of decodeRegions(data)) this.mark(s, r, node);
        return { error: this.commit(s), data: new Uint8Array(0) };
      }
      case RequestType.IS_CLEAN: {
        const r = Number(decodeS64(data));
        return { error: 0, data: encodeU64(s.clean[r] === 1 ? 1n : 0n) };
      }
      case RequestType.GET_RESYNC_WORK: {
        if (s.recovering !== null) return { error: 0, data: encodePair(0n, 0n) };
        const r = s.sync.findIndex((x) => x === 0);
        if (r < 0) return { error: 0, data: encodePair(0n, 0n) };
        s.recovering = r;
        return { error: 0, data: encodePair(1n, BigInt(r)) };
      }
      case RequestType.SET_REGION_SYNC: {
        const [r, inSync] = decodePair(data);
        const region = Number(r);
        const bit = inSync ? 1 : 0;
        // log_set_bit / log_clear_bit (and so `touched`) only when the bit changes.
        if (s.sync[region] !== bit) {
          s.sync[region] = bit;
          s.touched = true;
        }
        if (s.recovering === region) s.recovering = null;
        return { error: 0, data: new Uint8Array(0) };
      }
      case RequestType.POSTSUSPEND:
      case RequestType.STATUS_INFO:
      case RequestType.IS_REMOTE_RECOVERING:
        return { error: 0, data: type === RequestType.IS_REMOTE_RECOVERING ? encodePair(0n, 0n) : new Uint8Array(0) };
      default:
        return { error: -EINVAL, data: new Uint8Array(0) };
    }
  }

  /** clog_resume: clean bits from the device, copied into the sync bits, written back. */
  private resume(s: ClusterLogState): { error: number; data: Uint8Array } {
    s.clean = this.o.device.clean.slice(0, s.regionCount);
    s.sync = s.clean.slice();
    s.marks = [];
    s.recovering = null;
    s.touched = true;
    return { error: this.commit(s), data: new Uint8Array(0) };
  }

  private mark(s: ClusterLogState, r: number, node: number): void {
    if (!s.marks.some((m) => m.region === r)) {
      s.clean[r] = 0;
      s.touched = true;
    }
    if (!s.marks.some((m) => m.region === r && m.node === node)) s.marks.push({ region: r, node });
  }

  private clear(s: ClusterLogState, r: number, node: number): void {
    s.marks = s.marks.filter((m) => !(m.region === r && m.node === node));
    const others = this.o.mutant === 'server-clear-ignores-others' ? false : s.marks.some((m) => m.region === r);
    if (!others && s.sync[r] === 1) {
      s.clean[r] = 1;
      s.touched = true;
    }
  }

  /** clog_flush on the server: write the clean bits if touched. */
  private commit(s: ClusterLogState): number {
    if (!s.touched) return 0;
    if (this.o.device.failing) return -EIO;
    this.o.device.clean = s.clean.slice();
    this.o.device.writes++;
    s.touched = false;
    return 0;
  }
}

/** The connector seq (equal to the request's) and the request type; -1 for bytes that do not decode. */
function headerOf(bytes: Uint8Array): { seq: number; req: number } {
  try {
    const cn = decodeCnMsg(bytes);
    return { seq: cn.seq, req: decodeRequest(cn.data).requestType & 0xff };
  } catch {
    return { seq: -1, req: -1 };
  }
}

function encodeRegionsLocal(regions: readonly number[]): Uint8Array {
  const out = new Uint8Array(regions.length * 8);
  const v = new DataView(out.buffer);
  regions.forEach((r, i) => v.setBigUint64(i * 8, BigInt(r), true));
  return out;
}

/** "<ti->len> clustered-disk <#args> <dev> <region_size> …": region count from ti->len. */
function parseCtrRegionCount(data: Uint8Array, regionSize: number): number | null {
  const nul = data.indexOf(0);
  const s = new TextDecoder().decode(nul >= 0 ? data.subarray(0, nul) : data);
  const len = Number(s.split(' ')[0]);
  if (!Number.isInteger(len) || len <= 0) return null;
  return Math.ceil(len / regionSize);
}

// Kernel side of the userspace-log transport.
// Follows drivers/md/dm-log-userspace-transfer.c (v3.14.1): dm_consult_userspace (size check,
// seq = dm_ulog_seq++ on every send, receiving_list, resend on timeout and on -EAGAIN),
// cn_ulog_callback + fill_pkg (ack-only messages, short messages dropped, -ENOSPC when the reply
// does not fit the caller's buffer, replies matched by seq; unmatched ones are dropped).
// The 15 s wait is a gate step {type:'timeout'} the scheduler may release instead of a reply.

import type { Ev, Gate } from '../../checker/model.js';
import {
  CN_IDX_DM,
  CN_VAL_DM_USERSPACE_LOG,
  decodeCnMsg,
  decodeRequest,
  DM_ULOG_MAX_PAYLOAD,
  DM_ULOG_REQUEST_MASK,
  DM_ULOG_REQUEST_VERSION,
  encodeCnMsg,
  encodeRequest,
  ULOG_HEADER_SIZE,
  WireError,
} from './wire.js';

export const EINVAL = 22;
export const ENOSPC = 28;
export const EAGAIN = 11;
export const ESRCH = 3;
export const EIO = 5;

type Outcome = { kind: 'reply'; error: number; data: Uint8Array } | { kind: 'timeout' };

interface Pkg {
  readonly seq: number;
  readonly rdataMax: number;
  readonly done: (o: Outcome) => void;
}

export interface SentRecord {
  readonly seq: number;
  readonly type: number;
  readonly dataSize: number;
  /** Which kernel thread sent it (for counting). */
  readonly thread: string;
}

export type ReceiveResult = 'matched' | 'stale' | 'malformed';

export class UlogTransfer {
  private nextSeq = 0;
  private readonly receiving = new Map<number, Pkg>();
  readonly sent: SentRecord[] = [];
  readonly dropped: string[] = [];

  /**
   * `sendto` is dm_ulog_sendto_server: it returns 0, or a negative errno (-ESRCH when no daemon
   * listens). `gate` orders the timeouts.
   */
  constructor(
    private readonly sendto: (cnMsg: Uint8Array) => number,
    private readonly gate: Gate<Ev>,
  ) {}

  /** dm_consult_userspace. Returns r (0 or a negative errno) and the reply payload. */
  async consult(
    uuid: string,
    luid: bigint,
    requestType: number,
    data: Uint8Array,
    rdataMax: number,
    thread = 'k',
  ): Promise<{ r: number; data: Uint8Array }> {
    if (data.length > DM_ULOG_MAX_PAYLOAD) return { r: -EINVAL, data: new Uint8Array(0) };
    for (;;) {
      const seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) >>> 0;
      const tfr = encodeRequest({
        luid,
        uuid,
        version: DM_ULOG_REQUEST_VERSION,
        error: 0,
        seq,
        requestType: requestType & DM_ULOG_REQUEST_MASK,
        data,
      });
      const msg = encodeCnMsg({ idx: CN_IDX_DM, val: CN_VAL_DM_USERSPACE_LOG, seq, ack: 0, flags: 0, data: tfr });
      const outcome = new Promise<Outcome>((done) => this.receiving.set(seq, { seq, rdataMax, done }));
      this.sent.push({ seq, type: requestType & DM_ULOG_REQUEST_MASK, dataSize: data.length, thread });
      const r = this.sendto(msg);
      if (r !== 0) {
        this.receiving.delete(seq);
        return { r, data: new Uint8Array(0) };
      }
      // The 15 s timer: a step the scheduler may release at any time while we wait.
      void this.gate
        .step({ type: 'timeout', w: thread, seq, req: requestType & DM_ULOG_REQUEST_MASK }, () => this.receiving.has(seq))
        .then((go) => (go ? this.receiving.get(seq)?.done({ kind: 'timeout' }) : undefined));
      const o = await outcome;
      this.receiving.delete(seq);
      if (o.kind === 'timeout') continue; // resend with a new seq
      if (o.error === -EAGAIN) continue;
      return { r: o.error, data: o.data };
    }
  }

  /** cn_ulog_callback: a message from userspace. */
  receive(bytes: Uint8Array): ReceiveResult {
    let msg;
    try {
      msg = decodeCnMsg(bytes);
    } catch (err) {
      this.dropped.push((err as WireError).message);
      return 'malformed';
    }
    if (msg.data.length === 0) {
      // ack only: error is -ack; no data
      const pkg = this.receiving.get(msg.seq);
      if (!pkg) return 'stale';
      this.receiving.delete(msg.seq);
      pkg.done({ kind: 'reply', error: -(msg.ack | 0), data: new Uint8Array(0) });
      return 'matched';
    }
    if (msg.data.length < ULOG_HEADER_SIZE) {
      this.dropped.push(`reply of ${msg.data.length} bytes is shorter than the ${ULOG_HEADER_SIZE}-byte header`);
      return 'malformed';
    }
    let tfr;
    try {
      tfr = decodeRequest(msg.data);
    } catch (err) {
      this.dropped.push((err as WireError).message);
      return 'malformed';
    }
    const pkg = this.receiving.get(tfr.seq);
    if (!pkg) return 'stale';
    this.receiving.delete(tfr.seq);
    if (tfr.data.length > pkg.rdataMax) pkg.done({ kind: 'reply', error: -ENOSPC, data: new Uint8Array(0) });
    else pkg.done({ kind: 'reply', error: tfr.error, data: tfr.data });
    return 'matched';
  }

  waiting(): number[] {
    return [...this.receiving.keys()];
  }
}

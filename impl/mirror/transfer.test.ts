// cn_ulog_callback / fill_pkg reply handling (drivers/md/dm-log-userspace-transfer.c): replies are
// matched by seq, ack-only messages carry -ack, short messages are dropped, a reply larger than the
// caller's buffer gives -ENOSPC, -EAGAIN resends with a new seq, late replies are dropped.
import { describe, expect, it } from 'vitest';
import { ManualGate, settle } from './sim.js';
import { EAGAIN, ENOSPC, UlogTransfer } from './transfer.js';
import { CN_IDX_DM, CN_VAL_DM_USERSPACE_LOG, decodeCnMsg, decodeRequest, encodeCnMsg, encodeRequest, type UlogRequest } from './wire.js';

function setup() {
  const gate = new ManualGate();
  const out: UlogRequest[] = [];
  const t = new UlogTransfer((bytes) => {
    out.push(decodeRequest(decodeCnMsg(bytes).data));
    return 0;
  }, gate);
  const answer = (req: UlogRequest, error: number, data: Uint8Array): Uint8Array =>
    encodeCnMsg({ idx: CN_IDX_DM, val: CN_VAL_DM_USERSPACE_LOG, seq: req.seq, ack: 0, flags: 0, data: encodeRequest({ ...req, error, data }) });
  const ack = (seq: number, a: number): Uint8Array => encodeCnMsg({ idx: CN_IDX_DM, val: CN_VAL_DM_USERSPACE_LOG, seq, ack: a, flags: 0, data: new Uint8Array(0) });
  return { gate, out, t, answer, ack };
}

describe('reply matching', () => {
  it('matches by seq, copies the payload, and drops late replies', async () => {
    const { out, t, answer } = setup();
    const p = t.consult('uuid', 7n, 6, new Uint8Array(0), 8);
    await settle();
    expect(out[0]!.version).toBe(3);
    expect(out[0]!.luid).toBe(7n);
    expect(t.receive(answer(out[0]!, 0, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])))).toBe('matched');
    expect(await p).toEqual({ r: 0, data: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]) });
    expect(t.receive(answer(out[0]!, 0, new Uint8Array(0)))).toBe('stale');
  });

  it('ack-only message: error is -ack', async () => {
    const { out, t, ack } = setup();
    const p = t.consult('uuid', 1n, 11, new Uint8Array(8), 0);
    await settle();
    expect(t.receive(ack(out[0]!.seq, 5))).toBe('matched');
    expect((await p).r).toBe(-5);
  });

  it('a reply larger than the caller buffer gives -ENOSPC; a short message is dropped', async () => {
    const { out, t, answer } = setup();
    const p = t.consult('uuid', 1n, 7, new Uint8Array(8), 8);
    await settle();
    expect(t.receive(encodeCnMsg({ idx: 7, val: 1, seq: out[0]!.seq, ack: 0, flags: 0, data: new Uint8Array(40) }))).toBe('malformed');
    expect(t.dropped[0]).toMatch(/shorter than the 160-byte header/);
    expect(t.receive(answer(out[0]!, 0, new Uint8Array(16)))).toBe('matched');
    expect((await p).r).toBe(-ENOSPC);
  });

  it('-EAGAIN and a timeout both resend with a new seq', async () => {
    const { gate, out, t, answer } = setup();
    const p = t.consult('uuid', 1n, 9, new Uint8Array(0), 0);
    await settle();
    t.receive(answer(out[0]!, -EAGAIN, new Uint8Array(0)));
    await settle();
    expect(out.length).toBe(2);
    expect(out[1]!.seq).toBe(out[0]!.seq + 1);
    expect(await gate.release((e) => e.type === 'timeout')).toBe(true);
    expect(out.length).toBe(3);
    expect(t.receive(answer(out[1]!, 0, new Uint8Array(0)))).toBe('stale');
    expect(t.receive(answer(out[2]!, 0, new Uint8Array(0)))).toBe('matched');
    expect((await p).r).toBe(0);
    expect(t.waiting()).toEqual([]);
  });
});

// Byte-level checks of the dm_ulog_request / cn_msg encoding against the uapi layout
// (include/uapi/linux/dm-log-userspace.h, v3.14.1) and malformed-input errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { testSeed } from '../../checker/seed.js';
import {
  decodeCnMsg,
  decodeRegions,
  decodeRequest,
  DM_ULOG_MAX_PAYLOAD,
  DM_ULOG_REQUEST_VERSION,
  encodeCnMsg,
  encodeRegions,
  encodeRequest,
  MAX_FLUSH_GROUP_COUNT,
  RequestType,
  requestTypeName,
  ULOG_HEADER_SIZE,
  WireError,
} from './wire.js';

const hex = (b: Uint8Array, from: number, to: number): string => Buffer.from(b.subarray(from, to)).toString('hex');

describe('dm_ulog_request layout', () => {
  it('puts every field at its uapi offset, little-endian, 160-byte header', () => {
    const b = encodeRequest({
      luid: 0x1122334455667788n,
      uuid: 'LVM-abc',
      version: DM_ULOG_REQUEST_VERSION,
      error: -22,
      seq: 0xdeadbeef,
      requestType: RequestType.FLUSH,
      data: encodeRegions([5, 1]),
    });
    expect(ULOG_HEADER_SIZE).toBe(160);
    expect(b.length).toBe(160 + 16);
    expect(hex(b, 0, 8)).toBe('8877665544332211'); // luid
    expect(Buffer.from(b.subarray(8, 15)).toString()).toBe('LVM-abc'); // uuid[129]
    expect(b[15]).toBe(0);
    expect(hex(b, 137, 140)).toBe('000000'); // padding[3]
    expect(hex(b, 140, 144)).toBe('03000000'); // version 3
    expect(hex(b, 144, 148)).toBe('eaffffff'); // error -22
    expect(hex(b, 148, 152)).toBe('efbeadde'); // seq
    expect(hex(b, 152, 156)).toBe('09000000'); // DM_ULOG_FLUSH = 9
    expect(hex(b, 156, 160)).toBe('10000000'); // data_size 16
    expect(hex(b, 160, 176)).toBe('05000000000000000100000000000000'); // u64[] payload
  });

  it('numbers the request types as the uapi header does', () => {
    expect([RequestType.CTR, RequestType.FLUSH, RequestType.MARK_REGION, RequestType.CLEAR_REGION, RequestType.IS_REMOTE_RECOVERING]).toEqual([1, 9, 10, 11, 17]);
    expect(requestTypeName(0x1000 | 10)).toBe('DM_ULOG_MARK_REGION'); // cmirrord's DM_ULOG_RESPONSE bit is masked off
  });

  it('caps the payload at 332 bytes: 41 u64 regions, more than a 32-region group', () => {
    expect(DM_ULOG_MAX_PAYLOAD).toBe(332);
    expect(Math.floor(DM_ULOG_MAX_PAYLOAD / 8)).toBe(41);
    expect(MAX_FLUSH_GROUP_COUNT * 8).toBeLessThanOrEqual(DM_ULOG_MAX_PAYLOAD);
  });

  it('cn_msg: idx/val/seq/ack then u16 len and flags (20 bytes)', () => {
    const m = encodeCnMsg({ idx: 7, val: 1, seq: 3, ack: 0, flags: 0, data: new Uint8Array([1, 2]) });
    expect(hex(m, 0, 20)).toBe('07000000' + '01000000' + '03000000' + '00000000' + '0200' + '0000');
    expect(decodeCnMsg(m).data).toEqual(new Uint8Array([1, 2]));
  });

  it('round-trips any request', () => {
    const seed = testSeed('ulog wire round trip');
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.string({ maxLength: 128, unit: fc.constantFrom(...'abcdefXYZ-0123'.split('')) }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.nat({ max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 17 }),
        fc.array(fc.nat({ max: 1 << 20 }), { maxLength: 32 }),
        (luid, uuid, error, seq, t, regions) => {
          const req = { luid, uuid, version: 3, error, seq, requestType: t, data: encodeRegions(regions) };
          const back = decodeRequest(encodeRequest(req));
          expect(back).toEqual(req);
          expect(decodeRegions(back.data)).toEqual(regions);
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});

describe('malformed bytes', () => {
  it('says what is wrong', () => {
    expect(() => decodeRequest(new Uint8Array(100))).toThrow(/needs 160 header bytes, got 100/);
    const b = encodeRequest({ luid: 1n, uuid: 'u', version: 3, error: 0, seq: 1, requestType: 10, data: encodeRegions([1]) });
    expect(() => decodeRequest(b.subarray(0, 164))).toThrow(/data_size says 8 payload bytes but only 4/);
    const noNul = b.slice();
    noNul.fill(0x41, 8, 137);
    expect(() => decodeRequest(noNul)).toThrow(/not NUL-terminated/);
    expect(() => decodeRegions(new Uint8Array(7))).toThrow(WireError);
    expect(() => encodeRequest({ luid: 1n, uuid: 'x'.repeat(129), version: 3, error: 0, seq: 0, requestType: 1, data: new Uint8Array(0) })).toThrow(
      /at most 128/,
    );
    expect(() => decodeCnMsg(new Uint8Array(10))).toThrow(/cn_msg needs 20/);
  });
});

// The dm-log-userspace wire format: struct dm_ulog_request inside a connector cn_msg.
// Follows include/uapi/linux/dm-log-userspace.h (layout, request numbers, DM_ULOG_REQUEST_VERSION),
// include/uapi/linux/connector.h (struct cn_msg) and drivers/md/dm-log-userspace-transfer.c
// (DM_ULOG_PREALLOCED_SIZE, cn_ulog_callback's length checks). All integers little-endian (x86).

export const CN_IDX_DM = 0x7;
export const CN_VAL_DM_USERSPACE_LOG = 0x1;

export const DM_UUID_LEN = 129;
export const DM_ULOG_REQUEST_VERSION = 3;
export const DM_ULOG_REQUEST_MASK = 0xff;
/** cmirrord's private flag on responses it multicasts in the cluster (never sent to the kernel). */
export const DM_ULOG_RESPONSE = 0x1000;
export const DM_ULOG_PREALLOCED_SIZE = 512;
export const CN_MSG_SIZE = 20;
export const ULOG_HEADER_SIZE = 160;
/** Largest payload dm_consult_userspace accepts: 512 − 20 − 160. */
export const DM_ULOG_MAX_PAYLOAD = DM_ULOG_PREALLOCED_SIZE - CN_MSG_SIZE - ULOG_HEADER_SIZE;
export const MAX_FLUSH_GROUP_COUNT = 32;

export const RequestType = {
  CTR: 1,
  DTR: 2,
  PRESUSPEND: 3,
  POSTSUSPEND: 4,
  RESUME: 5,
  GET_REGION_SIZE: 6,
  IS_CLEAN: 7,
  IN_SYNC: 8,
  FLUSH: 9,
  MARK_REGION: 10,
  CLEAR_REGION: 11,
  GET_RESYNC_WORK: 12,
  SET_REGION_SYNC: 13,
  GET_SYNC_COUNT: 14,
  STATUS_INFO: 15,
  STATUS_TABLE: 16,
  IS_REMOTE_RECOVERING: 17,
} as const;
export type RequestTypeName = keyof typeof RequestType;
export type RequestTypeNum = (typeof RequestType)[RequestTypeName];

export function requestTypeName(n: number): string {
  const t = n & DM_ULOG_REQUEST_MASK;
  const e = Object.entries(RequestType).find(([, v]) => v === t);
  return e ? `DM_ULOG_${e[0]}` : `unknown request type ${t}`;
}

// Field offsets of struct dm_ulog_request (natural alignment, 160 bytes).
const OFF_LUID = 0;
const OFF_UUID = 8;
const OFF_VERSION = 140;
const OFF_ERROR = 144;
const OFF_SEQ = 148;
const OFF_TYPE = 152;
const OFF_DATA_SIZE = 156;

export interface UlogRequest {
  readonly luid: bigint;
  readonly uuid: string;
  readonly version: number;
  readonly error: number;
  readonly seq: number;
  /** The whole 32-bit field; use `requestType & DM_ULOG_REQUEST_MASK` for the type. */
  readonly requestType: number;
  readonly data: Uint8Array;
}

/** Malformed bytes or an argument the format cannot carry. The message says what is wrong. */
export class WireError extends Error {
  override readonly name = 'WireError';
}

export function encodeRequest(r: UlogRequest): Uint8Array {
  const uuidBytes = new TextEncoder().encode(r.uuid);
  if (uuidBytes.length >= DM_UUID_LEN) {
    throw new WireError(`uuid is ${uuidBytes.length} bytes; it must be at most ${DM_UUID_LEN - 1} so the NUL fits in uuid[${DM_UUID_LEN}]`);
  }
  const out = new Uint8Array(ULOG_HEADER_SIZE + r.data.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(OFF_LUID, BigInt.asUintN(64, r.luid), true);
  out.set(uuidBytes, OFF_UUID);
  v.setUint32(OFF_VERSION, r.version >>> 0, true);
  v.setInt32(OFF_ERROR, r.error | 0, true);
  v.setUint32(OFF_SEQ, r.seq >>> 0, true);
  v.setUint32(OFF_TYPE, r.requestType >>> 0, true);
  v.setUint32(OFF_DATA_SIZE, r.data.length, true);
  out.set(r.data, ULOG_HEADER_SIZE);
  return out;
}

export function decodeRequest(bytes: Uint8Array): UlogRequest {
  if (bytes.length < ULOG_HEADER_SIZE) {
    throw new WireError(`dm_ulog_request needs ${ULOG_HEADER_SIZE} header bytes, got ${bytes.length}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataSize = v.getUint32(OFF_DATA_SIZE, true);
  if (ULOG_HEADER_SIZE + dataSize > bytes.length) {
    throw new WireError(`data_size says ${dataSize} payload bytes but only ${bytes.length - ULOG_HEADER_SIZE} follow the header`);
  }
  const uuidRaw = bytes.subarray(OFF_UUID, OFF_UUID + DM_UUID_LEN);
  const nul = uuidRaw.indexOf(0);
  if (nul < 0) throw new WireError('uuid field is not NUL-terminated within its 129 bytes');
  return {
    luid: v.getBigUint64(OFF_LUID, true),
    uuid: new TextDecoder().decode(uuidRaw.subarray(0, nul)),
    version: v.getUint32(OFF_VERSION, true),
    error: v.getInt32(OFF_ERROR, true),
    seq: v.getUint32(OFF_SEQ, true),
    requestType: v.getUint32(OFF_TYPE, true),
    data: bytes.slice(ULOG_HEADER_SIZE, ULOG_HEADER_SIZE + dataSize),
  };
}

/** struct cn_msg: id {idx, val}, seq, ack, len (u16), flags (u16), then len bytes. */
export interface CnMsg {
  readonly idx: number;
  readonly val: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly data: Uint8Array;
}

export function encodeCnMsg(m: CnMsg): Uint8Array {
  if (m.data.length > 0xffff) throw new WireError(`cn_msg payload of ${m.data.length} bytes does not fit its u16 len`);
  const out = new Uint8Array(CN_MSG_SIZE + m.data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, m.idx >>> 0, true);
  v.setUint32(4, m.val >>> 0, true);
  v.setUint32(8, m.seq >>> 0, true);
  v.setUint32(12, m.ack >>> 0, true);
  v.setUint16(16, m.data.length, true);
  v.setUint16(18, m.flags, true);
  out.set(m.data, CN_MSG_SIZE);
  return out;
}

export function decodeCnMsg(bytes: Uint8Array): CnMsg {
  if (bytes.length < CN_MSG_SIZE) throw new WireError(`cn_msg needs ${CN_MSG_SIZE} header bytes, got ${bytes.length}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = v.getUint16(16, true);
  if (CN_MSG_SIZE + len > bytes.length) throw new WireError(`cn_msg len says ${len} bytes but only ${bytes.length - CN_MSG_SIZE} follow`);
  return {
    idx: v.getUint32(0, true),
    val: v.getUint32(4, true),
    seq: v.getUint32(8, true),
    ack: v.getUint32(12, true),
    flags: v.getUint16(18, true),
    data: bytes.slice(CN_MSG_SIZE, CN_MSG_SIZE + len),
  };
}

/** u64[] payload (MARK/CLEAR/integrated FLUSH, IS_CLEAN …). */
export function encodeRegions(regions: readonly number[]): Uint8Array {
  const out = new Uint8Array(regions.length * 8);
  const v = new DataView(out.buffer);
  regions.forEach((r, i) => {
    if (!Number.isSafeInteger(r) || r < 0) throw new WireError(`region ${r} is not a non-negative integer`);
    v.setBigUint64(i * 8, BigInt(r), true);
  });
  return out;
}

export function decodeRegions(data: Uint8Array): number[] {
  if (data.length % 8 !== 0) throw new WireError(`a region list is a u64 array; ${data.length} bytes is not a multiple of 8`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 8) {
    const r = v.getBigUint64(i, true);
    if (r > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`region ${r} is beyond what this model handles`);
    out.push(Number(r));
  }
  return out;
}

/** Two 64-bit fields (GET_RESYNC_WORK {s64 i, u64 r}, SET_REGION_SYNC {u64 region, s64 in_sync}, …). */
export function encodePair(a: bigint, b: bigint): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setBigInt64(0, BigInt.asIntN(64, a), true);
  v.setBigInt64(8, BigInt.asIntN(64, b), true);
  return out;
}

export function decodePair(data: Uint8Array): [bigint, bigint] {
  if (data.length !== 16) throw new WireError(`expected two 64-bit fields (16 bytes), got ${data.length}`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return [v.getBigInt64(0, true), v.getBigInt64(8, true)];
}

export function encodeU64(x: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt.asIntN(64, x), true);
  return out;
}

export function decodeS64(data: Uint8Array): bigint {
  if (data.length !== 8) throw new WireError(`expected one 64-bit field (8 bytes), got ${data.length}`);
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getBigInt64(0, true);
}

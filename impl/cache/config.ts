// Follows drivers/md/dm-cache-policy-mq.c (3.14.1): mq_set_config_value, mq_emit_config_values;
// drivers/md/dm-cache-target.c: set_config_values, set_config_value, process_config_option,
// cache_message; lib/kstrtox.c: kstrtoul (base 10).
//
// Tunables are parsed exactly as the kernel does so that a table line or a `dmsetup message` that
// the kernel rejects is rejected here with the same errno, and nothing is changed.

export const EINVAL = 22;
export const ERANGE = 34;

/** The five mq keys plus the core's migration_threshold. Values are 32-bit unsigned. */
export interface MqTunables {
  readonly sequentialThreshold: number;
  readonly randomThreshold: number;
  readonly discardPromoteAdjustment: number;
  readonly readPromoteAdjustment: number;
  readonly writePromoteAdjustment: number;
}

export const MQ_DEFAULTS: MqTunables = {
  sequentialThreshold: 512, // SEQUENTIAL_THRESHOLD_DEFAULT
  randomThreshold: 4, // RANDOM_THRESHOLD_DEFAULT
  discardPromoteAdjustment: 1, // DEFAULT_DISCARD_PROMOTE_ADJUSTMENT
  readPromoteAdjustment: 4, // DEFAULT_READ_PROMOTE_ADJUSTMENT
  writePromoteAdjustment: 8, // DEFAULT_WRITE_PROMOTE_ADJUSTMENT
};

export const DEFAULT_MIGRATION_THRESHOLD = 2048;

const ULONG_MAX = 2n ** 64n - 1n;

/**
 * kstrtoul(s, 10): optional '+', decimal digits only, one optional trailing newline; overflow of
 * unsigned long is -ERANGE, anything else malformed is -EINVAL. Returns the value or a negative errno.
 */
export function kstrtoul10(s: string): bigint | number {
  let body = s;
  if (body.startsWith('+')) body = body.slice(1);
  if (body.endsWith('\n')) body = body.slice(0, -1);
  if (body.length === 0 || !/^[0-9]+$/.test(body)) return -EINVAL;
  const v = BigInt(body);
  if (v > ULONG_MAX) return -ERANGE;
  return v;
}

/** The value stored in the policy's `unsigned` field: kstrtoul's unsigned long truncated to 32 bits. */
function toU32(v: bigint): number {
  return Number(v & 0xffffffffn);
}

const KEY_FIELD: Readonly<Record<string, keyof MqTunables>> = {
  random_threshold: 'randomThreshold',
  sequential_threshold: 'sequentialThreshold',
  discard_promote_adjustment: 'discardPromoteAdjustment',
  read_promote_adjustment: 'readPromoteAdjustment',
  write_promote_adjustment: 'writePromoteAdjustment',
};

export type ConfigResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errno: number; readonly message: string };

/**
 * mq_set_config_value: the value is parsed first (any parse failure is -EINVAL, including the
 * kstrtoul -ERANGE), then the key is matched case-insensitively; an unknown key is -EINVAL.
 */
export function mqSetConfigValue(t: MqTunables, key: string, value: string): ConfigResult<MqTunables> {
  const parsed = kstrtoul10(value);
  if (typeof parsed === 'number') {
    return { ok: false, errno: -EINVAL, message: `bad config value for ${key}: ${value} (not a decimal unsigned long)` };
  }
  const field = KEY_FIELD[key.toLowerCase()];
  if (field === undefined) {
    return { ok: false, errno: -EINVAL, message: `bad config value for ${key}: ${value} (mq has no key '${key}')` };
  }
  return { ok: true, value: { ...t, [field]: toU32(parsed) } };
}

/** The core target's config (only migration_threshold) plus the policy's. */
export interface CacheConfig {
  readonly migrationThreshold: number;
  readonly mq: MqTunables;
}

/** set_config_value: the core option first, everything else goes to the policy. */
export function setConfigValue(c: CacheConfig, key: string, value: string): ConfigResult<CacheConfig> {
  if (key.toLowerCase() === 'migration_threshold') {
    const parsed = kstrtoul10(value);
    if (typeof parsed === 'number') {
      return { ok: false, errno: -EINVAL, message: `bad config value for ${key}: ${value}` };
    }
    // cache->migration_threshold is an unsigned long in the target; keep it exact up to 2^53.
    return { ok: true, value: { ...c, migrationThreshold: Number(parsed) } };
  }
  const r = mqSetConfigValue(c.mq, key, value);
  return r.ok ? { ok: true, value: { ...c, mq: r.value } } : r;
}

/**
 * set_config_values for the table's policy arguments (`<#policy args> <k v>*`, already split):
 * dm_read_arg_group allows 0..1024 words; an odd count is -EINVAL; pairs apply in order and the
 * first failure aborts the constructor (the partly-built cache is thrown away).
 */
export function ctrPolicyArgs(words: readonly string[]): ConfigResult<CacheConfig> {
  if (words.length > 1024) return { ok: false, errno: -EINVAL, message: 'Invalid number of policy arguments' };
  if (words.length % 2 === 1) {
    return { ok: false, errno: -EINVAL, message: "Error setting cache policy's config values: odd number of policy arguments, they should be <key> <value> pairs" };
  }
  let c: CacheConfig = { migrationThreshold: DEFAULT_MIGRATION_THRESHOLD, mq: MQ_DEFAULTS };
  for (let i = 0; i < words.length; i += 2) {
    const r = setConfigValue(c, words[i]!, words[i + 1]!);
    if (!r.ok) return { ok: false, errno: r.errno, message: `Error setting cache policy's config values: ${r.message}` };
    c = r.value;
  }
  return { ok: true, value: c };
}

/** cache_message for config keys: exactly two words (`<key> <value>`), else -EINVAL. */
export function cacheMessage(c: CacheConfig, argv: readonly string[]): ConfigResult<CacheConfig> {
  if (argv.length !== 2) {
    return { ok: false, errno: -EINVAL, message: `cache message takes '<key> <value>', got ${argv.length} word(s)` };
  }
  return setConfigValue(c, argv[0]!, argv[1]!);
}

/** mq_emit_config_values: the INFO status tail. */
export function emitConfigValues(t: MqTunables): string {
  return (
    `10 random_threshold ${t.randomThreshold} sequential_threshold ${t.sequentialThreshold} ` +
    `discard_promote_adjustment ${t.discardPromoteAdjustment} read_promote_adjustment ${t.readPromoteAdjustment} ` +
    `write_promote_adjustment ${t.writePromoteAdjustment}`
  );
}

/**
 * Versioned hashing: the bucketing rules every sharpen SDK shares.
 *
 * Hash version 1 is MurmurHash3 x86_32 (unsigned) of the UTF-8 bytes of
 * `${salt}:${unitId}`; the bucket is `hash % BUCKETS`. Lone surrogates have no
 * UTF-8 form and are encoded as U+FFFD (what `TextEncoder` does, and what the
 * Python SDK does), so every language hashes the same bytes.
 *
 * Each decision draws with its own seed, so traffic, variant, layer and
 * holdout decisions are independent. Shares and weights are read at their
 * shortest decimal form and turned into buckets in exact (bigint) arithmetic,
 * so 33.3 means 333/10 here exactly as in Python's `Fraction(repr(w))`.
 */

import { UnsupportedHashVersionError } from "./errors.js";

/** Buckets per draw; shares and layer ranges are expressed out of this. */
export const BUCKETS = 10_000;
/** Seed of the draw that decides whether a unit enters an experiment. */
export const TRAFFIC_SEED = 0x5348_0001;
/** Seed of the draw that picks the variant of an included unit. */
export const VARIANT_SEED = 0x5348_0002;
/** Seed of the draw that places a unit in a layer (salt = layer name). */
export const LAYER_SEED = 0x5348_0003;
/** Seed of the global-holdout draw (salt = HOLDOUT_SALT). */
export const HOLDOUT_SEED = 0x5348_0004;
/** Salt of the global holdout: the same units for every experiment. */
export const HOLDOUT_SALT = "sharpen-holdout";
/** Hash versions this SDK implements. */
export const SUPPORTED_HASH_VERSIONS: ReadonlySet<number> = new Set([1]);

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const encoder = new TextEncoder();

function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, tail: number, length: number): number {
  if (tail !== 0) {
    let k = Math.imul(tail, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `bytes` under `seed`, as an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  const length = bytes.length;
  const blocks = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  let tail = 0;
  switch (length & 3) {
    case 3:
      tail ^= bytes[blocks + 2]! << 16;
    // falls through
    case 2:
      tail ^= bytes[blocks + 1]! << 8;
    // falls through
    case 1:
      tail ^= bytes[blocks]!;
  }
  return finish(h, tail, length);
}

/**
 * Version-1 hash of the UTF-8 bytes of `key` under `seed`.
 *
 * ASCII keys (the common case) are hashed straight from their char codes,
 * without encoding; the first non-ASCII char switches to the UTF-8 bytes.
 */
export function hashKey(key: string, seed: number): number {
  const length = key.length;
  const blocks = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    const a = key.charCodeAt(i);
    const b = key.charCodeAt(i + 1);
    const c = key.charCodeAt(i + 2);
    const d = key.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return murmur3(encoder.encode(key), seed);
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  let tail = 0;
  for (let i = length - 1; i >= blocks; i--) {
    const code = key.charCodeAt(i);
    if (code > 0x7f) return murmur3(encoder.encode(key), seed);
    tail = (tail << 8) | code;
  }
  return finish(h, tail, length);
}

/**
 * The version-1 hash of `prefix + unit` for one fixed prefix and seed, without
 * building the joined string: the state after the prefix's bytes is computed
 * once, and each call continues it with the unit's chars. A unit with a
 * non-ASCII char is hashed from the UTF-8 bytes of the joined key instead.
 */
export class PrefixHasher {
  private readonly state: number;
  private readonly carry: number;
  private readonly carried: number;
  private readonly prefixLength: number;

  constructor(
    readonly prefix: string,
    readonly seed: number,
  ) {
    const bytes = encoder.encode(prefix);
    const blocks = bytes.length & ~3;
    let h = seed | 0;
    for (let i = 0; i < blocks; i += 4) {
      h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    }
    let carry = 0;
    for (let i = blocks; i < bytes.length; i++) carry |= bytes[i]! << (8 * (i - blocks));
    this.state = h;
    this.carry = carry;
    this.carried = bytes.length - blocks;
    this.prefixLength = bytes.length;
  }

  /** Unsigned 32-bit hash of the UTF-8 bytes of `prefix + unit`. */
  hash(unit: string): number {
    const length = unit.length;
    let h = this.state;
    let carry = this.carry;
    let carried = this.carried;
    let i = 0;
    if (carried !== 0) {
      // Complete the block the prefix left open.
      for (; carried < 4 && i < length; i++, carried++) {
        const code = unit.charCodeAt(i);
        if (code > 0x7f) return this.slow(unit);
        carry |= code << (8 * carried);
      }
      if (carried < 4) return finish(h, carry, this.prefixLength + length);
      h = mixBlock(h, carry);
      carry = 0;
    }
    const blocksEnd = i + ((length - i) & ~3);
    for (; i < blocksEnd; i += 4) {
      const a = unit.charCodeAt(i);
      const b = unit.charCodeAt(i + 1);
      const c = unit.charCodeAt(i + 2);
      const d = unit.charCodeAt(i + 3);
      if ((a | b | c | d) > 0x7f) return this.slow(unit);
      h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
    }
    let tail = 0;
    for (let shift = 0; i < length; i++, shift += 8) {
      const code = unit.charCodeAt(i);
      if (code > 0x7f) return this.slow(unit);
      tail |= code << shift;
    }
    return finish(h, tail, this.prefixLength + length);
  }

  private slow(unit: string): number {
    return murmur3(encoder.encode(this.prefix + unit), this.seed);
  }
}

/** Return `version` if this SDK implements it, else throw UnsupportedHashVersionError. */
export function checkHashVersion(version: unknown, key: string | null = null): number {
  if (typeof version === "number" && SUPPORTED_HASH_VERSIONS.has(version)) return version;
  throw new UnsupportedHashVersionError(version, key);
}

/** Unsigned 32-bit hash of `${salt}:${unitId}` under `seed` and hash `version`. */
export function unitHash(salt: string, unitId: string, options: { seed: number; version?: number }): number {
  checkHashVersion(options.version ?? 1);
  return hashKey(`${salt}:${unitId}`, options.seed);
}

/** Bucket in [0, BUCKETS) of `unitId` under `salt` and `seed`. */
export function bucket(salt: string, unitId: string, options: { seed: number; version?: number }): number {
  return unitHash(salt, unitId, options) % BUCKETS;
}

/** `x` exactly as its shortest decimal form: numerator / denominator (a power of ten). */
function shortestDecimal(x: number): [bigint, bigint] {
  const [mantissa, exponent] = x.toExponential().split("e") as [string, string];
  const digits = mantissa.replace("-", "").replace(".", "");
  const power = Number(exponent) - (digits.length - 1);
  let numerator = BigInt(digits);
  if (mantissa.startsWith("-")) numerator = -numerator;
  return power >= 0 ? [numerator * 10n ** BigInt(power), 1n] : [numerator, 10n ** BigInt(-power)];
}

const BIG_BUCKETS = BigInt(BUCKETS);

/** Buckets below which a unit falls inside `share` (clamped to [0, 1]). */
export function threshold(share: number): number {
  if (!(share > 0)) return 0; // also NaN
  if (share >= 1) return BUCKETS;
  const [n, d] = shortestDecimal(share);
  return Number((2n * BIG_BUCKETS * n + d) / (2n * d));
}

function exactWeight(w: unknown): [bigint, bigint] {
  if (typeof w !== "number") throw new TypeError(`weight ${JSON.stringify(w)} is not a number`);
  if (!Number.isFinite(w)) throw new RangeError(`weight ${w} is not finite`);
  if (w < 0) throw new RangeError(`weight ${w} is negative`);
  return shortestDecimal(w);
}

/**
 * Upper bucket boundary of each variant for the given weights.
 *
 * Variant i owns buckets [b[i-1], b[i]) with b[-1] = 0; the last boundary is
 * always BUCKETS. Weights must be finite, non-negative numbers, not all zero
 * (a TypeError or RangeError otherwise).
 */
export function weightBoundaries(weights: readonly unknown[]): number[] {
  const exact = weights.map(exactWeight);
  let common = 1n;
  for (const [, d] of exact) if (d > common) common = d; // all powers of ten
  const scaled = exact.map(([n, d]) => n * (common / d));
  const total = scaled.reduce((a, b) => a + b, 0n);
  if (total <= 0n) throw new RangeError("weights must not all be zero");
  const bounds: number[] = [];
  let running = 0n;
  for (const w of scaled) {
    running += w;
    bounds.push(Number((2n * BIG_BUCKETS * running + total) / (2n * total)));
  }
  return bounds;
}

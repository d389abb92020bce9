/** Retry policy for batch uploads: what to retry, and how long to wait. */

export type Outcome = "sent" | "retry" | "rejected";

/** `sent` for 2xx, `retry` for 408, 429 and 5xx, `rejected` for other codes. */
export function classify(status: number): Outcome {
  if (status >= 200 && status < 300) return "sent";
  if (status === 408 || status === 429 || status >= 500) return "retry";
  return "rejected";
}

/** Milliseconds to wait from a `Retry-After` header (delta-seconds or HTTP date), null if absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (text === "") return null;
  const seconds = Number(text);
  if (!Number.isNaN(seconds)) return Math.max(seconds * 1000, 0);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(when - now, 0);
}

/** Settings of the backoff (all optional; milliseconds). */
export interface RetryOptions {
  /** A batch is given up after this many tries (default 10). */
  maxAttempts?: number;
  /** First backoff ceiling (default 500 ms); doubles with each failure. */
  baseDelayMs?: number;
  /** Cap of the backoff ceiling (default 30 s). */
  maxDelayMs?: number;
  /** Cap of a server's Retry-After (default 120 s). */
  maxRetryAfterMs?: number;
}

/**
 * Exponential backoff with jitter, capped; Retry-After wins when sent.
 *
 * After failure n (1-based) the wait is a uniform draw in [d/2, d] with
 * d = min(maxDelayMs, baseDelayMs × 2^(n-1)).
 */
export class RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxRetryAfterMs: number;

  constructor(options: RetryOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? 10;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 120_000;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new RangeError(`retry.maxAttempts must be an integer >= 1 (got ${this.maxAttempts})`);
    }
    for (const name of ["baseDelayMs", "maxDelayMs", "maxRetryAfterMs"] as const) {
      if (!(this[name] >= 0)) throw new RangeError(`retry.${name} must be >= 0 (got ${this[name]})`);
    }
    Object.freeze(this);
  }

  /** The wait before the next try, after `failures` failed tries. */
  delay(failures: number, retryAfterMs: number | null, random: () => number = Math.random): number {
    if (retryAfterMs !== null) return Math.min(retryAfterMs, this.maxRetryAfterMs);
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.max(failures - 1, 0));
    return ceiling / 2 + random() * (ceiling / 2);
  }
}

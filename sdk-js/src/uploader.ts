/**
 * Background uploads of exposures and events: bounded queues, batches with an
 * Idempotency-Key their retries reuse, backoff with Retry-After, and a flush
 * that gives up at its deadline.
 *
 * One drain runs at a time (a promise chain is the lock): the periodic timer,
 * a full batch, `flush()` and `close()` all queue behind it.
 */

import { Batch, BoundedQueue } from "./buffer.js";
import { type Http, type HttpResponse, jsonOf } from "./http.js";
import type { Logger } from "./logger.js";
import { type RetryPolicy, classify, parseRetryAfter } from "./retry.js";
import type { Counters } from "./stats.js";
import { type EventBody, type ExposureRecord, exposureBody } from "./wire.js";

export interface UploaderSettings {
  readonly maxBatch: number;
  readonly maxBuffer: number;
  readonly flushIntervalMs: number;
  readonly retry: RetryPolicy;
}

const now = (): number => performance.now();

/** Resolve after `ms` (early when `signal` aborts); an unref'd timer does not hold the process open. */
function sleep(ms: number, options: { signal?: AbortSignal; ref: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const signal = options.signal;
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (!options.ref) timer.unref();
    signal?.addEventListener("abort", done, { once: true });
  });
}

export class Uploader {
  readonly exposures: BoundedQueue<ExposureRecord>;
  readonly events: BoundedQueue<EventBody>;
  private lock: Promise<unknown> = Promise.resolve();
  private backgroundQueued = false;
  private stopping = false;
  private closeDeadline = Number.POSITIVE_INFINITY;
  private readonly refusals = new RefusalLog();
  private readonly stopped = new AbortController();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly http: Http,
    private readonly settings: UploaderSettings,
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {
    this.exposures = new BoundedQueue(settings.maxBuffer);
    this.events = new BoundedQueue(settings.maxBuffer);
    this.timer = setInterval(() => this.wake(), settings.flushIntervalMs);
    this.timer.unref();
  }

  get pending(): number {
    return this.exposures.length + this.events.length;
  }

  /** Start a background drain soon, unless one is already waiting to start. */
  wake(): void {
    if (this.backgroundQueued || this.stopping) return;
    this.backgroundQueued = true;
    setImmediate(() => {
      this.drain(null, () => {
        this.backgroundQueued = false;
      }).catch((error: unknown) => this.logger.error(`sharpen: upload failed unexpectedly: ${String(error)}`));
    });
  }

  /** Send what is queued, for at most `timeoutMs`; true when nothing is left pending. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = now() + timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      const finished = await Promise.race([this.drain(deadline).then(() => true), expired]);
      return finished && this.pending === 0;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the timer and any background backoff; from now on retries give up at `deadline`. */
  stop(deadlineMs: number): void {
    this.stopping = true;
    this.closeDeadline = now() + deadlineMs;
    clearInterval(this.timer);
    this.stopped.abort();
  }

  /** Count everything still queued as dropped (after the close deadline). */
  abandon(): void {
    this.exposures.abandon();
    this.events.abandon();
  }

  private drain(deadline: number | null, onStart?: () => void): Promise<void> {
    const run = this.lock.then(() => {
      onStart?.();
      return this.drainNow(deadline);
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  private limit(deadline: number | null): number | null {
    return deadline ?? (this.stopping ? this.closeDeadline : null);
  }

  private async drainNow(deadline: number | null): Promise<void> {
    for (;;) {
      const limit = this.limit(deadline);
      if (limit !== null && now() >= limit) return;
      const batches = this.nextBatches();
      if (batches.length === 0) return;
      for (const batch of batches) await this.send(batch, deadline);
    }
  }

  /** Up to one batch of each kind, oldest items first. */
  private nextBatches(): Batch[] {
    const batches: Batch[] = [];
    const records = this.exposures.take(this.settings.maxBatch);
    if (records.length > 0) {
      batches.push(new Batch("exposures", records.length, JSON.stringify(exposureBody(records))));
    }
    const events = this.events.take(this.settings.maxBatch);
    if (events.length > 0) batches.push(new Batch("events", events.length, JSON.stringify({ events })));
    return batches;
  }

  private async send(batch: Batch, deadline: number | null): Promise<void> {
    const headers = { "Idempotency-Key": batch.idempotencyKey };
    for (;;) {
      let response: HttpResponse | null = null;
      let error: unknown = null;
      try {
        response = await this.http.request("POST", batch.path, { body: batch.body, headers });
      } catch (caught) {
        error = caught; // network errors are retried
      }
      const limit = this.limit(deadline);
      const delay = this.afterAttempt(batch, response, error, limit === null ? null : limit - now());
      if (delay === null) return;
      // The background sender's backoff ends early at close(); after that, and in a
      // flush, the backoff is waited out (it fits before the deadline).
      const interruptible = deadline === null && !this.stopping;
      await sleep(delay, interruptible ? { signal: this.stopped.signal, ref: false } : { ref: true });
    }
  }

  /** Count a finished batch and return null, or the delay before its retry. */
  private afterAttempt(
    batch: Batch,
    response: HttpResponse | null,
    error: unknown,
    timeLeft: number | null,
  ): number | null {
    let retryAfter: number | null = null;
    let reason: string;
    if (response !== null) {
      const outcome = classify(response.status);
      if (outcome !== "retry") {
        this.finish(batch, outcome, response);
        return null;
      }
      retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      reason = `HTTP ${response.status}`;
    } else {
      reason = error instanceof Error ? error.message : String(error);
    }
    batch.failures += 1;
    const policy = this.settings.retry;
    const delay = policy.delay(batch.failures, retryAfter);
    if (batch.failures >= policy.maxAttempts || (timeLeft !== null && delay > timeLeft)) {
      this.logger.warn(`sharpen: giving up on ${batch.size} ${batch.kind} after ${batch.failures} attempts (${reason})`);
      this.finish(batch, "failed", null);
      return null;
    }
    this.counters.add("retries");
    return delay;
  }

  private finish(batch: Batch, outcome: "sent" | "rejected" | "failed", response: HttpResponse | null): void {
    const events = batch.kind === "events";
    if (events && outcome !== "failed" && response !== null) {
      this.eventsAnswered(batch, outcome, response);
      return;
    }
    const counter = outcome === "sent" ? "Sent" : outcome === "rejected" ? "Rejected" : "Failed";
    this.counters.add(`${events ? "events" : "exposures"}${counter}`, batch.size);
    if (outcome === "rejected" && response !== null) {
      this.logger.warn(
        `sharpen: service rejected ${batch.size} ${batch.kind}: HTTP ${response.status} ${response.text.slice(0, 500)}`,
      );
    }
  }

  /**
   * Count an events batch the service answered. A 202 may refuse some events
   * (`rejected_count`, listed by index in `rejected`): the others were kept. Refused
   * events are never resent; each kind of refusal is logged once.
   */
  private eventsAnswered(batch: Batch, outcome: "sent" | "rejected", response: HttpResponse): void {
    const body = (jsonOf(response) ?? {}) as Record<string, unknown>;
    let refused: number;
    let entries: unknown;
    if (outcome === "sent") {
      refused = Math.min(Math.max(count(body.rejected_count), 0), batch.size);
      this.counters.add("eventsSent", batch.size - refused);
      this.counters.add("eventsDuplicates", count(body.duplicates));
      entries = body.rejected;
    } else {
      refused = batch.size;
      const error = body.error as Record<string, unknown> | undefined;
      entries = error !== null && typeof error === "object" ? error.details : undefined;
    }
    if (refused > 0) {
      this.counters.add("eventsRejected", refused);
      this.refusals.note(entries, refused, batch.size, response, this.logger);
    }
  }

}

function count(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) ? value : 0;
}

const MAX_REFUSAL_KINDS = 100;
const INDEX = /^events\.\d+\.?/;

/** Which kinds of refusal (field without the event's index, plus the code) were logged. */
class RefusalLog {
  private readonly kinds = new Set<string>();

  note(entries: unknown, refused: number, size: number, response: HttpResponse, logger: Logger): void {
    const found: [kind: string, field: string, message: string][] = [];
    if (Array.isArray(entries)) {
      for (const entry of entries) {
        if (entry === null || typeof entry !== "object") continue;
        const e = entry as Record<string, unknown>;
        const field = typeof e.field === "string" ? e.field : "";
        let kind = field.replace(INDEX, "") || field || "event";
        if (typeof e.code === "string") kind = `${kind} (${e.code})`;
        found.push([kind, field, String(e.message ?? "").slice(0, 300)]);
      }
    }
    if (found.length === 0) found.push([`HTTP ${response.status}`, "", response.text.slice(0, 300)]);
    for (const [kind, field, message] of found) {
      if (this.kinds.has(kind) || this.kinds.size >= MAX_REFUSAL_KINDS) continue;
      this.kinds.add(kind);
      const last = this.kinds.size === MAX_REFUSAL_KINDS ? "; no further kinds are logged" : "";
      logger.warn(
        `sharpen: the service refused ${refused} of ${size} events (HTTP ${response.status}), e.g. ` +
          `${field ? `${field}: ` : ""}${message}; refused events are not resent and count in ` +
          `stats.eventsRejected; this kind (${kind}) is logged once${last}`,
      );
    }
  }
}

/** The client: local evaluation with a polled config, remote mode with fallback, uploads. */

import { canonical } from "./canonical.js";
import type { Config } from "./config.js";
import { type ConfigChannel, type ConfigListener, ConfigPoller, ConfigStore, ConfigStream } from "./config-feed.js";
import { ClientClosedError, HTTPStatusError } from "./errors.js";
import { assignFromConfig, evaluate } from "./evaluation.js";
import { type Fetch, Http, jsonOf } from "./http.js";
import { type Logger, consoleLogger } from "./logger.js";
import { type Assignment, type Attributes, EMPTY_PAYLOAD, assignment } from "./models.js";
import { RetryPolicy, type RetryOptions } from "./retry.js";
import { type ClientStats, Counters } from "./stats.js";
import { Uploader } from "./uploader.js";
import { VERSION } from "./version.js";
import { ASSIGN_PATH, type TrackOptions, assignBody, eventBody, parseAssignResponse } from "./wire.js";

export type Mode = "local" | "remote";

/** Client settings; every one is optional. Invalid values throw at construction, naming the option. */
export interface ClientOptions {
  /** `local` (default): evaluate in-process from the polled config. `remote`: ask `POST /v1/assign`. */
  mode?: Mode;
  /** Longest wait of any request, and of the first config load (default 2000 ms). */
  timeoutMs?: number;
  /**
   * Take config changes from the service's push stream, `GET /v1/config/stream` (default
   * true): a rollback reaches the client within a second or so. While the stream is down
   * the config is polled, and the stream reconnected with jittered backoff.
   */
  stream?: boolean;
  /** Config refresh period without the stream, or while it is down (default 30 000 ms, ±10% jitter); null loads once. */
  pollIntervalMs?: number | null;
  /** Experiment key → the variant every unit gets, reason `override`, never exposed (tests, QA); see force(). */
  overrides?: Readonly<Record<string, string>>;
  /** Upload period of queued exposures and events (default 5000 ms). */
  flushIntervalMs?: number;
  /** Items per upload; a full batch is sent at once (default 500). */
  maxBatch?: number;
  /** Exposures, and events, that may wait in memory; more are dropped and counted (default 100 000). */
  maxBuffer?: number;
  /** Units per experiment remembered as exposed, not resent (default 100 000; 0 sends every call). */
  exposureCache?: number;
  /** Backoff of the uploads (see RetryPolicy). */
  retry?: RetryOptions;
  /** The fetch to call (default: the global one). */
  fetch?: Fetch;
  /** Where warnings go (default: console). */
  logger?: Logger;
}

/** Per-call options of assign(). */
export interface AssignOptions {
  /** The variant served when the experiment is unknown or no config was ever loaded. */
  default?: string;
  /**
   * false: log no exposure now (evaluated locally, in remote mode too); call
   * `client.expose(answer)` once the treatment is actually used (default true).
   */
  expose?: boolean;
}

interface Unexposed {
  readonly unit: string;
  readonly attributes: Attributes | null;
  readonly version: number;
}

function positive(name: string, value: number): number {
  if (!(typeof value === "number" && value > 0 && Number.isFinite(value))) {
    throw new RangeError(`${name} must be a positive number of milliseconds (got ${value})`);
  }
  return value;
}

function integer(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min} (got ${value})`);
  return value;
}

/**
 * Assign units to variants and report outcomes to a sharpen service.
 *
 * The first config load starts at construction; `await client.ready()` (or the
 * first `await client.assign()` in local mode) waits for it, at most `timeoutMs`.
 * Neither `assign()` nor `assignSync()` ever throws: without a config the answer
 * is the caller's default with reason `fallback`. Call `close()` so that what is
 * queued gets sent.
 */
export class Client {
  private readonly mode: Mode;
  private readonly http: Http;
  private readonly counters = new Counters();
  /** Where the client's warnings go. */
  readonly logger: Logger;
  private readonly store: ConfigStore;
  private readonly poller: ConfigPoller;
  private readonly channels: ConfigChannel[];
  /** The answers of assign(..., { expose: false }) that expose() can still log. */
  private readonly unexposed = new WeakMap<Assignment, Unexposed>();
  private readonly uploader: Uploader;
  private readonly maxBatch: number;
  private readonly cacheSize: number;
  private readonly firstLoad: Promise<boolean>;
  private waited = false;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
    if (typeof apiKey !== "string" || apiKey === "") throw new TypeError("apiKey must be a non-empty string");
    new URL(baseUrl); // throws a TypeError naming an invalid URL
    const mode = options.mode ?? "local";
    if (mode !== "local" && mode !== "remote") {
      throw new RangeError(`mode must be "local" or "remote" (got ${JSON.stringify(mode)})`);
    }
    const timeoutMs = positive("timeoutMs", options.timeoutMs ?? 2000);
    const pollIntervalMs = options.pollIntervalMs === undefined ? 30_000 : options.pollIntervalMs;
    if (pollIntervalMs !== null) positive("pollIntervalMs", pollIntervalMs);
    const flushIntervalMs = positive("flushIntervalMs", options.flushIntervalMs ?? 5000);
    const maxBatch = integer("maxBatch", options.maxBatch ?? 500, 1);
    const maxBuffer = integer("maxBuffer", options.maxBuffer ?? 100_000, 1);
    if (maxBuffer < maxBatch) throw new RangeError(`maxBuffer must be >= maxBatch (got ${maxBuffer})`);
    this.cacheSize = integer("exposureCache", options.exposureCache ?? 100_000, 0);
    const retry = new RetryPolicy(options.retry);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("fetch is not available: pass options.fetch");

    this.mode = mode;
    this.maxBatch = maxBatch;
    this.logger = options.logger ?? consoleLogger;
    // Node's own HTTP client for the stream (an unref'd socket) unless a fetch was given.
    const nodeStreams = options.fetch === undefined && typeof globalThis.process?.versions?.node === "string";
    this.http = new Http(baseUrl, apiKey, `sharpen-js/${VERSION}`, timeoutMs, fetchImpl, nodeStreams);
    this.store = new ConfigStore(this.counters, this.logger, overridesOf(options.overrides));
    this.uploader = new Uploader(this.http, { maxBatch, maxBuffer, flushIntervalMs, retry }, this.counters, this.logger);
    this.poller = new ConfigPoller(this.http, this.store, pollIntervalMs);
    const stream = options.stream ?? true;
    const first = stream
      ? new ConfigStream(this.http, this.store, this.poller, pollIntervalMs, this.counters, this.logger)
      : this.poller;
    this.channels = [first];
    for (const channel of this.channels) channel.start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    this.firstLoad = Promise.race([first.firstAttempt, timedOut]).then(() => {
      clearTimeout(timer);
      this.waited = true;
      return this.store.config !== null;
    });
  }

  // --- public API -------------------------------------------------------------------

  /** Wait for the first config load (at most `timeoutMs`); true if a config is loaded. */
  ready(): Promise<boolean> {
    return this.firstLoad;
  }

  /**
   * The variant of `unitId` in `experiment`; never rejects.
   *
   * Local mode evaluates in-process (after waiting for the first config load, at
   * most `timeoutMs`, on the first calls); remote mode asks `POST /v1/assign` and
   * evaluates locally when that fails. `attributes` feed targeting.
   */
  assign(
    experiment: string,
    unitId: string | number,
    attributes?: Attributes | null,
    options?: AssignOptions,
  ): Promise<Assignment> {
    if (this.waited && (this.mode === "local" || this.closed || options?.expose === false)) {
      return Promise.resolve(this.assignSync(experiment, unitId, attributes, options));
    }
    if (options?.expose === false) {
      return this.firstLoad.then(() => this.assignSync(experiment, unitId, attributes, options));
    }
    return this.assignLater(experiment, unitId, attributes, options?.default ?? null);
  }

  /**
   * Log the exposure of an `assign(..., { expose: false })` answer now, once its treatment
   * is used. True when queued; false when the unit is not in the experiment, the answer
   * was exposed already (by this call or an earlier one), or the buffer is full.
   */
  expose(answer: Assignment): boolean {
    const pending = this.unexposed.get(answer);
    if (pending === undefined) return false;
    this.unexposed.delete(answer);
    const live = this.store.live.get(answer.experiment);
    const exposed = live !== undefined && live.version === pending.version ? live.exposed : null;
    const variant = answer.variant as string;
    if (exposed?.get(pending.unit) === variant) return false;
    const queue = this.uploader.exposures;
    if (this.closed) {
      queue.dropped++;
      return false;
    }
    const record = {
      experiment: answer.experiment,
      unitId: pending.unit,
      variant,
      version: pending.version,
      at: Date.now(),
      attributes: pending.attributes,
    };
    if (!queue.add(record)) return false;
    if (exposed !== null && this.cacheSize > 0) {
      if (exposed.size >= this.cacheSize) exposed.clear();
      exposed.set(pending.unit, variant);
    }
    if (queue.length >= this.maxBatch) this.uploader.wake();
    return true;
  }

  /** Serve `variant` to every unit of `experiment` from now on, reason `override`, never exposed (tests, QA); null removes it. */
  force(experiment: string, variant: string | null): void {
    if (variant !== null) checkOverride(experiment, variant, "force");
    this.store.force(experiment, variant);
  }

  /**
   * The local evaluation of `unitId` in `experiment`, synchronously; never throws.
   *
   * The hot-path form of assign(): no promise, no waiting (before the first config
   * load it answers `fallback`). In remote mode it is the local fallback evaluation.
   */
  assignSync(
    experiment: string,
    unitId: string | number,
    attributes?: Attributes | null,
    options?: AssignOptions,
  ): Assignment {
    const fallback = options?.default ?? null;
    try {
      if (options?.expose === false) return this.assignUnexposed(experiment, unitId, attributes, fallback);
      return this.assignLocal(experiment, unitId, attributes, fallback);
    } catch (error) {
      return this.failed(experiment, fallback, error);
    }
  }

  /**
   * Queue an outcome event for `POST /v1/events`; return its `event_id`.
   *
   * `options.variant` defaults to what this client served the unit, else to its
   * local evaluation with `options.attributes` (null when the unit is not in the
   * experiment: the service then decides). Throws InvalidEventError, naming the
   * field, for values the service would reject; a full buffer drops (and counts) it.
   */
  track(experiment: string, unitId: string | number, values: Record<string, number | boolean>, options: TrackOptions = {}): string {
    let variant = options.variant ?? null;
    const unit = canonical(unitId);
    if (variant === null && unit) {
      // What this process served the unit wins; else evaluate it now.
      variant = this.store.live.get(experiment)?.exposed.get(unit) ?? null;
      if (variant === null && this.store.config !== null) {
        const local = assignFromConfig(this.store.config, experiment, unit, options.attributes);
        variant = local.inExperiment ? local.variant : null;
      }
    }
    const event = eventBody(experiment, unitId, values, variant, options);
    const events = this.uploader.events;
    if (this.closed) {
      events.dropped++;
      this.logger.warn(`sharpen: track() after close(); event ${event.event_id} dropped`);
    } else if (events.add(event) && events.length >= this.maxBatch) {
      this.uploader.wake();
    }
    return event.event_id;
  }

  /** Fetch the config now; true if it changed, false on 304. Rejects on failure (the config in use is kept). */
  async refresh(): Promise<boolean> {
    if (this.closed) throw new ClientClosedError("refresh() after close()");
    return this.poller.refresh();
  }

  /** Send everything queued now; true when nothing is left pending. Waits at most about `timeoutMs`. */
  flush(timeoutMs = 10_000): Promise<boolean> {
    return this.uploader.flush(timeoutMs);
  }

  /** Stop polling, send what is queued (for at most `timeoutMs`), count the rest as dropped. */
  close(timeoutMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      for (const channel of this.channels) channel.stop();
      this.uploader.stop(timeoutMs);
      await this.uploader.flush(timeoutMs);
      this.uploader.abandon();
    })();
    return this.closing;
  }

  /** A snapshot of the client's counters. */
  get stats(): ClientStats {
    const { exposures, events } = this.uploader;
    return this.counters.snapshot({
      configSkippedEntries: this.store.config?.skipped.size ?? 0,
      exposuresPending: exposures.length,
      exposuresDropped: exposures.dropped,
      eventsPending: events.length,
      eventsDropped: events.dropped,
    });
  }

  /** The config in use, null until one was loaded. */
  get config(): Config | null {
    return this.store.config;
  }

  /** Call `listener` with every config installed from now on; returns the unsubscribe function. */
  onConfigChange(listener: ConfigListener): () => void {
    return this.store.listen(listener);
  }

  /** The experiments (→ variant) this client recently exposed `unitId` to, or served it remotely. */
  servedVariants(unitId: string | number): Map<string, string> {
    const unit = canonical(unitId);
    const out = new Map<string, string>();
    if (!unit) return out;
    for (const [key, live] of this.store.live) {
      const variant = live.exposed.get(unit);
      if (variant !== undefined) out.set(key, variant);
    }
    return out;
  }

  // --- internals ----------------------------------------------------------------------

  /** Evaluate in-process; queue an exposure when the unit is in the experiment. */
  private assignLocal(
    experiment: string,
    unitId: unknown,
    attributes: Attributes | null | undefined,
    fallback: string | null,
  ): Assignment {
    const live = this.store.live.get(experiment);
    if (live === undefined) return this.notLive(experiment, fallback);
    const unit = typeof unitId === "string" ? unitId : (canonical(unitId) ?? "");
    const result = evaluate(live.entry, unit, attributes);
    if (result.inExperiment) {
      const variant = result.variant as string;
      const exposed = live.exposed;
      // The analysis counts a unit from its first exposure: the same assignment
      // of the same unit is not resent while remembered.
      if (exposed.get(unit) !== variant) {
        const queue = this.uploader.exposures;
        if (this.closed) {
          queue.dropped++;
          return result;
        }
        const record = {
          experiment,
          unitId: unit,
          variant,
          version: live.version,
          at: Date.now(),
          // A copy: callers may reuse and mutate their attributes object.
          attributes: attributes ? { ...attributes } : null,
        };
        if (!queue.add(record)) return result;
        if (this.cacheSize > 0) {
          if (exposed.size >= this.cacheSize) exposed.clear();
          exposed.set(unit, variant);
        }
        if (queue.length >= this.maxBatch) this.uploader.wake();
      }
    }
    return result;
  }

  /** assignLocal() without the exposure: an in-experiment answer is a new object expose() knows. */
  private assignUnexposed(
    experiment: string,
    unitId: unknown,
    attributes: Attributes | null | undefined,
    fallback: string | null,
  ): Assignment {
    const live = this.store.live.get(experiment);
    if (live === undefined) return this.notLive(experiment, fallback);
    const unit = typeof unitId === "string" ? unitId : (canonical(unitId) ?? "");
    const result = evaluate(live.entry, unit, attributes);
    if (!result.inExperiment) return result;
    const answer = assignment(experiment, result.variant, result.payload, true, result.reason);
    this.unexposed.set(answer, { unit, attributes: attributes ? { ...attributes } : null, version: live.version });
    return answer;
  }

  private notLive(experiment: string, fallback: string | null): Assignment {
    const forced = this.store.overrides.get(experiment);
    if (forced !== undefined) return assignment(experiment, forced, EMPTY_PAYLOAD, false, "override");
    const reason = this.store.config === null ? "fallback" : "unknown_experiment";
    return assignment(experiment, fallback, EMPTY_PAYLOAD, false, reason);
  }

  /** assign() when it has to wait: for the first config load, or for the service. */
  private async assignLater(
    experiment: string,
    unitId: string | number,
    attributes: Attributes | null | undefined,
    fallback: string | null,
  ): Promise<Assignment> {
    try {
      if (this.mode === "remote" && !this.closed) return await this.assignRemote(experiment, unitId, attributes, fallback);
      await this.firstLoad;
      return this.assignLocal(experiment, unitId, attributes, fallback);
    } catch (error) {
      return this.failed(experiment, fallback, error);
    }
  }

  private async assignRemote(
    experiment: string,
    unitId: string | number,
    attributes: Attributes | null | undefined,
    fallback: string | null,
  ): Promise<Assignment> {
    if (this.store.overrides.has(experiment)) return this.assignLocal(experiment, unitId, attributes, fallback);
    try {
      const response = await this.http.request("POST", ASSIGN_PATH, {
        body: assignBody(experiment, unitId, attributes),
      });
      if (response.status !== 200) {
        throw new HTTPStatusError(`POST ${ASSIGN_PATH} answered ${response.status}`, response.status);
      }
      let result = parseAssignResponse(jsonOf(response), experiment);
      if (result.variant === null && fallback !== null) {
        result = assignment(experiment, fallback, result.payload, result.inExperiment, result.reason);
      }
      if (result.inExperiment && this.cacheSize > 0) {
        // The service logged this exposure; remembered so that a local fallback does
        // not resend it and track() attributes events to what was served.
        const exposed = this.store.live.get(experiment)?.exposed;
        const unit = canonical(unitId);
        if (exposed !== undefined && unit) {
          if (exposed.size >= this.cacheSize) exposed.clear();
          exposed.set(unit, result.variant as string);
        }
      }
      return result;
    } catch (error) {
      this.counters.add("remoteErrors");
      this.logger.warn(
        `sharpen: remote assign of ${JSON.stringify(experiment)} failed (${error instanceof Error ? error.message : String(error)}); evaluating locally`,
      );
      return this.assignLocal(experiment, unitId, attributes, fallback);
    }
  }

  private failed(experiment: string, fallback: string | null, error: unknown): Assignment {
    this.logger.error(`sharpen: assign(${JSON.stringify(experiment)}) failed unexpectedly: ${String(error)}`);
    return assignment(experiment, fallback, EMPTY_PAYLOAD, false, "fallback");
  }
}

function checkOverride(experiment: unknown, variant: unknown, where: string): void {
  if (typeof experiment !== "string" || experiment === "") {
    throw new TypeError(`${where}: experiment keys must be non-empty strings (got ${JSON.stringify(experiment)})`);
  }
  if (typeof variant !== "string" || variant === "") {
    throw new TypeError(`${where}[${JSON.stringify(experiment)}] must be a variant key (got ${JSON.stringify(variant)})`);
  }
}

function overridesOf(overrides: Readonly<Record<string, string>> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const [experiment, variant] of Object.entries(overrides ?? {})) {
    checkOverride(experiment, variant, "overrides");
    out.set(experiment, variant);
  }
  return out;
}

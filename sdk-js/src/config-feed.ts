/**
 * How config documents reach a client, and where they land.
 *
 * A ConfigStore holds the config in use (with the per-experiment exposure
 * memory the assign path needs) and installs every new document. Channels feed
 * it: ConfigStream reads `GET /v1/config/stream` (server-sent events: the config on
 * connect and on every change) and, while the stream is down, has the ConfigPoller ask
 * `GET /v1/config` with If-None-Match; without the stream the poller runs on its own,
 * every interval.
 */

import { type Config, type ExperimentConfig, parseConfig } from "./config.js";
import { ConfigError, HTTPStatusError } from "./errors.js";
import type { Http, HttpResponse } from "./http.js";
import type { Logger } from "./logger.js";
import { EMPTY_PAYLOAD, assignment } from "./models.js";
import { parseRetryAfter } from "./retry.js";
import type { Counter, Counters } from "./stats.js";
import { CONFIG_PATH, STREAM_PATH } from "./wire.js";

/** No byte for this long (the service pings every 15 s): the stream is dead, reconnect. */
const STREAM_READ_TIMEOUT_MS = 45_000;
/**
 * After a stream the service ended (a restart), reconnect after a uniform draw in
 * [100, this] ms: a fleet comes back spread out, not all at once.
 */
const RECONNECT_SPREAD_MS = 2000;
/** The longest wait between failed stream attempts (1 s, 2 s, 4 s ... jittered). */
const STREAM_MAX_BACKOFF_MS = 30_000;

/** A source of config documents for a ConfigStore. */
export interface ConfigChannel {
  start(): void;
  stop(): void;
}

/** One experiment as the assign path reads it: one Map lookup finds all three. */
export interface LiveExperiment {
  readonly entry: ExperimentConfig;
  /** Unit id → the variant last exposed (or served remotely); cleared when full. */
  readonly exposed: Map<string, string>;
  readonly version: number;
}

export type ConfigListener = (config: Config) => void;

export class ConfigStore {
  config: Config | null = null;
  live: ReadonlyMap<string, LiveExperiment> = new Map();
  private readonly listeners = new Set<ConfigListener>();

  /** `overrides`: experiment key → the variant every unit gets (reason `override`). */
  constructor(
    private readonly counters: Counters,
    private readonly logger: Logger,
    readonly overrides: Map<string, string> = new Map(),
  ) {}

  /** Force `variant` for `experiment` (null: stop); applied to the config in use now. */
  force(experiment: string, variant: string | null): void {
    if (variant === null) this.overrides.delete(experiment);
    else this.overrides.set(experiment, variant);
    if (this.config !== null) this.install(this.config);
  }

  /** The headers of a stream (re)connect: `Last-Event-ID` skips a config already held. */
  streamHeaders(): Record<string, string> {
    const etag = this.config?.etag;
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (etag) headers["Last-Event-ID"] = etag.replace(/^W\//, "").replace(/^"|"$/g, "");
    return headers;
  }

  /** Install what a stream event carries; true for an event showing the stream is live. */
  applyEvent(event: ServerEvent): boolean {
    if (event.kind === "unchanged") return true;
    if (event.kind !== "config") return false;
    let document: unknown;
    try {
      document = JSON.parse(event.data);
    } catch {
      throw new ConfigError(`${STREAM_PATH}: config event is not JSON`);
    }
    this.apply(parseConfig(document, event.id ? `"${event.id}"` : null), "configPushes");
    return true;
  }

  /** The If-None-Match header for the config in use. */
  conditionalHeaders(): Record<string, string> {
    const etag = this.config?.etag;
    return etag ? { "If-None-Match": etag } : {};
  }

  /**
   * Install the config of a `GET /v1/config` answer; true if it changed.
   *
   * 304 keeps the current config. Throws HTTPStatusError or ConfigError (the
   * current config is kept then too).
   */
  applyResponse(response: HttpResponse): boolean {
    if (response.status === 304 && this.config !== null) {
      this.counters.add("configNotModified");
      return false;
    }
    if (response.status !== 200) {
      throw new HTTPStatusError(`GET ${CONFIG_PATH} answered ${response.status}`, response.status);
    }
    let document: unknown;
    try {
      document = JSON.parse(response.text);
    } catch {
      throw new ConfigError(`GET ${CONFIG_PATH}: body is not JSON`);
    }
    this.apply(parseConfig(document, response.headers.get("etag")));
    return true;
  }

  /** Use `config` from now on (keeping what was exposed under an unchanged version). */
  apply(config: Config, counter: Counter = "configLoads"): void {
    for (const [key, why] of config.skipped) {
      this.logger.warn(`sharpen: skipping malformed experiment ${JSON.stringify(key)}: ${why}`);
    }
    this.install(config);
    this.counters.add(counter);
    for (const listener of this.listeners) {
      try {
        listener(config);
      } catch (error) {
        this.logger.error(`sharpen: a config listener threw: ${String(error)}`);
      }
    }
  }

  private install(config: Config): void {
    const previous = this.live;
    const live = new Map<string, LiveExperiment>();
    for (const [key, parsed] of config.experiments) {
      const old = previous.get(key);
      const forced = this.overrides.get(key);
      // An overridden experiment answers the override to every unit, as a shipped one
      // does: the assign path does not look overrides up.
      const entry = forced === undefined ? parsed : forcedEntry(parsed, forced);
      const exposed = old !== undefined && old.version === entry.version ? old.exposed : new Map<string, string>();
      live.set(key, { entry, exposed, version: entry.version });
    }
    this.live = live;
    this.config = config;
  }

  failed(error: unknown): void {
    this.counters.add("configErrors");
    this.logger.warn(`sharpen: config refresh failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  listen(listener: ConfigListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function forcedEntry(entry: ExperimentConfig, variant: string): ExperimentConfig {
  const payload = entry.variants.find((v) => v.key === variant)?.payload ?? EMPTY_PAYLOAD;
  const fixed = assignment(entry.key, variant, payload, false, "override");
  return Object.freeze(Object.assign(Object.create(Object.getPrototypeOf(entry) as object) as object, entry, { fixed }));
}

/** One server-sent event. */
export interface ServerEvent {
  readonly kind: string;
  readonly id: string | null;
  readonly data: string;
}

/** Feed it lines (without their line break); it returns each complete event once. */
export class EventParser {
  private kind = "";
  private id: string | null = null;
  private data: string[] = [];

  feed(line: string): ServerEvent | null {
    if (line === "") {
      if (this.data.length === 0 && this.kind === "") return null;
      const event = { kind: this.kind || "message", id: this.id, data: this.data.join("\n") };
      this.kind = "";
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return null; // a comment: the service's heartbeat
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.kind = value;
    else if (name === "id") this.id = value;
    return null;
  }
}

/** Polls `GET /v1/config` with If-None-Match every interval (±10% jitter), forever until stopped. */
export class ConfigPoller implements ConfigChannel {
  /** Settles after the first attempt, loaded or not. */
  readonly firstAttempt: Promise<void>;
  private markFirst: () => void = () => undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly http: Http,
    private readonly store: ConfigStore,
    private readonly intervalMs: number | null,
  ) {
    this.firstAttempt = new Promise((resolve) => {
      this.markFirst = resolve;
    });
  }

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Fetch the config now; true if it changed, false on 304. Throws on failure. */
  async refresh(): Promise<boolean> {
    const response = await this.http.request("GET", CONFIG_PATH, { headers: this.store.conditionalHeaders() });
    return this.store.applyResponse(response);
  }

  private async poll(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      if (!this.stopped) this.store.failed(error);
    } finally {
      this.markFirst();
    }
    if (this.stopped || this.intervalMs === null) return;
    // Jitter, so that a fleet does not poll in lockstep.
    this.timer = setTimeout(() => void this.poll(), this.intervalMs * (0.9 + Math.random() * 0.2));
    this.timer.unref();
  }
}

/**
 * Reads `GET /v1/config/stream` until stopped: every config pushed is installed; when the
 * stream fails (or is refused) the poller fetches the config once, and the stream is
 * reconnected after a jittered backoff (at most the poll interval).
 */
export class ConfigStream implements ConfigChannel {
  /** Settles after the first config, or after the first failed attempt and its poll. */
  readonly firstAttempt: Promise<void>;
  private markFirst: () => void = () => undefined;
  private stopped = false;
  private controller: AbortController | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private wakeUp: () => void = () => undefined;

  constructor(
    private readonly http: Http,
    private readonly store: ConfigStore,
    private readonly poller: ConfigPoller,
    private readonly pollIntervalMs: number | null,
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {
    this.firstAttempt = new Promise((resolve) => {
      this.markFirst = resolve;
    });
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort(new Error("client closed"));
    clearTimeout(this.timer);
    this.wakeUp();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const [live, retryAfterMs] = await this.once();
      if (this.stopped) return;
      failures = live ? 0 : failures + 1;
      if (!live) {
        try {
          await this.poller.refresh();
        } catch (error) {
          if (!this.stopped) this.store.failed(error);
        }
      }
      this.markFirst();
      await this.sleep(this.delay(failures, retryAfterMs));
    }
  }

  /**
   * The wait before the next attempt: spread over RECONNECT_SPREAD_MS after a stream the
   * service ended; after `failures` failed attempts a draw in [d/2, d], d = min(30 s,
   * 2^(failures-1) s), or [r, 1.25 r] for a Retry-After of r; at most the poll interval.
   */
  private delay(failures: number, retryAfterMs: number | null): number {
    let delay: number;
    if (retryAfterMs !== null) delay = retryAfterMs * (1 + Math.random() * 0.25);
    else if (failures === 0) return 100 + Math.random() * (RECONNECT_SPREAD_MS - 100);
    else {
      const ceiling = Math.min(STREAM_MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
      delay = ceiling / 2 + Math.random() * (ceiling / 2);
    }
    return this.pollIntervalMs === null ? delay : Math.min(delay, this.pollIntervalMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }

  /** One connection, read until it ends: [whether it delivered, Retry-After in ms]. */
  private async once(): Promise<[boolean, number | null]> {
    const controller = new AbortController();
    this.controller = controller;
    let live = false;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const stillThere = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error("no byte for 45 s")), STREAM_READ_TIMEOUT_MS);
      idle.unref();
    };
    try {
      const response = await this.http.stream(STREAM_PATH, this.store.streamHeaders(), controller.signal);
      if (response.status !== 200) {
        this.failed(`HTTP ${response.status}`);
        controller.abort();
        const retryAfter = parseRetryAfter(response.header("retry-after"));
        return [false, retryAfter];
      }
      const parser = new EventParser();
      let buffer = "";
      stillThere();
      for await (const chunk of response.chunks) {
        stillThere();
        buffer += chunk;
        let end = buffer.indexOf("\n");
        while (end >= 0) {
          const line = buffer.slice(0, end).replace(/\r$/, "");
          buffer = buffer.slice(end + 1);
          const event = parser.feed(line);
          if (event !== null && this.store.applyEvent(event)) {
            live = true;
            this.markFirst();
          }
          end = buffer.indexOf("\n");
        }
      }
    } catch (error) {
      if (!this.stopped) this.failed(error instanceof Error ? error.message : String(error));
    } finally {
      clearTimeout(idle);
      controller.abort();
    }
    return [live, null];
  }

  private failed(why: string): void {
    this.counters.add("streamErrors");
    this.logger.warn(`sharpen: config stream down (${why}); polling until it reconnects`);
  }
}

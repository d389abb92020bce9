/**
 * How config documents reach a client, and where they land.
 *
 * A ConfigStore holds the config in use (with the per-experiment exposure
 * memory the assign path needs) and installs every new document. Channels feed
 * it: ConfigPoller asks `GET /v1/config` with If-None-Match every interval. A
 * push channel (a server-sent-events stream, say) would be one more
 * ConfigChannel started beside the poller, handing its documents to the same
 * `ConfigStore.apply`; nothing else changes.
 */

import { type Config, type ExperimentConfig, parseConfig } from "./config.js";
import { ConfigError, HTTPStatusError } from "./errors.js";
import type { Http, HttpResponse } from "./http.js";
import type { Logger } from "./logger.js";
import type { Counters } from "./stats.js";
import { CONFIG_PATH } from "./wire.js";

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

  constructor(
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {}

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
  apply(config: Config): void {
    for (const [key, why] of config.skipped) {
      this.logger.warn(`sharpen: skipping malformed experiment ${JSON.stringify(key)}: ${why}`);
    }
    const previous = this.live;
    const live = new Map<string, LiveExperiment>();
    for (const [key, entry] of config.experiments) {
      const old = previous.get(key);
      const exposed = old !== undefined && old.version === entry.version ? old.exposed : new Map<string, string>();
      live.set(key, { entry, exposed, version: entry.version });
    }
    this.live = live;
    this.config = config;
    this.counters.add("configLoads");
    for (const listener of this.listeners) {
      try {
        listener(config);
      } catch (error) {
        this.logger.error(`sharpen: a config listener threw: ${String(error)}`);
      }
    }
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

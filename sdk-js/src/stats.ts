/** Client counters: what was loaded, sent, dropped and rejected. */

/**
 * A snapshot of a client's counters (`client.stats`).
 *
 * `*Dropped` items never left the process because the buffer was full (or the
 * client was closed); `*Rejected` were refused by the service with a 4xx other
 * than 408/429 and are not retried; `*Failed` were given up after the retries
 * ran out; `*Pending` are still queued.
 */
export interface ClientStats {
  readonly configLoads: number;
  readonly configNotModified: number;
  readonly configErrors: number;
  /** Configs the stream (`GET /v1/config/stream`) delivered; `configLoads` counts those polled. */
  readonly configPushes: number;
  /** Streams that failed or were refused (polling stands in until one reconnects). */
  readonly streamErrors: number;
  readonly configSkippedEntries: number;
  readonly remoteErrors: number;
  readonly exposuresPending: number;
  readonly exposuresSent: number;
  readonly exposuresDropped: number;
  readonly exposuresRejected: number;
  readonly exposuresFailed: number;
  readonly eventsPending: number;
  readonly eventsSent: number;
  readonly eventsDuplicates: number;
  readonly eventsDropped: number;
  readonly eventsRejected: number;
  readonly eventsFailed: number;
  readonly retries: number;
}

/** The counters a client increments (the rest of ClientStats is read live). */
export type Counter =
  | "configLoads"
  | "configNotModified"
  | "configErrors"
  | "configPushes"
  | "streamErrors"
  | "remoteErrors"
  | "exposuresSent"
  | "exposuresRejected"
  | "exposuresFailed"
  | "eventsSent"
  | "eventsDuplicates"
  | "eventsRejected"
  | "eventsFailed"
  | "retries";

export class Counters {
  private readonly values: Record<Counter, number> = {
    configLoads: 0,
    configNotModified: 0,
    configErrors: 0,
    configPushes: 0,
    streamErrors: 0,
    remoteErrors: 0,
    exposuresSent: 0,
    exposuresRejected: 0,
    exposuresFailed: 0,
    eventsSent: 0,
    eventsDuplicates: 0,
    eventsRejected: 0,
    eventsFailed: 0,
    retries: 0,
  };

  add(name: Counter, amount = 1): void {
    this.values[name] += amount;
  }

  snapshot(live: Omit<ClientStats, Counter>): ClientStats {
    return Object.freeze({ ...this.values, ...live });
  }
}

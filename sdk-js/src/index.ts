/**
 * @sharpen/client: deterministic assignment, local evaluation and outcome tracking.
 *
 * ```ts
 * import { Client } from "@sharpen/client";
 *
 * const client = new Client("https://sharpen.internal", apiKey);
 * const { variant, payload } = await client.assign("fraud-v7", userId, { country: "US" });
 * client.track("fraud-v7", userId, { flagged: 1, latency_ms: 41.5 });
 * await client.close();
 * ```
 *
 * The pure core (`bucket`, `parseConfig`, `evaluate`) follows the same golden
 * vectors as the Python SDK and the service.
 */

export { canonical, MAX_UNIT_ID } from "./canonical.js";
export { Client, type AssignOptions, type ClientOptions, type Mode } from "./client.js";
export {
  ExperimentConfig,
  parseConfig,
  parseExperiment,
  type Config,
  type ExclusionReason,
  type ExperimentInit,
  type Status,
  type Variant,
} from "./config.js";
export type { ConfigChannel, ConfigListener } from "./config-feed.js";
export {
  ClientClosedError,
  ConfigError,
  HTTPStatusError,
  InvalidEventError,
  SharpenError,
  TransportError,
  UnsupportedHashVersionError,
} from "./errors.js";
export { assignFromConfig, evaluate } from "./evaluation.js";
export {
  BUCKETS,
  HOLDOUT_SALT,
  HOLDOUT_SEED,
  LAYER_SEED,
  SUPPORTED_HASH_VERSIONS,
  TRAFFIC_SEED,
  VARIANT_SEED,
  bucket,
  hashKey,
  murmur3,
  threshold,
  unitHash,
  weightBoundaries,
} from "./hashing.js";
export type { Fetch } from "./http.js";
export type { Logger } from "./logger.js";
export { REASONS, type Assignment, type Attributes, type JsonValue, type Payload, type Reason } from "./models.js";
export { RetryPolicy, type RetryOptions } from "./retry.js";
export type { ClientStats } from "./stats.js";
export { VERSION } from "./version.js";
export type { TrackOptions } from "./wire.js";

/**
 * Typed, frozen form of the `GET /v1/config` document.
 *
 * `parseConfig` turns the JSON document into a Config. A malformed experiment
 * entry is skipped and reported in `Config.skipped` (its key → the reason),
 * never fatal; only a document that is not a config at all (or asks for an
 * unknown hash version) throws ConfigError.
 *
 * Parsing also precomputes what evaluation needs (variant boundaries,
 * thresholds, the frozen Assignment of every outcome), so that evaluating a
 * unit allocates nothing.
 */

import { canonical } from "./canonical.js";
import { ConfigError } from "./errors.js";
import {
  BUCKETS,
  LAYER_SEED,
  PrefixHasher,
  TRAFFIC_SEED,
  VARIANT_SEED,
  checkHashVersion,
  threshold,
  weightBoundaries,
} from "./hashing.js";
import { type Assignment, EMPTY_PAYLOAD, type Payload, assignment, freeze } from "./models.js";

export type Status = "draft" | "running" | "shipped" | "rolled_back" | "stopped";

/** One arm of an experiment: its key, relative weight and payload. */
export interface Variant {
  readonly key: string;
  readonly weight: number;
  readonly payload: Payload;
}

/** The fields of one experiment entry (wire names in camelCase). */
export interface ExperimentInit {
  key: string;
  variants: readonly Variant[];
  baseline: string;
  status?: string;
  version?: number;
  salt?: string;
  hashVersion?: number;
  shippedVariant?: string | null;
  traffic?: number;
  targeting?: ReadonlyMap<string, ReadonlySet<string>>;
  layer?: string | null;
  layerRange?: readonly [number, number] | null;
  holdout?: number;
}

/** Outcomes that keep a unit out of the experiment: the baseline, with the reason. */
export type ExclusionReason =
  | "targeting"
  | "layer"
  | "holdout"
  | "traffic"
  | "invalid_unit"
  | "rolled_back"
  | "stopped"
  | "not_running";

const EXCLUSIONS: readonly ExclusionReason[] = [
  "targeting",
  "layer",
  "holdout",
  "traffic",
  "invalid_unit",
  "rolled_back",
  "stopped",
  "not_running",
];

const ENDED: Readonly<Record<string, ExclusionReason>> = {
  rolled_back: "rolled_back",
  stopped: "stopped",
};

const NO_TARGETING: ReadonlyMap<string, ReadonlySet<string>> = new Map();

/**
 * One experiment entry of the config, validated (ConfigError when inconsistent).
 *
 * `traffic` and `holdout` are shares clamped to [0, 1]; `layerRange` is
 * [start, end) in buckets. The other read-only fields are derived for evaluation.
 */
export class ExperimentConfig {
  readonly key: string;
  readonly variants: readonly Variant[];
  readonly baseline: string;
  readonly status: string;
  readonly version: number;
  readonly salt: string;
  readonly hashVersion: number;
  readonly shippedVariant: string | null;
  readonly traffic: number;
  readonly targeting: ReadonlyMap<string, ReadonlySet<string>>;
  readonly layer: string | null;
  readonly layerRange: readonly [number, number] | null;
  readonly holdout: number;

  // Derived, read by evaluation.
  readonly boundaries: readonly number[];
  readonly trafficThreshold: number;
  readonly holdoutThreshold: number;
  readonly variantHasher: PrefixHasher;
  readonly trafficHasher: PrefixHasher;
  readonly layerHasher: PrefixHasher | null;
  readonly gated: boolean;
  readonly targetingItems: readonly (readonly [string, ReadonlySet<string>])[];
  readonly fixed: Assignment | null;
  readonly assigned: readonly Assignment[];
  readonly excluded: Readonly<Record<ExclusionReason, Assignment>>;

  constructor(init: ExperimentInit) {
    const key = init.key;
    const fail = (message: string): ConfigError => new ConfigError(`experiment ${JSON.stringify(key)}: ${message}`, key);
    const keys = init.variants.map((v) => v.key);
    if (keys.length === 0) throw fail("variants is empty");
    if (new Set(keys).size !== keys.length) throw fail(`duplicate variant keys ${JSON.stringify(keys)}`);
    if (!keys.includes(init.baseline)) throw fail(`baseline ${JSON.stringify(init.baseline)} is not a variant`);
    const shipped = init.shippedVariant ?? null;
    if (shipped !== null && !keys.includes(shipped)) {
      throw fail(`shipped_variant ${JSON.stringify(shipped)} is not a variant`);
    }
    const status = init.status ?? "running";
    if (status === "shipped" && shipped === null) throw fail("shipped without shipped_variant");
    let boundaries: number[];
    try {
      boundaries = weightBoundaries(init.variants.map((v) => v.weight));
    } catch (error) {
      throw fail(`variants: ${(error as Error).message}`);
    }
    const layer = init.layer ?? null;
    const layerRange = init.layerRange ?? null;
    if (layer !== null) {
      const [start, end] = layerRange ?? [-1, -1];
      if (!(0 <= start && start <= end && end <= BUCKETS)) {
        throw fail(
          `layer_range ${JSON.stringify(layerRange)} must be [start, end] with 0 <= start <= end <= ${BUCKETS}`,
        );
      }
    }
    this.hashVersion = checkHashVersion(init.hashVersion ?? 1, key);
    this.key = key;
    this.variants = Object.freeze([...init.variants]);
    this.baseline = init.baseline;
    this.status = status;
    this.version = init.version ?? 1;
    this.salt = init.salt || key;
    this.shippedVariant = shipped;
    this.traffic = init.traffic ?? 1;
    this.targeting = init.targeting ?? NO_TARGETING;
    this.layer = layer;
    this.layerRange = layerRange;
    this.holdout = init.holdout ?? 0;

    this.boundaries = Object.freeze(boundaries);
    this.trafficThreshold = threshold(this.traffic);
    this.holdoutThreshold = threshold(this.holdout);
    this.variantHasher = new PrefixHasher(`${this.salt}:`, VARIANT_SEED);
    this.trafficHasher = new PrefixHasher(`${this.salt}:`, TRAFFIC_SEED);
    this.layerHasher = layer === null ? null : new PrefixHasher(`${layer}:`, LAYER_SEED);
    this.targetingItems = Object.freeze([...this.targeting.entries()]);
    this.gated =
      this.targeting.size > 0 || layer !== null || this.holdoutThreshold > 0 || this.trafficThreshold < BUCKETS;
    this.assigned = Object.freeze(this.variants.map((v) => assignment(key, v.key, v.payload, true, "assigned")));
    const outcome = (variant: string, reason: string): Assignment =>
      assignment(key, variant, this.variants.find((v) => v.key === variant)?.payload ?? EMPTY_PAYLOAD, false, reason);
    const excluded = {} as Record<ExclusionReason, Assignment>;
    for (const reason of EXCLUSIONS) excluded[reason] = outcome(this.baseline, reason);
    this.excluded = Object.freeze(excluded);
    if (status === "shipped") this.fixed = outcome(shipped as string, "shipped");
    else if (status !== "running") this.fixed = excluded[ENDED[status] ?? "not_running"];
    else this.fixed = null;
    Object.freeze(this);
  }
}

/** A parsed config document: the experiments the SDK can evaluate locally. */
export interface Config {
  readonly experiments: ReadonlyMap<string, ExperimentConfig>;
  readonly etag: string | null;
  readonly hashVersion: number;
  /** The key of every malformed entry → why it was skipped. */
  readonly skipped: ReadonlyMap<string, string>;
}

// --- wire parsing ---------------------------------------------------------------

type Raw = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
}

/** Typed access to the fields of one JSON object, with errors naming them. */
class Fields {
  constructor(
    readonly raw: Raw,
    readonly key: string,
  ) {}

  fail(name: string, message: string): ConfigError {
    return new ConfigError(
      `experiment ${JSON.stringify(this.key)}: ${name} ${message} (got ${show(this.raw[name])})`,
      this.key,
    );
  }

  string(name: string): string {
    const value = this.raw[name];
    if (typeof value !== "string" || value === "") throw this.fail(name, "must be a non-empty string");
    return value;
  }

  optionalString(name: string): string | null {
    const value = this.raw[name];
    return value === undefined || value === null ? null : this.string(name);
  }

  integer(name: string, fallback: number): number {
    const value = name in this.raw ? this.raw[name] : fallback;
    if (typeof value !== "number" || !Number.isInteger(value)) throw this.fail(name, "must be an integer");
    return value;
  }

  share(name: string, fallback: number): number {
    const value = this.raw[name];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "number" || Number.isNaN(value)) throw this.fail(name, "must be a number");
    return Math.min(Math.max(value, 0), 1);
  }
}

function parseVariants(fields: Fields): Variant[] {
  const raw = fields.raw["variants"];
  if (!Array.isArray(raw) || raw.length === 0) throw fields.fail("variants", "must be a non-empty list");
  return raw.map((item: unknown, i): Variant => {
    if (!isObject(item)) throw fields.fail("variants", `[${i}] must be an object`);
    const { key, weight } = item;
    const payload = item["payload"] ?? {};
    if (typeof key !== "string" || key === "") throw fields.fail("variants", `[${i}].key must be a non-empty string`);
    if (typeof weight !== "number") throw fields.fail("variants", `[${i}].weight must be a number`);
    if (!isObject(payload)) throw fields.fail("variants", `[${i}].payload must be an object`);
    return Object.freeze({ key, weight, payload: freeze(payload) as Payload });
  });
}

function parseTargeting(fields: Fields): ReadonlyMap<string, ReadonlySet<string>> {
  const raw = fields.raw["targeting"];
  if (raw === undefined || raw === null) return NO_TARGETING;
  if (!isObject(raw)) throw fields.fail("targeting", "must be an object of attribute -> list of values");
  const rules = new Map<string, ReadonlySet<string>>();
  for (const [name, allowed] of Object.entries(raw)) {
    if (!Array.isArray(allowed)) throw fields.fail("targeting", `[${JSON.stringify(name)}] must be a list of values`);
    const values = allowed.map(canonical);
    if (values.includes(null)) throw fields.fail("targeting", `[${JSON.stringify(name)}] must hold only scalar values`);
    rules.set(name, new Set(values as string[]));
  }
  return rules;
}

function parseLayerRange(fields: Fields): [number, number] | null {
  const raw = fields.raw["layer_range"];
  if (raw === undefined || raw === null) return null;
  if (!Array.isArray(raw) || raw.length !== 2 || !raw.every((b) => typeof b === "number" && Number.isInteger(b))) {
    throw fields.fail("layer_range", "must be [start, end] integers");
  }
  return [raw[0] as number, raw[1] as number];
}

/**
 * Validate one wire-form experiment entry; throw ConfigError if malformed.
 *
 * `key` is the entry's key in the document's `experiments` object; when given,
 * the entry's own `key` (if any) must match it.
 */
export function parseExperiment(
  entry: unknown,
  options: { key?: string; defaultHashVersion?: number } = {},
): ExperimentConfig {
  const key = options.key ?? null;
  if (!isObject(entry)) throw new ConfigError(`experiment ${show(key)}: entry must be an object`, key);
  const own = "key" in entry ? entry["key"] : key;
  if (typeof own !== "string" || own === "" || (key !== null && own !== key)) {
    throw new ConfigError(`experiment ${show(key)}: key must be ${show(key)} (got ${show(own)})`, key);
  }
  const fields = new Fields(entry, own);
  const status = fields.string("status");
  const hashVersion = "hash_version" in entry ? entry["hash_version"] : (options.defaultHashVersion ?? 1);
  checkHashVersion(hashVersion, own);
  return new ExperimentConfig({
    key: own,
    variants: parseVariants(fields),
    baseline: fields.string("baseline"),
    status,
    version: fields.integer("version", 1),
    salt: fields.optionalString("salt") ?? own,
    hashVersion: hashVersion as number,
    shippedVariant: fields.optionalString("shipped_variant"),
    traffic: fields.share("traffic", 1),
    targeting: parseTargeting(fields),
    layer: fields.optionalString("layer"),
    layerRange: parseLayerRange(fields),
    holdout: fields.share("holdout", 0),
  });
}

/**
 * Parse a `GET /v1/config` body; malformed entries land in `skipped`.
 *
 * Throws ConfigError when the document itself is unusable (not an object, no
 * `experiments` object, or an unsupported `hash_version`). `etag` (the response
 * header) wins over the document's own `etag`.
 */
export function parseConfig(document: unknown, etag: string | null = null): Config {
  if (!isObject(document)) throw new ConfigError("config document must be a JSON object");
  const raw = document["experiments"];
  if (!isObject(raw)) throw new ConfigError("config document: experiments must be an object of key -> entry");
  const hashVersion = checkHashVersion("hash_version" in document ? document["hash_version"] : 1);
  const experiments = new Map<string, ExperimentConfig>();
  const skipped = new Map<string, string>();
  for (const [key, entry] of Object.entries(raw)) {
    try {
      experiments.set(key, parseExperiment(entry, { key, defaultHashVersion: hashVersion }));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      skipped.set(key, error.message);
    }
  }
  const own = document["etag"];
  return Object.freeze({
    experiments,
    etag: etag ?? (typeof own === "string" ? own : null),
    hashVersion,
    skipped,
  });
}

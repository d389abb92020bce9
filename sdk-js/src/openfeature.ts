/**
 * An OpenFeature provider for the server SDK (`@openfeature/server-sdk`, a peer
 * dependency: only this entry point, `@sharpen/client/openfeature`, needs it).
 *
 * The rules are the Python provider's (`sharpen.openfeature`); both test suites
 * read them from `tests/spec/openfeature.json`:
 *
 * - A flag key is an experiment key; the evaluation context's `targetingKey` is
 *   the unit id and its scalar attributes (strings, finite numbers, booleans)
 *   are the targeting attributes (null, lists, objects and dates are left out).
 * - Value: if the served variant's payload has a key `value`, that is the flag
 *   value; otherwise an object flag gets the whole payload and any other type is
 *   a mismatch. A boolean flag needs a boolean, a string flag a string, a number
 *   flag a finite number, an object flag an object or an array. The type is
 *   checked against every variant before the unit is assigned, so a mismatch is
 *   ERROR/TYPE_MISMATCH with the caller's default and never logs an exposure.
 * - Reasons: assigned → SPLIT; targeting → TARGETING_MATCH (the unit's
 *   attributes decided: the baseline); layer, holdout, traffic → DEFAULT
 *   (outside the experiment's share: the baseline); shipped → STATIC (every unit
 *   gets the shipped variant); stopped, rolled_back, not_running → DISABLED; a
 *   reason this SDK does not know → UNKNOWN. Errors answer the caller's default
 *   with reason ERROR and no variant: unknown_experiment → FLAG_NOT_FOUND, no
 *   config loaded (fallback) → PROVIDER_NOT_READY, a missing or empty
 *   targetingKey → TARGETING_KEY_MISSING.
 * - Flag metadata: `experiment`, `variant`, `in_experiment` and `reason`
 *   (sharpen's own); an error carries `experiment` and `in_experiment` (false).
 * - Evaluations log exposures exactly as `client.assign()` does.
 * - `track(name, context, details)` sends one event per experiment this provider
 *   served the unit in (the last `rememberUnits` units are remembered), with the
 *   variant it served, or to the experiment named by `details.experiment`:
 *   `values[name] = details.value` (1 when absent) plus the details' other
 *   numeric fields; the context's scalar attributes and the details' other
 *   fields (which win a clash) are the event's attributes.
 */

import {
  ErrorCode,
  type EvaluationContext,
  type FlagValueType,
  type JsonValue,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails,
  StandardResolutionReasons,
  type TrackingEventDetails,
} from "@openfeature/server-sdk";

import { Client, type ClientOptions } from "./client.js";
import type { Config, ExperimentConfig } from "./config.js";
import { InvalidEventError } from "./errors.js";
import type { Assignment, Payload } from "./models.js";

/** sharpen's reason → OpenFeature's, for the answers that serve a variant. */
export const OPENFEATURE_REASONS: Readonly<Record<string, string>> = Object.freeze({
  assigned: StandardResolutionReasons.SPLIT,
  targeting: StandardResolutionReasons.TARGETING_MATCH,
  shipped: StandardResolutionReasons.STATIC,
  override: StandardResolutionReasons.STATIC,
  layer: StandardResolutionReasons.DEFAULT,
  holdout: StandardResolutionReasons.DEFAULT,
  traffic: StandardResolutionReasons.DEFAULT,
  stopped: StandardResolutionReasons.DISABLED,
  rolled_back: StandardResolutionReasons.DISABLED,
  not_running: StandardResolutionReasons.DISABLED,
});

/** sharpen's reason → OpenFeature error code, for the answers that serve no variant. */
export const OPENFEATURE_ERRORS: Readonly<Record<string, ErrorCode>> = Object.freeze({
  unknown_experiment: ErrorCode.FLAG_NOT_FOUND,
  fallback: ErrorCode.PROVIDER_NOT_READY,
  invalid_unit: ErrorCode.TARGETING_KEY_MISSING,
});

/** The flag metadata keys of a served answer and of an error (the same in Python). */
export const OPENFEATURE_METADATA = Object.freeze({
  served: Object.freeze(["experiment", "variant", "in_experiment", "reason"] as const),
  error: Object.freeze(["experiment", "in_experiment"] as const),
});

/** A provider's own client: the client settings plus where the service is. */
export interface SharpenProviderOptions extends ClientOptions {
  baseUrl: string;
  apiKey: string;
}

/** Settings of the provider itself. */
export interface ProviderSettings {
  /** How many units `track()` remembers the served experiments of (oldest forgotten first); default 100,000. */
  rememberUnits?: number;
}

type Scalar = string | number | boolean;

function scalars(context: Readonly<Record<string, unknown>>): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const [name, value] of Object.entries(context)) {
    if (name === "targetingKey") continue;
    if (typeof value === "string" || typeof value === "boolean") out[name] = value;
    else if (typeof value === "number" && Number.isFinite(value)) out[name] = value;
  }
  return out;
}

function show(value: unknown): string {
  return value === undefined ? "undefined" : (JSON.stringify(value) ?? String(value));
}

class TypeMismatch extends Error {}

/** The value a `type` flag gets from a variant with `payload`; throws TypeMismatch when there is none. */
function flagValue(payload: Payload, type: FlagValueType): JsonValue {
  if (!Object.prototype.hasOwnProperty.call(payload, "value")) {
    if (type === "object") return payload as JsonValue;
    throw new TypeMismatch(`a ${type} flag needs a "value" key in the payload (has ${show(Object.keys(payload))})`);
  }
  const value = payload["value"];
  let ok: boolean;
  if (type === "number") ok = typeof value === "number" && Number.isFinite(value);
  else if (type === "object") ok = typeof value === "object" && value !== null;
  else ok = typeof value === type;
  if (!ok) throw new TypeMismatch(`payload value ${show(value)} is not a ${type}`);
  return value as JsonValue;
}

/** Why some variant of `entry` gives no `type` value, or null when all do. */
function mismatchOf(entry: ExperimentConfig, type: FlagValueType): string | null {
  for (const variant of entry.variants) {
    try {
      flagValue(variant.payload, type);
    } catch (error) {
      if (error instanceof TypeMismatch) return `variant ${show(variant.key)} of ${show(entry.key)}: ${error.message}`;
      throw error;
    }
  }
  return null;
}

function failed<T>(value: T, errorCode: ErrorCode, errorMessage: string, experiment: string): ResolutionDetails<T> {
  return {
    value,
    reason: StandardResolutionReasons.ERROR,
    errorCode,
    errorMessage,
    flagMetadata: { experiment, in_experiment: false },
  };
}

/** Keys of the experiments that differ between two configs. */
function changedFlags(before: Config | null, after: Config): string[] {
  const keys = new Set([...(before?.experiments.keys() ?? []), ...after.experiments.keys()]);
  return [...keys].filter((key) => {
    const a = before?.experiments.get(key);
    const b = after.experiments.get(key);
    return a?.version !== b?.version || a?.status !== b?.status || a?.shippedVariant !== b?.shippedVariant;
  });
}

/**
 * sharpen as an OpenFeature provider (server paradigm).
 *
 * Give it a Client, or the options of one it creates and closes with itself.
 * `initialize()` waits for the first config (at most the client's timeout) and
 * fails when none loaded; polling goes on, and the first config that arrives
 * makes the provider ready. Every later config emits ConfigurationChanged.
 */
export class SharpenProvider implements Provider {
  readonly metadata = Object.freeze({ name: "sharpen" });
  readonly runsOn = "server" as const;
  readonly events = new OpenFeatureEventEmitter();
  /** The client evaluating the flags (its `stats` show exposures and events). */
  readonly client: Client;
  private readonly owned: boolean;
  private readonly remember: number;
  /** unit id → {experiment → variant} it was served in the experiment, oldest unit first. */
  private readonly served = new Map<string, Map<string, string>>();
  /** The config last checked, and `${type}\u0000${flag}` → why its variants mismatch, or null. */
  private checked: { config: Config | null; mismatches: Map<string, string | null> } = { config: null, mismatches: new Map() };
  private seen: Config | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(client: Client | SharpenProviderOptions, settings: ProviderSettings = {}) {
    const remember = settings.rememberUnits ?? 100_000;
    if (!Number.isSafeInteger(remember) || remember < 0) {
      throw new RangeError(`rememberUnits must be an integer >= 0 (got ${show(remember)})`);
    }
    this.remember = remember;
    if (client instanceof Client) {
      this.client = client;
      this.owned = false;
    } else {
      const { baseUrl, apiKey, ...options } = client;
      this.client = new Client(baseUrl, apiKey, options);
      this.owned = true;
    }
  }

  async initialize(): Promise<void> {
    const loaded = await this.client.ready();
    this.seen = this.client.config;
    this.unsubscribe = this.client.onConfigChange((config) => this.configChanged(config));
    if (!loaded) throw new Error("sharpen: no config loaded yet; the provider becomes ready when one arrives");
  }

  /** Forget the served units; close the client when the provider created it. */
  async onClose(): Promise<void> {
    this.unsubscribe();
    this.served.clear();
    if (this.owned) await this.client.close();
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    return this.resolve(flagKey, "boolean", defaultValue, context);
  }

  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>> {
    return this.resolve(flagKey, "string", defaultValue, context);
  }

  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>> {
    return this.resolve(flagKey, "number", defaultValue, context);
  }

  resolveObjectEvaluation<T extends JsonValue>(
    flagKey: string,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    return this.resolve(flagKey, "object", defaultValue, context);
  }

  /**
   * An outcome of the unit `context.targetingKey` (see the module doc for what is
   * sent where). Never throws: OpenFeature would swallow it, so an event the
   * service would refuse, or one about no experiment, is dropped with a warning.
   */
  track(trackingEventName: string, context: EvaluationContext, details: TrackingEventDetails = {}): void {
    const logger = this.client.logger;
    const event = JSON.stringify(trackingEventName);
    try {
      const unit = context.targetingKey;
      if (typeof unit !== "string" || unit === "") {
        throw new InvalidEventError("the evaluation context has no targetingKey", "unit_id");
      }
      const values: Record<string, number> = { [trackingEventName]: details.value ?? 1 };
      const attributes: Record<string, unknown> = scalars(context);
      let named = false;
      let experiment: unknown;
      for (const [name, item] of Object.entries(details)) {
        if (name === "value" || item === undefined) continue;
        if (name === "experiment") [named, experiment] = [true, item];
        else if (typeof item === "number") values[name] = item;
        else attributes[name] = item;
      }
      let targets: Map<string, string | null>;
      if (named) {
        if (typeof experiment !== "string" || experiment === "") {
          throw new InvalidEventError(`${show(experiment)} is not an experiment key`, "experiment");
        }
        targets = new Map([[experiment, this.served.get(unit)?.get(experiment) ?? null]]);
      } else {
        targets = new Map(this.served.get(unit));
      }
      if (targets.size === 0) {
        logger.warn(
          `sharpen: track(${event}): unit ${JSON.stringify(unit)} was not served in an experiment here; name one in details.experiment (dropped)`,
        );
        return;
      }
      for (const [key, variant] of targets) this.client.track(key, unit, values, { attributes, variant });
    } catch (error) {
      logger.warn(`sharpen: track(${event}) dropped: ${String(error)}`);
    }
  }

  private async resolve<T extends JsonValue>(
    flagKey: string,
    type: FlagValueType,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    const refused = this.refusal(flagKey, type, defaultValue, context);
    if (refused !== null) return refused;
    const unit = context.targetingKey as string; // checked by refusal()
    const assignment = await this.client.assign(flagKey, unit, scalars(context));
    return this.answer(assignment, unit, type, defaultValue);
  }

  /** The error answer decided before assigning (so that no exposure is logged), or null. */
  private refusal<T>(flagKey: string, type: FlagValueType, defaultValue: T, context: EvaluationContext): ResolutionDetails<T> | null {
    const unit = context.targetingKey;
    if (typeof unit !== "string" || unit === "") {
      const message = "the evaluation context has no targetingKey (the unit id)";
      return failed(defaultValue, ErrorCode.TARGETING_KEY_MISSING, message, flagKey);
    }
    const config = this.client.config;
    if (config === null) return failed(defaultValue, ErrorCode.PROVIDER_NOT_READY, "no sharpen config loaded yet", flagKey);
    const entry = config.experiments.get(flagKey);
    if (entry === undefined) return null; // remote mode may know it already: the service answers
    if (this.checked.config !== config) this.checked = { config, mismatches: new Map() }; // a new config: check again
    const key = `${type}\u0000${flagKey}`;
    let mismatch = this.checked.mismatches.get(key);
    if (mismatch === undefined) {
      mismatch = mismatchOf(entry, type);
      this.checked.mismatches.set(key, mismatch);
    }
    return mismatch === null ? null : failed(defaultValue, ErrorCode.TYPE_MISMATCH, mismatch, flagKey);
  }

  private answer<T extends JsonValue>(assignment: Assignment, unit: string, type: FlagValueType, defaultValue: T): ResolutionDetails<T> {
    const { experiment, variant, reason } = assignment;
    const error = OPENFEATURE_ERRORS[reason];
    if (error !== undefined || variant === null) {
      return failed(defaultValue, error ?? ErrorCode.GENERAL, `sharpen answered ${show(reason)} for ${show(experiment)}`, experiment);
    }
    let value: JsonValue;
    try {
      value = flagValue(assignment.payload, type);
    } catch (error) {
      if (!(error instanceof TypeMismatch)) throw error;
      // The config changed since the check.
      const message = `variant ${show(variant)} of ${show(experiment)}: ${error.message}`;
      return failed(defaultValue, ErrorCode.TYPE_MISMATCH, message, experiment);
    }
    if (assignment.inExperiment && this.remember > 0) this.note(unit, experiment, variant);
    return {
      value: value as T,
      variant,
      reason: OPENFEATURE_REASONS[reason] ?? StandardResolutionReasons.UNKNOWN,
      flagMetadata: { experiment, variant, in_experiment: assignment.inExperiment, reason },
    };
  }

  private note(unit: string, experiment: string, variant: string): void {
    let served = this.served.get(unit);
    if (served === undefined) {
      if (this.served.size >= this.remember) this.served.delete(this.served.keys().next().value as string); // the oldest unit
      served = new Map();
      this.served.set(unit, served);
    }
    served.set(experiment, variant);
  }

  private configChanged(config: Config): void {
    const before = this.seen;
    this.seen = config;
    if (before === null) {
      this.events.emit(ProviderEvents.Ready);
      return;
    }
    const flagsChanged = changedFlags(before, config);
    if (flagsChanged.length > 0) this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged });
  }
}

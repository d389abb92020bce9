/**
 * An OpenFeature provider for the server SDK (`@openfeature/server-sdk`, a peer
 * dependency: only this entry point, `@sharpen/client/openfeature`, needs it).
 *
 * - A flag key is an experiment key; the evaluation context's `targetingKey` is
 *   the unit id and its other attributes are the targeting attributes.
 * - The flag value comes from the served variant's payload: an object flag
 *   resolves to the whole payload; a boolean, string or number flag to the
 *   payload's `value` field, which must have that type (else TYPE_MISMATCH). A
 *   string flag whose payload has no `value` resolves to the variant key.
 * - Reasons: assigned → SPLIT; targeting → TARGETING_MATCH (the unit's
 *   attributes decided); layer, holdout, traffic → DEFAULT (outside the
 *   experiment: the baseline); shipped → STATIC; rolled_back, stopped, not
 *   running → DISABLED; unknown experiment → ERROR FLAG_NOT_FOUND; no config
 *   loaded → ERROR PROVIDER_NOT_READY; no targetingKey → ERROR
 *   TARGETING_KEY_MISSING. The variant key is the resolution's `variant`; the
 *   flag metadata carries `experiment`, `inExperiment` and sharpen's `reason`.
 * - Evaluations log exposures exactly as `client.assign()` does.
 * - `track(name, context, details)` sends an event with `values[name] =
 *   details.value` (1 when absent) plus the details' other numeric fields, to
 *   `details.experiment` when named, else to every experiment this client
 *   exposed the unit to.
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
import type { Config } from "./config.js";
import type { Assignment } from "./models.js";

/** sharpen's reason → OpenFeature's, for the answers that are not errors. */
export const OPENFEATURE_REASONS: Readonly<Record<string, string>> = Object.freeze({
  assigned: StandardResolutionReasons.SPLIT,
  targeting: StandardResolutionReasons.TARGETING_MATCH,
  layer: StandardResolutionReasons.DEFAULT,
  holdout: StandardResolutionReasons.DEFAULT,
  traffic: StandardResolutionReasons.DEFAULT,
  shipped: StandardResolutionReasons.STATIC,
  rolled_back: StandardResolutionReasons.DISABLED,
  stopped: StandardResolutionReasons.DISABLED,
  not_running: StandardResolutionReasons.DISABLED,
});

const ERRORS: Readonly<Record<string, [ErrorCode, string]>> = {
  unknown_experiment: [ErrorCode.FLAG_NOT_FOUND, "no experiment with this key is served"],
  fallback: [ErrorCode.PROVIDER_NOT_READY, "no sharpen config has been loaded yet"],
  invalid_unit: [ErrorCode.TARGETING_KEY_MISSING, "the targeting key is not a usable unit id"],
};

/** A provider's own client: the client settings plus where the service is. */
export interface SharpenProviderOptions extends ClientOptions {
  baseUrl: string;
  apiKey: string;
}

type Scalar = string | number | boolean | null;

function scalars(context: Readonly<Record<string, unknown>>): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const [name, value] of Object.entries(context)) {
    if (name === "targetingKey") continue;
    if (value === null || typeof value === "string" || typeof value === "boolean") out[name] = value;
    else if (typeof value === "number" && Number.isFinite(value)) out[name] = value;
  }
  return out;
}

function describe(value: unknown): string {
  return value === undefined ? "no value" : JSON.stringify(value);
}

/** The flag value of `assignment` as a `type` flag, or why it has none. */
function typedValue(type: FlagValueType, assignment: Assignment): { value: JsonValue } | { mismatch: string } {
  const payload = assignment.payload;
  if (type === "object") return { value: payload as JsonValue };
  const value = payload["value"];
  if (type === "string" && value === undefined && assignment.variant !== null) return { value: assignment.variant };
  const ok = type === "number" ? typeof value === "number" && Number.isFinite(value) : typeof value === type;
  if (ok) return { value: value as JsonValue };
  return {
    mismatch: `variant ${JSON.stringify(assignment.variant)} of ${JSON.stringify(assignment.experiment)} has ${describe(value)} as payload.value, not a ${type}`,
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
  private seen: Config | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(client: Client | SharpenProviderOptions) {
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

  async onClose(): Promise<void> {
    this.unsubscribe();
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
   * An outcome of the unit `context.targetingKey`: `values[name] = details.value`
   * (1 when absent) plus the details' other numeric fields, sent to
   * `details.experiment` when it names one, else to every experiment this client
   * exposed the unit to. Never throws (problems are logged).
   */
  track(trackingEventName: string, context: EvaluationContext, details: TrackingEventDetails = {}): void {
    const logger = this.client.logger;
    try {
      const unit = context.targetingKey;
      if (typeof unit !== "string" || unit === "") {
        logger.warn(`sharpen: track(${JSON.stringify(trackingEventName)}) without a targetingKey; dropped`);
        return;
      }
      const named = details["experiment"];
      const experiments = typeof named === "string" ? [named] : [...this.client.servedVariants(unit).keys()];
      if (experiments.length === 0) {
        logger.warn(
          `sharpen: track(${JSON.stringify(trackingEventName)}): unit ${JSON.stringify(unit)} was not exposed to an experiment here; name one in details.experiment`,
        );
        return;
      }
      const values: Record<string, number> = { [trackingEventName]: typeof details.value === "number" ? details.value : 1 };
      for (const [name, value] of Object.entries(details)) {
        if (name !== "value" && name !== "experiment" && typeof value === "number") values[name] = value;
      }
      const attributes = scalars(context);
      for (const experiment of experiments) this.client.track(experiment, unit, values, { attributes });
    } catch (error) {
      logger.warn(`sharpen: track(${JSON.stringify(trackingEventName)}) dropped: ${String(error)}`);
    }
  }

  private async resolve<T extends JsonValue>(
    flagKey: string,
    type: FlagValueType,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    const unit = context.targetingKey;
    if (typeof unit !== "string" || unit === "") {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.TARGETING_KEY_MISSING,
        errorMessage: "sharpen needs the evaluation context's targetingKey: it is the unit id",
      };
    }
    const assignment = await this.client.assign(flagKey, unit, scalars(context));
    const flagMetadata = { experiment: flagKey, inExperiment: assignment.inExperiment, reason: assignment.reason };
    const error = ERRORS[assignment.reason];
    if (error !== undefined) {
      const [errorCode, message] = error;
      return { value: defaultValue, reason: StandardResolutionReasons.ERROR, errorCode, errorMessage: message, flagMetadata };
    }
    const typed = typedValue(type, assignment);
    const variant = assignment.variant ?? undefined;
    if ("mismatch" in typed) {
      return {
        value: defaultValue,
        variant,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.TYPE_MISMATCH,
        errorMessage: typed.mismatch,
        flagMetadata,
      };
    }
    return {
      value: typed.value as T,
      variant,
      reason: OPENFEATURE_REASONS[assignment.reason] ?? StandardResolutionReasons.UNKNOWN,
      flagMetadata,
    };
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

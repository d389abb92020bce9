/** Result types handed to callers: Assignment, its payload and reasons. */

/** A JSON value, as payloads and attributes carry them. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A variant's payload: a read-only JSON object. */
export type Payload = { readonly [key: string]: JsonValue };

/** Targeting attributes of a unit: scalar values compare in canonical form. */
export type Attributes = Readonly<Record<string, unknown>>;

/**
 * Why a unit got its variant; `assigned` is the only one in the experiment. `override`:
 * forced by the client (`overrides`, `force()`), never exposed nor counted.
 */
export type Reason =
  | "assigned"
  | "shipped"
  | "rolled_back"
  | "stopped"
  | "not_running"
  | "targeting"
  | "layer"
  | "holdout"
  | "traffic"
  | "invalid_unit"
  | "unknown_experiment"
  | "fallback"
  | "override";

/** Every reason this SDK knows (a newer service may send others). */
export const REASONS: ReadonlySet<string> = new Set<Reason>([
  "assigned",
  "shipped",
  "rolled_back",
  "stopped",
  "not_running",
  "targeting",
  "layer",
  "holdout",
  "traffic",
  "invalid_unit",
  "unknown_experiment",
  "fallback",
  "override",
]);

/**
 * The variant a unit gets in an experiment, and why (frozen).
 *
 * `inExperiment` is true only for `reason === "assigned"`, the units that count
 * in the analysis; `variant` is null only when the caller gave no default for
 * an unknown experiment or a client without config.
 */
export interface Assignment {
  readonly experiment: string;
  readonly variant: string | null;
  readonly payload: Payload;
  readonly inExperiment: boolean;
  readonly reason: Reason | (string & Record<never, never>);
}

export const EMPTY_PAYLOAD: Payload = Object.freeze({});

/** A read-only deep copy of JSON data. */
export function freeze<T>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  const copy: unknown = Array.isArray(value)
    ? value.map(freeze)
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, freeze(v)]));
  return Object.freeze(copy) as T;
}

/** A new frozen Assignment. */
export function assignment(
  experiment: string,
  variant: string | null,
  payload: Payload,
  inExperiment: boolean,
  reason: string,
): Assignment {
  return Object.freeze({ experiment, variant, payload, inExperiment, reason });
}

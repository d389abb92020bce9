/** The HTTP contract with the service: paths, body shapes and event validation. */

import { randomUUID } from "node:crypto";

import { canonical, MAX_UNIT_ID, tooLong } from "./canonical.js";
import { InvalidEventError } from "./errors.js";
import { type Assignment, type Attributes, type Payload, assignment, freeze } from "./models.js";

export const CONFIG_PATH = "/v1/config";
export const STREAM_PATH = "/v1/config/stream";
export const ASSIGN_PATH = "/v1/assign";
export const EVENTS_PATH = "/v1/events";
export const EXPOSURES_PATH = "/v1/exposures";

/** One queued exposure: cheap to build on the assign path, serialised at upload. */
export interface ExposureRecord {
  readonly experiment: string;
  readonly unitId: string;
  readonly variant: string;
  readonly version: number;
  /** Epoch milliseconds. */
  readonly at: number;
  /** The unit's attributes (a copy): the analysis fixes a unit's segments at its first exposure. */
  readonly attributes: Attributes | null;
}

/** One validated event of a `POST /v1/events` body. */
export interface EventBody {
  event_id: string;
  experiment: string;
  unit_id: string;
  variant: string | null;
  timestamp: string;
  values: Record<string, number>;
  attributes: Record<string, string | number | boolean | null>;
  covariates?: Record<string, number>;
}

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
}

function scalarAttributes(attributes: Attributes): Record<string, string | number | boolean | null> {
  // Segments are scalars; anything else would make the service refuse the whole batch.
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || isScalar(value)) out[name] = value;
  }
  return out;
}

/** ISO-8601 UTC with millisecond precision and a Z: 2024-05-01T12:00:00.123Z. */
export function isoTimestamp(epochMs: number): string {
  return new Date(Math.floor(epochMs)).toISOString();
}

export function exposureBody(records: readonly ExposureRecord[]): { exposures: Record<string, unknown>[] } {
  return {
    exposures: records.map((r) => {
      const row: Record<string, unknown> = {
        experiment: r.experiment,
        unit_id: r.unitId,
        variant: r.variant,
        version: r.version,
        timestamp: isoTimestamp(r.at),
      };
      if (r.attributes !== null) {
        const attributes = scalarAttributes(r.attributes);
        if (Object.keys(attributes).length > 0) row["attributes"] = attributes;
      }
      return row;
    }),
  };
}

export function assignBody(experiment: string, unitId: string | number, attributes: Attributes | null | undefined): string {
  return JSON.stringify({ experiment, unit_id: unitId, attributes: attributes ?? {} });
}

/** The Assignment in a `POST /v1/assign` answer; throws TypeError when malformed. */
export function parseAssignResponse(body: unknown, experiment: string): Assignment {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new TypeError("assign response is not an object");
  }
  const raw = body as Record<string, unknown>;
  const variant = raw["variant"] ?? null;
  const payload = raw["payload"] ?? {};
  const inExperiment = raw["in_experiment"];
  const reason = raw["reason"];
  if (variant !== null && typeof variant !== "string") throw new TypeError("assign response: variant is not a string");
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new TypeError("assign response: payload is not an object");
  }
  if (typeof inExperiment !== "boolean") throw new TypeError("assign response: in_experiment is not a boolean");
  if (typeof reason !== "string") throw new TypeError("assign response: reason is not a string");
  const returned = raw["experiment"] ?? experiment;
  if (returned !== experiment) throw new TypeError(`assign response is for experiment ${JSON.stringify(returned)}`);
  return assignment(experiment, variant, freeze(payload) as Payload, inExperiment, reason);
}

// --- outcome events ------------------------------------------------------------

function show(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  return value === undefined ? "undefined" : (JSON.stringify(value) ?? String(value));
}

function numbers(field: string, values: unknown, allowEmpty: boolean): Record<string, number> {
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    throw new InvalidEventError("must be an object of name -> number", field);
  }
  const entries = Object.entries(values);
  if (entries.length === 0 && !allowEmpty) throw new InvalidEventError("must hold at least one value", field);
  const out: Record<string, number> = {};
  for (const [name, raw] of entries) {
    if (name === "") throw new InvalidEventError("a name is empty", field);
    const value = typeof raw === "boolean" ? Number(raw) : raw;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new InvalidEventError(`${JSON.stringify(name)} = ${show(raw)} is not a finite number`, field);
    }
    out[name] = value;
  }
  return out;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** A timestamp: a Date, epoch seconds or an ISO-8601 string (no zone = UTC); default now. */
function timestamp(value: unknown): string {
  if (value === undefined || value === null) return isoTimestamp(Date.now());
  let ms = Number.NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === "number" && Number.isFinite(value)) ms = value * 1000;
  else if (typeof value === "string") {
    const match = ISO_8601.exec(value.trim());
    if (match !== null) {
      // Servers log in UTC: a time without a zone is UTC, as in the Python SDK.
      const text = value.trim().replace(" ", "T");
      ms = Date.parse(match[1] === undefined && text.includes("T") ? `${text}Z` : text);
    }
  }
  if (Number.isNaN(ms)) {
    throw new InvalidEventError(`${show(value)} is not a Date, epoch seconds or ISO-8601 string`, "timestamp");
  }
  return isoTimestamp(ms);
}

/** The optional fields of an event (`track()`'s fourth argument). */
export interface TrackOptions {
  /** Attributes of the unit (scalars; they feed targeting and segments). */
  attributes?: Attributes | null;
  /** A Date, epoch seconds or an ISO-8601 string; default now. */
  timestamp?: Date | number | string | null;
  /** Default: a random uuid4 hex. The service drops an id it has seen before. */
  eventId?: string | null;
  /** Default: what this client served the unit, else its local evaluation. */
  variant?: string | null;
  /** Pre-experiment values of the unit, for variance reduction. */
  covariates?: Record<string, number> | null;
}

/** One validated event; throws InvalidEventError naming the field at fault. */
export function eventBody(
  experiment: unknown,
  unitId: unknown,
  values: unknown,
  variant: string | null,
  options: TrackOptions,
): EventBody {
  if (typeof experiment !== "string" || experiment === "") {
    throw new InvalidEventError(`${show(experiment)} is not a non-empty string`, "experiment");
  }
  const unit = canonical(unitId);
  if (!unit) throw new InvalidEventError(`${show(unitId)} is not a non-empty id`, "unit_id");
  if (tooLong(unit)) {
    throw new InvalidEventError(`is longer than ${MAX_UNIT_ID} characters`, "unit_id");
  }
  let eventId = options.eventId;
  if (eventId === undefined || eventId === null) eventId = randomUUID().replaceAll("-", "");
  else if (typeof eventId !== "string" || eventId === "") {
    throw new InvalidEventError(`${show(eventId)} is not a non-empty string`, "event_id");
  }
  if (variant !== null && typeof variant !== "string") {
    throw new InvalidEventError(`${show(variant)} is not a string`, "variant");
  }
  const attributes: Record<string, string | number | boolean | null> = {};
  const given = options.attributes;
  if (given !== undefined && given !== null) {
    if (typeof given !== "object" || Array.isArray(given)) throw new InvalidEventError("must be an object", "attributes");
    for (const [name, value] of Object.entries(given)) {
      if (value !== null && value !== undefined && !isScalar(value)) {
        throw new InvalidEventError(`${JSON.stringify(name)} = ${show(value)} is not a scalar`, "attributes");
      }
      attributes[name] = value ?? null;
    }
  }
  const event: EventBody = {
    event_id: eventId,
    experiment,
    unit_id: unit,
    variant,
    timestamp: timestamp(options.timestamp),
    values: numbers("values", values, false),
    attributes,
  };
  if (options.covariates !== undefined && options.covariates !== null) {
    event.covariates = numbers("covariates", options.covariates, true);
  }
  return event;
}

// The OpenFeature provider answers as tests/spec/openfeature.json says, the same file the
// Python provider is tested against: every reason, error, value, metadata and track() case,
// through the provider and a real client on an in-memory service.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { afterEach, describe, test } from "node:test";

import { Client, REASONS } from "@sharpen/client";
import { OPENFEATURE_ERRORS, OPENFEATURE_METADATA, OPENFEATURE_REASONS, SharpenProvider } from "@sharpen/client/openfeature";

import { API_KEY, BASE_URL, FakeService, documentOf, entry, json, recordingLogger } from "./fake-service.mjs";

const SPEC = JSON.parse(readFileSync(new URL("../../tests/spec/openfeature.json", import.meta.url), "utf8"));
const TYPES = SPEC.types.typescript;
const RESOLVE = {
  boolean: "resolveBooleanEvaluation",
  string: "resolveStringEvaluation",
  number: "resolveNumberEvaluation",
  object: "resolveObjectEvaluation",
};
const DEFAULTS = { boolean: false, string: "the-default", number: -12345, object: { the: "default" } };
const UNITS = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"];
const open = [];

/** A 50/50 experiment whose variants carry `payloads` (one for both, or one each). */
function experiment(key, payloads) {
  const [a, b = a] = payloads;
  return entry(key, {
    variants: [
      { key: "baseline", weight: 50, payload: a },
      { key: "candidate", weight: 50, payload: b },
    ],
  });
}

/** A provider on its own client on `service` (polling off; uploads when flushed). */
async function providerOn(service, options = {}) {
  const logger = recordingLogger();
  const client = new Client(BASE_URL, API_KEY, {
    fetch: service.fetch,
    pollIntervalMs: null,
    flushIntervalMs: 3_600_000,
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    timeoutMs: 1000,
    logger,
    ...options,
  });
  open.push(client);
  await client.ready();
  return { client, provider: new SharpenProvider(client), lines: logger.lines };
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close(1000)));
});

function contextOf(spec) {
  const context = { ...spec.attributes };
  if ("targeting_key" in spec) context.targetingKey = spec.targeting_key;
  return context;
}

function assertError(got, fallback, code, flag, why) {
  assert.deepEqual([got.value, got.reason, got.errorCode, got.variant], [fallback, "ERROR", code, undefined], why);
  assert.ok(got.errorMessage, `${why}: says why`);
  assert.deepEqual(Object.keys(got.flagMetadata).sort(), [...SPEC.metadata.error].sort(), why);
  assert.deepEqual([got.flagMetadata.experiment, got.flagMetadata.in_experiment], [flag, false], why);
}

test("the tables are the shared ones", () => {
  assert.deepEqual({ ...OPENFEATURE_REASONS }, SPEC.reasons);
  assert.deepEqual({ ...OPENFEATURE_ERRORS }, SPEC.errors);
  assert.deepEqual({ served: [...OPENFEATURE_METADATA.served], error: [...OPENFEATURE_METADATA.error] }, {
    served: SPEC.metadata.served,
    error: SPEC.metadata.error,
  });
  // Every sharpen reason is mapped once: a reason or an error, never both, none missing.
  const mapped = [...Object.keys(SPEC.reasons), ...Object.keys(SPEC.errors)];
  assert.deepEqual(new Set(mapped), REASONS);
  assert.equal(mapped.length, REASONS.size);
  // Every flag type of the cases runs, under its JavaScript name.
  assert.deepEqual(new Set(SPEC.values.map((c) => c.type)), new Set(Object.keys(TYPES)));
  assert.deepEqual(new Set(Object.values(TYPES)), new Set(Object.keys(RESOLVE)));
});

describe("every sharpen reason, through a remote answer", () => {
  const flag = "of-flag";
  const answers = [
    ...Object.keys(SPEC.reasons).map((reason) => [reason, "candidate", { value: true }]),
    ...Object.keys(SPEC.errors).map((reason) => [reason, null, {}]),
    ["a_reason_from_a_newer_service", "candidate", { value: true }],
  ];
  for (const [reason, variant, payload] of answers) {
    test(reason, async () => {
      const service = new FakeService(documentOf([experiment(flag, [{ value: false }, { value: true }])]));
      service.responders["/v1/assign"] = () =>
        json(200, { experiment: flag, variant, payload, in_experiment: reason === "assigned", reason });
      const { client, provider } = await providerOn(service, { mode: "remote" });
      const got = await provider.resolveBooleanEvaluation(flag, false, { targetingKey: "u1" });
      assert.equal(client.stats.remoteErrors, 0);
      if (reason in SPEC.errors) {
        assertError(got, false, SPEC.errors[reason], flag, reason);
        return;
      }
      const want = SPEC.reasons[reason] ?? SPEC.unknown_reason.reason;
      assert.deepEqual([got.value, got.variant, got.reason, got.errorCode], [true, "candidate", want, undefined]);
      assert.deepEqual(Object.keys(got.flagMetadata).sort(), [...SPEC.metadata.served].sort());
      assert.deepEqual(got.flagMetadata, { experiment: flag, variant: "candidate", in_experiment: reason === "assigned", reason });
    });
  }
});

describe("refusals before assigning", () => {
  for (const c of SPEC.refusals.cases) {
    test(c.why, async () => {
      const flag = c.flag ?? "of-flag";
      const service = new FakeService(documentOf([experiment("of-flag", [{ value: false }, { value: true }])]));
      service.fail = c.config === null;
      const { client, provider } = await providerOn(service);
      const got = await provider.resolveBooleanEvaluation(flag, true, contextOf(c.context));
      assertError(got, true, c.error, flag, c.why);
      assert.deepEqual([client.stats.exposuresPending, client.stats.exposuresSent], [0, 0]);
    });
  }
});

describe("flag values", () => {
  SPEC.values.forEach((c, i) => {
    const type = TYPES[c.type];
    const want = c.typescript ?? c; // where JavaScript answers otherwise (no integers)
    test(`${c.type} ${JSON.stringify(c.payload)} as ${type}: ${"error" in want ? want.error : JSON.stringify(want.value)}`, async () => {
      const flag = `case-${i}`;
      const service = new FakeService(documentOf([experiment(flag, [c.payload])]));
      const { client, provider } = await providerOn(service);
      for (const unit of UNITS) {
        const got = await provider[RESOLVE[type]](flag, DEFAULTS[type], { targetingKey: unit });
        if ("error" in want) {
          assertError(got, DEFAULTS[type], want.error, flag, unit);
          continue;
        }
        assert.deepEqual([got.value, got.reason, got.errorCode], [want.value, "SPLIT", undefined], unit);
        assert.deepEqual(got.flagMetadata, { experiment: flag, variant: got.variant, in_experiment: true, reason: "assigned" });
      }
      assert.equal(await client.flush(5000), true);
      // A mismatch was decided before assigning: no exposure.
      assert.equal(service.exposures().length, "error" in want ? 0 : UNITS.length);
    });
  });

  for (const c of SPEC.every_variant.cases) {
    const type = TYPES[c.type];
    test(`every variant is checked: ${c.type} ${JSON.stringify(c.payloads)}`, async () => {
      const service = new FakeService(documentOf([experiment("mixed", c.payloads)]));
      const { client, provider } = await providerOn(service);
      for (const unit of UNITS) {
        const got = await provider[RESOLVE[type]]("mixed", DEFAULTS[type], { targetingKey: unit });
        assertError(got, DEFAULTS[type], c.error, "mixed", unit);
      }
      assert.equal(await client.flush(5000), true);
      assert.equal(service.exposures().length, 0);
    });
  }
});

describe("track()", () => {
  for (const c of SPEC.track.cases) {
    test(c.why, async () => {
      const on = [{ value: false }, { value: true }];
      const service = new FakeService(documentOf([experiment("tr-a", on), experiment("tr-b", on)]));
      const { client, provider, lines } = await providerOn(service);
      const context = contextOf(c.context);
      const served = new Map();
      for (const flag of c.served) {
        const got = await provider.resolveBooleanEvaluation(flag, false, context);
        assert.equal(got.flagMetadata.in_experiment, true);
        served.set(flag, got.variant);
      }
      const details = c.details === null ? undefined : { ...c.details.attributes, ...("value" in c.details ? { value: c.details.value } : {}) };
      provider.track(SPEC.track.name, context, details);
      assert.equal(await client.flush(5000), true);
      const events = service.events().sort((a, b) => a.experiment.localeCompare(b.experiment));
      if ("refused" in c) {
        assert.deepEqual(events, []);
        assert.ok(lines.some((line) => line.includes(`dropped: InvalidEventError: ${c.refused}:`)), lines.join("\n"));
        return;
      }
      assert.deepEqual(
        events.map(({ experiment, values, attributes }) => ({ experiment, values, attributes })),
        c.events,
      );
      for (const event of events) {
        assert.equal(event.unit_id, c.context.targeting_key);
        if (served.has(event.experiment)) assert.equal(event.variant, served.get(event.experiment));
        else assert.ok(["baseline", "candidate"].includes(event.variant), event.variant);
      }
      if (c.events.length === 0) {
        assert.ok(lines.some((line) => line.includes("was not served in an experiment here")), lines.join("\n"));
      }
    });
  }

  test("remembers the last rememberUnits units", async () => {
    const service = new FakeService(documentOf([experiment("tr-a", [{ value: false }, { value: true }])]));
    const { client, lines } = await providerOn(service);
    const provider = new SharpenProvider(client, { rememberUnits: 2 });
    for (const unit of ["u1", "u2", "u3"]) await provider.resolveBooleanEvaluation("tr-a", false, { targetingKey: unit });
    for (const unit of ["u1", "u2", "u3"]) provider.track("converted", { targetingKey: unit });
    assert.equal(await client.flush(5000), true);
    assert.deepEqual(service.events().map((e) => e.unit_id).sort(), ["u2", "u3"]);
    assert.ok(lines.some((line) => line.includes('"u1" was not served')), lines.join("\n"));
    assert.throws(() => new SharpenProvider(client, { rememberUnits: -1 }), RangeError);
  });
});

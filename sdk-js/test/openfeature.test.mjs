// The OpenFeature provider, driven by the real @openfeature/server-sdk against a live sharpen.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";

import { ErrorCode, OpenFeature, ProviderEvents, ProviderStatus } from "@openfeature/server-sdk";
import { evaluate } from "@sharpen/client";
import { SharpenProvider } from "@sharpen/client/openfeature";

import { FakeService, documentOf, entry, recordingLogger, waitFor } from "./fake-service.mjs";
import { Report, admin, live } from "./live.mjs";

const UNITS = Array.from({ length: 200 }, (_, i) => `of-user-${i}`);

/** A port nothing listens on. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("OpenFeature provider against a live sharpen", { skip: live.skip }, () => {
  const report = new Report("openfeature");
  const logger = recordingLogger();
  const exposed = new Set();
  /** unit → (flag → variant) the provider served it in an experiment: where track() sends. */
  const served = new Map();
  let provider;
  let client;

  /** Evaluate through OpenFeature; count the exposure the provider's client sends for it. */
  async function details(kind, flag, fallback, context) {
    const method = { boolean: "getBooleanDetails", string: "getStringDetails", number: "getNumberDetails", object: "getObjectDetails" }[kind];
    const got = await client[method](flag, fallback, context);
    if (got.flagMetadata.in_experiment) {
      if (!served.has(context.targetingKey)) served.set(context.targetingKey, new Map());
      served.get(context.targetingKey).set(flag, got.variant);
      if (!exposed.has(`${flag}\u0000${context.targetingKey}`)) {
        exposed.add(`${flag}\u0000${context.targetingKey}`);
        report.exposed(flag);
      }
    }
    return got;
  }

  /** What the provider's client evaluates locally for `unit` (the live test checks it against Python). */
  function expected(flag, unit, attributes) {
    return evaluate(provider.client.config.experiments.get(flag), unit, attributes);
  }

  before(async () => {
    provider = new SharpenProvider({
      baseUrl: live.url,
      apiKey: live.clientKey,
      timeoutMs: 5000,
      pollIntervalMs: 100,
      flushIntervalMs: 100,
      logger,
    });
    await OpenFeature.setProviderAndWait(provider);
    client = OpenFeature.getClient();
    assert.equal(client.providerStatus, ProviderStatus.READY);
  });

  after(async () => {
    if (provider !== undefined) {
      await OpenFeature.close(); // closes the provider, which flushes its client
      assert.deepEqual([provider.client.stats.exposuresPending, provider.client.stats.eventsPending], [0, 0]);
      report.write();
    }
  });

  test("typed flag values come from the served variant's payload", async () => {
    let split = 0;
    for (const unit of UNITS) {
      const context = { targetingKey: unit };
      const want = expected("of-bool", unit);
      const flag = await details("boolean", "of-bool", false, context);
      assert.deepEqual(
        [flag.value, flag.variant, flag.reason, flag.errorCode],
        [want.payload.value, want.variant, "SPLIT", undefined],
      );
      assert.deepEqual(flag.flagMetadata, { experiment: "of-bool", variant: want.variant, in_experiment: true, reason: "assigned" });
      split += flag.variant === "on";

      const text = await details("string", "of-string", "none", context);
      const wantText = expected("of-string", unit);
      assert.equal(text.value, wantText.variant === "baseline" ? "red" : "blue");
      assert.equal(text.reason, "SPLIT");

      const number = await details("number", "of-number", -1, context);
      assert.equal(number.value, expected("of-number", unit).variant === "baseline" ? 0.5 : 2);

      const object = await details("object", "of-object", {}, context);
      assert.deepEqual(object.value, expected("of-object", unit).payload);
      assert.equal(object.variant, expected("of-object", unit).variant);
    }
    assert.ok(split > 50 && split < 150, `${split} of ${UNITS.length} units got "on"`);
  });

  test("sharpen's reasons map to OpenFeature's", async () => {
    const us = await details("boolean", "of-geo", true, { targetingKey: "of-user-1", country: "US" });
    assert.equal(us.reason, "SPLIT");
    const fr = await details("boolean", "of-geo", true, { targetingKey: "of-user-1", country: "FR" });
    assert.deepEqual([fr.value, fr.variant, fr.reason, fr.flagMetadata.reason], [false, "baseline", "TARGETING_MATCH", "targeting"]);
    const nested = await details("boolean", "of-geo", true, { targetingKey: "of-user-2", country: { code: "US" } });
    assert.equal(nested.reason, "TARGETING_MATCH"); // a non-scalar attribute counts as missing

    const reasons = new Map();
    for (const unit of UNITS) {
      const got = await details("boolean", "of-traffic", true, { targetingKey: unit });
      reasons.set(got.reason, (reasons.get(got.reason) ?? 0) + 1);
      if (got.reason === "DEFAULT") assert.deepEqual([got.value, got.flagMetadata.reason], [false, "traffic"]);
    }
    assert.ok(reasons.get("DEFAULT") > 150 && reasons.get("SPLIT") > 0, JSON.stringify([...reasons]));

    const stopped = await details("boolean", "of-stopped", true, { targetingKey: "of-user-1" });
    assert.deepEqual([stopped.value, stopped.variant, stopped.reason], [false, "baseline", "DISABLED"]);
    const shipped = await details("boolean", "of-shipped", false, { targetingKey: "of-user-1" });
    assert.deepEqual([shipped.value, shipped.variant, shipped.reason], [true, "on", "STATIC"]);
  });

  test("errors come back as OpenFeature error codes with the default value", async () => {
    const cases = [
      ["boolean", "no-such-flag", true, { targetingKey: "u1" }, ErrorCode.FLAG_NOT_FOUND],
      ["boolean", "of-bool", true, {}, ErrorCode.TARGETING_KEY_MISSING],
      ["boolean", "of-bool", true, { targetingKey: "" }, ErrorCode.TARGETING_KEY_MISSING],
      ["boolean", "of-string", true, { targetingKey: "of-user-1" }, ErrorCode.TYPE_MISMATCH],
      ["number", "of-bool", 7, { targetingKey: "of-user-1" }, ErrorCode.TYPE_MISMATCH],
      ["number", "of-object", 7, { targetingKey: "of-user-1" }, ErrorCode.TYPE_MISMATCH],
      ["string", "of-number", "x", { targetingKey: "of-user-1" }, ErrorCode.TYPE_MISMATCH],
    ];
    for (const [kind, flag, fallback, context, code] of cases) {
      const got = await details(kind, flag, fallback, context);
      assert.deepEqual([got.value, got.reason, got.errorCode], [fallback, "ERROR", code], `${kind} ${flag}`);
      assert.ok(got.errorMessage, `${flag} says why`);
    }
  });

  test("track() sends events to the experiments the unit was exposed to", async () => {
    const before = provider.client.stats.eventsSent;
    let sent = 0;
    for (const unit of UNITS.slice(0, 50)) {
      const flags = served.get(unit);
      client.track("converted", { targetingKey: unit, country: "US", nested: { x: 1 } }, { value: 1, revenue: 9.5 });
      for (const [flag, variant] of flags) report.tracked(flag, unit, variant);
      sent += flags.size;
      assert.ok(flags.has("of-bool") && flags.has("of-object"), unit);
    }
    // Naming the experiment reaches one the unit was never evaluated in.
    client.track("converted", { targetingKey: "of-stranger" }, { experiment: "of-bool" });
    report.tracked("of-bool", "of-stranger", expected("of-bool", "of-stranger").variant);
    sent += 1;
    // Neither exposed nor named: nothing to attribute it to, so it is dropped, loudly.
    client.track("converted", { targetingKey: "of-nobody" });
    client.track("converted", {});
    assert.equal(await provider.client.flush(30_000), true);
    const stats = provider.client.stats;
    assert.deepEqual([stats.eventsSent - before, stats.eventsRejected, stats.eventsDropped], [sent, 0, 0]);
    assert.ok(logger.lines.some((line) => line.includes('"of-nobody" was not served')), logger.lines.join("\n"));
    assert.ok(logger.lines.some((line) => line.includes("InvalidEventError: unit_id:")), logger.lines.join("\n"));
  });

  test("a changed experiment emits ConfigurationChanged", async () => {
    const before = await details("boolean", "of-changing", false, { targetingKey: "of-user-3" });
    assert.equal(before.reason, "SPLIT");
    const changes = [];
    const handler = (event) => changes.push(...(event?.flagsChanged ?? []));
    client.addHandler(ProviderEvents.ConfigurationChanged, handler);
    try {
      await admin("POST", "/v1/experiments/of-changing/stop");
      await waitFor(() => changes.includes("of-changing"), { what: "ConfigurationChanged naming of-changing" });
    } finally {
      client.removeHandler(ProviderEvents.ConfigurationChanged, handler);
    }
    const after = await details("boolean", "of-changing", true, { targetingKey: "of-user-3" });
    assert.deepEqual([after.value, after.reason], [false, "DISABLED"]);
  });

  test("without a reachable service the provider is not ready and says so", async () => {
    const offline = new SharpenProvider({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      apiKey: live.clientKey,
      timeoutMs: 1000,
      pollIntervalMs: null,
      logger: recordingLogger(),
    });
    await assert.rejects(OpenFeature.setProviderAndWait("offline", offline));
    const offlineClient = OpenFeature.getClient("offline");
    assert.equal(offlineClient.providerStatus, ProviderStatus.ERROR);
    const got = await offlineClient.getBooleanDetails("of-bool", true, { targetingKey: "u1" });
    assert.deepEqual([got.value, got.reason, got.errorCode], [true, "ERROR", ErrorCode.PROVIDER_NOT_READY]);
  });
});

describe("OpenFeature provider status follows the config", () => {
  test("not ready without a config; ready when the first one arrives", async () => {
    const service = new FakeService(documentOf([entry("of-late", { variants: [
      { key: "baseline", weight: 50, payload: { value: false } },
      { key: "on", weight: 50, payload: { value: true } },
    ] })]));
    service.fail = true;
    const provider = new SharpenProvider({
      baseUrl: "http://sharpen.test",
      apiKey: "key",
      fetch: service.fetch,
      pollIntervalMs: 20,
      logger: recordingLogger(),
    });
    try {
      await assert.rejects(OpenFeature.setProviderAndWait("late", provider), /no config loaded yet/);
      const flags = OpenFeature.getClient("late");
      assert.equal(flags.providerStatus, ProviderStatus.ERROR);
      service.fail = false;
      await waitFor(() => flags.providerStatus === ProviderStatus.READY, { what: "the provider to become ready" });
      const got = await flags.getBooleanDetails("of-late", false, { targetingKey: "u1" });
      assert.equal(got.reason, "SPLIT");
    } finally {
      await provider.onClose(); // its own client: stops polling
    }
  });
});

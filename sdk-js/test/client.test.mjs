// The client's behaviour table, against an in-memory service behind its `fetch` option.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, test } from "node:test";

import {
  ClientClosedError,
  Client,
  HTTPStatusError,
  InvalidEventError,
  RetryPolicy,
  VERSION,
  evaluate,
  parseExperiment,
} from "@sharpen/client";

import { API_KEY, BASE_URL, FakeService, documentOf, entry, hang, json, recordingLogger, waitFor } from "./fake-service.mjs";

const open = [];

/** A client on `service`; closed after each test. Polling off and uploads manual unless asked. */
function makeClient(service, options = {}) {
  const logger = recordingLogger();
  const client = new Client(BASE_URL, API_KEY, {
    fetch: service.fetch,
    pollIntervalMs: null,
    flushIntervalMs: 3_600_000,
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    logger,
    ...options,
  });
  client.logged = logger.lines;
  open.push(client);
  return client;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close(1000)));
});

describe("config", () => {
  test("is loaded at construction and evaluated locally", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    assert.equal(await client.ready(), true);
    const got = await client.assign("fraud-v7", "user-1");
    const expected = evaluate(parseExperiment(entry()), "user-1");
    assert.deepEqual(got, expected);
    assert.equal(got.reason, "assigned");
    assert.equal(client.stats.configLoads, 1);
    assert.equal(service.gets()[0].headers.get("Authorization"), `Bearer ${API_KEY}`);
    assert.equal(service.gets()[0].headers.get("User-Agent"), `sharpen-js/${VERSION}`);
  });

  test("the first assign waits for the first load", async () => {
    const service = new FakeService();
    let release;
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    service.responders["/v1/config"] = async () => {
      await gate;
      return undefined;
    };
    const client = makeClient(service, { timeoutMs: 30_000 });
    assert.equal(client.assignSync("fraud-v7", "u1").reason, "fallback"); // sync never waits
    const pending = client.assign("fraud-v7", "u1");
    release();
    assert.equal((await pending).reason, "assigned");
  });

  test("refresh sends If-None-Match and keeps the config on 304", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    await client.ready();
    assert.equal(await client.refresh(), false);
    assert.equal(service.gets()[1].headers.get("If-None-Match"), '"v1"');
    assert.equal(client.stats.configNotModified, 1);
    assert.equal((await client.assign("fraud-v7", "u1")).reason, "assigned");
  });

  test("background polling picks up a new config and tells listeners", async () => {
    const service = new FakeService();
    const client = makeClient(service, { pollIntervalMs: 20 });
    await client.ready();
    const seen = [];
    client.onConfigChange((config) => seen.push(config.etag));
    service.config = documentOf([entry("fraud-v7", { status: "stopped" })], '"v2"');
    await waitFor(() => client.config.etag === '"v2"', { what: "the new config" });
    assert.equal((await client.assign("fraud-v7", "u1")).reason, "stopped");
    assert.deepEqual(seen, ['"v2"']);
    assert.ok(service.gets().slice(1).every((r) => r.headers.get("If-None-Match") !== null));
  });

  test("a failed refresh keeps the last good config", async () => {
    const service = new FakeService();
    const client = makeClient(service, { pollIntervalMs: 20 });
    await client.ready();
    service.responders["/v1/config"] = () => json(500, { error: { code: "boom", message: "boom" } });
    await assert.rejects(client.refresh(), (error) => error instanceof HTTPStatusError && error.status === 500);
    await waitFor(() => client.stats.configErrors >= 1, { what: "a failed background refresh" });
    service.responders["/v1/config"] = () => new Response("not json", { status: 200 });
    await assert.rejects(client.refresh(), /not JSON/);
    assert.equal((await client.assign("fraud-v7", "u1")).reason, "assigned");
    assert.equal(client.config.etag, '"v1"');
  });

  test("malformed entries are skipped and counted", async () => {
    const service = new FakeService(documentOf([entry(), entry("broken", { variants: [] })]));
    const client = makeClient(service);
    await client.ready();
    assert.equal(client.stats.configSkippedEntries, 1);
    assert.equal((await client.assign("broken", "u1", null, { default: "baseline" })).reason, "unknown_experiment");
    assert.ok(client.logged.some((line) => line.includes("skipping malformed experiment \"broken\"")));
  });

  test("without any config the answer is the default, reason fallback", async () => {
    const service = new FakeService();
    service.fail = true;
    const client = makeClient(service);
    assert.equal(await client.ready(), false);
    const got = await client.assign("fraud-v7", "u1", null, { default: "baseline" });
    assert.deepEqual(
      [got.variant, got.inExperiment, got.reason, got.payload],
      ["baseline", false, "fallback", {}],
    );
    assert.equal(client.stats.configErrors, 1);
  });

  test("a hanging config endpoint does not hold the first assign past the timeout", async () => {
    const service = new FakeService();
    service.responders["/v1/config"] = hang;
    const client = makeClient(service, { timeoutMs: 100 });
    const got = await client.assign("fraud-v7", "u1", null, { default: "baseline" });
    assert.equal(got.reason, "fallback");
    await waitFor(() => service.gets()[0].signal.aborted, { what: "the request to be aborted by its timeout" });
  });
});

describe("remote mode", () => {
  test("posts /v1/assign and uses the answer", async () => {
    const service = new FakeService();
    service.responders["/v1/assign"] = (request) => {
      const body = JSON.parse(request.body);
      return json(200, {
        experiment: body.experiment,
        variant: "candidate",
        payload: { model: "remote" },
        in_experiment: true,
        reason: "assigned",
      });
    };
    const client = makeClient(service, { mode: "remote" });
    const got = await client.assign("fraud-v7", "u1", { country: "US" });
    assert.deepEqual(got.payload, { model: "remote" });
    assert.deepEqual(JSON.parse(service.posted("/v1/assign")[0].body), {
      experiment: "fraud-v7",
      unit_id: "u1",
      attributes: { country: "US" },
    });
    assert.equal(client.stats.remoteErrors, 0);
    // The service logged the exposure: the client does not send one...
    assert.equal(client.stats.exposuresPending, 0);
    // ...and remembers what it served, for track() and a later local fallback.
    await client.ready();
    await client.assign("fraud-v7", "u2");
    assert.deepEqual([...client.servedVariants("u2")], [["fraud-v7", "candidate"]]);
    client.track("fraud-v7", "u2", { n: 1 });
    await client.flush();
    assert.equal(service.events()[0].variant, "candidate");
  });

  test("applies the default to unknown experiments", async () => {
    const service = new FakeService();
    service.responders["/v1/assign"] = () =>
      json(200, { experiment: "nope", variant: null, payload: {}, in_experiment: false, reason: "unknown_experiment" });
    const client = makeClient(service, { mode: "remote" });
    const got = await client.assign("nope", "u1", null, { default: "baseline" });
    assert.deepEqual([got.variant, got.reason], ["baseline", "unknown_experiment"]);
  });

  test("a failure falls back to local evaluation", async () => {
    const service = new FakeService();
    service.responders["/v1/assign"] = () => json(503, { error: { code: "unavailable", message: "x" } });
    const client = makeClient(service, { mode: "remote" });
    await client.ready();
    const got = await client.assign("fraud-v7", "user-1");
    assert.deepEqual(got, evaluate(parseExperiment(entry()), "user-1"));
    assert.equal(client.stats.remoteErrors, 1);
    assert.equal(client.stats.exposuresPending, 1); // the local evaluation is exposed by the SDK
  });

  test("a failure without config is the fallback", async () => {
    const service = new FakeService();
    service.fail = true;
    const client = makeClient(service, { mode: "remote" });
    const got = await client.assign("fraud-v7", "u1", null, { default: "baseline" });
    assert.deepEqual([got.variant, got.reason], ["baseline", "fallback"]);
  });

  test("a hanging service is answered within the timeout", async () => {
    const service = new FakeService();
    service.responders["/v1/assign"] = hang;
    const client = makeClient(service, { mode: "remote", timeoutMs: 100 });
    await client.ready();
    assert.equal((await client.assign("fraud-v7", "user-1")).reason, "assigned");
    assert.ok(service.posted("/v1/assign")[0].signal.aborted);
  });
});

describe("exposures", () => {
  test("assignments in the experiment are exposed once per unit, with scalar attributes", async () => {
    const service = new FakeService(documentOf([entry(), entry("geo", { targeting: { country: ["US"] } })]));
    const client = makeClient(service);
    await client.ready();
    const attributes = { country: "US", tier: 2, tags: ["a"], nested: { x: 1 }, none: null };
    for (let i = 0; i < 2; i++) {
      await client.assign("fraud-v7", "u1", attributes);
      await client.assign("geo", "u1", attributes);
      await client.assign("geo", "u2", { country: "FR" }); // targeting: not in the experiment
    }
    attributes.country = "mutated later";
    assert.equal(await client.flush(), true);
    const sent = service.exposures();
    assert.deepEqual(
      sent.map((e) => [e.experiment, e.unit_id, e.variant, e.version, e.attributes]),
      [
        ["fraud-v7", "u1", evaluate(parseExperiment(entry()), "u1").variant, 2, { country: "US", tier: 2, none: null }],
        ["geo", "u1", evaluate(parseExperiment(entry("geo")), "u1").variant, 2, { country: "US", tier: 2, none: null }],
      ],
    );
    assert.match(sent[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(client.stats.exposuresSent, 2);
  });

  test("exposureCache 0 sends every call", async () => {
    const service = new FakeService();
    const client = makeClient(service, { exposureCache: 0 });
    await client.ready();
    for (let i = 0; i < 3; i++) client.assignSync("fraud-v7", "u1");
    await client.flush();
    assert.equal(service.exposures().length, 3);
  });
});

describe("track", () => {
  test("fills variant, event_id and timestamp", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    await client.ready();
    const served = await client.assign("fraud-v7", "user-1");
    const id = client.track("fraud-v7", "user-1", { flagged: 1, true_positive: false, latency_ms: 41.5 }, {
      attributes: { country: "US" },
      covariates: { prior: 3 },
    });
    client.track("fraud-v7", 42, { flagged: 0 }, { timestamp: "2024-05-01T12:00:00", eventId: "mine" });
    client.track("fraud-v7", "user-1", { flagged: 0 }, { timestamp: 1714564800.25, variant: "baseline" });
    await client.flush();
    const [first, second, third] = service.events();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.deepEqual(first, {
      event_id: id,
      experiment: "fraud-v7",
      unit_id: "user-1",
      variant: served.variant,
      timestamp: first.timestamp,
      values: { flagged: 1, true_positive: 0, latency_ms: 41.5 },
      attributes: { country: "US" },
      covariates: { prior: 3 },
    });
    assert.match(first.timestamp, /Z$/);
    assert.deepEqual([second.event_id, second.unit_id, second.timestamp], ["mine", "42", "2024-05-01T12:00:00.000Z"]);
    assert.equal(second.variant, evaluate(parseExperiment(entry()), "42").variant); // evaluated locally
    assert.deepEqual([third.timestamp, third.variant], ["2024-05-01T12:00:00.250Z", "baseline"]);
    assert.equal(client.stats.eventsSent, 3);
  });

  test("variant is null for units outside the experiment", async () => {
    const service = new FakeService(documentOf([entry("fraud-v7", { traffic: 0 })]));
    const client = makeClient(service);
    await client.ready();
    client.track("fraud-v7", "u1", { n: 1 });
    await client.flush();
    assert.equal(service.events()[0].variant, null);
  });

  const invalid = [
    [{ values: {} }, "values"],
    [{ values: { n: Number.NaN } }, "values"],
    [{ values: { n: "1" } }, "values"],
    [{ values: [1] }, "values"],
    [{ experiment: "" }, "experiment"],
    [{ unit: "" }, "unit_id"],
    [{ unit: { id: 1 } }, "unit_id"],
    [{ unit: "é".repeat(257) }, "unit_id"],
    [{ options: { attributes: { tags: ["a"] } } }, "attributes"],
    [{ options: { timestamp: "yesterday" } }, "timestamp"],
    [{ options: { eventId: "" } }, "event_id"],
    [{ options: { covariates: { x: Infinity } } }, "covariates"],
  ];
  for (const [bad, field] of invalid) {
    test(`rejects what the service would refuse: ${field} ${JSON.stringify(bad)}`, async () => {
      const service = new FakeService();
      const client = makeClient(service);
      const call = { experiment: "fraud-v7", unit: "u1", values: { n: 1 }, options: {}, ...bad };
      assert.throws(
        () => client.track(call.experiment, call.unit, call.values, call.options),
        (error) => error instanceof InvalidEventError && error.field === field && error.message.startsWith(`${field}: `),
      );
      assert.equal(client.stats.eventsPending, 0);
    });
  }

  test("the service's duplicates are counted", async () => {
    const service = new FakeService();
    service.responders["/v1/events"] = () => json(202, { accepted: 1, duplicates: 1 });
    const client = makeClient(service);
    client.track("fraud-v7", "u1", { n: 1 }, { eventId: "e1" });
    client.track("fraud-v7", "u1", { n: 1 }, { eventId: "e1" });
    await client.flush();
    assert.deepEqual([client.stats.eventsSent, client.stats.eventsDuplicates], [2, 1]);
  });
});

describe("uploads", () => {
  test("batches by size, each with its own Idempotency-Key", async () => {
    const service = new FakeService();
    const client = makeClient(service, { maxBatch: 2 });
    for (let i = 0; i < 5; i++) client.track("fraud-v7", `u${i}`, { n: i });
    assert.equal(await client.flush(), true);
    const posts = service.posted("/v1/events");
    const sizes = posts.map((r) => JSON.parse(r.body).events.length);
    assert.ok(sizes.every((n) => n <= 2), String(sizes));
    assert.equal(sizes.reduce((a, b) => a + b), 5);
    const keys = posts.map((r) => r.headers.get("Idempotency-Key"));
    assert.equal(new Set(keys).size, posts.length);
    assert.ok(keys.every((k) => /^[0-9a-f]{32}$/.test(k)));
  });

  test("a full batch is sent in the background", async () => {
    const service = new FakeService();
    const client = makeClient(service, { maxBatch: 3 });
    await client.ready();
    for (let i = 0; i < 3; i++) client.track("fraud-v7", `u${i}`, { n: i });
    await waitFor(() => client.stats.eventsSent === 3, { what: "the full batch to be sent" });
    for (let i = 0; i < 3; i++) client.assignSync("fraud-v7", `x${i}`);
    await waitFor(() => client.stats.exposuresSent === 3, { what: "the full exposure batch to be sent" });
  });

  test("what waits is sent every flushIntervalMs", async () => {
    const service = new FakeService();
    const client = makeClient(service, { flushIntervalMs: 20 });
    client.track("fraud-v7", "u1", { n: 1 });
    await waitFor(() => client.stats.eventsSent === 1, { what: "the timed flush" });
  });

  test("a retry reuses the Idempotency-Key and the body", async () => {
    const service = new FakeService();
    const answers = [json(503, {}), undefined];
    service.responders["/v1/events"] = () => answers.shift();
    const client = makeClient(service);
    for (let i = 0; i < 3; i++) client.track("fraud-v7", `u${i}`, { n: i });
    assert.equal(await client.flush(), true);
    const [first, second] = service.posted("/v1/events");
    assert.equal(first.headers.get("Idempotency-Key"), second.headers.get("Idempotency-Key"));
    assert.equal(first.body, second.body);
    const stats = client.stats;
    assert.deepEqual([stats.eventsSent, stats.retries, stats.eventsFailed], [3, 1, 0]);
  });

  test("network errors are retried", async () => {
    const service = new FakeService();
    let calls = 0;
    service.responders["/v1/events"] = () => {
      calls += 1;
      if (calls <= 2) throw new TypeError("fetch failed");
      return undefined;
    };
    const client = makeClient(service);
    client.track("fraud-v7", "u1", { n: 1 });
    assert.equal(await client.flush(), true);
    assert.equal(calls, 3);
    assert.equal(client.stats.eventsSent, 1);
  });

  test("429 with Retry-After waits as told, not the backoff", async () => {
    const service = new FakeService();
    const answers = [json(429, {}, { "Retry-After": "0.3" }), undefined];
    service.responders["/v1/events"] = () => answers.shift();
    // The backoff alone would wait a minute: only Retry-After lets the flush finish.
    const client = makeClient(service, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    client.track("fraud-v7", "u1", { n: 1 });
    assert.equal(await client.flush(10_000), true);
    const [first, second] = service.posted("/v1/events");
    assert.ok(second.at - first.at >= 299, `retried after ${second.at - first.at} ms`);
  });

  test("other 4xx are rejected without retry", async () => {
    const service = new FakeService();
    service.responders["/v1/events"] = () => json(422, { error: { code: "invalid", message: "bad" } });
    const client = makeClient(service);
    client.track("fraud-v7", "u1", { n: 1 });
    client.track("fraud-v7", "u2", { n: 1 });
    assert.equal(await client.flush(), true);
    assert.equal(service.posted("/v1/events").length, 1);
    assert.deepEqual([client.stats.eventsRejected, client.stats.retries], [2, 0]);
    assert.ok(client.logged.some((line) => line.includes("HTTP 422")));
  });

  test("a batch the service accepts in part: the refused events are counted, logged once per kind, never resent", async () => {
    const service = new FakeService();
    const refused = { field: "events.1.experiment", code: "not_found", message: "no experiment 'fraud-v8'" };
    service.responders["/v1/events"] = () =>
      json(202, { accepted: 2, duplicates: 0, rejected: [refused], rejected_count: 1 });
    const client = makeClient(service);
    for (let round = 0; round < 2; round++) {
      client.track("fraud-v7", "u1", { n: 1 });
      client.track("fraud-v8", "u2", { n: 1 });
      client.track("fraud-v7", "u3", { n: 1 });
      assert.equal(await client.flush(), true);
    }
    assert.equal(service.posted("/v1/events").length, 2);
    assert.deepEqual([client.stats.eventsSent, client.stats.eventsRejected, client.stats.retries], [4, 2, 0]);
    const warnings = client.logged.filter((line) => line.includes("experiment (not_found)"));
    assert.equal(warnings.length, 1, client.logged.join("\n"));
    assert.ok(warnings[0].includes("events.1.experiment: no experiment 'fraud-v8'"), warnings[0]);
  });

  test("a batch is given up after maxAttempts", async () => {
    const service = new FakeService();
    service.responders["/v1/events"] = () => json(500, {});
    const client = makeClient(service, { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
    client.track("fraud-v7", "u1", { n: 1 });
    await client.flush();
    assert.equal(service.posted("/v1/events").length, 3);
    assert.deepEqual([client.stats.eventsFailed, client.stats.eventsPending], [1, 0]);
  });

  test("a full buffer drops and counts", async () => {
    const service = new FakeService();
    let release;
    const gate = new Promise((resolve) => {
      release = resolve;
    });
    service.responders["/v1/events"] = async () => {
      await gate;
      return undefined;
    };
    const client = makeClient(service, { maxBatch: 5, maxBuffer: 5 });
    for (let i = 0; i < 5; i++) client.track("fraud-v7", `u${i}`, { n: i });
    await waitFor(() => service.posted("/v1/events").length === 1, { what: "the first batch in flight" });
    for (let i = 5; i < 13; i++) client.track("fraud-v7", `u${i}`, { n: i });
    assert.deepEqual([client.stats.eventsPending, client.stats.eventsDropped], [5, 3]);
    release();
    await client.close();
    assert.equal(client.stats.eventsSent, 10);
    assert.equal(service.events().length, 10);
  });
});

describe("close", () => {
  test("sends what is queued", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    await client.ready();
    await client.assign("fraud-v7", "u1");
    for (let i = 0; i < 3; i++) client.track("fraud-v7", `u${i}`, { n: i });
    assert.equal(service.posted("/v1/events").length, 0);
    await client.close();
    assert.equal(service.events().length, 3);
    assert.equal(service.exposures().length, 1);
    const stats = client.stats;
    assert.deepEqual([stats.eventsPending, stats.exposuresPending, stats.eventsSent], [0, 0, 3]);
  });

  test("gives up at its deadline and counts the rest", async () => {
    const service = new FakeService();
    service.responders["/v1/events"] = () => json(503, {});
    const client = makeClient(service, { retry: { baseDelayMs: 5000, maxDelayMs: 5000 } });
    client.track("fraud-v7", "u1", { n: 1 });
    await client.close(200);
    const stats = client.stats;
    assert.equal(stats.eventsSent, 0);
    assert.equal(stats.eventsFailed + stats.eventsDropped, 1);
    assert.equal(stats.eventsPending, 0);
  });

  test("afterwards assign still answers, exposures and events are dropped, refresh rejects", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    await client.ready();
    await client.close();
    assert.equal((await client.assign("fraud-v7", "user-1")).reason, "assigned");
    assert.equal(client.stats.exposuresDropped, 1);
    client.track("fraud-v7", "u1", { n: 1 });
    assert.equal(client.stats.eventsDropped, 1);
    await assert.rejects(client.refresh(), ClientClosedError);
  });
});

describe("never throws on the caller's path", () => {
  test("odd arguments get an answer", async () => {
    const service = new FakeService(documentOf([entry("geo", { targeting: { country: ["US"] } })]));
    const client = makeClient(service);
    await client.ready();
    assert.equal(client.assignSync("geo", { not: "an id" }, { country: "US" }).reason, "invalid_unit");
    assert.equal(client.assignSync("geo", "u1", "not attributes").reason, "targeting");
    assert.equal((await client.assign("geo", "u1", null)).reason, "targeting");
    assert.equal((await client.assign(undefined, "u1")).reason, "unknown_experiment");
  });

  test("a fetch that throws synchronously is a fallback", async () => {
    const client = makeClient(new FakeService(), {
      mode: "remote",
      fetch: () => {
        throw new Error("broken fetch");
      },
    });
    const got = await client.assign("fraud-v7", "u1", null, { default: "baseline" });
    assert.deepEqual([got.variant, got.reason], ["baseline", "fallback"]);
  });
});

describe("the process", () => {
  test("a client left open does not keep Node alive", () => {
    const script = `
      import { Client } from "@sharpen/client";
      const fetch = async (url) => new URL(url).pathname === "/v1/config"
        ? new Response(JSON.stringify({ experiments: {} }), { status: 200 })
        : new Response("{}", { status: 202 });
      const client = new Client("http://sharpen.test", "key", { fetch, pollIntervalMs: 50, flushIntervalMs: 50 });
      await client.ready();
      client.track("fraud-v7", "u1", { n: 1 });
      console.log("done");
    `;
    const done = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url),
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(done.signal, null, "killed by the guard: the process did not exit by itself");
    assert.deepEqual([done.status, done.stdout.trim()], [0, "done"], done.stderr);
  });
});

describe("settings", () => {
  const bad = [
    [{ mode: "edge" }, /mode/],
    [{ timeoutMs: 0 }, /timeoutMs/],
    [{ pollIntervalMs: -1 }, /pollIntervalMs/],
    [{ flushIntervalMs: Number.NaN }, /flushIntervalMs/],
    [{ maxBatch: 0 }, /maxBatch/],
    [{ maxBuffer: 1, maxBatch: 2 }, /maxBuffer/],
    [{ exposureCache: -1 }, /exposureCache/],
    [{ retry: { maxAttempts: 0 } }, /retry.maxAttempts/],
  ];
  for (const [options, match] of bad) {
    test(`refuses ${JSON.stringify(options)}`, () => {
      assert.throws(() => new Client(BASE_URL, API_KEY, { fetch: new FakeService().fetch, ...options }), match);
    });
  }

  test("refuses an empty API key and a bad URL", () => {
    assert.throws(() => new Client(BASE_URL, ""), /apiKey/);
    assert.throws(() => new Client("not a url", API_KEY), TypeError);
  });

  test("the version is the package's", () => {
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(VERSION, manifest.version);
  });
});

describe("retry policy", () => {
  test("backoff doubles with jitter in [d/2, d] up to the cap", () => {
    const policy = new RetryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
    for (const [failures, ceiling] of [[1, 100], [2, 200], [4, 800], [5, 1000], [9, 1000]]) {
      assert.equal(policy.delay(failures, null, () => 0), ceiling / 2);
      assert.equal(policy.delay(failures, null, () => 1), ceiling);
    }
  });

  test("Retry-After wins but is capped", () => {
    const policy = new RetryPolicy({ maxRetryAfterMs: 5000 });
    assert.equal(policy.delay(1, 2000, () => 1), 2000);
    assert.equal(policy.delay(1, 60_000, () => 1), 5000);
  });
});

describe("Retry-After", () => {
  test("reads delta-seconds and HTTP dates", async () => {
    const { classify, parseRetryAfter } = await import("../dist/retry.js");
    const now = Date.parse("Wed, 01 May 2024 12:00:00 GMT");
    assert.equal(parseRetryAfter("2", now), 2000);
    assert.equal(parseRetryAfter(" 0.5 ", now), 500);
    assert.equal(parseRetryAfter("Wed, 01 May 2024 12:00:30 GMT", now), 30_000);
    assert.equal(parseRetryAfter("Wed, 01 May 2024 11:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("-3", now), 0);
    assert.equal(parseRetryAfter("soon", now), null);
    assert.equal(parseRetryAfter(null, now), null);
    assert.deepEqual(
      [200, 202, 408, 429, 500, 503, 400, 401, 404, 409, 413, 422].map(classify),
      ["sent", "sent", "retry", "retry", "retry", "retry", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected"],
    );
  });
});

describe("config stream", () => {
  const sse = (document, id) =>
    new Response(`id: ${id}\nevent: config\ndata: ${JSON.stringify(document)}\n\n: ping\n\n`, {
      status: 200,
      headers: { "Content-Type": "text/event-stream" },
    });

  test("a pushed config is installed without polling; reconnects resume from it", async () => {
    const service = new FakeService();
    const pushed = documentOf([entry("fraud-v7", { status: "rolled_back", version: 3 })]);
    service.responders["/v1/config/stream"] = (request) => {
      assert.equal(request.headers.get("Accept"), "text/event-stream");
      return sse(pushed, "v3");
    };
    const client = makeClient(service, { stream: true, pollIntervalMs: 30_000 });
    await waitFor(async () => (await client.assign("fraud-v7", "u1")).reason === "rolled_back", { what: "the push" });
    assert.equal(client.config.etag, '"v3"');
    assert.ok(client.stats.configPushes >= 1);
    assert.equal(service.gets().length, 0);
    await waitFor(() => service.gets("/v1/config/stream").length >= 2, { what: "a reconnect" });
    assert.equal(service.gets("/v1/config/stream").at(-1).headers.get("Last-Event-ID"), "v3");
  });

  test("a refused stream falls back to polling", async () => {
    const service = new FakeService();
    service.responders["/v1/config/stream"] = () => json(503, {}, { "Retry-After": "1" });
    const client = makeClient(service, { stream: true, pollIntervalMs: 30_000 });
    assert.equal(await client.ready(), true);
    const stats = client.stats;
    assert.ok(stats.configLoads >= 1 && stats.streamErrors >= 1 && stats.configPushes === 0);
  });
});

describe("expose: false and overrides", () => {
  const unitWith = (variant) => {
    const config = parseExperiment(entry());
    for (let i = 0; ; i++) if (evaluate(config, `u${i}`).variant === variant) return `u${i}`;
  };

  test("an unexposed answer is exposed once, when expose() is called", async () => {
    const service = new FakeService();
    const client = makeClient(service);
    const unit = unitWith("candidate");
    const answer = await client.assign("fraud-v7", unit, { country: "US" }, { expose: false });
    assert.deepEqual([answer.variant, answer.reason, answer.inExperiment], ["candidate", "assigned", true]);
    assert.equal(client.stats.exposuresPending, 0);
    assert.equal(client.expose(answer), true);
    assert.equal(client.expose(answer), false);
    await client.assign("fraud-v7", unit); // already exposed: nothing new
    assert.equal(client.expose(await client.assign("unknown", unit, null, { expose: false })), false);
    assert.equal(await client.flush(), true);
    assert.deepEqual(
      service.exposures().map((e) => [e.unit_id, e.variant, e.attributes]),
      [[unit, "candidate", { country: "US" }]],
    );
  });

  test("overrides answer the forced variant, reason override, never exposed", async () => {
    const service = new FakeService();
    const client = makeClient(service, { overrides: { "fraud-v7": "baseline", "not-yet": "on" } });
    for (let i = 0; i < 20; i++) {
      const got = await client.assign("fraud-v7", `u${i}`);
      assert.deepEqual([got.variant, got.reason, got.inExperiment, got.payload.model], ["baseline", "override", false, "fraud-v6"]);
    }
    assert.equal((await client.assign("not-yet", "u1")).variant, "on");
    client.force("fraud-v7", null);
    assert.equal((await client.assign("fraud-v7", unitWith("candidate"))).reason, "assigned");
    client.force("fraud-v7", "candidate");
    assert.equal((await client.assign("fraud-v7", unitWith("baseline"))).variant, "candidate");
    assert.equal(await client.flush(), true);
    assert.equal(service.exposures().length, 1);
    assert.throws(() => makeClient(service, { overrides: { "fraud-v7": "" } }), /overrides/);
  });
});

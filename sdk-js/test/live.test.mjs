// The TypeScript client against a real sharpen: it assigns what the Python SDK assigns,
// remote mode agrees with local mode, and exposures and events land (the pytest driver
// counts them in the service's streams from this test's report).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client, evaluate } from "@sharpen/client";

import { recordingLogger, waitFor } from "./fake-service.mjs";
import { Report, live, pythonAnswers } from "./live.mjs";

const tuple = (a) => [a.variant, a.inExperiment, a.reason, a.payload];

describe("against a live sharpen", { skip: live.skip }, () => {
  const report = new Report("live");
  const logger = recordingLogger();
  let client;
  let fixture;

  before(async () => {
    fixture = pythonAnswers();
    client = new Client(live.url, live.clientKey, { timeoutMs: 5000, pollIntervalMs: 200, flushIntervalMs: 100, logger });
    assert.equal(await client.ready(), true);
    await waitFor(() => live.setup.compare.every((key) => client.config.experiments.has(key)), {
      what: "the client to load the experiments",
    });
  });

  after(async () => {
    await client?.close();
    if (fixture !== undefined) report.write();
  });

  test("assigns 10,000 units exactly as the Python SDK does", async () => {
    const { units, answers } = fixture;
    assert.equal(units.length, 10_000);
    let exposed = 0;
    for (const key of live.setup.compare) {
      const expected = answers[key];
      const mismatches = [];
      for (let i = 0; i < units.length; i++) {
        const [unit, attributes] = units[i];
        const got = tuple(client.assignSync(key, unit, attributes));
        try {
          assert.deepEqual(got, expected[i]);
        } catch {
          mismatches.push({ unit, attributes, typescript: got, python: expected[i] });
        }
      }
      assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} of ${units.length} differ in ${key}`);
      // The promise form answers the same (a sample: it is the same evaluation).
      for (let i = 0; i < units.length; i += 97) {
        const [unit, attributes] = units[i];
        assert.deepEqual(tuple(await client.assign(key, unit, attributes)), expected[i]);
      }
      const inExperiment = expected.filter((row) => row[1]).length;
      report.exposed(key, inExperiment);
      exposed += inExperiment;
    }
    const reasons = new Set(live.setup.compare.flatMap((key) => answers[key].map((row) => row[2])));
    for (const reason of ["assigned", "targeting", "traffic", "layer", "holdout"]) assert.ok(reasons.has(reason), reason);
    assert.equal(await client.flush(30_000), true);
    const stats = client.stats;
    assert.equal(stats.exposuresSent, exposed);
    assert.deepEqual([stats.exposuresDropped, stats.exposuresRejected, stats.exposuresFailed], [0, 0, 0]);
  });

  test("takes the config from the service's stream, not by polling", () => {
    const stats = client.stats;
    assert.ok(stats.configPushes >= 1, JSON.stringify(stats));
    assert.deepEqual([stats.configLoads, stats.streamErrors, stats.configErrors], [0, 0, 0]);
  });

  test("without the stream, polls the config with its ETag: the service answers 304", async () => {
    const polling = new Client(live.url, live.clientKey, { stream: false, timeoutMs: 5000, pollIntervalMs: 200, logger });
    try {
      await waitFor(() => polling.stats.configNotModified >= 2, { what: "two 304 answers to the client's polls" });
      assert.equal(polling.stats.configErrors, 0);
    } finally {
      await polling.close();
    }
  });

  test("remote mode answers what local mode does", async () => {
    const remote = new Client(live.url, live.clientKey, { mode: "remote", timeoutMs: 5000, logger });
    try {
      const { units, answers } = fixture;
      for (const key of ["js-geo", "js-layer"]) {
        for (let i = 0; i < 150; i++) {
          const [unit, attributes] = units[i];
          assert.deepEqual(tuple(await remote.assign(key, unit, attributes)), answers[key][i], `${key} ${unit}`);
        }
        // The service logs the exposures of the units it put in the experiment.
        report.exposed(key, answers[key].slice(0, 150).filter((row) => row[1]).length);
      }
      assert.equal(remote.stats.remoteErrors, 0);
      assert.equal(remote.stats.exposuresPending, 0);
    } finally {
      await remote.close();
    }
  });

  test("tracked events land, with the variant the unit was served", async () => {
    const { units, answers } = fixture;
    const ids = [];
    for (const key of ["js-plain", "js-geo"]) {
      let count = 0;
      for (let i = 0; i < units.length && count < 600; i++) {
        const [unit, attributes] = units[i];
        const [variant, inExperiment] = answers[key][i];
        if (!inExperiment) continue;
        const id = client.track(key, unit, { converted: i % 2, revenue: i * 0.25 }, { attributes });
        ids.push([key, unit, id]);
        report.tracked(key, unit, variant);
        count++;
      }
    }
    assert.equal(await client.flush(30_000), true);
    let stats = client.stats;
    assert.deepEqual([stats.eventsSent, stats.eventsDuplicates, stats.eventsRejected], [1200, 0, 0]);
    // The same event ids again: accepted as duplicates, stored once.
    for (const [key, unit, id] of ids.slice(0, 25)) client.track(key, unit, { converted: 1 }, { eventId: id });
    assert.equal(await client.flush(30_000), true);
    stats = client.stats;
    assert.deepEqual([stats.eventsSent, stats.eventsDuplicates], [1225, 25]);
    assert.deepEqual(logger.lines, []);
  });
});

describe("the README's TypeScript example", { skip: live.skip }, () => {
  test("runs against a live sharpen as written", async () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## For production services in TypeScript"));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code, "the section has a js example");
    assert.equal(code.trim().split("\n").length, 5, code);
    const report = new Report("readme");
    // Run as a user's module would: "@sharpen/client" resolves to this package.
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", code], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, SHARPEN_API_KEY: live.clientKey },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.match(output, /experiment: 'fraud-v7'/);
    assert.match(output, /reason: 'assigned'/);
    const client = new Client(live.url, live.clientKey, { pollIntervalMs: null });
    await client.ready();
    const served = evaluate(client.config.experiments.get("fraud-v7"), "user-42", { country: "US" });
    await client.close();
    report.exposed("fraud-v7");
    report.tracked("fraud-v7", "user-42", served.variant);
    report.write();
  });
});

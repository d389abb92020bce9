// The SDK reproduces the language-neutral golden vectors in tests/spec/hashing.json,
// the same file the Python SDK and the service are tested against.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  BUCKETS,
  ConfigError,
  HOLDOUT_SALT,
  REASONS,
  HOLDOUT_SEED,
  LAYER_SEED,
  SUPPORTED_HASH_VERSIONS,
  TRAFFIC_SEED,
  UnsupportedHashVersionError,
  VARIANT_SEED,
  bucket,
  canonical,
  evaluate,
  murmur3,
  parseConfig,
  parseExperiment,
  threshold,
  unitHash,
  weightBoundaries,
} from "@sharpen/client";

const RAW = readFileSync(new URL("../../tests/spec/hashing.json", import.meta.url), "utf8");
const SPEC = JSON.parse(RAW);

// JSON numbers beyond 2^53 lose digits in JavaScript; a JavaScript caller holds such
// an integer as a bigint, so the cases' integer literals are read as bigints too.
const BIG_LITERALS = new Map();
for (const match of RAW.matchAll(/"value":\s*(-?\d+)(?=\s*[,}])/g)) {
  const value = Number(match[1]);
  if (!Number.isSafeInteger(value)) BIG_LITERALS.set(value, BigInt(match[1]));
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const name = (c) => String(c.name ?? c.note ?? c.why ?? JSON.stringify(c.unit_id ?? c.value ?? c.weights ?? c.share));

test("constants match the spec", () => {
  assert.ok(SUPPORTED_HASH_VERSIONS.has(SPEC.hash_version));
  assert.equal(BUCKETS, SPEC.buckets);
  assert.equal(HOLDOUT_SALT, SPEC.holdout_salt);
  assert.deepEqual(
    { traffic: TRAFFIC_SEED, variant: VARIANT_SEED, layer: LAYER_SEED, holdout: HOLDOUT_SEED },
    SPEC.seeds,
  );
});

describe("hash cases", () => {
  for (const c of SPEC.hash_cases) {
    test(name(c), () => {
      const key = new TextEncoder().encode(`${c.salt}:${c.unit_id}`);
      assert.equal(hex(key), c.key_utf8_hex, "UTF-8 bytes of the key");
      assert.equal(murmur3(Buffer.from(c.key_utf8_hex, "hex"), c.seed), c.hash);
      assert.equal(unitHash(c.salt, c.unit_id, { seed: c.seed, version: c.version }), c.hash);
      assert.equal(bucket(c.salt, c.unit_id, { seed: c.seed, version: c.version }), c.bucket);
    });
  }
});

test("hash cases cover the awkward inputs", () => {
  const units = SPEC.hash_cases.map((c) => c.unit_id);
  assert.ok(units.includes(""));
  assert.ok(units.some((u) => /[^\x00-\x7f]/.test(u)), "non-ASCII");
  assert.ok(units.some((u) => [...u].some((ch) => ch.codePointAt(0) > 0xffff)), "astral (emoji)");
  assert.ok(units.some((u) => /[\ud800-\udfff]/.test(u.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ""))), "lone surrogate");
  assert.deepEqual(new Set(units.map((u) => new TextEncoder().encode(u).length % 4)), new Set([0, 1, 2, 3]));
});

describe("range cases", () => {
  for (const c of SPEC.range_cases) {
    test(JSON.stringify(c.weights), () => {
      const bounds = weightBoundaries(c.weights);
      assert.deepEqual(
        bounds.map((end, i) => [i === 0 ? 0 : bounds[i - 1], end]),
        c.ranges,
      );
    });
  }
});

describe("threshold cases", () => {
  for (const c of SPEC.threshold_cases) {
    test(String(c.share), () => assert.equal(threshold(c.share), c.threshold));
  }
});

describe("canonical cases", () => {
  for (const c of SPEC.canonical_cases) {
    const value = BIG_LITERALS.get(c.value) ?? c.value;
    test(`${typeof value} ${JSON.stringify(c.value)}`, () => assert.equal(canonical(value), c.canonical));
  }
});

test("canonical numbers read like Python's", () => {
  assert.equal(canonical(1e-5), "1e-05");
  assert.equal(canonical(-2.5e-7), "-2.5e-07");
  assert.equal(canonical(0.0001), "0.0001");
  assert.equal(canonical(1.5e22), "1.5e+22");
  assert.equal(canonical(2 ** 60), "1152921504606846976");
  assert.equal(canonical(Number.NaN), "nan");
  assert.equal(canonical(-Infinity), "-inf");
  assert.equal(canonical(undefined), null);
});

describe("evaluation cases", () => {
  for (const c of SPEC.evaluation_cases) {
    test(name(c), () => {
      const experiment = parseExperiment(c.experiment);
      const result = evaluate(experiment, c.unit_id, c.attributes);
      assert.equal(result.experiment, c.experiment.key);
      assert.equal(result.variant, c.variant);
      assert.equal(result.reason, c.reason);
      assert.equal(result.inExperiment, c.in_experiment);
      assert.deepEqual(result.payload, c.payload);
      const draws = {
        traffic: [experiment.salt, TRAFFIC_SEED],
        variant: [experiment.salt, VARIANT_SEED],
        layer: [experiment.layer, LAYER_SEED],
        holdout: [HOLDOUT_SALT, HOLDOUT_SEED],
      };
      for (const [draw, value] of Object.entries(c.buckets ?? {})) {
        const [salt, seed] = draws[draw];
        assert.equal(bucket(salt, c.unit_id, { seed }), value, draw);
      }
    });
  }
});

test("evaluation cases cover every reason", () => {
  const reasons = new Set(SPEC.evaluation_cases.map((c) => c.reason));
  // Every reason evaluation can give: all but those of a missing experiment or config, and
  // the client's own overrides.
  const notEvaluated = new Set(["unknown_experiment", "fallback", "override"]);
  for (const reason of [...REASONS].filter((r) => !notEvaluated.has(r))) {
    assert.ok(reasons.has(reason), reason);
  }
});

describe("invalid experiments", () => {
  for (const c of SPEC.invalid_experiments) {
    test(name(c), () => {
      const expected = c.error === "unsupported_hash_version" ? UnsupportedHashVersionError : ConfigError;
      assert.throws(() => parseExperiment(c.experiment), expected);
      // Inside a whole document the entry is skipped, not fatal.
      const config = parseConfig({ experiments: { [c.experiment.key]: c.experiment } });
      assert.equal(config.experiments.size, 0);
      assert.ok(config.skipped.has(c.experiment.key));
    });
  }
});

test("hashing a unit after a fixed prefix equals hashing the joined key", async () => {
  // The assign path never builds `${salt}:${unit}`: it continues the prefix's hash state.
  const { PrefixHasher, hashKey: joined } = await import("../dist/hashing.js");
  const prefixes = ["", ":", "a:", "ab:", "abc:", "fraud-v7:", "sharpen-holdout:", "ünï:", "日本:"];
  const units = ["", "a", "ab", "abc", "abcd", "abcde", "user-12345", "ü", "aü", "abü", "🎉", "a\ud800b", "x".repeat(37)];
  for (const prefix of prefixes) {
    for (const seed of [0, TRAFFIC_SEED, VARIANT_SEED, 0xffffffff]) {
      const hasher = new PrefixHasher(prefix, seed);
      for (const unit of units) {
        const expected = murmur3(new TextEncoder().encode(prefix + unit), seed);
        assert.equal(joined(prefix + unit, seed), expected, `hashKey ${JSON.stringify(prefix + unit)}`);
        assert.equal(hasher.hash(unit), expected, `${JSON.stringify(prefix)} + ${JSON.stringify(unit)}`);
      }
    }
  }
});

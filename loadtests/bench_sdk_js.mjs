// Local assign() cost of the TypeScript SDK against GrowthBook's JavaScript SDK, in the same run.
//
// Both evaluate an equivalent 50/50 experiment on a hash of the unit id, with exposure
// tracking on: sharpen queues an exposure record for its uploader, GrowthBook calls a
// tracking callback that appends to an array. Every call uses a new unit id, so neither
// side's exposure de-duplication ever hits (the worst case for both); one sharpen row
// repeats the units (the exposure is remembered, not queued again).
//
// Costs are process CPU time per call (process.cpuUsage: every thread of this process),
// after warm-up rounds that let the JIT settle; short rounds alternate between the SDKs
// so that what disturbance remains hits both alike; the best round of each is reported,
// with the median beside it. Run by `python -m loadtests` (bench_sdk_js.py) as
//
//     node --expose-gc loadtests/bench_sdk_js.mjs [--calls 100000] [--rounds 15] [--json]
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

const SDK_JS = new URL("../sdk-js/", import.meta.url);
const sharpen = await import(new URL("dist/index.js", SDK_JS).href);
const requireFromSdk = createRequire(new URL("package.json", SDK_JS));
const { GrowthBookClient } = requireFromSdk("@growthbook/growthbook");
const growthbookVersion = requireFromSdk("@growthbook/growthbook/package.json").version;

const EXPERIMENT = "fraud-v7";
const CONFIG = {
  etag: '"bench"',
  hash_version: 1,
  experiments: {
    [EXPERIMENT]: {
      key: EXPERIMENT,
      version: 1,
      status: "running",
      salt: EXPERIMENT,
      hash_version: 1,
      variants: [
        { key: "baseline", weight: 50, payload: { model: "fraud-v6" } },
        { key: "candidate", weight: 50, payload: { model: "fraud-v7" } },
      ],
      baseline: "baseline",
      shipped_variant: null,
      traffic: 1.0,
      targeting: {},
      layer: null,
      layer_range: null,
      holdout: 0.0,
    },
  },
};
const GROWTHBOOK_FEATURES = {
  "fraud-model": {
    defaultValue: "fraud-v6",
    rules: [
      { key: EXPERIMENT, variations: ["fraud-v6", "fraud-v7"], weights: [0.5, 0.5], coverage: 1, hashAttribute: "id" },
    ],
  },
};

const { values: args } = parseArgs({
  options: {
    calls: { type: "string", default: "100000" },
    rounds: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const calls = Number(args.calls);
const rounds = Number(args.rounds);
const warmup = Number(args.warmup);

/** The service, as far as a loaded client needs it: the config, and 202 for uploads. */
async function service(url) {
  if (new URL(url).pathname === "/v1/config") {
    return new Response(JSON.stringify(CONFIG), { status: 200, headers: { ETag: CONFIG.etag } });
  }
  return new Response('{"accepted":0}', { status: 202 });
}

function cpuNs(loop, items) {
  globalThis.gc?.();
  const start = process.cpuUsage();
  loop(items);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / items.length;
}

async function cpuNsAsync(loop, items) {
  globalThis.gc?.();
  const start = process.cpuUsage();
  await loop(items);
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / items.length;
}

async function benchSharpen(ids) {
  const client = new sharpen.Client("http://sharpen.bench", "bench-key", {
    fetch: service,
    pollIntervalMs: null,
    flushIntervalMs: 3_600_000,
    maxBatch: ids.length * 2 + 1,
    maxBuffer: ids.length * 2 + 1_000,
    exposureCache: ids.length * 2 + 1_000,
  });
  if (!(await client.ready())) throw new Error("the client did not load its config");
  const loop = (items) => {
    for (let i = 0; i < items.length; i++) client.assignSync(EXPERIMENT, items[i]);
  };
  const ns = cpuNs(loop, ids);
  const repeatNs = cpuNs(loop, ids); // the same units: exposures are not queued again
  const fresh = ids.map((id) => `${id}-p`);
  const promiseNs = await cpuNsAsync(async (items) => {
    for (let i = 0; i < items.length; i++) await client.assign(EXPERIMENT, items[i]);
  }, fresh);
  let candidate = 0;
  for (const id of ids.slice(0, 10_000)) candidate += client.assignSync(EXPERIMENT, id).variant === "candidate";
  const queued = client.stats.exposuresPending;
  await client.close(60_000);
  if (queued !== ids.length * 2 || client.stats.exposuresSent !== queued) {
    throw new Error(`expected ${ids.length * 2} exposures queued and sent, got ${queued} / ${client.stats.exposuresSent}`);
  }
  return { ns, repeatNs, promiseNs, share: candidate / Math.min(ids.length, 10_000) };
}

function benchGrowthbook(ids, how) {
  const viewed = [];
  const gb = new GrowthBookClient({ trackingCallback: (experiment, result) => viewed.push([experiment.key, result.variationId]) });
  gb.initSync({ payload: { features: GROWTHBOOK_FEATURES } });
  const users = ids.map((id) => ({ attributes: { id } })); // built outside the timed loop
  const inline = { key: EXPERIMENT, variations: ["fraud-v6", "fraud-v7"], weights: [0.5, 0.5] };
  const loop =
    how === "feature"
      ? (items) => {
          for (let i = 0; i < items.length; i++) gb.evalFeature("fraud-model", items[i]);
        }
      : (items) => {
          for (let i = 0; i < items.length; i++) gb.runInlineExperiment(inline, items[i]);
        };
  const ns = cpuNs(loop, users);
  if (viewed.length !== ids.length) throw new Error(`GrowthBook tracked ${viewed.length} of ${ids.length}`);
  const sample = viewed.slice(0, 10_000);
  gb.destroy();
  return { ns, share: sample.filter(([, v]) => v === 1).length / sample.length };
}

const results = { sharpen: [], sharpen_repeat: [], sharpen_promise: [], growthbook_feature: [], growthbook_inline: [] };
const shares = {};
for (let round = -warmup; round < rounds; round++) {
  const ids = Array.from({ length: calls }, (_, i) => `user-${round}-${i}`);
  const ours = await benchSharpen(ids);
  const feature = benchGrowthbook(ids, "feature");
  const inline = benchGrowthbook(ids, "inline");
  if (round < 0) continue; // warm-up: let the JIT settle
  results.sharpen.push(ours.ns);
  results.sharpen_repeat.push(ours.repeatNs);
  results.sharpen_promise.push(ours.promiseNs);
  results.growthbook_feature.push(feature.ns);
  results.growthbook_inline.push(inline.ns);
  Object.assign(shares, { sharpen: ours.share, growthbook_feature: feature.share, growthbook_inline: inline.share });
}

const round1 = (x) => Math.round(x * 10) / 10;
const best = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.min(...v)]));
const median = Object.fromEntries(
  Object.entries(results).map(([k, v]) => [k, round1([...v].sort((a, b) => a - b)[Math.floor(v.length / 2)])]),
);
const reference = Math.min(best.growthbook_feature, best.growthbook_inline);
const summary = {
  sharpen_version: sharpen.VERSION,
  growthbook_version: growthbookVersion,
  node_version: process.version,
  calls_per_round: calls,
  rounds,
  ns_per_call: Object.fromEntries(Object.entries(best).map(([k, v]) => [k, round1(v)])),
  median_ns_per_call: median,
  candidate_share: Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
  ratio: round1(reference / best.sharpen),
};

if (args.json) {
  console.log(JSON.stringify(summary, null, 2));
} else {
  console.log(
    `@sharpen/client ${summary.sharpen_version} vs @growthbook/growthbook ${growthbookVersion} on node ${process.version}: ` +
      `best of ${rounds} rounds (${calls.toLocaleString("en")} calls each), exposure tracking on, process CPU time`,
  );
  const labels = {
    sharpen: "sharpen assignSync (exposure queued)",
    sharpen_repeat: "sharpen assignSync (unit already exposed)",
    sharpen_promise: "sharpen await assign() (exposure queued)",
    growthbook_feature: "growthbook evalFeature (experiment rule)",
    growthbook_inline: "growthbook runInlineExperiment",
  };
  for (const [key, label] of Object.entries(labels)) {
    console.log(`  ${label.padEnd(44)} ${best[key].toFixed(0).padStart(7)} ns/call   (median ${median[key].toFixed(0)})`);
  }
  console.log(`  ratio (fastest growthbook / sharpen assignSync): ${summary.ratio.toFixed(1)}x`);
}

// An in-memory stand-in for the service's client endpoints, behind the client's `fetch`
// option (the JavaScript twin of tests/sdk/fakes.py). The live tests use a real sharpen.
import { performance } from "node:perf_hooks";

export const API_KEY = "test-client-key";
export const BASE_URL = "http://sharpen.test";

/** A running 50/50 experiment entry in the config document's shape. */
export function entry(key = "fraud-v7", overrides = {}) {
  return {
    key,
    version: 2,
    status: "running",
    salt: key,
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
    ...overrides,
  };
}

export function documentOf(entries, etag = '"v1"') {
  return { etag, hash_version: 1, experiments: Object.fromEntries(entries.map((e) => [e.key, e])) };
}

const json = (status, body, headers = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });

/**
 * Serves /v1/config with ETags and records every request.
 *
 * `responders[path]` may return a Response (or a promise of one), or undefined for the
 * default behaviour, or throw; `fail = true` makes every call a network error.
 */
export class FakeService {
  constructor(config = documentOf([entry()])) {
    this.config = config;
    this.requests = [];
    this.responders = {};
    this.fail = false;
    this.fetch = this.fetch.bind(this);
  }

  async fetch(url, init) {
    const path = new URL(url).pathname;
    const request = {
      method: init.method,
      path,
      headers: new Headers(init.headers),
      body: init.body ?? null,
      signal: init.signal,
      at: performance.now(),
    };
    this.requests.push(request);
    if (this.fail) throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
    const responder = this.responders[path];
    if (responder !== undefined) {
      const response = await responder(request);
      if (response !== undefined) return response;
    }
    if (path === "/v1/config") {
      const etag = this.config.etag ?? '"v1"';
      if (request.headers.get("If-None-Match") === etag) return new Response(null, { status: 304, headers: { ETag: etag } });
      return json(200, this.config, { ETag: etag });
    }
    if (path === "/v1/events") {
      return json(202, { accepted: JSON.parse(request.body).events.length, duplicates: 0 });
    }
    if (path === "/v1/exposures") {
      return json(202, { accepted: JSON.parse(request.body).exposures.length });
    }
    return json(404, { error: { code: "not_found", message: path } });
  }

  posted(path) {
    return this.requests.filter((r) => r.method === "POST" && r.path === path);
  }

  gets(path = "/v1/config") {
    return this.requests.filter((r) => r.method === "GET" && r.path === path);
  }

  events() {
    return this.posted("/v1/events").flatMap((r) => JSON.parse(r.body).events);
  }

  exposures() {
    return this.posted("/v1/exposures").flatMap((r) => JSON.parse(r.body).exposures);
  }
}

export { json };

/** A fetch answer that never comes, unless the request is aborted (as a timeout does). */
export function hang(request) {
  return new Promise((_, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason), { once: true });
  });
}

/** Collects what the client logs, instead of printing it. */
export function recordingLogger() {
  const lines = [];
  return { lines, warn: (m) => lines.push(`warn: ${m}`), error: (m) => lines.push(`error: ${m}`) };
}

/**
 * Poll `probe` until it returns something truthy and return that; fail loudly with what it
 * last returned after `timeoutMs` (a guard against hangs, not a speed limit).
 */
export async function waitFor(probe, { what, timeoutMs = 10_000, intervalMs = 5 }) {
  const deadline = performance.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (performance.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// What the live tests share: the service under test (from the environment the pytest
// driver tests/sdk_js/test_node_sdk.py sets), and the report of what they sent, which
// that driver checks against the service's own records.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const env = process.env;

/** The live service, or `skip`: why the live tests cannot run. */
export const live = env.SHARPEN_URL
  ? {
      skip: false,
      url: env.SHARPEN_URL,
      clientKey: env.SHARPEN_CLIENT_KEY,
      adminKey: env.SHARPEN_ADMIN_KEY,
      setup: JSON.parse(readFileSync(new URL("./live-experiments.json", import.meta.url), "utf8")),
    }
  : { skip: "no live sharpen: run through tests/sdk_js/test_node_sdk.py (make test), which sets SHARPEN_URL" };

/** The Python SDK's answers for every unit, written by the pytest driver. */
export function pythonAnswers() {
  return JSON.parse(readFileSync(env.SHARPEN_JS_ANSWERS, "utf8"));
}

/** Per experiment: how many exposures, and which (unit, variant) events, a test sent. */
export class Report {
  constructor(name) {
    this.name = name;
    this.experiments = {};
  }

  of(key) {
    return (this.experiments[key] ??= { exposures: 0, events: [] });
  }

  exposed(key, count = 1) {
    this.of(key).exposures += count;
  }

  tracked(key, unit, variant) {
    this.of(key).events.push([unit, variant]);
  }

  write() {
    writeFileSync(join(env.SHARPEN_JS_REPORTS, `${this.name}.json`), JSON.stringify(this.experiments));
  }
}

/** An admin call to the live service (lifecycle actions). */
export async function admin(method, path, body) {
  const response = await fetch(live.url + path, {
    method,
    headers: { Authorization: `Bearer ${live.adminKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

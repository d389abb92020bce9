// Compiled (not run) by `npm run build`: the published type declarations serve a
// TypeScript caller, through the package's own export map.
import { OpenFeature } from "@openfeature/server-sdk";
import { type Assignment, Client, type ClientStats, InvalidEventError, type Reason } from "@sharpen/client";
import { SharpenProvider } from "@sharpen/client/openfeature";

export async function quickstart(userId: string): Promise<string> {
  const client = new Client("https://sharpen.internal", "api-key", { mode: "local", timeoutMs: 500 });
  const assignment: Assignment = await client.assign("fraud-v7", userId, { country: "US" }, { default: "baseline" });
  const model = String(assignment.payload["model"] ?? "fraud-v6");
  const reason: Reason | string = client.assignSync("fraud-v7", 42).reason;
  const eventId: string = client.track("fraud-v7", userId, { flagged: 1, true_positive: false }, { timestamp: new Date() });
  const stats: ClientStats = client.stats;
  await client.close();
  return `${model} ${reason} ${eventId} ${stats.eventsPending}`;
}

export async function openFeature(client: Client): Promise<number> {
  await OpenFeature.setProviderAndWait(new SharpenProvider(client));
  const flags = OpenFeature.getClient();
  const threshold = await flags.getNumberValue("fraud-threshold", 0.5, { targetingKey: "user-1", country: "US" });
  flags.track("flagged", { targetingKey: "user-1" }, { value: 1 });
  return threshold;
}

export function refusedAtCompileTime(client: Client): void {
  // @ts-expect-error values are numbers (or booleans)
  client.track("fraud-v7", "user-1", { flagged: "yes" });
  // @ts-expect-error the mode is local or remote
  new Client("https://sharpen.internal", "api-key", { mode: "edge" });
  void InvalidEventError;
}

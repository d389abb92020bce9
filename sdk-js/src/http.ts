/** The client's HTTP calls: fetch with the API key, a timeout, and errors that say what failed. */

import { TransportError } from "./errors.js";

/** The `fetch` the client calls (the global one by default; tests pass their own). */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/** An answer, its body read whole. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** Parse an answer's body as JSON, null when it is not JSON. */
export function jsonOf(response: HttpResponse): unknown {
  try {
    return JSON.parse(response.text);
  } catch {
    return null;
  }
}

export class Http {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;

  constructor(
    baseUrl: string,
    apiKey: string,
    userAgent: string,
    private readonly timeoutMs: number,
    private readonly fetchImpl: Fetch,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = { Authorization: `Bearer ${apiKey}`, "User-Agent": userAgent };
  }

  /** One request, answered within the timeout (body included) or a TransportError. */
  async request(
    method: "GET" | "POST",
    path: string,
    options: { body?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResponse> {
    const headers = { ...this.headers, ...options.headers };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    // A timer of our own rather than AbortSignal.timeout(), whose unref'd timer would
    // let the process exit under a caller awaiting the answer.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new TransportError(`${method} ${path} timed out after ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    try {
      const response = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers,
        body: options.body,
        signal: controller.signal,
      });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      throw new TransportError(`${method} ${path} failed: ${describe(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}: ${error.message}${cause}`;
}

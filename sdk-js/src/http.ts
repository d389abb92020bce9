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

/** An answer whose body is still arriving: its status, its headers, its text as it comes. */
export interface StreamResponse {
  readonly status: number;
  header(name: string): string | null;
  readonly chunks: AsyncIterable<string>;
}

export class Http {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;

  /**
   * `nodeStreams`: open long-lived streams with Node's own HTTP client, whose socket
   * can be unref'd (an open stream then does not keep the process alive); else `fetchImpl`.
   */
  constructor(
    baseUrl: string,
    apiKey: string,
    userAgent: string,
    private readonly timeoutMs: number,
    private readonly fetchImpl: Fetch,
    private readonly nodeStreams = false,
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

  /**
   * Open a long-lived `GET` (the config stream): resolves once the headers arrive (within
   * the timeout, else a TransportError); abort `signal` to end it.
   */
  async stream(path: string, extra: Record<string, string>, signal: AbortSignal): Promise<StreamResponse> {
    const headers = { ...this.headers, ...extra };
    const controller = new AbortController();
    const end = (): void => controller.abort(signal.reason);
    signal.addEventListener("abort", end, { once: true });
    const timer = setTimeout(
      () => controller.abort(new TransportError(`GET ${path} timed out after ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    try {
      if (this.nodeStreams) return await nodeGet(new URL(this.baseUrl + path), headers, controller.signal);
      const response = await this.fetchImpl(this.baseUrl + path, { method: "GET", headers, signal: controller.signal });
      return { status: response.status, header: (name) => response.headers.get(name), chunks: textOf(response.body) };
    } catch (error) {
      throw new TransportError(`GET ${path} failed: ${describe(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

async function* textOf(body: ReadableStream<Uint8Array> | null): AsyncIterable<string> {
  if (body === null) return;
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
}

async function nodeGet(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<StreamResponse> {
  const { request } = url.protocol === "https:" ? await import("node:https") : await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", headers, signal }, (res) => {
      res.setEncoding("utf8");
      resolve({
        status: res.statusCode ?? 0,
        header: (name) => {
          const value = res.headers[name.toLowerCase()];
          return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
        },
        chunks: res as AsyncIterable<string>,
      });
    });
    req.on("socket", (socket) => socket.unref());
    req.on("error", reject);
    req.end();
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.name}: ${error.message}${cause}`;
}

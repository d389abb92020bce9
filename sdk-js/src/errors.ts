/**
 * Errors thrown by the sharpen client. Every one derives from SharpenError:
 *
 *     SharpenError
 *     ├── ConfigError                   the config document cannot be used
 *     │   └── UnsupportedHashVersionError   a hash version this SDK does not know
 *     ├── TransportError                the request never got an HTTP answer
 *     ├── HTTPStatusError               the service answered with an error status
 *     ├── InvalidEventError             track() was given values it cannot send
 *     └── ClientClosedError             the client was used after close()
 *
 * `assign()` never throws nor rejects: it falls back instead. These surface from
 * explicit calls such as `refresh()` and `track()`, and from the pure functions
 * (`parseConfig`, `parseExperiment`).
 */

/** Root of every error thrown by the sharpen SDK. */
export class SharpenError extends Error {
  override name = "SharpenError";
}

/** The config document (or one experiment entry, named by `key`) is malformed. */
export class ConfigError extends SharpenError {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly key: string | null = null,
  ) {
    super(message);
  }
}

/** The config asks for a hash version this SDK does not implement. */
export class UnsupportedHashVersionError extends ConfigError {
  override name = "UnsupportedHashVersionError";
  constructor(
    readonly version: unknown,
    key: string | null = null,
  ) {
    const where = key !== null ? `experiment ${JSON.stringify(key)}: ` : "";
    super(
      `${where}unsupported hash_version ${JSON.stringify(version)}; this SDK knows 1 (upgrade @sharpen/client)`,
      key,
    );
  }
}

/** The request failed before an HTTP response arrived (network, timeout). */
export class TransportError extends SharpenError {
  override name = "TransportError";
}

/** The service answered with a status the client cannot accept. */
export class HTTPStatusError extends SharpenError {
  override name = "HTTPStatusError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** `track()` got an argument that the service would reject; `field` names it. */
export class InvalidEventError extends SharpenError {
  override name = "InvalidEventError";
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** An operation that needs the network was called after `close()`. */
export class ClientClosedError extends SharpenError {
  override name = "ClientClosedError";
}

/** Where the client reports what it could not do (it never throws on the caller's path). */

/** A sink for the client's warnings and errors; `console` fits. */
export interface Logger {
  warn(message: string): void;
  error(message: string): void;
}

/** The default: warnings and errors on stderr, through `console`. */
export const consoleLogger: Logger = {
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
};

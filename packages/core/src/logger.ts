/**
 * Where the server and the gateway write what they do; any object with these three methods
 * (console, or pino through `fieldsFirstLogger`) fits. Library code never prints by itself.
 *
 * Every line about a command carries `commandId`, `gatewayId` and `traceId` in `data`
 * (docs/operations.md, "Tracing and logs"), so one query's lines can be found by any of them.
 */
export interface Logger {
  info(message: string, data?: object): void;
  warn(message: string, data?: object): void;
  error(message: string, data?: object): void;
}

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};

/**
 * A logger that adds `fields` to the data of every line, as pino's `child` does: the lines about
 * one command name it without every call site repeating its IDs. A line's own data wins a clash.
 */
export function withFields(logger: Logger, fields: object): Logger {
  return {
    info: (message, data) => logger.info(message, { ...fields, ...data }),
    warn: (message, data) => logger.warn(message, { ...fields, ...data }),
    error: (message, data) => logger.error(message, { ...fields, ...data }),
  };
}

/** A structured logger that takes the fields first and the message second: pino, bunyan. */
export interface FieldsFirstLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Adapts pino (or any fields-first logger) to `Logger`. Handing pino over as it is would lose the
 * data: its `(message, ...args)` form reads the object as a format argument and drops it.
 */
export function fieldsFirstLogger(logger: FieldsFirstLogger): Logger {
  return {
    info: (message, data) => logger.info(data ?? {}, message),
    warn: (message, data) => logger.warn(data ?? {}, message),
    error: (message, data) => logger.error(data ?? {}, message),
  };
}

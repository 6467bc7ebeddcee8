/**
 * Where the server and the gateway write what they do; any object with these three methods
 * (pino, console, …) fits. Library code never prints by itself.
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

import type { Logger } from '@backhaul/core';

/** One JSON line per message on stderr: what the *-process.ts scripts log with LOG=1. */
export const stderrLogger: Logger = {
  info: (message, fields) => console.error(JSON.stringify({ level: 'info', message, ...fields })),
  warn: (message, fields) => console.error(JSON.stringify({ level: 'warn', message, ...fields })),
  error: (message, fields) => console.error(JSON.stringify({ level: 'error', message, ...fields })),
};

/**
 * A Backhaul gateway as a process of its own, for tests that SIGKILL it mid-upload and start it
 * again. Run from the repository root:
 *
 *   SERVER_URL=http://127.0.0.1:8123 TOKEN=… SQLITE_PATH=./orders.sqlite node --import tsx test/support/gateway-process.ts
 *
 * It imports the packages from their TypeScript sources (see server-process.ts), serves the
 * SQLite file at SQLITE_PATH with zstd chunks and fast reconnects, and prints one JSON line on
 * stdout once the server's hello arrived: {"ready":true,"pid":…}.
 *
 * Environment: SERVER_URL, TOKEN, SQLITE_PATH (required), CHUNKS_IN_FLIGHT (default: the
 * gateway's), LOG=1 to log to stderr.
 */
import { createZstdCodec } from '@backhaul/codec-zstd';
import { createGateway } from '@backhaul/gateway-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { stderrLogger } from './stderr-logger.js';

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`gateway-process: ${name} is required`);
  return value;
};

async function main(): Promise<void> {
  const chunksInFlight = process.env.CHUNKS_IN_FLIGHT;
  const dataSource = createSqliteDataSource({ filename: required('SQLITE_PATH') });
  const gateway = createGateway({
    serverUrl: required('SERVER_URL'),
    token: required('TOKEN'),
    dataSource,
    codecs: [createZstdCodec()],
    reconnect: { baseDelayMs: 50, maxDelayMs: 200 },
    ...(chunksInFlight ? { chunksInFlight: Number(chunksInFlight) } : {}),
    ...(process.env.LOG === '1' ? { logger: stderrLogger } : {}),
  });
  await gateway.start();

  const shutdown = async () => {
    await gateway.stop();
    await dataSource.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());

  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});

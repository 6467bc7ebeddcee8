import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { loadServerConfig, type ServerConfig } from './config.js';
import { isMain } from './is-main.js';
import { codecFor, jsonLogger, startOrExit, storageFor, storeFor } from './wiring.js';

export interface ReferenceServer {
  server: BackhaulServer;
  url: string;
  /** Stops the sweeper, closes the server, then the shared parts it was given (store, bus, row log). */
  close(): Promise<void>;
}

/** The reference server: the configuration object turned into a running Backhaul server. */
export async function startReferenceServer(config: ServerConfig): Promise<ReferenceServer> {
  const logger = jsonLogger('server', config.logLevel);
  const storage = storageFor(config);
  const store = storeFor(config);
  await store.prepare(logger);
  let server: BackhaulServer | undefined;
  try {
    await storage.prepare(logger);
    server = createBackhaulServer({
      storage: storage.storage,
      ...store.serverOptions,
      codecs: config.codecs.map(codecFor),
      gateways: config.gateways,
      callerTokens: config.callerTokens,
      adminTokens: config.adminTokens,
      downloadSecret: config.downloadSecret,
      downloadTtlSeconds: config.downloadTtlSeconds,
      idempotencyKeyRetentionMs: config.idempotencyKeyRetentionSeconds * 1000,
      admission: config.admission,
      publicUrl: config.publicUrl,
      metrics: { token: config.metricsToken },
      logger,
    });
    const { url } = await server.listen(config.port, config.host);
    const stopSweeper = storage.startSweeper(logger);
    logger.info('using', { store: store.description, storage: storage.description });
    const running = server;
    return {
      server: running,
      url,
      async close() {
        stopSweeper();
        await running.close();
        // The server closes only a store it created itself.
        await store.close();
      },
    };
  } catch (error) {
    await server?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
}

/** How long SIGTERM lets work in flight finish before the server closes. */
const DRAIN_TIMEOUT_MS = 30_000;

if (isMain(import.meta.url)) {
  const reference = await startOrExit('server', () => startReferenceServer(loadServerConfig()));
  // One machine-readable line on stdout, so a supervisor (or the demo) knows where we listen.
  process.stdout.write(`${JSON.stringify({ ready: 'server', url: reference.url })}\n`);
  const shutdown = async () => {
    // A planned stop hands gateways and callers to the other instances first (docs/cluster.md).
    await reference.server.drain({ timeoutMs: DRAIN_TIMEOUT_MS });
    await reference.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

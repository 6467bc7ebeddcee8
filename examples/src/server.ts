import type { CommandStore } from '@backhaul/core';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { ConfigError, loadServerConfig, type ServerConfig } from './config.js';
import { isMain } from './is-main.js';
import { codecFor, consoleLogger, describeUrl, storageFor, storeFor } from './wiring.js';

export interface ReferenceServer {
  server: BackhaulServer;
  url: string;
  /** Stops the sweeper, closes the server, then the command store it was given. */
  close(): Promise<void>;
}

/** The reference server: the configuration object turned into a running Backhaul server. */
export async function startReferenceServer(config: ServerConfig): Promise<ReferenceServer> {
  const logger = consoleLogger('server');
  const storage = storageFor(config);
  await storage.prepare(logger);
  const store: CommandStore | undefined = storeFor(config);
  const server = createBackhaulServer({
    storage: storage.storage,
    store,
    codecs: config.codecs.map(codecFor),
    gateways: config.gateways,
    callerTokens: config.callerTokens,
    downloadSecret: config.downloadSecret,
    downloadTtlSeconds: config.downloadTtlSeconds,
    publicUrl: config.publicUrl,
    logger,
  });
  let url: string;
  try {
    ({ url } = await server.listen(config.port, config.host));
  } catch (error) {
    await store?.close();
    throw error;
  }
  const stopSweeper = storage.startSweeper(logger);
  logger.info('listening', {
    url,
    store: config.store.kind === 'redis' ? `redis ${describeUrl(config.store.url)}` : 'memory',
    storage: storage.description,
  });
  return {
    server,
    url,
    async close() {
      stopSweeper();
      await server.close();
      // The server closes only a store it created itself.
      await store?.close();
    },
  };
}

if (isMain(import.meta.url)) {
  const reference = await startReferenceServer(loadServerConfig()).catch((error: unknown) => {
    // A configuration mistake is one clear line, not a stack trace.
    const message =
      error instanceof ConfigError
        ? error.message
        : error instanceof Error
          ? (error.stack ?? error.message)
          : String(error);
    process.stderr.write(`server failed to start: ${message}\n`);
    process.exit(1);
  });
  // One machine-readable line on stdout, so a supervisor (or the demo) knows where we listen.
  process.stdout.write(`${JSON.stringify({ ready: 'server', url: reference.url })}\n`);
  const shutdown = async () => {
    await reference.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { loadConfig, type ReferenceConfig } from './config.js';
import { isMain } from './is-main.js';
import { codecFor, consoleLogger } from './wiring.js';

/** The reference server: the configuration object turned into a running Backhaul server. */
export async function startReferenceServer(
  config: ReferenceConfig['server'],
): Promise<{ server: BackhaulServer; url: string; stopSweeper: () => void }> {
  const storage = createFsStorage({
    root: config.storage.root,
    retentionMs: config.downloadTtlSeconds * 1000,
  });
  const server = createBackhaulServer({
    storage,
    codecs: config.codecs.map(codecFor),
    gateways: config.gateways,
    callerTokens: config.callerTokens,
    downloadSecret: config.downloadSecret,
    downloadTtlSeconds: config.downloadTtlSeconds,
    publicUrl: config.publicUrl,
    logger: consoleLogger('server'),
  });
  const { url } = await server.listen(config.port, config.host);
  return { server, url, stopSweeper: storage.startSweeper() };
}

if (isMain(import.meta.url)) {
  const { server, url, stopSweeper } = await startReferenceServer(loadConfig().server);
  // One machine-readable line on stdout, so a supervisor (or the demo) knows where we listen.
  process.stdout.write(`${JSON.stringify({ ready: 'server', url })}\n`);
  const shutdown = async () => {
    stopSweeper();
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

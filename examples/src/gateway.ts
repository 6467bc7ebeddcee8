import { createGateway, createSqliteDataSource, type Gateway } from '@backhaul/gateway-node';
import { loadConfig, type ReferenceConfig } from './config.js';
import { isMain } from './is-main.js';
import { codecFor, consoleLogger } from './wiring.js';

/** The reference gateway: dials out to the server and answers its commands from SQLite. */
export async function startReferenceGateway(config: ReferenceConfig['gateway']): Promise<Gateway> {
  const gateway = createGateway({
    serverUrl: config.serverUrl,
    token: config.token,
    dataSource: createSqliteDataSource({ filename: config.sqlitePath }),
    codecs: config.codec === 'identity' ? [] : [codecFor(config.codec)],
    preferredCodec: config.codec,
    chunksInFlight: config.chunksInFlight,
    progressIntervalMs: 250,
    logger: consoleLogger('gateway'),
  });
  await gateway.start();
  return gateway;
}

if (isMain(import.meta.url)) {
  const gateway = await startReferenceGateway(loadConfig().gateway);
  process.stdout.write(`${JSON.stringify({ ready: 'gateway' })}\n`);
  const shutdown = async () => {
    await gateway.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

import { createGateway, type Gateway } from '@backhaul/gateway-node';
import { type GatewayConfig, loadGatewayConfig } from './config.js';
import { isMain } from './is-main.js';
import { codecFor, describeUrl, jsonLogger, sourceFor, startOrExit } from './wiring.js';

export interface ReferenceGateway {
  gateway: Gateway;
  /** Stops the gateway, then closes its data source (the gateway does not own it). */
  stop(): Promise<void>;
}

/** The reference gateway: dials out to the server and answers its commands from the configured database. */
export async function startReferenceGateway(config: GatewayConfig): Promise<ReferenceGateway> {
  const logger = jsonLogger('gateway', config.logLevel);
  const dataSource = sourceFor(config);
  const gateway = createGateway({
    serverUrl: config.serverUrl,
    token: config.token,
    dataSource,
    // `auto` samples every 8th chunk with zstd (lz4 when the server lacks it) and sends a chunk
    // uncompressed where compression does not pay (an already compressed Parquet file).
    codecs:
      config.codec === 'identity'
        ? []
        : config.codec === 'auto'
          ? [codecFor('zstd'), codecFor('lz4')]
          : [codecFor(config.codec)],
    preferredCodec: config.codec,
    parquetCompression: config.parquetCompression,
    chunksInFlight: config.chunksInFlight,
    progressIntervalMs: 250,
    status: config.status,
    logger,
  });
  try {
    await gateway.start();
  } catch (error) {
    await dataSource.close();
    throw error;
  }
  const { source } = config;
  logger.info('using', {
    server: config.serverUrl,
    status: gateway.statusUrl,
    source: source.kind === 'sqlite' ? `sqlite ${source.path}` : `${source.kind} ${describeUrl(source.url)}`,
  });
  return {
    gateway,
    async stop() {
      await gateway.stop();
      await dataSource.close();
    },
  };
}

if (isMain(import.meta.url)) {
  const reference = await startOrExit('gateway', () => startReferenceGateway(loadGatewayConfig()));
  process.stdout.write(`${JSON.stringify({ ready: 'gateway' })}\n`);
  const shutdown = async () => {
    await reference.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // A token revoked or removed while running (docs/protocol.md §10.4): the gateway stops, and the
  // process says so with status 1, so a supervisor shows the failure instead of a clean exit.
  reference.gateway.on((event) => {
    const status =
      event.type === 'disconnected' ? (event.error as { status?: number } | undefined)?.status : undefined;
    if (status !== 401 && status !== 403) return;
    process.stderr.write('gateway stopped: the server refused its token (revoked or removed?)\n');
    void reference.stop().finally(() => process.exit(1));
  });
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { Codec, CommandStore, DataSource, DeliveryPolicy, ObjectStorage } from '@backhaul/core';
import { createGateway, type Gateway, type GatewayOptions } from '@backhaul/gateway-node';
import { type BackhaulServer, type BackhaulServerOptions, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';

export const gatewayId = 'gw-test';
export const gatewayToken = 'gateway-token-for-tests';
export const callerToken = 'caller-token-for-tests';

export interface Harness {
  server: BackhaulServer;
  url: string;
  storageRoot: string;
  client: ReturnType<typeof createBackhaulClient>;
  startGateway(overrides?: Partial<GatewayOptions>): Promise<Gateway>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** The gateways' SQLite file; required unless `dataSource` is given. */
  sqlitePath?: string;
  codecs?: Codec[];
  delivery?: Partial<DeliveryPolicy>;
  /** Default: the server's in-memory store. The caller closes it after `close()`. */
  store?: CommandStore;
  /** Default: filesystem storage under `storageRoot`. */
  storage?: ObjectStorage;
  /** Builds each gateway's data source (default: SQLite on `sqlitePath`); closed by `close()`. */
  dataSource?: () => DataSource;
  /** Concurrency limits of the server (default: the design's). */
  admission?: BackhaulServerOptions['admission'];
  /** Gateways the server accepts besides `gatewayId`, e.g. one a test drives by hand. */
  extraGateways?: BackhaulServerOptions['gateways'];
  /** Anything else of the server's configuration (chunk size, heartbeat, stream caps…). */
  server?: Partial<BackhaulServerOptions>;
}

/**
 * A real server on 127.0.0.1 and gateways that dial it. By default filesystem storage in a temp
 * dir, the in-memory store and SQLite; each can be replaced by a production adapter.
 */
export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const { sqlitePath } = options;
  const dataSource =
    options.dataSource ??
    (() => {
      if (sqlitePath === undefined) throw new TypeError('startHarness needs sqlitePath or dataSource');
      return createSqliteDataSource({ filename: sqlitePath });
    });
  const storageRoot = mkdtempSync(join(tmpdir(), 'backhaul-e2e-'));
  const server = createBackhaulServer({
    storage: options.storage ?? createFsStorage({ root: storageRoot }),
    store: options.store,
    codecs: options.codecs ?? [createZstdCodec()],
    gateways: [{ id: gatewayId, token: gatewayToken }, ...(options.extraGateways ?? [])],
    callerTokens: [callerToken],
    delivery: options.delivery,
    admission: options.admission,
    sweepIntervalMs: 50,
    ...options.server,
  });
  const { url } = await server.listen(0, '127.0.0.1');
  const gateways: Gateway[] = [];
  const dataSources: DataSource[] = [];
  return {
    server,
    url,
    storageRoot,
    client: createBackhaulClient({ url, token: callerToken }),
    async startGateway(overrides = {}) {
      let source = overrides.dataSource;
      if (source === undefined) {
        source = dataSource();
        dataSources.push(source);
      }
      const gateway = createGateway({
        serverUrl: url,
        token: gatewayToken,
        dataSource: source,
        codecs: [createZstdCodec()],
        ...overrides,
      });
      gateways.push(gateway);
      await gateway.start();
      return gateway;
    },
    async close() {
      await Promise.all(gateways.map((g) => g.stop()));
      await server.close();
      await Promise.all(dataSources.map((source) => source.close()));
      rmSync(storageRoot, { recursive: true, force: true });
    },
  };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { Codec, DeliveryPolicy } from '@backhaul/core';
import {
  createGateway,
  createSqliteDataSource,
  type Gateway,
  type GatewayOptions,
} from '@backhaul/gateway-node';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
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

/** A real server on 127.0.0.1 with filesystem storage in a temp dir, and gateways on a SQLite file. */
export async function startHarness(options: {
  sqlitePath: string;
  codecs?: Codec[];
  delivery?: Partial<DeliveryPolicy>;
}): Promise<Harness> {
  const storageRoot = mkdtempSync(join(tmpdir(), 'backhaul-e2e-'));
  const server = createBackhaulServer({
    storage: createFsStorage({ root: storageRoot }),
    codecs: options.codecs ?? [createZstdCodec()],
    gateways: [{ id: gatewayId, token: gatewayToken }],
    callerTokens: [callerToken],
    delivery: options.delivery,
    sweepIntervalMs: 50,
  });
  const { url } = await server.listen(0, '127.0.0.1');
  const gateways: Gateway[] = [];
  return {
    server,
    url,
    storageRoot,
    client: createBackhaulClient({ url, token: callerToken }),
    async startGateway(overrides = {}) {
      const gateway = createGateway({
        serverUrl: url,
        token: gatewayToken,
        dataSource: createSqliteDataSource({ filename: options.sqlitePath }),
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
      rmSync(storageRoot, { recursive: true, force: true });
    },
  };
}

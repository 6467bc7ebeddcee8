import { createBackhaulAdminClient } from '@backhaul/client';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { type BackhaulServer, createBackhaulServer, type FleetView } from '@backhaul/server-node';
import { createPostgresDataSource } from '@backhaul/source-postgres';
import { createFsStorage } from '@backhaul/storage-fs';
import { createRedisCommandStore, type RedisCommandStore } from '@backhaul/store-redis';
import { afterEach, expect, it } from 'vitest';
import { callerToken, gatewayId, gatewayToken, type Harness, startHarness } from '../support/harness.js';
import {
  deleteRedisKeys,
  describeWithServices,
  postgresService,
  postgresUrl,
  redisService,
  redisUrl,
  uniqueName,
} from '../support/production-services.js';
import { until } from '../support/until.js';

const ADMIN_TOKEN = 'admin-token-for-the-shared-fleet-test';
const mute = { id: 'gw-mute', token: 'gateway-token-of-the-mute-gateway' };
const delivery = { ackTimeoutMs: 1000, maxRedeliveries: 0 };

let harness: Harness | undefined;
let other: BackhaulServer | undefined;
let store: RedisCommandStore | undefined;
let keyPrefix: string | undefined;

afterEach(async () => {
  await other?.close();
  await harness?.close();
  await store?.close();
  if (keyPrefix) await deleteRedisKeys(keyPrefix);
  harness = other = store = keyPrefix = undefined;
});

describeWithServices(
  [redisService, postgresService],
  'the fleet view behind a load balancer: two servers on one Redis command store',
  () => {
    it('one instance lists the queries in flight, failures and dead letters handled by the other; connections are each its own', async () => {
      keyPrefix = `${uniqueName('backhaul-fleet')}:`;
      store = createRedisCommandStore({ url: redisUrl, keyPrefix });
      harness = await startHarness({
        store,
        dataSource: () => createPostgresDataSource({ connectionString: postgresUrl, poolSize: 2 }),
        extraGateways: [mute],
        delivery,
        server: { adminTokens: [ADMIN_TOKEN], instanceId: 'instance-a' },
      });
      await harness.startGateway();
      // Instance B: the same store, tokens and storage; no gateway connects to it.
      other = createBackhaulServer({
        storage: createFsStorage({ root: harness.storageRoot }),
        store,
        codecs: [createZstdCodec()],
        gateways: [{ id: gatewayId, token: gatewayToken }, mute],
        callerTokens: [callerToken],
        adminTokens: [ADMIN_TOKEN],
        instanceId: 'instance-b',
        delivery,
        sweepIntervalMs: 50,
      });
      const b = await other.listen(0, '127.0.0.1');
      const adminOf = (url: string) => createBackhaulAdminClient({ url, token: ADMIN_TOKEN });
      const fleetOf = (url: string) => adminOf(url).fleet();
      const a = harness;

      // Submitted through A, where the gateway's stream is: a query that runs until cancelled,
      // one that fails, and one for a gateway that takes it and never acknowledges it.
      const sleeping = await a.client.submit({
        gatewayId,
        sql: 'SELECT 1 AS n FROM pg_sleep(60)',
        mode: 'rows',
      });
      const failing = await a.client.submit({ gatewayId, sql: 'SELECT 1 / 0 AS boom', mode: 'rows' });
      const silence = new AbortController();
      const stream = await fetch(`${a.url}/v1/gateway/commands`, {
        headers: { authorization: `Bearer ${mute.token}`, accept: 'text/event-stream' },
        signal: silence.signal,
      });
      const drained = stream.body?.pipeTo(new WritableStream()).catch(() => undefined);
      const unanswered = await a.client.submit({
        gatewayId: mute.id,
        sql: 'SELECT 7 AS answer',
        mode: 'rows',
      });

      // B sees all three, read from the shared store.
      const seen = await until(async () => {
        const view = await fleetOf(b.url);
        const running = view.queries.find((query) => query.id === sleeping.id);
        const failed = view.failures?.find((failure) => failure.id === failing.id);
        const dead = view.deadLetters?.find((letter) => letter.id === unanswered.id);
        return running?.state === 'running' && failed && dead ? { view, failed, dead } : undefined;
      }, 'instance B to list the query, the failure and the dead letter');
      expect(seen.view.instanceId).toBe('instance-b');
      expect(seen.failed).toMatchObject({ gatewayId, state: 'failed', message: 'division by zero' });
      expect(seen.dead).toMatchObject({ gatewayId: mute.id, replayable: true });
      expect(seen.dead.reason).toContain('no delivery ack');

      // Connections are per instance: the gateway's stream is on A.
      const connected = (view: FleetView) =>
        view.gateways.find((gateway) => gateway.id === gatewayId)?.connected;
      expect(connected(seen.view)).toBe(false);
      expect(connected(await fleetOf(a.url))).toBe(true);

      // A replay through B makes a query A reads: it lives in the shared store.
      const replayed = await adminOf(b.url).replayDeadLetter(unanswered.id);
      expect(replayed.gatewayId).toBe(mute.id);
      expect(replayed.id).not.toBe(unanswered.id);
      // The page's second click: the same new query, not another.
      expect((await adminOf(a.url).replayDeadLetter(unanswered.id)).id).toBe(replayed.id);
      expect((await a.client.get(replayed.id)).gatewayId).toBe(mute.id);

      silence.abort();
      await drained;
      expect((await a.client.cancel(sleeping.id)).state).toBe('cancelled');
    }, 60_000);
  },
);

import { createMemoryCommandStore } from '@backhaul/core';
import { afterEach, expect, it } from 'vitest';
import {
  callerToken,
  type EventStream,
  gatewayA,
  gatewayPost,
  getJson,
  openCommandStream,
  startServer,
  submit,
  type TestServer,
} from './helpers.js';

/**
 * A planned shutdown (docs/cluster.md, "Draining"): two servers on one store, a gateway streaming
 * from the first. The first drains: it refuses new submits and streams with 503 + Retry-After, ends
 * the gateway's stream, still takes the completion of the query the gateway is running, then
 * closes. The gateway reconnects to the second, which sends it the command it never acked.
 */

let servers: TestServer[] = [];
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

it('drain refuses new work, hands the gateway off, finishes what runs, then closes', async () => {
  const store = createMemoryCommandStore();
  const options = { store, sweepIntervalMs: 10 };
  servers = await Promise.all([startServer(options), startServer(options)]);
  const [a, b] = servers as [TestServer, TestServer];
  const onA = await openCommandStream(a.url, gatewayA.token);
  streams.push(onA);
  await onA.nextOf('hello');

  // One query the gateway acked and runs, one it was sent and has not acked yet.
  const running = (await submit(a.url, { gatewayId: gatewayA.id, sql: 'select 1', mode: 'rows' })).view;
  expect(JSON.parse((await onA.nextOf('command')).data).id).toBe(running.id);
  expect((await gatewayPost(a.url, gatewayA.token, running.id, 'ack')).status).toBe(204);
  const unacked = (await submit(a.url, { gatewayId: gatewayA.id, sql: 'select 2', mode: 'rows' })).view;
  expect(JSON.parse((await onA.nextOf('command')).data).id).toBe(unacked.id);

  const drained = a.server.drain({ timeoutMs: 10_000 });
  expect(a.server.draining).toBe(true);
  // The stream ends: the gateway is handed off.
  await expect(onA.next(5000)).rejects.toThrow();

  const refused = await submit(a.url, { gatewayId: gatewayA.id, sql: 'select 3', mode: 'rows' });
  expect(refused.response.status).toBe(503);
  expect(refused.response.headers.get('retry-after')).toBe('1');
  expect(refused.response.headers.get('content-type')).toContain('application/problem+json');
  const reopened = await openCommandStream(a.url, gatewayA.token);
  expect(reopened.status).toBe(503);
  reopened.close();
  // The load balancer's readiness check sees it too, naming the reason; B stays ready.
  const readiness = await fetch(`${a.url}/readyz`);
  expect(readiness.status).toBe(503);
  expect(((await readiness.json()) as { failed: string[] }).failed).toEqual(['draining']);
  expect((await fetch(`${b.url}/readyz`)).status).toBe(200);

  // The gateway reconnects to B and gets the command it had not acked, and only that one.
  const onB = await openCommandStream(b.url, gatewayA.token);
  streams.push(onB);
  await onB.nextOf('hello');
  const resent = JSON.parse((await onB.nextOf('command')).data);
  expect(resent.id).toBe(unacked.id);
  expect((await gatewayPost(b.url, gatewayA.token, unacked.id, 'ack')).status).toBe(204);

  // Work in flight on A is still taken while it drains.
  expect(
    (
      await gatewayPost(a.url, gatewayA.token, running.id, 'complete', {
        kind: 'rows',
        rowCount: 0,
        batchCount: 0,
      })
    ).status,
  ).toBe(200);
  await drained;
  expect((await getJson(`${b.url}/v1/queries/${running.id}`, callerToken)).body).toMatchObject({
    state: 'completed',
  });
  expect((await getJson(`${b.url}/v1/queries/${unacked.id}`, callerToken)).body).toMatchObject({
    state: 'acknowledged',
  });
  // Nothing else reached the gateway on B: the running query was not sent again.
  expect(onB.drain().filter((message) => message.event === 'command')).toEqual([]);
  await store.close();
});

import { type CommandStore, createMemoryCommandStore } from '@backhaul/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  callerToken,
  type EventStream,
  gatewayA,
  getJson,
  openCommandStream,
  startServer,
  submit,
  type TestServer,
} from './helpers.js';

/**
 * Two servers sharing one command store, as two processes share one Redis (docs/redis.md): each
 * delivery of a command goes out once across both, sent by the server whose compare-and-set moved
 * the command to dispatched, and a command pending for a gateway whose stream another server holds
 * is sent by that server. test/end-to-end/restart-and-failover.test.ts runs the same on Redis
 * with two server processes.
 */

let servers: TestServer[] = [];
let store: CommandStore | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
  await store?.close();
  store = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function twoServersOneStore() {
  store = createMemoryCommandStore();
  const options = { store, delivery: { ackTimeoutMs: 150 }, sweepIntervalMs: 10 };
  servers = await Promise.all([startServer(options), startServer(options)]);
  return servers as [TestServer, TestServer];
}

async function openOn(server: TestServer) {
  const stream = await openCommandStream(server.url, gatewayA.token);
  streams.push(stream);
  await stream.nextOf('hello');
  return stream;
}

/** Waits for the dead letter, then a while longer for any late duplicate; the deliveries seen. */
async function deliveriesUntilDeadLettered(on: TestServer, id: string, read: EventStream[]) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { body } = await getJson(`${on.url}/v1/queries/${id}`, callerToken);
    if ((body as { state: string }).state === 'dead-lettered') break;
    if (Date.now() > deadline) throw new Error('not dead-lettered in time');
    await sleep(20);
  }
  await sleep(400);
  return read.map((stream) =>
    stream
      .drain()
      .filter((message) => message.event === 'command' && message.id === id)
      .map((message) => (JSON.parse(message.data) as { delivery: number }).delivery),
  );
}

describe('two servers on one store', () => {
  it('a gateway with a stream on each: every delivery 1..4 goes out exactly once across both', async () => {
    const [a, b] = await twoServersOneStore();
    const onA = await openOn(a);
    const onB = await openOn(b);
    const { view } = await submit(a.url, { gatewayId: gatewayA.id, sql: 'select 1' });
    const [fromA, fromB] = await deliveriesUntilDeadLettered(a, view.id, [onA, onB]);
    expect([...fromA!, ...fromB!].sort(), JSON.stringify({ fromA, fromB })).toEqual([1, 2, 3, 4]);
  });

  it('a command submitted on a server without the stream is sent, and redelivered, by the server with it', async () => {
    const [a, b] = await twoServersOneStore();
    const onB = await openOn(b);
    const { view } = await submit(a.url, { gatewayId: gatewayA.id, sql: 'select 1' });
    const [fromB] = await deliveriesUntilDeadLettered(a, view.id, [onB]);
    expect(fromB).toEqual([1, 2, 3, 4]);
  });
});

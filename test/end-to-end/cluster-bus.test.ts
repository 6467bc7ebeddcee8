import { createBackhaulClient, type QueryEvent } from '@backhaul/client';
import { createRedisDeployment, type RedisDeployment } from '@backhaul/store-redis';
import type { EventSourceMessage } from 'eventsource-parser/stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  type EventStream,
  gatewayA,
  gatewayPost,
  openCommandStream,
  openStream,
  putChunk,
  randomBytesOf,
  startServer,
  submit,
  type TestServer,
  xxhash,
} from '../../packages/server-node/test/helpers.js';
import {
  deleteKeys,
  redisService,
  redisUrl,
  uniqueKeyPrefix,
} from '../../packages/store-redis/test/redis-service.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/until.js';

/**
 * Three in-process server instances on one Redis (command store, bus and row log: docs/cluster.md
 * "Bus and row log"), each with its own connections, as three processes would have. The sweep
 * runs once an hour, so a command can only reach a gateway on another instance by push, and a
 * caller's events only by the bus and the row log. Needs Redis; skips loudly without it.
 */

const keyPrefix = uniqueKeyPrefix();
const columns = [
  { name: 'id', type: 'int64', nullable: false },
  { name: 'name', type: 'string', nullable: true },
];
const HOUR = 3_600_000;

let deployments: RedisDeployment[] = [];
let instances: TestServer[] = [];
let a: TestServer;
let b: TestServer;
let c: TestServer;

const follow = (server: TestServer, id: string, lastEventId?: string) =>
  openStream(`${server.url}/v1/queries/${id}/events`, {
    ...auth(callerToken),
    ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
  });

const data = (message: EventSourceMessage) => JSON.parse(message.data);

/** The events up to and including `result` (the stream then closes). */
async function untilResult(stream: EventStream): Promise<EventSourceMessage[]> {
  const seen: EventSourceMessage[] = [];
  for (;;) {
    const message = await stream.next(10_000);
    seen.push(message);
    if (message.event === 'result') return seen;
  }
}

redisService.describe(
  'server instances on one Redis: push dispatch and caller events across instances',
  () => {
    beforeAll(async () => {
      deployments = [0, 1, 2].map(() => createRedisDeployment({ url: redisUrl, keyPrefix }));
      instances = await Promise.all(
        deployments.map((deployment, i) =>
          startServer({
            ...deployment.serverOptions,
            sweepIntervalMs: HOUR,
            delivery: { ackTimeoutMs: 1000 },
            instanceId: `instance-${i}`,
          }),
        ),
      );
      [a, b, c] = instances as [TestServer, TestServer, TestServer];
    });
    afterAll(async () => {
      for (const instance of instances) await instance.close();
      for (const deployment of deployments) await deployment.close();
      await deleteKeys(keyPrefix);
    });

    it('a query submitted on A reaches the gateway streaming from B by push, and is followed live on C, every answer on another instance', async () => {
      const gateway = await openCommandStream(b.url, gatewayA.token);
      await gateway.nextOf('hello');
      const caller = await submit(a.url, {
        gatewayId: gatewayA.id,
        sql: 'SELECT id, name FROM items',
        mode: 'rows',
      });
      expect(caller.response.status).toBe(202);
      const id = caller.view.id;

      // The sweep is an hour away: only the announcement on the bus can have sent it.
      const command = data(await gateway.nextOf('command', 10_000));
      expect(command).toMatchObject({ id, sql: 'SELECT id, name FROM items', delivery: 1 });
      expect(a.server.listGateways().find((view) => view.id === gatewayA.id)?.connected).not.toBe(true);

      // Acked on C, followed on C from before the first batch: every batch after this is live.
      expect((await gatewayPost(c.url, gatewayA.token, id, 'ack')).status).toBe(204);
      const live = await follow(c, id);
      expect(data(await live.nextOf('state'))).toMatchObject({ id, state: 'acknowledged' });

      // Batches land on A and B; the follower on C gets each as it is taken, with its position as id.
      expect(
        (await gatewayPost(a.url, gatewayA.token, id, 'rows', { seq: 0, columns, rows: [[1, 'a']] })).status,
      ).toBe(204);
      const first = await live.nextOf('rows', 10_000);
      expect(data(first)).toEqual({ seq: 0, columns, rows: [[1, 'a']] });
      expect(first.id).toBe('1');
      expect(
        (await gatewayPost(b.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[2, 'b']] })).status,
      ).toBe(204);
      const second = await live.nextOf('rows', 10_000);
      expect(data(second)).toEqual({ seq: 1, rows: [[2, 'b']] });
      expect(second.id).toBe('2');
      // A repeated seq on yet another instance is accepted and ignored (§5.3).
      expect(
        (await gatewayPost(c.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[2, 'b']] })).status,
      ).toBe(204);

      expect(
        (
          await gatewayPost(b.url, gatewayA.token, id, 'complete', {
            kind: 'rows',
            rowCount: 2,
            batchCount: 2,
          })
        ).status,
      ).toBe(200);
      const rest = await untilResult(live);
      expect(rest.filter((message) => message.event === 'rows')).toEqual([]);
      expect(data(rest.at(-1) as EventSourceMessage)).toMatchObject({
        state: 'completed',
        result: { kind: 'rows', rowCount: 2, columns },
      });

      // The rows are readable from the instance that took none of them.
      const rows = await fetch(`${c.url}/v1/queries/${id}/result`, { headers: auth(callerToken) });
      expect(await rows.json()).toEqual({
        columns,
        rows: [
          [1, 'a'],
          [2, 'b'],
        ],
      });
      gateway.close();
    });

    it('a reconnect with Last-Event-ID, to another instance, gets the state and only the batches after it', async () => {
      const gateway = await openCommandStream(c.url, gatewayA.token);
      await gateway.nextOf('hello');
      const { view } = await submit(b.url, { gatewayId: gatewayA.id, sql: 'SELECT 1', mode: 'rows' });
      const id = view.id;
      await gateway.nextOf('command', 10_000);
      await gatewayPost(a.url, gatewayA.token, id, 'ack');

      const before = await follow(a, id);
      await before.nextOf('state');
      await gatewayPost(b.url, gatewayA.token, id, 'rows', { seq: 0, columns, rows: [[1, 'a']] });
      const seen = await before.nextOf('rows', 10_000);
      // The connection drops here (a proxy, a network blip); batches go on arriving meanwhile.
      before.close();
      await gatewayPost(c.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[2, 'b']] });
      await gatewayPost(a.url, gatewayA.token, id, 'rows', { seq: 2, rows: [[3, 'c']] });

      // What an EventSource sends on its own: the id of the last event it received.
      const after = await follow(b, id, seen.id);
      const state = await after.next(10_000);
      expect(state.event).toBe('state');
      expect(state.id).toBe(seen.id);
      const resumed = [await after.nextOf('rows', 10_000), await after.nextOf('rows', 10_000)];
      expect(resumed.map((message) => [message.id, data(message).seq])).toEqual([
        ['2', 1],
        ['3', 2],
      ]);
      await gatewayPost(c.url, gatewayA.token, id, 'complete', { kind: 'rows', rowCount: 3, batchCount: 3 });
      const rest = await untilResult(after);
      expect(rest.filter((message) => message.event === 'rows')).toEqual([]);
      expect(data(rest.at(-1) as EventSourceMessage)).toMatchObject({ state: 'completed' });

      // From the start (no Last-Event-ID), a late follower gets every batch once, then the result.
      const late = await untilResult(await follow(c, id));
      expect(late.filter((message) => message.event === 'rows').map((message) => data(message).seq)).toEqual([
        0, 1, 2,
      ]);
      gateway.close();
    });

    it('a command whose ack timed out, swept by an instance without the stream, is pushed again to the one with it', async () => {
      const gateway = await openCommandStream(a.url, gatewayA.token);
      await gateway.nextOf('hello');
      const { view } = await submit(c.url, { gatewayId: gatewayA.id, sql: 'SELECT 2', mode: 'rows' });
      expect(data(await gateway.nextOf('command', 10_000))).toMatchObject({ id: view.id, delivery: 1 });
      // Not acked. D sweeps often but holds no stream: it finds the ack deadline, puts the command
      // back to pending and rings A, whose own sweep is an hour away.
      const deployment = createRedisDeployment({ url: redisUrl, keyPrefix });
      const d = await startServer({
        ...deployment.serverOptions,
        sweepIntervalMs: 50,
        instanceId: 'instance-3',
      });
      try {
        expect(data(await gateway.nextOf('command', 10_000))).toMatchObject({ id: view.id, delivery: 2 });
        expect((await gatewayPost(a.url, gatewayA.token, view.id, 'ack')).status).toBe(204);
      } finally {
        await d.close();
        await deployment.close();
        gateway.close();
      }
    });

    it("the client's follow() resumes a dropped stream with Last-Event-ID and yields every batch once", async () => {
      const gateway = await openCommandStream(b.url, gatewayA.token);
      await gateway.nextOf('hello');
      const { view } = await submit(a.url, { gatewayId: gatewayA.id, sql: 'SELECT 3', mode: 'rows' });
      const id = view.id;
      expect(data(await gateway.nextOf('command', 10_000))).toMatchObject({ id });
      await gatewayPost(b.url, gatewayA.token, id, 'ack');
      const proxy = await startFaultProxy(c.url);
      try {
        const client = createBackhaulClient({ url: proxy.url, token: callerToken });
        const events: QueryEvent[] = [];
        const following = (async () => {
          for await (const event of client.follow(id)) events.push(event);
        })();
        await until(() => events.some((event) => event.type === 'state'), 'the first state');
        await gatewayPost(a.url, gatewayA.token, id, 'rows', { seq: 0, columns, rows: [[1, 'a']] });
        await until(() => events.some((event) => event.type === 'rows'), 'the first batch');
        // The connection drops; batches arrive while the client is away.
        proxy.cutAll();
        await gatewayPost(b.url, gatewayA.token, id, 'rows', { seq: 1, rows: [[2, 'b']] });
        await gatewayPost(c.url, gatewayA.token, id, 'rows', { seq: 2, rows: [[3, 'c']] });
        await gatewayPost(a.url, gatewayA.token, id, 'complete', {
          kind: 'rows',
          rowCount: 3,
          batchCount: 3,
        });
        await following;
        const seqs = events.flatMap((event) => (event.type === 'rows' ? [event.seq] : []));
        expect(seqs).toEqual([0, 1, 2]);
        expect(events.at(-1)).toMatchObject({ type: 'result', query: { state: 'completed' } });
        const reconnects = proxy.log.filter((request) => request.path.endsWith('/events'));
        expect(reconnects.length).toBeGreaterThanOrEqual(2);
        expect(reconnects.at(-1)?.headers['last-event-id']).toBe('1');
      } finally {
        await proxy.close();
        gateway.close();
      }
    });

    it('an auto query switching to a file on B is told to a follower on C after the live rows from A; C then refuses a new batch', async () => {
      const gateway = await openCommandStream(b.url, gatewayA.token);
      await gateway.nextOf('hello');
      const { view } = await submit(a.url, { gatewayId: gatewayA.id, sql: 'SELECT 4', mode: 'auto' });
      const id = view.id;
      await gateway.nextOf('command', 10_000);
      await gatewayPost(a.url, gatewayA.token, id, 'ack');
      const live = await follow(c, id);
      await live.nextOf('state');
      // And the client, through a proxy that will drop its stream after the switch.
      const proxy = await startFaultProxy(c.url);
      const events: QueryEvent[] = [];
      const following = (async () => {
        for await (const event of createBackhaulClient({ url: proxy.url, token: callerToken }).follow(id))
          events.push(event);
      })();
      await until(() => events.some((event) => event.type === 'state'), 'the first state');

      const batches = [
        { seq: 0, columns, rows: [[1, 'a']] },
        { seq: 1, rows: [[2, 'b']] },
      ];
      for (const batch of batches)
        expect((await gatewayPost(a.url, gatewayA.token, id, 'rows', batch)).status).toBe(204);
      // The first chunk, on B, is the switch: B counts the live rows in the shared row log.
      const file = randomBytesOf(200, 3);
      expect((await putChunk(b.url, gatewayA.token, id, 0, file)).status).toBe(201);
      const late = await gatewayPost(c.url, gatewayA.token, id, 'rows', { seq: 2, rows: [[3, 'c']] });
      expect(late.status).toBe(409);
      // The client's stream drops after the switch; resumed, the server tells it again, the client once.
      await until(() => events.some((event) => event.type === 'switched'), 'the switch');
      proxy.cutAll();
      const done = await gatewayPost(b.url, gatewayA.token, id, 'complete', {
        kind: 'file',
        format: 'parquet',
        size: file.length,
        checksum: await xxhash(file),
        rowCount: 3,
        chunkCount: 1,
      });
      expect(done.status).toBe(200);

      const told = (await untilResult(live)).filter((m) => m.event !== 'progress' && m.event !== 'state');
      expect(told.map((m) => m.event)).toEqual(['rows', 'rows', 'switched', 'result']);
      expect(told.slice(0, 2).map(data)).toEqual(batches);
      expect(data(told[2] as EventSourceMessage)).toMatchObject({ id, liveRows: 2 });
      expect(data(told[3] as EventSourceMessage)).toMatchObject({
        state: 'completed',
        liveRows: 2,
        result: { kind: 'file', rowCount: 3 },
      });
      await following;
      await proxy.close();
      expect(
        events.map((event) => event.type).filter((type) => type !== 'progress' && type !== 'state'),
      ).toEqual(['rows', 'rows', 'switched', 'result']);
      const reconnects = proxy.log.filter((request) => request.path.endsWith('/events'));
      expect(reconnects.length).toBeGreaterThanOrEqual(2);
      expect(reconnects.at(-1)?.headers['last-event-id']).toBe('2');
      gateway.close();
    });

    // §3.8/§4.3 a cancel reaches the gateway whichever instance it is sent to: only the bus can carry it.
    it('DELETE on C sends the cancel event on the stream B holds; followers see cancelled; answers are refused', async () => {
      const gateway = await openCommandStream(b.url, gatewayA.token);
      await gateway.nextOf('hello');
      const { view } = await submit(a.url, { gatewayId: gatewayA.id, sql: 'SELECT 1', mode: 'file' });
      const id = view.id;
      expect(JSON.parse((await gateway.nextOf('command', 10_000)).data)).toMatchObject({ id });
      expect((await gatewayPost(a.url, gatewayA.token, id, 'ack')).status).toBe(204);
      const follower = await openStream(`${a.url}/v1/queries/${id}/events`, auth(callerToken));
      await follower.nextOf('state');

      const cancelled = await fetch(`${c.url}/v1/queries/${id}`, {
        method: 'DELETE',
        headers: auth(callerToken),
      });
      expect(cancelled.status).toBe(200);
      expect(await cancelled.json()).toMatchObject({ id, state: 'cancelled' });

      const cancel = await gateway.nextOf('cancel', 10_000);
      expect(JSON.parse(cancel.data)).toEqual({ v: 1, id, reason: 'cancelled by the caller' });
      expect(JSON.parse((await follower.nextOf('cancelled', 10_000)).data)).toMatchObject({
        id,
        state: 'cancelled',
      });

      const progress = await gatewayPost(a.url, gatewayA.token, id, 'progress', { rows: 1 });
      expect(progress.status).toBe(409);
      expect(await progress.json()).toMatchObject({ code: 'invalid-state', state: 'cancelled' });
      // Again through another instance: the same answer.
      const again = await fetch(`${b.url}/v1/queries/${id}`, {
        method: 'DELETE',
        headers: auth(callerToken),
      });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ id, state: 'cancelled' });
    });
  },
);

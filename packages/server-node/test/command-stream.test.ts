import { afterEach, describe, expect, it } from 'vitest';
import {
  callerToken,
  type EventStream,
  gatewayA,
  gatewayB,
  gatewayPost,
  getJson,
  openCommandStream,
  startServer,
  submit,
  type TestServer,
} from './helpers.js';

let t: TestServer | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await t?.close();
  t = undefined;
});
const open = async (token: string, lastEventId?: string) => {
  const stream = await openCommandStream(t!.url, token, lastEventId);
  streams.push(stream);
  return stream;
};

describe('§4 the stream has SSE headers, and first sends retry: and a hello event', () => {
  it('says which codecs and chunk size the server accepts', async () => {
    t = await startServer({ chunkSize: 131_072, chunkWindow: 16 });
    const stream = await open(gatewayA.token);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
    expect(stream.headers.get('content-encoding')).toBeNull();
    const hello = await stream.next();
    expect(hello.event).toBe('hello');
    expect(JSON.parse(hello.data)).toEqual({
      v: 1,
      gatewayId: 'gw-a',
      codecs: ['identity'],
      chunkSize: 131_072,
      heartbeatMs: 1000,
      chunkWindow: 16,
    });
  });

  it('sends a heartbeat comment while idle, and listGateways reports the connection', async () => {
    t = await startServer({ heartbeatMs: 100 });
    const response = await fetch(`${t.url}/v1/gateway/commands`, {
      headers: { authorization: `Bearer ${gatewayA.token}` },
    });
    const reader = response.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes(': heartbeat')) text += decoder.decode((await reader.read()).value);
    expect(text.startsWith('retry: 2000')).toBe(true);
    const views = t.server.listGateways();
    expect(views.find((g) => g.id === 'gw-a')).toMatchObject({ connected: true });
    expect(views.find((g) => g.id === 'gw-b')).toMatchObject({ connected: false });
    const overHttp = (await getJson(`${t.url}/v1/gateways`, callerToken)).body as {
      gateways: { id: string }[];
    };
    expect(overHttp.gateways.map((g) => g.id)).toEqual(['gw-a', 'gw-b']);
    await reader.cancel();
  });
});

describe('§4.2 every command is an event with id: <command id>; one submitted while offline arrives on connect', () => {
  it('delivers a command queued before the gateway connected', async () => {
    t = await startServer();
    const { response, view } = await submit(t.url, { gatewayId: 'gw-a', sql: 'select 42', mode: 'rows' });
    expect(response.status).toBe(202);
    expect(response.headers.get('location')).toBe(`/v1/queries/${view.id}`);
    expect(view.state).toBe('pending');
    const stream = await open(gatewayA.token);
    await stream.nextOf('hello');
    const command = await stream.nextOf('command');
    expect(command.id).toBe(view.id);
    expect(JSON.parse(command.data)).toMatchObject({
      v: 1,
      id: view.id,
      sql: 'select 42',
      mode: 'rows',
      delivery: 1,
    });
    const state = (await getJson(`${t.url}/v1/queries/${view.id}`, callerToken)).body as { state: string };
    expect(state.state).toBe('dispatched');
  });

  it('sends a new command to a connected gateway at once, and never to another gateway', async () => {
    t = await startServer();
    const a = await open(gatewayA.token);
    const b = await open(gatewayB.token);
    await a.nextOf('hello');
    await b.nextOf('hello');
    const { view } = await submit(t.url, { gatewayId: 'gw-b', sql: 'select 1' });
    expect((await b.nextOf('command')).id).toBe(view.id);
    await expect(a.nextOf('command', 300)).rejects.toThrow();
  });

  it('answers 404 for a gateway that is not configured', async () => {
    t = await startServer();
    const { response } = await submit(t.url, { gatewayId: 'gw-unknown', sql: 'select 1' });
    expect(response.status).toBe(404);
  });
});

describe('§4 on every reconnection the server sends every command not yet acknowledged', () => {
  it('resends an unacked command after a reconnect with Last-Event-ID, but not an acked one', async () => {
    t = await startServer();
    const first = await open(gatewayA.token);
    await first.nextOf('hello');
    const acked = (await submit(t.url, { gatewayId: 'gw-a', sql: 'select 1' })).view;
    const unacked = (await submit(t.url, { gatewayId: 'gw-a', sql: 'select 2' })).view;
    expect((await first.nextOf('command')).id).toBe(acked.id);
    expect((await first.nextOf('command')).id).toBe(unacked.id);
    expect((await gatewayPost(t.url, gatewayA.token, acked.id, 'ack')).status).toBe(204);
    // §5.1 idempotent.
    expect((await gatewayPost(t.url, gatewayA.token, acked.id, 'ack')).status).toBe(204);
    first.close();

    const second = await open(gatewayA.token, unacked.id);
    await second.nextOf('hello');
    const resent = await second.nextOf('command');
    expect(resent.id).toBe(unacked.id);
    // Same delivery number: a resend on reconnect is not an ack-timeout redelivery.
    expect(JSON.parse(resent.data).delivery).toBe(1);
    await expect(second.nextOf('command', 300)).rejects.toThrow();
  });

  it('closes an older stream of the same gateway and sends to the newest', async () => {
    t = await startServer();
    const older = await open(gatewayA.token);
    await older.nextOf('hello');
    const newer = await open(gatewayA.token);
    await newer.nextOf('hello');
    await expect(older.next(1000)).rejects.toThrow(/ended/);
    const { view } = await submit(t.url, { gatewayId: 'gw-a', sql: 'select 1' });
    expect((await newer.nextOf('command')).id).toBe(view.id);
  });
});

describe('§5 a command not acked in time is redelivered at most 3 times, then dead-lettered', () => {
  it('sends it exactly 1 + 3 times (delivery 1..4), then dead-letters it with a reason', async () => {
    t = await startServer({ delivery: { ackTimeoutMs: 150 }, sweepIntervalMs: 25 });
    const stream = await open(gatewayA.token);
    await stream.nextOf('hello');
    const { view } = await submit(t.url, { gatewayId: 'gw-a', sql: 'select 1' });
    const deliveries: number[] = [];
    for (let i = 0; i < 4; i++) {
      const command = await stream.nextOf('command', 3000);
      expect(command.id).toBe(view.id);
      deliveries.push(JSON.parse(command.data).delivery);
    }
    expect(deliveries).toEqual([1, 2, 3, 4]);
    await expect(stream.nextOf('command', 800)).rejects.toThrow();
    const final = (await getJson(`${t.url}/v1/queries/${view.id}`, callerToken)).body as {
      state: string;
      deliveries: number;
      error: { message: string };
    };
    expect(final.state).toBe('dead-lettered');
    expect(final.deliveries).toBe(4);
    expect(final.error.message).toMatch(/no delivery ack after 4 deliveries/);
    const result = await getJson(`${t.url}/v1/queries/${view.id}/result`, callerToken);
    expect(result.response.status).toBe(503);
  });

  it('an acked command is not redelivered; its completion deadline expires it', async () => {
    t = await startServer({ delivery: { ackTimeoutMs: 100, completionTimeoutMs: 300 }, sweepIntervalMs: 25 });
    const stream = await open(gatewayA.token);
    await stream.nextOf('hello');
    const { view } = await submit(t.url, { gatewayId: 'gw-a', sql: 'select 1' });
    await stream.nextOf('command');
    await gatewayPost(t.url, gatewayA.token, view.id, 'ack');
    await expect(stream.nextOf('command', 500)).rejects.toThrow();
    const final = (await getJson(`${t.url}/v1/queries/${view.id}`, callerToken)).body as { state: string };
    expect(final.state).toBe('expired');
  });
});

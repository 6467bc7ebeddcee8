import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BackhaulError,
  type CommandStore,
  createMemoryCommandStore,
  type ObjectStorage,
} from '@backhaul/core';
import type { AdmissionSnapshot, BackhaulServerOptions } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  type EventStream,
  gatewayA,
  gatewayB,
  gatewayPost,
  getJson,
  openCommandStream,
  putChunk,
  randomBytesOf,
  startServer,
  type TestServer,
  waitFor,
  xxhash,
} from './helpers.js';

const otherCaller = 'caller-two-token-0123456789';
const chunkSize = 64 * 1024;

let t: TestServer | undefined;
let store: CommandStore | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await t?.close();
  await store?.close();
  t = undefined;
  store = undefined;
});

/** A server with tiny limits and its own store, so the test can look at what was persisted. */
async function start(
  admission: BackhaulServerOptions['admission'],
  overrides: Partial<BackhaulServerOptions> = {},
) {
  store = createMemoryCommandStore();
  t = await startServer({
    store,
    chunkSize,
    callerTokens: [callerToken, otherCaller],
    admission: { gatewayShare: 1, callerShare: 1, ...admission },
    ...overrides,
  });
  return t;
}

const open = async (token: string) => {
  const stream = await openCommandStream(t!.url, token);
  streams.push(stream);
  await stream.nextOf('hello');
  return stream;
};

async function submitAs(token: string, body: Record<string, unknown>) {
  const response = await fetch(`${t!.url}/v1/queries`, {
    method: 'POST',
    headers: { ...auth(token), 'content-type': 'application/json' },
    body: JSON.stringify({ sql: 'select 1', mode: 'rows', ...body }),
  });
  return {
    response,
    body: (await response.json()) as Record<string, unknown> & { id: string; state: string },
  };
}
const submit = (body: Record<string, unknown>) => submitAs(callerToken, body);

const view = async (id: string) =>
  (await getJson(`${t!.url}/v1/queries/${id}`, callerToken)).body as {
    state: string;
    queuePosition?: number;
  };

const occupancy = (): AdmissionSnapshot => t!.server.admission();
const inUse = () => Object.values(occupancy().classes).map((c) => c.inUse);
const queued = () => Object.values(occupancy().classes).map((c) => c.queued);

async function ackAndComplete(token: string, id: string) {
  expect((await gatewayPost(t!.url, token, id, 'ack')).status).toBe(204);
  const done = await gatewayPost(t!.url, token, id, 'complete', { kind: 'rows', rowCount: 0, batchCount: 0 });
  expect(done.status).toBe(200);
}

describe('§3.7 over the limit without whenBusy: 429 with Retry-After, and nothing is created', () => {
  it('refuses the third rows query of a server with 2 small slots, and persists only two', async () => {
    await start({ small: 2, retryAfterSeconds: 3 });
    const first = await submit({ gatewayId: gatewayA.id });
    const second = await submit({ gatewayId: gatewayA.id });
    expect([first.response.status, second.response.status]).toEqual([202, 202]);

    const refused = await submit({ gatewayId: gatewayA.id });
    expect(refused.response.status).toBe(429);
    expect(refused.response.headers.get('retry-after')).toBe('3');
    expect(refused.response.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.body).toEqual({
      type: 'https://backhaul.dev/problems/too-many-requests',
      title: 'Too many requests',
      status: 429,
      code: 'too-many-requests',
      detail: 'All 2 small slots are taken',
      retryable: true,
      retryAfter: 3,
      admissionClass: 'small',
      scope: 'server',
      limit: 2,
    });
    // Nothing was written: the store holds the two admitted queries only.
    const persisted = await store!.listUndelivered(gatewayA.id);
    expect(persisted.map((r) => r.id).sort()).toEqual([first.body.id, second.body.id].sort());
    expect(occupancy().classes.small).toEqual({ limit: 2, inUse: 2, queued: 0 });

    // A file is another class: it still gets in.
    expect((await submit({ gatewayId: gatewayA.id, mode: 'file' })).response.status).toBe(202);
    expect(occupancy().classes.medium).toEqual({ limit: 50, inUse: 1, queued: 0 });
  });
});

describe('§3.7 whenBusy: queue — queued with its position, then run in order as slots free', () => {
  it('runs three queries through one small slot in submission order', async () => {
    await start({ small: 1 });
    const stream = await open(gatewayA.token);
    const first = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' });
    expect(first.body.state).toBe('dispatched');
    const second = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue', sql: 'select 2' });
    const third = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue', sql: 'select 3' });
    expect(second.response.status).toBe(202);
    expect(second.response.headers.get('location')).toBe(`/v1/queries/${second.body.id}`);
    expect(second.body).toMatchObject({ state: 'queued', queuePosition: 1, deliveries: 0 });
    expect(third.body).toMatchObject({ state: 'queued', queuePosition: 2 });
    expect(occupancy().classes.small).toEqual({ limit: 1, inUse: 1, queued: 2 });

    // Only the admitted query was sent.
    expect(JSON.parse((await stream.nextOf('command')).data).id).toBe(first.body.id);
    await ackAndComplete(gatewayA.token, first.body.id);

    // Its slot went to the oldest queued query, which was sent; the other moved up.
    expect(JSON.parse((await stream.nextOf('command')).data).id).toBe(second.body.id);
    expect(await view(third.body.id)).toMatchObject({ state: 'queued', queuePosition: 1 });
    await ackAndComplete(gatewayA.token, second.body.id);

    const last = JSON.parse((await stream.nextOf('command')).data);
    expect(last).toMatchObject({ id: third.body.id, sql: 'select 3' });
    await ackAndComplete(gatewayA.token, third.body.id);
    expect(inUse()).toEqual([0, 0, 0]);
    expect(queued()).toEqual([0, 0, 0]);
  });

  it('a queued query whose admission failed on a store error keeps its slot and is admitted once the store answers', async () => {
    // The store fails every call about one command while `unavailableFor` names it, as Redis
    // does while it is down (store-redis: 503 service-unavailable).
    const inner = createMemoryCommandStore();
    let unavailableFor: string | undefined;
    const concerns = (arg: unknown) =>
      arg === unavailableFor || (arg as { id?: unknown } | null)?.id === unavailableFor;
    const flaky = new Proxy(inner, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          unavailableFor !== undefined && args.some(concerns)
            ? Promise.reject(new BackhaulError('service-unavailable', 'the store is down'))
            : value.apply(target, args);
      },
    });
    try {
      await start({ small: 1 }, { store: flaky });
      const stream = await open(gatewayA.token);
      const first = await submit({ gatewayId: gatewayA.id });
      const second = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue', sql: 'select 2' });
      expect(second.body.state).toBe('queued');
      expect(JSON.parse((await stream.nextOf('command')).data).id).toBe(first.body.id);

      // The first ends; the freed slot goes to the second, whose admission meets the outage.
      unavailableFor = second.body.id;
      await ackAndComplete(gatewayA.token, first.body.id);
      expect((await inner.get(second.body.id))?.state).toBe('queued');
      expect(occupancy().classes.small).toEqual({ limit: 1, inUse: 1, queued: 0 });

      // The store answers again: the periodic check finishes the admission, and it is sent.
      unavailableFor = undefined;
      expect(JSON.parse((await stream.nextOf('command')).data).id).toBe(second.body.id);
      await ackAndComplete(gatewayA.token, second.body.id);
      expect(inUse()).toEqual([0, 0, 0]);
    } finally {
      await inner.close();
    }
  });

  it('a queued query takes no chunks, rows or ack: it was never sent', async () => {
    await start({ small: 1, medium: 1 });
    await submit({ gatewayId: gatewayA.id, mode: 'file' });
    const queuedFile = await submit({ gatewayId: gatewayA.id, mode: 'file', whenBusy: 'queue' });
    expect(queuedFile.body.state).toBe('queued');
    const chunk = await putChunk(t!.url, gatewayA.token, queuedFile.body.id, 0, randomBytesOf(100, 9));
    expect(chunk.status).toBe(409);
    expect((await gatewayPost(t!.url, gatewayA.token, queuedFile.body.id, 'ack')).status).toBe(409);
    const rows = await gatewayPost(t!.url, gatewayA.token, queuedFile.body.id, 'rows', { seq: 0, rows: [] });
    expect(rows.status).toBe(409);
    expect(((await rows.json()) as { detail: string }).detail).toMatch(/in state queued/);
    expect(occupancy().classes.medium).toEqual({ limit: 1, inUse: 1, queued: 1 });
    expect((await view(queuedFile.body.id)).state).toBe('queued');
  });

  it('refuses with scope queue once maxQueued queries wait', async () => {
    await start({ small: 1, maxQueued: 1 });
    await submit({ gatewayId: gatewayA.id });
    expect((await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' })).response.status).toBe(202);
    const refused = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' });
    expect(refused.response.status).toBe(429);
    expect(refused.body).toMatchObject({ scope: 'queue', retryAfter: 1 });
    expect(refused.response.headers.get('retry-after')).toBe('1');
  });
});

describe('§3.7 slots are released whenever a query ends (counts return to 0)', () => {
  it('on failure of a file mid-upload, after it was promoted to large', async () => {
    await start({ medium: 2, large: 1, largeFileBytes: 2 * chunkSize });
    const stream = await open(gatewayA.token);
    const { body } = await submit({ gatewayId: gatewayA.id, mode: 'file' });
    await stream.nextOf('command');
    await gatewayPost(t!.url, gatewayA.token, body.id, 'ack');
    const file = randomBytesOf(3 * chunkSize, 3);
    for (const index of [0, 1, 2]) {
      const chunk = file.subarray(index * chunkSize, (index + 1) * chunkSize);
      expect((await putChunk(t!.url, gatewayA.token, body.id, index, chunk)).status).toBe(201);
    }
    expect(occupancy().classes.large.inUse).toBe(1);
    expect(occupancy().classes.medium.inUse).toBe(0);
    const failed = await gatewayPost(t!.url, gatewayA.token, body.id, 'fail', {
      code: 'query-failed',
      message: 'aborted by the gateway',
    });
    expect(failed.status).toBe(204);
    expect(inUse()).toEqual([0, 0, 0]);
  });

  it('on an upload the server aborts because storage failed mid-file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'backhaul-admission-'));
    const fs = createFsStorage({ root });
    // Storage that accepts the upload but loses the first part written: the file is beyond repair.
    const storage: ObjectStorage = {
      ...fs,
      beginUpload: async (key, options) => ({
        ...(await fs.beginUpload(key, options)),
        writePart: async () => {
          throw new Error('disk gone');
        },
      }),
    };
    try {
      await start({ medium: 1 }, { storage });
      const stream = await open(gatewayA.token);
      const { body } = await submit({ gatewayId: gatewayA.id, mode: 'file' });
      await stream.nextOf('command');
      await gatewayPost(t!.url, gatewayA.token, body.id, 'ack');
      expect(inUse()).toEqual([0, 1, 0]);
      const broken = await putChunk(t!.url, gatewayA.token, body.id, 0, randomBytesOf(chunkSize, 4));
      expect(broken.status).toBe(500);
      await waitFor(async () => (await view(body.id)).state === 'failed');
      expect(inUse()).toEqual([0, 0, 0]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('on expiry of an acked query, on dead-lettering, and on expiry while queued', async () => {
    await start(
      { small: 1, medium: 1 },
      { delivery: { completionTimeoutMs: 200, ackTimeoutMs: 200, maxRedeliveries: 0, queueTimeoutMs: 400 } },
    );
    const stream = await open(gatewayA.token);
    // An acked query that never answers expires; a queued one behind it expires too.
    const acked = await submit({ gatewayId: gatewayA.id });
    await stream.nextOf('command');
    await gatewayPost(t!.url, gatewayA.token, acked.body.id, 'ack');
    // A file sent and never acked is dead-lettered.
    const unacked = await submit({ gatewayId: gatewayA.id, mode: 'file' });
    const behind = await submit({ gatewayId: gatewayA.id, mode: 'file', whenBusy: 'queue' });
    expect(behind.body.state).toBe('queued');
    expect(inUse()).toEqual([1, 1, 0]);

    await waitFor(async () => (await view(acked.body.id)).state === 'expired');
    await waitFor(async () => (await view(unacked.body.id)).state === 'dead-lettered');
    // The dead-lettered file's slot went to the queued one, which then never got an ack either.
    const afterBehind = await waitFor(async () => {
      const { state } = await view(behind.body.id);
      return state === 'dead-lettered' || state === 'expired' ? state : undefined;
    });
    expect(['dead-lettered', 'expired']).toContain(afterBehind);
    expect(inUse()).toEqual([0, 0, 0]);
    expect(queued()).toEqual([0, 0, 0]);
  });

  it('on expiry while queued, without ever being sent', async () => {
    await start({ small: 1 }, { delivery: { queueTimeoutMs: 300, completionTimeoutMs: 60_000 } });
    const stream = await open(gatewayA.token);
    const running = await submit({ gatewayId: gatewayA.id });
    await stream.nextOf('command');
    await gatewayPost(t!.url, gatewayA.token, running.body.id, 'ack');
    const waiting = await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' });
    const expired = await waitFor(async () => {
      const current = await view(waiting.body.id);
      return current.state === 'expired' ? current : undefined;
    });
    expect(expired).toMatchObject({
      error: { code: 'expired', message: 'no admission slot became free in time' },
    });
    expect(expired.queuePosition).toBeUndefined();
    expect(occupancy().classes.small).toEqual({ limit: 1, inUse: 1, queued: 0 });
    await ackAndComplete(gatewayA.token, running.body.id);
    expect(inUse()).toEqual([0, 0, 0]);
    // The stream never saw the expired query.
    expect(stream.drain().filter((m) => m.event === 'command')).toEqual([]);
  });

  it('on server close, with slots held and queries queued', async () => {
    await start({ small: 1 });
    await submit({ gatewayId: gatewayA.id });
    await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' });
    expect(inUse()).toEqual([1, 0, 0]);
    expect(queued()).toEqual([1, 0, 0]);
    const server = t!.server;
    await t!.close();
    t = undefined;
    const snapshot = server.admission();
    expect(Object.values(snapshot.classes).map((c) => [c.inUse, c.queued])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    expect(snapshot.gateways).toEqual({});
    expect(snapshot.callers).toEqual({});
  });
});

describe('§3.7 fair shares: one gateway or one caller cannot take every slot', () => {
  it('a gateway at its share is refused while another gateway still gets a slot', async () => {
    await start({ small: 4, gatewayShare: 0.5 });
    for (let i = 0; i < 2; i++) expect((await submit({ gatewayId: gatewayA.id })).response.status).toBe(202);
    const flood = await submit({ gatewayId: gatewayA.id });
    expect(flood.response.status).toBe(429);
    expect(flood.body).toMatchObject({ scope: 'gateway', admissionClass: 'small' });
    expect((await submit({ gatewayId: gatewayB.id })).response.status).toBe(202);
    expect(occupancy().gateways).toEqual({ 'gw-a': { small: 2 }, 'gw-b': { small: 1 } });
  });

  it("a gateway's queued flood does not hold up another gateway's query", async () => {
    await start({ small: 2, gatewayShare: 0.5 });
    const streamB = await open(gatewayB.token);
    await submit({ gatewayId: gatewayA.id });
    for (let i = 0; i < 5; i++) {
      expect((await submit({ gatewayId: gatewayA.id, whenBusy: 'queue' })).body.state).toBe('queued');
    }
    const other = await submit({ gatewayId: gatewayB.id, whenBusy: 'queue' });
    expect(other.body.state).toBe('dispatched');
    expect(JSON.parse((await streamB.nextOf('command')).data).id).toBe(other.body.id);
  });

  it('a caller at its share is refused while another caller still gets a slot', async () => {
    await start({ small: 4, callerShare: 0.5 });
    const a = await submitAs(callerToken, { gatewayId: gatewayA.id });
    const b = await submitAs(callerToken, { gatewayId: gatewayB.id });
    expect([a.response.status, b.response.status]).toEqual([202, 202]);
    const flood = await submitAs(callerToken, { gatewayId: gatewayB.id });
    expect(flood.response.status).toBe(429);
    expect(flood.body).toMatchObject({ scope: 'caller', admissionClass: 'small' });
    expect((await submitAs(otherCaller, { gatewayId: gatewayA.id })).response.status).toBe(202);
    // Callers are named by a hash prefix of their token, never by the token.
    const callers = Object.keys(occupancy().callers);
    expect(callers).toHaveLength(2);
    for (const name of callers) expect(name).toMatch(/^caller-[0-9a-f]{12}$/);
  });
});

describe('§3.7 a file is promoted when its chunks cross a class boundary', () => {
  it('a chunk far past the reorder window is refused (409) without promoting its file to large', async () => {
    await start({ medium: 2, large: 1, largeFileBytes: 2 * chunkSize });
    const stream = await open(gatewayA.token);
    const { body } = await submit({ gatewayId: gatewayA.id, mode: 'file' });
    await stream.nextOf('command');
    await gatewayPost(t!.url, gatewayA.token, body.id, 'ack');
    const farAhead = await putChunk(t!.url, gatewayA.token, body.id, 999, randomBytesOf(chunkSize, 13));
    expect(farAhead.status).toBe(409);
    expect(occupancy().classes).toMatchObject({ medium: { inUse: 1 }, large: { inUse: 0 } });
  });

  it('answers 429 to the chunk that needs a large slot while none is free, then takes it', async () => {
    await start({ medium: 2, large: 1, largeFileBytes: 2 * chunkSize, retryAfterSeconds: 2 });
    const stream = await open(gatewayA.token);
    const ids: string[] = [];
    for (const _ of [1, 2]) {
      const { body } = await submit({ gatewayId: gatewayA.id, mode: 'file' });
      await stream.nextOf('command');
      await gatewayPost(t!.url, gatewayA.token, body.id, 'ack');
      ids.push(body.id);
    }
    const [big, waiting] = ids as [string, string];
    const files = [randomBytesOf(3 * chunkSize + 10, 11), randomBytesOf(3 * chunkSize + 20, 12)];
    const chunk = (file: Uint8Array, index: number) =>
      file.subarray(index * chunkSize, (index + 1) * chunkSize);
    for (const index of [0, 1, 2]) {
      expect((await putChunk(t!.url, gatewayA.token, big, index, chunk(files[0]!, index))).status).toBe(201);
    }
    expect(occupancy().classes).toMatchObject({ medium: { inUse: 1 }, large: { inUse: 1 } });
    for (const index of [0, 1]) {
      expect((await putChunk(t!.url, gatewayA.token, waiting, index, chunk(files[1]!, index))).status).toBe(
        201,
      );
    }
    const refused = await putChunk(t!.url, gatewayA.token, waiting, 2, chunk(files[1]!, 2));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(await refused.json()).toMatchObject({
      code: 'too-many-requests',
      admissionClass: 'large',
      scope: 'server',
    });
    // Nothing of the refused chunk was stored, and the file keeps its medium slot.
    const receipt = await getJson(`${t!.url}/v1/gateway/commands/${waiting}/chunks`, gatewayA.token);
    expect(receipt.body).toMatchObject({ contiguous: 2, buffered: [] });
    expect(Object.keys((receipt.body as { checksums: object }).checksums)).toEqual(['0', '1']);
    expect(occupancy().classes).toMatchObject({ medium: { inUse: 1 }, large: { inUse: 1 } });

    const complete = async (id: string, file: Uint8Array) =>
      gatewayPost(t!.url, gatewayA.token, id, 'complete', {
        kind: 'file',
        format: 'parquet',
        size: file.length,
        checksum: await xxhash(file),
        rowCount: 1,
        chunkCount: 4,
      });
    expect((await putChunk(t!.url, gatewayA.token, big, 3, chunk(files[0]!, 3))).status).toBe(201);
    expect((await complete(big, files[0]!)).status).toBe(200);
    expect(occupancy().classes).toMatchObject({ medium: { inUse: 1 }, large: { inUse: 0 } });

    for (const index of [2, 3]) {
      expect((await putChunk(t!.url, gatewayA.token, waiting, index, chunk(files[1]!, index))).status).toBe(
        201,
      );
    }
    const done = await complete(waiting, files[1]!);
    expect(done.status).toBe(200);
    const url = ((await done.json()) as { result: { url: string } }).result.url;
    expect(new Uint8Array(await (await fetch(url)).arrayBuffer())).toEqual(files[1]);
    expect(inUse()).toEqual([0, 0, 0]);
  });

  it('moves an auto query from small to medium at its first chunk', async () => {
    await start({ small: 1, medium: 1 });
    const stream = await open(gatewayA.token);
    const { body } = await submit({ gatewayId: gatewayA.id, mode: 'auto' });
    await stream.nextOf('command');
    await gatewayPost(t!.url, gatewayA.token, body.id, 'ack');
    expect(inUse()).toEqual([1, 0, 0]);
    expect((await putChunk(t!.url, gatewayA.token, body.id, 0, randomBytesOf(100, 5))).status).toBe(201);
    expect(inUse()).toEqual([0, 1, 0]);
    // The small slot it left is free for the next rows query.
    expect((await submit({ gatewayId: gatewayA.id })).response.status).toBe(202);
  });
});

describe('§3.7 with two servers on one store, a slot is freed where it was taken', () => {
  it('a query submitted on one server and answered through the other frees its slot on the first', async () => {
    store = createMemoryCommandStore();
    const options = { store, sweepIntervalMs: 20, admission: { small: 1 } };
    const [a, b] = await Promise.all([startServer(options), startServer(options)]);
    try {
      // The gateway's stream and answers go to b; the caller submits on a.
      const stream = await openCommandStream(b.url, gatewayA.token);
      streams.push(stream);
      await stream.nextOf('hello');
      const submitted = await fetch(`${a.url}/v1/queries`, {
        method: 'POST',
        headers: { ...auth(callerToken), 'content-type': 'application/json' },
        body: JSON.stringify({ gatewayId: gatewayA.id, sql: 'select 1', mode: 'rows' }),
      });
      const { id } = (await submitted.json()) as { id: string };
      expect(a.server.admission().classes.small.inUse).toBe(1);
      // b sends it from its sweep (it holds the stream); the answers reach b only.
      expect(JSON.parse((await stream.nextOf('command')).data).id).toBe(id);
      expect((await gatewayPost(b.url, gatewayA.token, id, 'ack')).status).toBe(204);
      const done = await gatewayPost(b.url, gatewayA.token, id, 'complete', {
        kind: 'rows',
        rowCount: 0,
        batchCount: 0,
      });
      expect(done.status).toBe(200);
      // a never saw the completion; its sweep finds the query ended and frees the slot.
      await waitFor(() => a.server.admission().classes.small.inUse === 0);
      expect(b.server.admission().classes.small.inUse).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

import { connect } from 'node:net';
import {
  type CommandStore,
  type CredentialStore,
  createMemoryCommandStore,
  createMemoryCredentialStore,
} from '@backhaul/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  dispatchedCommand,
  type EventStream,
  gatewayA,
  gatewayPost,
  getJson,
  openCommandStream,
  placeholderFileCompletion,
  putChunk,
  randomBytesOf,
  startServer,
  submit,
  type TestServer,
  waitFor,
} from './helpers.js';

/**
 * The authentication side of the hostile-input suite: forged credentials, answers replayed to a
 * command that is over, and one gateway reaching for another's command, with gateways enrolled
 * through the admin API (static gateways: credentials.test.ts). Every refusal is checked against
 * the stored record: not one field of it may change.
 */

const adminToken = 'admin-token-for-hostile-tests';
let t: TestServer;
let store: CommandStore;
/** A second server on the same enrolments whose commands expire fast, for answers to expired ones. */
let expiring: TestServer;
let expiringStore: CommandStore;
let credentialStore: CredentialStore;
const streams: EventStream[] = [];
let enrolledA = { id: 'gw-enrolled-a', token: '' };
let enrolledB = { id: 'gw-enrolled-b', token: '' };

beforeAll(async () => {
  store = createMemoryCommandStore();
  expiringStore = createMemoryCommandStore();
  credentialStore = createMemoryCredentialStore();
  const shared = { adminTokens: [adminToken], chunkSize: 1024, credentialStore };
  t = await startServer({ ...shared, store });
  expiring = await startServer({ ...shared, store: expiringStore, delivery: { completionTimeoutMs: 200 } });
  const enrol = async (gatewayId: string) => {
    const response = await fetch(`${t.url}/v1/admin/gateways`, {
      method: 'POST',
      headers: { ...auth(adminToken), 'content-type': 'application/json' },
      body: JSON.stringify({ gatewayId }),
    });
    return { id: gatewayId, token: ((await response.json()) as { token: string }).token };
  };
  enrolledA = await enrol(enrolledA.id);
  enrolledB = await enrol(enrolledB.id);
});
afterAll(async () => {
  for (const stream of streams) stream.close();
  await t?.close();
  await expiring?.close();
  await store?.close();
  await expiringStore?.close();
  await credentialStore?.close();
});

async function command(mode: 'rows' | 'file', gateway = enrolledA, on = t) {
  const dispatched = await dispatchedCommand(on.url, mode, gateway);
  streams.push(dispatched.stream);
  return dispatched.id;
}

/** Every answer a gateway can send about a command, as one gateway's token sends it. */
function everyAnswer(token: string, id: string, on = t) {
  const base = on.url;
  return {
    ack: () => gatewayPost(base, token, id, 'ack'),
    progress: () => gatewayPost(base, token, id, 'progress', { rows: 7 }),
    rows: () => gatewayPost(base, token, id, 'rows', { seq: 0, columns: [], rows: [[1]] }),
    chunk: () => putChunk(base, token, id, 0, randomBytesOf(1024, 9)),
    chunks: () => fetch(`${base}/v1/gateway/commands/${id}/chunks`, { headers: auth(token) }),
    complete: () => gatewayPost(base, token, id, 'complete', placeholderFileCompletion),
    fail: () => gatewayPost(base, token, id, 'fail', { code: 'query-failed', message: 'replayed' }),
  };
}

/**
 * One HTTP/1.1 request written byte for byte on a socket, so a header may carry what fetch would
 * refuse to send (control bytes, Latin-1), as a hostile client would.
 */
function rawRequest(method: string, path: string, headers: Record<string, string>) {
  const { port } = new URL(t.url);
  const lines = [
    `${method} ${path} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    'connection: close',
    'content-length: 0',
  ];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.end(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')),
    );
    const pieces: Buffer[] = [];
    socket.on('data', (piece) => pieces.push(piece));
    socket.once('error', reject);
    socket.once('close', () => {
      const text = Buffer.concat(pieces).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({
        status,
        code: body.startsWith('{') ? (JSON.parse(body) as { code?: string }).code : undefined,
      });
    });
  });
}

async function answer(response: Response) {
  const text = await response.text();
  return { status: response.status, code: text ? (JSON.parse(text) as { code?: string }).code : undefined };
}

describe('§1 a forged credential is refused with 401, whatever its shape', () => {
  it('no token, a truncated or extended real token, another scheme, garbage and a huge token: 401 on gateway, caller and admin endpoints', async () => {
    const real = enrolledA.token;
    const forged: Record<string, string>[] = [
      {},
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: `Bearer ${real.slice(0, -1)}` },
      { authorization: `Bearer ${real}x` },
      { authorization: `Bearer ${real.toUpperCase()}` },
      { authorization: `Bearer ${real} ${real}` },
      { authorization: real },
      { authorization: `Token ${real}` },
      { authorization: `Basic ${Buffer.from(`${enrolledA.id}:${real}`).toString('base64')}` },
      { authorization: 'Bearer \u00ff\u00fe\u00e9garbage' },
      { authorization: `Bearer ${'A'.repeat(8000)}` },
      { 'x-backhaul-token': real },
    ];
    const endpoints: [string, string][] = [
      ['GET', '/v1/gateway/commands'],
      ['POST', '/v1/gateway/commands/any-id/ack'],
      ['GET', '/v1/queries/any-id'],
      ['GET', '/v1/admin/gateways'],
    ];
    for (const headers of forged) {
      for (const [method, path] of endpoints) {
        const got = await rawRequest(method, path, headers);
        const header = headers.authorization?.slice(0, 40);
        expect({ header, path, ...got }).toEqual({ header, path, status: 401, code: 'unauthorized' });
      }
    }
    // Control bytes in a header never reach the handler: Node's HTTP parser answers 400 itself,
    // and the server goes on serving.
    const control = await rawRequest('GET', '/v1/gateway/commands', {
      authorization: `Bearer ${real}\u0001`,
    });
    expect(control.status).toBe(400);
    expect((await rawRequest('GET', '/v1/gateway/commands', {})).status).toBe(401);
  });
});

describe('§5 answers replayed to a command that is over change nothing, and say why', () => {
  it('a second ack is accepted and changes nothing (§5.1 idempotent)', async () => {
    const id = await command('rows');
    const before = await store.get(id);
    expect(before?.state).toBe('acknowledged');
    expect((await gatewayPost(t.url, enrolledA.token, id, 'ack')).status).toBe(204);
    expect(await store.get(id)).toEqual(before);
  });

  it('on a completed command: ack and the same completion again are no-ops, every other answer is 409 invalid-state; the record stays', async () => {
    const id = await command('rows');
    expect(
      (await gatewayPost(t.url, enrolledA.token, id, 'rows', { seq: 0, columns: [], rows: [[1]] })).status,
    ).toBe(204);
    const completed = await gatewayPost(t.url, enrolledA.token, id, 'complete', {
      kind: 'rows',
      rowCount: 1,
      batchCount: 1,
    });
    expect(completed.status).toBe(200);
    const before = await store.get(id);
    expect(before?.state).toBe('completed');

    const replay = everyAnswer(enrolledA.token, id);
    expect(await answer(await replay.ack())).toEqual({ status: 204, code: undefined });
    expect(
      (
        await answer(
          await gatewayPost(t.url, enrolledA.token, id, 'complete', {
            kind: 'rows',
            rowCount: 1,
            batchCount: 1,
          }),
        )
      ).status,
    ).toBe(200);
    for (const name of ['progress', 'rows', 'chunk', 'fail'] as const) {
      expect({ name, ...(await answer(await replay[name]())) }).toEqual({
        name,
        status: 409,
        code: 'invalid-state',
      });
    }
    expect(await store.get(id)).toEqual(before);
  });

  it('on an expired command: ack is a no-op, progress, rows, chunks, completion and failure are 409 invalid-state; the record stays', async () => {
    const id = await command('file', enrolledA, expiring);
    const before = await waitFor(async () => {
      const record = await expiringStore.get(id);
      return record?.state === 'expired' ? record : undefined;
    }, 20_000);
    const replay = everyAnswer(enrolledA.token, id, expiring);
    expect(await answer(await replay.ack())).toEqual({ status: 204, code: undefined });
    for (const name of ['progress', 'chunk', 'complete', 'fail'] as const) {
      expect({ name, ...(await answer(await replay[name]())) }).toEqual({
        name,
        status: 409,
        code: 'invalid-state',
      });
    }
    expect(await expiringStore.get(id)).toEqual(before);
    // The caller reads why it ended.
    const { body } = await getJson(`${expiring.url}/v1/queries/${id}`, callerToken);
    expect(body).toMatchObject({ state: 'expired' });
  });
});

describe("§1 an enrolled gateway MUST only see and answer its own commands: 403 on another's, 404 on none; nothing changes", () => {
  it("gateway B's token on gateway A's command: ack, progress, rows, chunk, GET chunks, complete, fail are 403; the record is unchanged", async () => {
    const fileId = await command('file');
    expect((await putChunk(t.url, enrolledA.token, fileId, 0, randomBytesOf(1024, 1))).status).toBe(201);
    const pending = (await submit(t.url, { gatewayId: enrolledA.id, sql: 'select 2', mode: 'rows' })).view.id;

    for (const id of [fileId, pending]) {
      const before = await store.get(id);
      const receiptBefore = await answer(
        await fetch(`${t.url}/v1/gateway/commands/${fileId}/chunks`, { headers: auth(enrolledA.token) }),
      );
      const foreign = everyAnswer(enrolledB.token, id);
      for (const [name, send] of Object.entries(foreign)) {
        expect({ id, name, ...(await answer(await send())) }).toEqual({
          id,
          name,
          status: 403,
          code: 'forbidden',
        });
      }
      expect(await store.get(id)).toEqual(before);
      const receiptAfter = await answer(
        await fetch(`${t.url}/v1/gateway/commands/${fileId}/chunks`, { headers: auth(enrolledA.token) }),
      );
      expect(receiptAfter).toEqual(receiptBefore);
    }
    // B's own stream never saw A's commands.
    const onB = await openCommandStream(t.url, enrolledB.token);
    streams.push(onB);
    await onB.nextOf('hello');
    expect(onB.drain().filter((message) => message.event === 'command')).toEqual([]);
  });

  it('a command that does not exist is 404 for every answer, and a configured gateway is refused on an enrolled one’s command', async () => {
    for (const [name, send] of Object.entries(everyAnswer(enrolledB.token, 'no-such-command'))) {
      expect({ name, ...(await answer(await send())) }).toEqual({ name, status: 404, code: 'not-found' });
    }
    const id = await command('rows');
    const before = await store.get(id);
    expect(await answer(await gatewayPost(t.url, gatewayA.token, id, 'ack'))).toEqual({
      status: 403,
      code: 'forbidden',
    });
    expect(await store.get(id)).toEqual(before);
  });
});

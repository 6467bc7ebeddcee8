import { type CommandRecord, type CommandStore, createMemoryCommandStore } from '@backhaul/core';
import type { BackhaulServerOptions } from '@backhaul/server-node';
import { afterEach, describe, expect, it } from 'vitest';
import { auth, callerToken, gatewayA, gatewayPost, startServer, type TestServer } from './helpers.js';

/**
 * docs/protocol.md §3.1: `POST /v1/queries` with an `Idempotency-Key`. A repeat returns the
 * command the key created (202, `Idempotent-Replayed: true`) and creates nothing; another query
 * under the same key is 422; keys are per caller; a malformed key is 400; concurrent first
 * requests create one command; a replay takes no admission slot and a 429 leaves the key free.
 */

const otherCaller = 'caller-two-token-0123456789';

let servers: TestServer[] = [];
let store: CommandStore | undefined;
afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
  await store?.close();
  store = undefined;
});

async function start(overrides: Partial<BackhaulServerOptions> = {}, count = 1, heldLookups = 0) {
  store = lookupsHeldTogether(createMemoryCommandStore(), heldLookups);
  servers = await Promise.all(
    Array.from({ length: count }, () =>
      startServer({ store, callerTokens: [callerToken, otherCaller], ...overrides }),
    ),
  );
  return servers[0]!;
}

/**
 * The real memory store, but its first `count` key lookups are answered only once all of them
 * have been asked: concurrent requests then all find the key free and race to claim it, rather
 * than the later ones finding the first one's claim. Everything else passes straight through.
 */
function lookupsHeldTogether(inner: CommandStore, count: number): CommandStore {
  const waiting: (() => void)[] = [];
  let held = 0;
  return {
    ...inner,
    async findClaim(callerId, key) {
      const answer = await inner.findClaim(callerId, key);
      if (held < count) {
        held++;
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === count) for (const release of waiting.splice(0)) release();
        });
      }
      return answer;
    },
  };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { id: string; state: string; code?: string };
}

async function post(
  server: TestServer,
  body: unknown,
  key: string | undefined,
  token = callerToken,
): Promise<Answer> {
  const headers = new Headers({ ...auth(token), 'content-type': 'application/json' });
  if (key !== undefined) headers.set('idempotency-key', key);
  const response = await fetch(`${server.url}/v1/queries`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Answer['body'],
  };
}

const query = { gatewayId: gatewayA.id, sql: 'SELECT id FROM items WHERE id > ?', params: [7], mode: 'rows' };

/** Every command of gateway A the store holds (none is sent: no gateway is connected). */
const persisted = async (): Promise<CommandRecord[]> => store!.listUndelivered(gatewayA.id);

describe('§3.1 Idempotency-Key on POST /v1/queries', () => {
  it('the same key twice creates one command; both answers are 202 with its id, the repeat marked replayed', async () => {
    const server = await start();
    const first = await post(server, query, 'retry-me-1');
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(first.body.state).toBe('pending');

    const again = await post(server, query, 'retry-me-1');
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/queries/${first.body.id}`);
    expect(again.body).toEqual(first.body);

    // The same query written another way (member order, whitespace) under the quoted form of the
    // key is still the same request.
    const reordered = `{ "mode": "rows", "params": [7], "sql": "${query.sql}", "gatewayId": "${gatewayA.id}" }`;
    const quoted = await post(server, reordered, '"retry-me-1"');
    expect(quoted.status).toBe(202);
    expect(quoted.body.id).toBe(first.body.id);

    expect((await persisted()).map((r) => r.id)).toEqual([first.body.id]);
  });

  it('the same key with a different query: 422 idempotency-key-reused, nothing created', async () => {
    const server = await start();
    const first = await post(server, query, 'one-key');
    const other = await post(server, { ...query, params: [8] }, 'one-key');
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect(other.body).toMatchObject({
      type: 'https://backhaul.dev/problems/idempotency-key-reused',
      status: 422,
      code: 'idempotency-key-reused',
      retryable: false,
    });
    expect((await persisted()).map((r) => r.id)).toEqual([first.body.id]);
  });

  it('two callers using the same key get two commands', async () => {
    const server = await start();
    const mine = await post(server, query, 'shared-looking-key');
    const theirs = await post(server, query, 'shared-looking-key', otherCaller);
    expect([mine.status, theirs.status]).toEqual([202, 202]);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    expect(theirs.body.id).not.toBe(mine.body.id);
    expect((await persisted()).map((r) => r.id).sort()).toEqual([mine.body.id, theirs.body.id].sort());
  });

  it.each([
    ['empty', ''],
    ['empty quotes', '""'],
    ['256 characters', 'k'.repeat(256)],
    ['a space', 'two words'],
    ['a comma (the header sent twice)', 'first, second'],
    ['a backslash', 'back\\slash'],
    ['an unbalanced quote', '"open'],
  ])('a malformed key (%s) is 400 bad-request and creates nothing', async (_, key) => {
    const server = await start();
    const answer = await post(server, query, key);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'bad-request', header: 'Idempotency-Key' });
    expect(await persisted()).toEqual([]);
  });

  it('a key of 255 visible characters is accepted', async () => {
    const server = await start();
    const key = `${'x'.repeat(250)}:/=+~`;
    expect((await post(server, query, key)).status).toBe(202);
    expect((await post(server, query, key)).headers.get('idempotent-replayed')).toBe('true');
    expect(await persisted()).toHaveLength(1);
  });

  it('10 concurrent submits with one key, spread over two servers sharing the store, all finding the key free: one command, all ten answers name it', async () => {
    await start({}, 2, 10);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post(servers[i % 2]!, query, 'concurrent-key')),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    const ids = new Set(answers.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    expect((await persisted()).map((r) => r.id)).toEqual([...ids]);
    // The losers' slots went back: only the one command holds one.
    const inUse = servers.map((s) => s.server.admission().classes.small.inUse);
    expect(inUse.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('10 concurrent submits with one key on a server with one slot, all finding the key free: all ten are answered 202 with the one command, none 429', async () => {
    const server = await start({ admission: { small: 1, gatewayShare: 1, callerShare: 1 } }, 1, 10);
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(server, query, 'one-slot-key')));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(await persisted()).toHaveLength(1);
    expect(server.server.admission().classes.small).toEqual({ limit: 1, inUse: 1, queued: 0 });
  });

  it('a replay takes no admission slot, and a key refused with 429 is not burned', async () => {
    const server = await start({ admission: { small: 1, gatewayShare: 1, callerShare: 1 } });
    const first = await post(server, query, 'first-key');
    expect(first.status).toBe(202);
    // The one small slot is taken; the repeat still answers, without a second slot.
    const again = await post(server, query, 'first-key');
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(server.server.admission().classes.small).toEqual({ limit: 1, inUse: 1, queued: 0 });

    const refused = await post(server, { ...query, sql: 'SELECT 2' }, 'second-key');
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('too-many-requests');

    // The first query ends and frees its slot: the refused request, retried with its key, now
    // creates its command (a burned key would have answered 422 or an empty replay).
    expect((await gatewayPost(server.url, gatewayA.token, first.body.id, 'ack')).status).toBe(204);
    const done = await gatewayPost(server.url, gatewayA.token, first.body.id, 'complete', {
      kind: 'rows',
      rowCount: 0,
      batchCount: 0,
    });
    expect(done.status).toBe(200);
    const retried = await post(server, { ...query, sql: 'SELECT 2' }, 'second-key');
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(retried.body.id).not.toBe(first.body.id);
    expect((await persisted()).map((r) => r.id)).toEqual([retried.body.id]);
  });

  it('a queued query (whenBusy: queue) is remembered under its key like any other', async () => {
    const server = await start({ admission: { small: 1, gatewayShare: 1, callerShare: 1 } });
    await post(server, query, undefined);
    const body = { ...query, whenBusy: 'queue' };
    const queued = await post(server, body, 'queued-key');
    expect(queued.body.state).toBe('queued');
    const again = await post(server, body, 'queued-key');
    expect(again.body.id).toBe(queued.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(server.server.admission().classes.small).toEqual({ limit: 1, inUse: 1, queued: 1 });
  });

  it('a key is forgotten after idempotencyKeyRetentionMs: it then creates a new command', async () => {
    const server = await start({ idempotencyKeyRetentionMs: 50 });
    const first = await post(server, query, 'short-lived');
    // Polled, not timed: repeat until the key is gone (a repeat inside the window creates nothing).
    const deadline = Date.now() + 10_000;
    let later: Answer;
    do {
      if (Date.now() > deadline) throw new Error('the key was still remembered after 10 s');
      await new Promise((resolve) => setTimeout(resolve, 25));
      later = await post(server, query, 'short-lived');
    } while (later.body.id === first.body.id);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect((await persisted()).map((r) => r.id).sort()).toEqual([first.body.id, later.body.id].sort());
  });
});

import { createHash } from 'node:crypto';
import { type CredentialStore, createMemoryCommandStore, createMemoryCredentialStore } from '@backhaul/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  auth,
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

/** docs/protocol.md §10: the admin API, over HTTP against real servers. */

const adminToken = 'admin-token-0123456789';
const adminAuth = auth(adminToken);

const servers: TestServer[] = [];
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(overrides: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer({ adminTokens: [adminToken], tokenRecheckMs: 50, ...overrides });
  servers.push(server);
  return server;
}

async function admin(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = adminAuth,
) {
  const response = await fetch(`${base}/v1/admin${path}`, {
    method,
    headers: { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    text,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

interface Issued {
  gatewayId: string;
  tokenId: string;
  token: string;
  createdAt: string;
}

async function enrol(base: string, gatewayId: string): Promise<Issued> {
  const answer = await admin(base, 'POST', '/gateways', { gatewayId });
  expect(answer.status, answer.text).toBe(201);
  return answer.body as unknown as Issued;
}

async function issueToken(base: string, gatewayId: string): Promise<Issued> {
  const answer = await admin(base, 'POST', `/gateways/${gatewayId}/tokens`);
  expect(answer.status, answer.text).toBe(201);
  return answer.body as unknown as Issued;
}

async function openOn(base: string, token: string) {
  const stream = await openCommandStream(base, token);
  streams.push(stream);
  return stream;
}

/** Resolves once the stream has ended (the server closed it); fails if an event arrives first. */
async function ended(stream: EventStream, timeoutMs = 10_000): Promise<string> {
  try {
    const event = await stream.next(timeoutMs);
    return `an event arrived instead: ${event.event}`;
  } catch (error) {
    return (error as Error).message;
  }
}

describe('§10.1 enrolling a gateway answers 201 with its token, shown only this once', () => {
  it('the token opens a command stream and answers a command; listings show token IDs, never a token or its hash', async () => {
    const t = await start();
    const issued = await enrol(t.url, 'gw-enrolled');
    expect(issued).toEqual({
      gatewayId: 'gw-enrolled',
      tokenId: expect.stringMatching(/^tok-[0-9a-f]{12}$/),
      token: expect.stringMatching(/^bhg_[A-Za-z0-9_-]{43}$/),
      createdAt: expect.any(String),
    });

    const stream = await openOn(t.url, issued.token);
    expect(stream.status).toBe(200);
    expect(JSON.parse((await stream.nextOf('hello')).data)).toMatchObject({ gatewayId: 'gw-enrolled' });
    const { response, view } = await submit(t.url, { gatewayId: 'gw-enrolled', sql: 'select 1' });
    expect(response.status).toBe(202);
    const command = await stream.nextOf('command');
    expect(command.id).toBe(view.id);
    expect((await gatewayPost(t.url, issued.token, view.id, 'ack')).status).toBe(204);
    expect((await getJson(`${t.url}/v1/queries/${view.id}`, callerToken)).body).toMatchObject({
      state: 'acknowledged',
    });

    const listed = await admin(t.url, 'GET', '/gateways');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      gateways: [
        {
          gatewayId: 'gw-enrolled',
          createdAt: issued.createdAt,
          tokens: [{ id: issued.tokenId, createdAt: issued.createdAt }],
        },
      ],
    });
    const one = await admin(t.url, 'GET', '/gateways/gw-enrolled');
    expect(one.body).toEqual((listed.body as { gateways: unknown[] }).gateways[0]);
    const secret = issued.token.slice(4);
    const hash = createHash('sha256').update(issued.token).digest('hex');
    for (const text of [listed.text, one.text]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hash);
    }
  });

  it('answers 409 to an enrolled or configured gateway, 400 to a bad body or ID, 404 to an unknown gateway or token', async () => {
    const t = await start();
    await enrol(t.url, 'gw-once');
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/gateways', { gatewayId: 'gw-once' }, 409, 'conflict'],
      ['POST', '/gateways', { gatewayId: gatewayA.id }, 409, 'conflict'],
      ['POST', '/gateways', { gatewayId: '../etc' }, 400, 'invalid-message'],
      ['POST', '/gateways', { gatewayId: 'gw-x', extra: true }, 400, 'invalid-message'],
      ['POST', '/gateways', '{"gatewayId": ', 400, 'invalid-message'],
      ['POST', '/gateways', {}, 400, 'invalid-message'],
      ['GET', '/gateways/gw-missing', undefined, 404, 'not-found'],
      ['DELETE', '/gateways/gw-missing', undefined, 404, 'not-found'],
      ['POST', '/gateways/gw-missing/tokens', undefined, 404, 'not-found'],
      ['POST', '/gateways/gw-once/tokens/tok-missing/revoke', undefined, 404, 'not-found'],
      ['POST', '/gateways/gw-once/tokens/..%2F/revoke', undefined, 400, 'invalid-message'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const answer = await admin(t.url, method, path, body);
      expect({ method, path, status: answer.status, code: answer.body?.code }).toEqual({
        method,
        path,
        status,
        code,
      });
      expect(answer.type).toBe('application/problem+json');
    }
    // Nothing of the refused requests was stored.
    const listed = (await admin(t.url, 'GET', '/gateways')).body as {
      gateways: { gatewayId: string; tokens: unknown[] }[];
    };
    expect(listed.gateways.map((g) => [g.gatewayId, g.tokens.length])).toEqual([['gw-once', 1]]);
  });
});

describe('§10 only an admin token opens the admin API; an admin token reads queries but submits nothing', () => {
  it('401 without or with an unknown token, 403 with a caller or gateway token; an admin token on gateway endpoints and on submit is 403', async () => {
    const t = await start();
    const issued = await enrol(t.url, 'gw-roles');
    const adminEndpoints: [string, string][] = [
      ['POST', '/gateways'],
      ['GET', '/gateways'],
      ['GET', '/gateways/gw-roles'],
      ['DELETE', '/gateways/gw-roles'],
      ['POST', '/gateways/gw-roles/tokens'],
      ['POST', `/gateways/gw-roles/tokens/${issued.tokenId}/revoke`],
    ];
    const refusals: [Record<string, string>, number][] = [
      [{}, 401],
      [auth('not-a-token'), 401],
      [auth(callerToken), 403],
      [auth(gatewayA.token), 403],
      [auth(issued.token), 403],
    ];
    for (const [method, path] of adminEndpoints) {
      for (const [headers, status] of refusals) {
        const body = method === 'POST' ? { gatewayId: 'gw-other' } : undefined;
        const answer = await admin(t.url, method, path, body, headers);
        expect({ method, path, status: answer.status }).toEqual({ method, path, status });
      }
    }
    // The refused DELETE and revoke changed nothing: the gateway and its one valid token remain.
    expect((await admin(t.url, 'GET', '/gateways/gw-roles')).body).toMatchObject({
      tokens: [{ id: issued.tokenId }],
    });
    expect(
      ((await admin(t.url, 'GET', '/gateways/gw-roles')).body as { tokens: object[] }).tokens[0],
    ).not.toHaveProperty('revokedAt');

    const { view } = await submit(t.url, { gatewayId: 'gw-roles', sql: 'select 1' });
    for (const [method, path] of [
      ['GET', '/v1/gateway/commands'],
      ['POST', `/v1/gateway/commands/${view.id}/ack`],
      ['POST', '/v1/queries'],
    ]) {
      const response = await fetch(`${t.url}${path}`, {
        method,
        headers: { ...adminAuth, 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
      expect({ path, status: response.status }).toEqual({ path, status: 403 });
      expect(((await response.json()) as { code: string }).code).toBe('forbidden');
    }
    // Admins see every caller's queries (docs/security.md, "Caller isolation").
    expect((await fetch(`${t.url}/v1/queries/${view.id}`, { headers: adminAuth })).status).toBe(200);
    expect((await fetch(`${t.url}/v1/gateways`, { headers: adminAuth })).status).toBe(200);
    // And an enrolled gateway token is a gateway token: 403 on caller endpoints, not 401.
    expect((await fetch(`${t.url}/v1/gateways`, { headers: auth(issued.token) })).status).toBe(403);
  });

  it('a server without admin tokens refuses the admin API with 401 and keeps serving configured gateways', async () => {
    const t = await startServer();
    servers.push(t);
    expect((await admin(t.url, 'GET', '/gateways')).status).toBe(401);
    const stream = await openOn(t.url, gatewayA.token);
    expect(JSON.parse((await stream.nextOf('hello')).data)).toMatchObject({ gatewayId: gatewayA.id });
  });
});

describe('§10.4 a revocation racing a stream that is being opened', () => {
  it('a token revoked between its check and the opening of its stream: the stream ends at once, not at the next re-check', async () => {
    // The credential store answers the first lookup of the token as valid and then revokes it,
    // as if the admin API's revocation landed right after the stream's check.
    const inner = createMemoryCredentialStore();
    let trap: { sha256: string; gatewayId: string; tokenId: string } | undefined;
    const racing: CredentialStore = Object.create(inner, {
      findActiveToken: {
        value: async (sha256: string) => {
          const found = await inner.findActiveToken(sha256);
          if (trap && found && sha256 === trap.sha256) {
            const { gatewayId, tokenId } = trap;
            trap = undefined;
            await inner.revokeToken(gatewayId, tokenId, Date.now());
          }
          return found;
        },
      },
    });
    const t = await start({ credentialStore: racing, tokenRecheckMs: 60_000 });
    const issued = await enrol(t.url, 'gw-race');
    trap = {
      sha256: createHash('sha256').update(issued.token).digest('hex'),
      gatewayId: issued.gatewayId,
      tokenId: issued.tokenId,
    };
    const stream = await openOn(t.url, issued.token);
    await stream.nextOf('hello');
    expect(trap).toBeUndefined(); // the first lookup was the one that raced
    expect(await ended(stream)).toBe('the stream ended');
    expect((await fetch(`${t.url}/v1/gateway/commands`, { headers: auth(issued.token) })).status).toBe(401);
    await inner.close();
  });
});

describe('§10.3 rotation: the old and the new token are both valid until the old one is revoked', () => {
  it('both tokens answer; revoking the old one ends its live stream at once, refuses it with 401, and the new one keeps working', async () => {
    const t = await start({ tokenRecheckMs: 60_000 }); // the revoking server needs no re-check
    const old = await enrol(t.url, 'gw-rotate');
    const fresh = await issueToken(t.url, 'gw-rotate');
    expect(fresh.tokenId).not.toBe(old.tokenId);

    const oldStream = await openOn(t.url, old.token);
    await oldStream.nextOf('hello');
    const { view } = await submit(t.url, { gatewayId: 'gw-rotate', sql: 'select 1' });
    expect((await oldStream.nextOf('command')).id).toBe(view.id);
    // The new token answers the command the old token's stream received: same gateway.
    expect((await gatewayPost(t.url, fresh.token, view.id, 'ack')).status).toBe(204);
    expect((await gatewayPost(t.url, old.token, view.id, 'progress', { rows: 1 })).status).toBe(204);

    const revoked = await admin(t.url, 'POST', `/gateways/gw-rotate/tokens/${old.tokenId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({
      id: old.tokenId,
      createdAt: old.createdAt,
      revokedAt: expect.any(String),
    });
    expect(await ended(oldStream)).toBe('the stream ended');

    const refused = await gatewayPost(t.url, old.token, view.id, 'progress', { rows: 2 });
    expect(refused.status).toBe(401);
    expect((await openCommandStream(t.url, old.token)).status).toBe(401);
    expect((await gatewayPost(t.url, fresh.token, view.id, 'progress', { rows: 3 })).status).toBe(204);
    expect((await getJson(`${t.url}/v1/queries/${view.id}`, callerToken)).body).toMatchObject({
      progress: { rows: 3 },
    });

    const listed = (await admin(t.url, 'GET', '/gateways/gw-rotate')).body as {
      tokens: { id: string; revokedAt?: string }[];
    };
    expect(listed.tokens.map((token) => [token.id, token.revokedAt !== undefined])).toEqual([
      [old.tokenId, true],
      [fresh.tokenId, false],
    ]);
  });
});

describe('§10.4 a revocation through one server ends the streams on every server sharing the credential store', () => {
  async function twoServers() {
    const credentialStore: CredentialStore = createMemoryCredentialStore();
    const store = createMemoryCommandStore();
    const a = await start({ credentialStore, store });
    const b = await start({ credentialStore, store });
    return { a, b };
  }

  it('revoked through A: the stream on B ends within B’s re-check interval, B refuses the token, and the gateway gets no command', async () => {
    const { a, b } = await twoServers();
    const issued = await enrol(a.url, 'gw-shared');
    const onB = await openOn(b.url, issued.token);
    await onB.nextOf('hello');

    expect((await admin(a.url, 'POST', `/gateways/gw-shared/tokens/${issued.tokenId}/revoke`)).status).toBe(
      200,
    );
    expect(await ended(onB)).toBe('the stream ended');
    expect((await openCommandStream(b.url, issued.token)).status).toBe(401);

    const { view } = await submit(b.url, { gatewayId: 'gw-shared', sql: 'select 1' });
    expect((await gatewayPost(b.url, issued.token, view.id, 'ack')).status).toBe(401);
    expect((await getJson(`${b.url}/v1/queries/${view.id}`, callerToken)).body).toMatchObject({
      state: 'pending',
    });
  });

  it('removed through A: the stream on B ends, every token of the gateway is refused, and queries to it are 404', async () => {
    const { a, b } = await twoServers();
    const first = await enrol(a.url, 'gw-removed');
    const second = await issueToken(b.url, 'gw-removed');
    const onB = await openOn(b.url, second.token);
    await onB.nextOf('hello');

    expect((await admin(a.url, 'DELETE', '/gateways/gw-removed')).status).toBe(204);
    expect(await ended(onB)).toBe('the stream ended');
    for (const token of [first.token, second.token]) {
      expect((await openCommandStream(a.url, token)).status).toBe(401);
      expect((await openCommandStream(b.url, token)).status).toBe(401);
    }
    const { response } = await submit(b.url, { gatewayId: 'gw-removed', sql: 'select 1' });
    expect(response.status).toBe(404);
    expect((await admin(b.url, 'GET', '/gateways/gw-removed')).status).toBe(404);
  });
});

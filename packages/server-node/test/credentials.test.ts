import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auth,
  callerToken,
  dispatchedCommand,
  gatewayA,
  gatewayB,
  gatewayPost,
  getJson,
  placeholderFileCompletion,
  putChunk,
  randomBytesOf,
  startServer,
  submit,
  type TestServer,
} from './helpers.js';

let t: TestServer;
let commandId: string;
let closeStream: () => void;
beforeAll(async () => {
  t = await startServer({ chunkSize: 1024 });
  const { id, stream } = await dispatchedCommand(t.url, 'file');
  commandId = id;
  closeStream = () => stream.close();
  expect((await putChunk(t.url, gatewayA.token, id, 0, randomBytesOf(1024, 1))).status).toBe(201);
});
afterAll(async () => {
  closeStream?.();
  await t?.close();
});

const gatewayEndpoints = () => [
  ['GET', '/v1/gateway/commands'],
  ['POST', `/v1/gateway/commands/${commandId}/ack`],
  ['POST', `/v1/gateway/commands/${commandId}/progress`],
  ['POST', `/v1/gateway/commands/${commandId}/rows`],
  ['PUT', `/v1/gateway/commands/${commandId}/chunks/1`],
  ['GET', `/v1/gateway/commands/${commandId}/chunks`],
  ['POST', `/v1/gateway/commands/${commandId}/complete`],
  ['POST', `/v1/gateway/commands/${commandId}/fail`],
];
const callerEndpoints = () => [
  ['POST', '/v1/queries'],
  ['GET', `/v1/queries/${commandId}`],
  ['GET', `/v1/queries/${commandId}/events`],
  ['GET', `/v1/queries/${commandId}/result`],
  ['GET', '/v1/gateways'],
];

async function call(method: string, path: string, headers: Record<string, string>) {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'GET' ? {} : { body: '{}' }),
  });
  const body = await response.text();
  return { status: response.status, type: response.headers.get('content-type'), body };
}

describe('§1 a request without a valid credential MUST get 401', () => {
  it('refuses every gateway and caller endpoint without a token or with a wrong one', async () => {
    for (const [method, path] of [...gatewayEndpoints(), ...callerEndpoints()] as [string, string][]) {
      for (const headers of [{}, auth('not-a-token'), { authorization: 'Basic Zm9vOmJhcg==' }]) {
        const answer = await call(method, path, headers);
        expect({ method, path, status: answer.status }).toEqual({ method, path, status: 401 });
        expect(answer.type).toBe('application/problem+json');
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'unauthorized', status: 401 });
      }
    }
  });

  it('refuses a gateway token on caller endpoints and a caller token on gateway endpoints', async () => {
    for (const [method, path] of callerEndpoints() as [string, string][]) {
      expect((await call(method, path, auth(gatewayA.token))).status).toBe(403);
    }
    for (const [method, path] of gatewayEndpoints() as [string, string][]) {
      expect((await call(method, path, auth(callerToken))).status).toBe(403);
    }
  });
});

describe('§1 a gateway MUST only see and answer its own commands: 403, and nothing changes', () => {
  it("refuses another gateway's ack, progress, rows, chunks, completion and failure", async () => {
    const before = (await getJson(`${t.url}/v1/queries/${commandId}`, callerToken)).body;
    const chunksBefore = (await getJson(`${t.url}/v1/gateway/commands/${commandId}/chunks`, gatewayA.token))
      .body;
    expect(chunksBefore).toMatchObject({ contiguous: 1, buffered: [] });

    const attempts = [
      gatewayPost(t.url, gatewayB.token, commandId, 'ack'),
      gatewayPost(t.url, gatewayB.token, commandId, 'progress', { rows: 5 }),
      gatewayPost(t.url, gatewayB.token, commandId, 'rows', { seq: 0, rows: [[1]] }),
      putChunk(t.url, gatewayB.token, commandId, 1, randomBytesOf(1024, 2)),
      putChunk(t.url, gatewayB.token, commandId, 0, randomBytesOf(1024, 3)),
      fetch(`${t.url}/v1/gateway/commands/${commandId}/chunks`, { headers: auth(gatewayB.token) }),
      gatewayPost(t.url, gatewayB.token, commandId, 'complete', placeholderFileCompletion),
      gatewayPost(t.url, gatewayB.token, commandId, 'fail', { code: 'query-failed', message: 'no' }),
    ];
    for (const response of await Promise.all(attempts)) {
      expect(response.status).toBe(403);
      expect(((await response.json()) as { code: string }).code).toBe('forbidden');
    }

    const after = (await getJson(`${t.url}/v1/queries/${commandId}`, callerToken)).body;
    expect(after).toEqual(before);
    const chunksAfter = (await getJson(`${t.url}/v1/gateway/commands/${commandId}/chunks`, gatewayA.token))
      .body;
    expect(chunksAfter).toEqual(chunksBefore);
  });
});

describe('§2 every error is application/problem+json; bad input never crashes the server', () => {
  it('answers 400 invalid-message to malformed JSON and to a body that does not match the schema', async () => {
    const malformed = await fetch(`${t.url}/v1/queries`, {
      method: 'POST',
      headers: { ...auth(callerToken), 'content-type': 'application/json' },
      body: '{"gatewayId": ',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toBe('application/problem+json');
    expect(((await malformed.json()) as { code: string }).code).toBe('invalid-message');
    const { response } = await submit(t.url, { gatewayId: 'gw-a' });
    expect(response.status).toBe(400);
  });

  it('answers 404 to an unknown path and 405 to a wrong method', async () => {
    const unknown = await fetch(`${t.url}/v2/whatever`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    const wrongMethod = await fetch(`${t.url}/v1/queries`, { method: 'DELETE', headers: auth(callerToken) });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });
});

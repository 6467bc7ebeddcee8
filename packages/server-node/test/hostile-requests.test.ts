import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRaw, rawExchange, requestHead } from '../../../test/support/raw-http.js';
import {
  auth,
  callerToken,
  dispatchedCommand,
  gatewayA,
  getJson,
  putChunk,
  randomBytesOf,
  startServer,
  type TestServer,
  xxhash,
} from './helpers.js';

/**
 * Requests no honest client sends, over real sockets to a real server: every one is answered
 * with the right problem (docs/protocol.md §2), none is read past its cap, and none changes state.
 */

const chunkSize = 64 * 1024;
const maxJsonBodyBytes = 256 * 1024;

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ chunkSize, maxJsonBodyBytes });
});
afterAll(() => t?.close());

async function expectProblem(response: Response, status: number, code: string) {
  const text = await response.text();
  expect({ status: response.status, text }).toMatchObject({ status });
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const problem = JSON.parse(text) as { type: string; code: string; status: number };
  expect(problem).toMatchObject({ type: `https://backhaul.dev/problems/${code}`, code, status });
}

function expectRawProblem(
  outcome: { response: { status: number; headers: Record<string, string>; body: string } | undefined },
  status: number,
  code: string,
) {
  expect(outcome.response?.status).toBe(status);
  expect(outcome.response?.headers['content-type']).toBe('application/problem+json');
  expect(JSON.parse(outcome.response?.body ?? '{}')).toMatchObject({
    type: `https://backhaul.dev/problems/${code}`,
    code,
    status,
  });
}

const viewOf = async (id: string) =>
  (await getJson(`${t.url}/v1/queries/${id}`, callerToken)).body as Record<string, unknown>;
const receiptOf = async (id: string) =>
  (await getJson(`${t.url}/v1/gateway/commands/${id}/chunks`, gatewayA.token)).body;

describe('§2 a body past its cap: 413 problem+json, and the rest is never read into memory', () => {
  it('a declared Content-Length past the cap is refused before a byte of the body is sent', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'file');
    const targets = [
      { method: 'POST', path: '/v1/queries', token: callerToken, type: 'application/json' },
      {
        method: 'PUT',
        path: `/v1/gateway/commands/${id}/chunks/0`,
        token: gatewayA.token,
        type: 'application/octet-stream',
        extra: {
          'backhaul-codec': 'identity',
          'backhaul-checksum': '0'.repeat(16),
          'backhaul-raw-length': 1,
        },
      },
      {
        method: 'POST',
        path: `/v1/gateway/commands/${id}/progress`,
        token: gatewayA.token,
        type: 'application/json',
      },
    ];
    for (const target of targets) {
      // 10 GiB announced, nothing sent: the answer cannot have waited for the body.
      const outcome = await rawExchange(
        `${t.url}${target.path}`,
        requestHead(target.method, `${t.url}${target.path}`, {
          ...auth(target.token),
          'content-type': target.type,
          'content-length': 10 * 2 ** 30,
          ...target.extra,
        }),
      );
      expectRawProblem(outcome, 413, 'payload-too-large');
      expect(outcome.response?.headers.connection).toBe('close');
      expect(outcome.closedByServer).toBe(true);
    }
    expect(await receiptOf(id)).toEqual({ contiguous: 0, buffered: [], checksums: {} });
    stream.close();
  });

  it('a chunked body past the cap is cut off: the server stops reading and closes', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'file');
    const url = `${t.url}/v1/gateway/commands/${id}/progress`;
    const connection = await openRaw(url);
    await connection.write(
      requestHead('POST', url, {
        ...auth(gatewayA.token),
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      }),
    );
    const total = 256 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x20);
    const framed = Buffer.concat([
      Buffer.from(`${piece.length.toString(16)}\r\n`),
      piece,
      Buffer.from('\r\n'),
    ]);
    let sent = 0;
    while (sent < total && !connection.response() && !connection.closedByServer()) {
      if (!(await connection.write(framed))) break;
      sent += piece.length;
    }
    await connection.closed;
    expect(connection.response()?.status).toBe(413);
    expect(JSON.parse(connection.response()?.body ?? '{}').code).toBe('payload-too-large');
    // The cap is 64 KiB and a refused body is drained to at most 8 MiB; what else left the client
    // sat in socket buffers. Far from the 256 MiB it wanted to send.
    expect(sent).toBeLessThan(32 * 1024 * 1024);
    stream.close();
  });

  it('a row batch past maxJsonBodyBytes is refused and not kept', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    const rows = Array.from({ length: 40_000 }, (_, i) => [i, 'x'.repeat(8)]);
    const body = JSON.stringify({
      seq: 0,
      columns: [
        { name: 'n', type: 'int64' },
        { name: 's', type: 'string' },
      ],
      rows,
    });
    expect(body.length).toBeGreaterThan(maxJsonBodyBytes);
    const response = await fetch(`${t.url}/v1/gateway/commands/${id}/rows`, {
      method: 'POST',
      headers: { ...auth(gatewayA.token), 'content-type': 'application/json' },
      body,
    });
    await expectProblem(response, 413, 'payload-too-large');
    expect(await viewOf(id)).toMatchObject({ state: 'acknowledged' });
    stream.close();
  });
});

describe('headers past the limit and requests Node cannot parse: a problem, the socket closed', () => {
  it('answers 431 headers-too-large to 64 KiB of headers, closes, and keeps serving', async () => {
    const url = `${t.url}/v1/gateway/commands`;
    const outcome = await rawExchange(
      url,
      requestHead('GET', url, { ...auth(gatewayA.token), 'x-padding': 'a'.repeat(64 * 1024) }),
    );
    expectRawProblem(outcome, 431, 'headers-too-large');
    expect(outcome.closedByServer).toBe(true);
    expect((await fetch(`${t.url}/v1/gateways`, { headers: auth(callerToken) })).status).toBe(200);
  });

  it('answers 400 bad-request to bytes that are not HTTP, and closes', async () => {
    const outcome = await rawExchange(t.url, 'HELLO THERE\r\n\r\n');
    expectRawProblem(outcome, 400, 'bad-request');
    expect(outcome.closedByServer).toBe(true);
  });
});

describe('§2 malformed JSON bodies: 400 invalid-message, and nothing changes', () => {
  it('refuses broken JSON on every gateway answer, and the command stays as it was', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'rows');
    const before = await viewOf(id);
    for (const [action, body] of [
      ['progress', '{"rows":'],
      ['rows', 'not json at all'],
      ['complete', '{"kind":"rows",'],
      ['fail', '[{]'],
    ] as const) {
      const response = await fetch(`${t.url}/v1/gateway/commands/${id}/${action}`, {
        method: 'POST',
        headers: { ...auth(gatewayA.token), 'content-type': 'application/json' },
        body,
      });
      await expectProblem(response, 400, 'invalid-message');
    }
    expect(await viewOf(id)).toEqual(before);
    stream.close();
  });
});

describe('a body of the wrong media type: 415 unsupported-media-type, before it is read', () => {
  it('refuses JSON endpoints sent as text or a form, and a chunk sent as JSON', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'file');
    const before = await viewOf(id);
    const progress = await fetch(`${t.url}/v1/gateway/commands/${id}/progress`, {
      method: 'POST',
      headers: { ...auth(gatewayA.token), 'content-type': 'text/plain' },
      body: '{"rows":5}',
    });
    await expectProblem(progress, 415, 'unsupported-media-type');
    const submit = await fetch(`${t.url}/v1/queries`, {
      method: 'POST',
      headers: { ...auth(callerToken), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'gatewayId=gw-a&sql=select+1',
    });
    await expectProblem(submit, 415, 'unsupported-media-type');
    const chunk = randomBytesOf(100, 3);
    const put = await fetch(`${t.url}/v1/gateway/commands/${id}/chunks/0`, {
      method: 'PUT',
      headers: {
        ...auth(gatewayA.token),
        'content-type': 'application/json',
        'backhaul-codec': 'identity',
        'backhaul-checksum': await xxhash(chunk),
        'backhaul-raw-length': String(chunk.length),
      },
      body: chunk,
    });
    await expectProblem(put, 415, 'unsupported-media-type');
    expect(await receiptOf(id)).toEqual({ contiguous: 0, buffered: [], checksums: {} });
    expect(await viewOf(id)).toEqual(before);
    stream.close();
  });
});

describe('§6.1 every chunk header malformed in turn: 400 or 415 with its problem, nothing stored', () => {
  it('refuses each, and the same index is then accepted whole', async () => {
    const { id, stream } = await dispatchedCommand(t.url, 'file');
    const chunk = randomBytesOf(1000, 4);
    const good = {
      'content-type': 'application/octet-stream',
      'backhaul-codec': 'identity',
      'backhaul-checksum': await xxhash(chunk),
      'backhaul-raw-length': String(chunk.length),
    };
    type Case = {
      what: string;
      index?: string;
      headers: Record<string, string | undefined>;
      status: number;
      code: string;
    };
    const header = (
      what: string,
      headers: Case['headers'],
      status = 400,
      code = 'invalid-message',
    ): Case => ({
      what,
      headers,
      status,
      code,
    });
    const index = (what: string, value: string): Case => ({ ...header(what, {}), index: value });
    const cases: Case[] = [
      header('no codec', { 'backhaul-codec': undefined }),
      header('no checksum', { 'backhaul-checksum': undefined }),
      header('no raw length', { 'backhaul-raw-length': undefined }),
      header('raw length not a number', { 'backhaul-raw-length': 'lots' }),
      header('raw length negative', { 'backhaul-raw-length': '-1000' }),
      header('raw length in exponent form', { 'backhaul-raw-length': '1e3' }),
      header('raw length fractional', { 'backhaul-raw-length': '999.5' }),
      header('raw length huge', { 'backhaul-raw-length': '99999999999999999999' }),
      header('checksum upper-case', { 'backhaul-checksum': good['backhaul-checksum'].toUpperCase() }),
      header('checksum too short', { 'backhaul-checksum': 'abc123' }),
      header('checksum not hex', { 'backhaul-checksum': 'zzzzzzzzzzzzzzzz' }),
      header('unknown codec', { 'backhaul-codec': 'brotli' }, 415, 'unsupported-codec'),
      header('codec name too long', { 'backhaul-codec': 'z'.repeat(200) }),
      index('index not a number', 'first'),
      index('index negative', '-1'),
      index('index huge', '99999999999999999999'),
      index('index past the protocol limit', '1000001'),
      index('index with a leading zero', '00'),
    ];
    for (const bad of cases) {
      const headers: Record<string, string> = { ...auth(gatewayA.token) };
      for (const [name, value] of Object.entries({ ...good, ...bad.headers }))
        if (value !== undefined) headers[name] = value;
      const response = await fetch(`${t.url}/v1/gateway/commands/${id}/chunks/${bad.index ?? '0'}`, {
        method: 'PUT',
        headers,
        body: chunk,
      });
      const problem = (await response.json()) as { code: string };
      expect({ what: bad.what, status: response.status, code: problem.code }).toEqual({
        what: bad.what,
        status: bad.status,
        code: bad.code,
      });
      expect(response.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(await receiptOf(id)).toEqual({ contiguous: 0, buffered: [], checksums: {} });
    expect(await viewOf(id)).toMatchObject({ state: 'acknowledged' });
    expect((await putChunk(t.url, gatewayA.token, id, 0, chunk)).status).toBe(201);
    stream.close();
  });
});

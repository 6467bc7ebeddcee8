import { createDownloadSigner } from '@backhaul/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dispatchedCommand,
  gatewayA,
  gatewayPost,
  putChunk,
  randomBytesOf,
  startServer,
  type TestServer,
  xxhash,
} from './helpers.js';

let t: TestServer;
let url: string;
const file = randomBytesOf(3000, 5);
// The test signs links of its own with the server's secret: an expired one needs no sleep, and the
// valid one keeps the default hour (a 1 s link could expire before a loaded machine fetched it).
const downloadSecret = 'downloads-test-secret-0123456789';
beforeAll(async () => {
  t = await startServer({
    chunkSize: 1024,
    downloadSecret,
    publicUrl: 'http://placeholder.invalid/base/',
  });
  const { id, stream } = await dispatchedCommand(t.url, 'file');
  for (let index = 0; index < 3; index++) {
    await putChunk(t.url, gatewayA.token, id, index, file.subarray(index * 1024, (index + 1) * 1024));
  }
  const completed = await gatewayPost(t.url, gatewayA.token, id, 'complete', {
    kind: 'file',
    format: 'parquet',
    size: file.length,
    checksum: await xxhash(file),
    rowCount: 1,
    chunkCount: 3,
  });
  const view = (await completed.json()) as { result: { url: string; expiresAt: string } };
  // publicUrl is the base of every link handed out.
  expect(view.result.url.startsWith('http://placeholder.invalid/base/v1/downloads/results/gw-a/')).toBe(true);
  url = view.result.url.replace('http://placeholder.invalid/base', t.url);
  stream.close();
});
afterAll(() => t?.close());

describe('§3.5 downloads: the signed link is the credential; tampered 403, expired 410', () => {
  it('serves the file with a valid signature and no token', async () => {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(file))).toBe(true);
  });

  it('refuses a tampered signature with 403', async () => {
    const tampered = new URL(url);
    const signature = tampered.searchParams.get('signature')!;
    tampered.searchParams.set('signature', `${signature[0] === 'a' ? 'b' : 'a'}${signature.slice(1)}`);
    const response = await fetch(tampered);
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });

  it('refuses a link for another key with 403', async () => {
    const response = await fetch(url.replace('/results/gw-a/', '/results/gw-b/'));
    expect(response.status).toBe(403);
  });

  it('refuses an expired link with 410', async () => {
    const link = new URL(url);
    const key = link.pathname
      .slice('/v1/downloads/'.length)
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
    const signer = createDownloadSigner(downloadSecret);
    // Control: the key as read here, signed a minute ahead, serves the file.
    link.search = signer.sign(key, Date.now() + 60_000).toString();
    expect((await fetch(link)).status).toBe(200);
    // The same key and secret, a minute in the past: only the expiry differs.
    link.search = signer.sign(key, Date.now() - 60_000).toString();
    const response = await fetch(link);
    expect(response.status).toBe(410);
    expect(((await response.json()) as { code: string }).code).toBe('gone');
  });
});

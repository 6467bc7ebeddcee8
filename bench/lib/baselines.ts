// The two baselines of the transfer bench, over the same link into the same storage (sink.ts):
// raw, one streaming POST of the whole file; naive, sequential 512 KiB POSTs.
import { Agent, request } from 'undici';
import { fileBytes } from './dataset.js';
import { now } from './timing.js';

export const NAIVE_PIECE = 512 * 1024;

async function expectOk(response: Awaited<ReturnType<typeof request>>, what: string) {
  if (response.statusCode >= 300) {
    throw new Error(`${what}: HTTP ${response.statusCode} ${await response.body.text()}`);
  }
  return response.statusCode === 204 ? undefined : ((await response.body.json()) as { size: number });
}

/** One POST whose body streams the file: seconds from the request to the sink's answer (stored). */
export async function rawUpload(
  serverUrl: string,
  path: string,
  key: string,
  limit?: number,
): Promise<{ seconds: number; size: number }> {
  const dispatcher = new Agent({ connections: 1 });
  try {
    const started = now();
    const response = await request(`${serverUrl}/bench/raw/${key}`, {
      method: 'POST',
      body: fileBytes(path, limit),
      headers: { 'content-type': 'application/octet-stream' },
      dispatcher,
    });
    const stored = await expectOk(response, 'raw upload');
    return { seconds: (now() - started) / 1000, size: stored!.size };
  } finally {
    await dispatcher.close();
  }
}

/** The design taken literally: 512 KiB per POST, the next one sent when the previous is answered. */
export async function naiveUpload(
  serverUrl: string,
  path: string,
  key: string,
  limit?: number,
): Promise<{ seconds: number; size: number }> {
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 30_000 });
  try {
    const started = now();
    let index = 0;
    let pending = Buffer.alloc(0);
    const send = async (piece: Buffer) => {
      const response = await request(`${serverUrl}/bench/naive/${key}/${index++}`, {
        method: 'POST',
        body: piece,
        headers: { 'content-type': 'application/octet-stream' },
        dispatcher,
      });
      await expectOk(response, 'naive upload');
    };
    for await (const piece of fileBytes(path, limit)) {
      pending = Buffer.concat([pending, piece as Buffer]);
      while (pending.length >= NAIVE_PIECE) {
        await send(pending.subarray(0, NAIVE_PIECE));
        pending = pending.subarray(NAIVE_PIECE);
      }
    }
    if (pending.length > 0) await send(pending);
    const response = await request(`${serverUrl}/bench/naive/${key}/complete`, {
      method: 'POST',
      dispatcher,
    });
    const stored = await expectOk(response, 'naive completion');
    return { seconds: (now() - started) / 1000, size: stored!.size };
  } finally {
    await dispatcher.close();
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackhaulError, type DownloadSigner, type ObjectStorage } from '@backhaul/core';

/**
 * docs/protocol.md §3.5: result files of storages that cannot presign their own URLs. The link's
 * signature is the credential (no caller token): a wrong one is 403, an expired one 410. The body
 * is streamed from storage with backpressure; nothing is held in memory.
 */
export async function serveDownload(
  req: IncomingMessage,
  res: ServerResponse,
  encodedKey: string,
  query: URLSearchParams,
  storage: ObjectStorage,
  signer: DownloadSigner,
): Promise<void> {
  let key: string;
  try {
    key = encodedKey.split('/').map(decodeURIComponent).join('/');
  } catch {
    throw new BackhaulError('bad-request', 'The download path is not valid percent-encoding');
  }
  signer.verify(key, query); // 403 forbidden / 410 gone
  const object = await storage.head(key);
  if (!object) throw new BackhaulError('not-found', 'The file no longer exists');
  const name = key.slice(key.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_');
  res.writeHead(200, {
    'content-type': 'application/vnd.apache.parquet',
    'content-length': object.size,
    'content-disposition': `attachment; filename="${name}"`,
    'cache-control': 'private, no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(Readable.from(await storage.read(key), { objectMode: false }), res);
}

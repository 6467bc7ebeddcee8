// Child process: the Backhaul server under test, plus the bench's own routes under /bench/
// (the raw and naive sinks, a caller next to the server, stats). Started by server-process.ts.
import { createServer } from 'node:http';
import { createBackhaulClient } from '@backhaul/client';
import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import { createChecksummer, createMemoryUploadLedger, type QueryView } from '@backhaul/core';
import { createBackhaulServer, resultKey } from '@backhaul/server-node';
import { createRedisDeployment } from '@backhaul/store-redis';
import { cpuSeconds, rssKb } from './proc.js';
import { createSink, send } from './sink.js';
import { announceReady, childConfig, onTerminate } from './spawn.js';
import { openStorage, type StorageConfig } from './storage.js';
import { CALLER_TOKEN, gatewayCredentials } from './tokens.js';

export interface ServerConfig {
  host: string;
  port: number;
  storage: StorageConfig;
  gateways: number;
  heartbeatMs?: number;
  chunkWindow?: number;
  /**
   * A cluster member: the command store, bus and row log (`createRedisDeployment`: what the
   * instances share) on this Redis, under this prefix. Default: in memory, one instance.
   */
  redis?: { url: string; keyPrefix: string };
  /** Stage chunks and assemble at completion, as instances sharing an upload ledger do. */
  sharedUploads?: boolean;
  /** The server's deadline sweep; bench:bus sets it an hour apart so only the bus can dispatch. */
  sweepIntervalMs?: number;
}

const config = childConfig<ServerConfig>();
const storage = await openStorage(config.storage);
const deployment = config.redis ? createRedisDeployment(config.redis) : undefined;
await deployment?.redis.ping();
const backhaul = createBackhaulServer({
  ...deployment?.serverOptions,
  ...(config.sweepIntervalMs ? { sweepIntervalMs: config.sweepIntervalMs } : {}),
  storage,
  ...(config.sharedUploads ? { uploadLedger: createMemoryUploadLedger() } : {}),
  codecs: [createZstdCodec(), createLz4Codec()],
  gateways: gatewayCredentials(config.gateways),
  callerTokens: [CALLER_TOKEN],
  ...(config.heartbeatMs ? { heartbeatMs: config.heartbeatMs } : {}),
  ...(config.chunkWindow ? { chunkWindow: config.chunkWindow } : {}),
  // Commands of the fleet bench are acked and never completed: keep them from expiring mid-run.
  delivery: { completionTimeoutMs: 3_600_000 },
  // …and so they hold their admission slot to the end: the fleet bench measures delivery to every
  // gateway from one caller, not admission control, so the small class is opened wide for it.
  admission: { small: 1_000_000, callerShare: 1, gatewayShare: 1 },
});
const sink = createSink(storage);
const checksummer = await createChecksummer();

interface Timed {
  id: string;
  issuedNs: string;
  ackedNs?: string;
  completedNs?: string;
  view?: QueryView;
  error?: string;
}
const queries = new Map<string, Promise<Timed>>();
let caller: ReturnType<typeof createBackhaulClient>;

const readJson = async (req: import('node:http').IncomingMessage) => {
  let text = '';
  for await (const piece of req) text += piece;
  return JSON.parse(text || '{}');
};

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (!url.pathname.startsWith('/bench/')) return backhaul.handler(req, res);
  void (async () => {
    if (await sink(req, res, url.pathname)) return;
    if (url.pathname === '/bench/stats') {
      return send(res, 200, {
        pid: process.pid,
        rssKb: rssKb(process.pid),
        cpuS: cpuSeconds(process.pid),
        storage: config.storage.kind,
      });
    }
    if (url.pathname === '/bench/submit' && req.method === 'POST') {
      // The caller sits next to the server, as it would in production: its own round trips do
      // not cross the gateway's link. Times are CLOCK_MONOTONIC, comparable across processes.
      const body = await readJson(req);
      const issuedNs = process.hrtime.bigint();
      const view = await caller.submit(body);
      const timed: Timed = { id: view.id, issuedNs: String(issuedNs) };
      queries.set(
        view.id,
        caller
          .waitFor(view.id, {
            onEvent(event) {
              if (event.type !== 'state' && event.type !== 'result') return;
              const state = event.query.state;
              if (!timed.ackedNs && state !== 'pending' && state !== 'dispatched')
                timed.ackedNs = String(process.hrtime.bigint());
            },
          })
          .then(
            (final) => ({ ...timed, completedNs: String(process.hrtime.bigint()), view: final }),
            (error) => ({ ...timed, error: String(error) }),
          ),
      );
      return send(res, 202, timed);
    }
    let match = /^\/bench\/query\/([^/]+)$/.exec(url.pathname);
    if (match && req.method === 'GET') {
      const timed = queries.get(match[1]!);
      if (!timed) return send(res, 404, { error: 'unknown query' });
      return send(res, 200, await timed);
    }
    if (url.pathname === '/bench/verify' && req.method === 'GET') {
      // Downloads a result through its URL (from the server's side of the link) and hashes it.
      const response = await fetch(url.searchParams.get('url')!);
      if (!response.ok || !response.body) return send(res, 502, { error: `download: ${response.status}` });
      const hash = checksummer.stream();
      let size = 0;
      for await (const piece of response.body) {
        hash.update(piece);
        size += piece.length;
      }
      return send(res, 200, { size, checksum: hash.digest() });
    }
    match = /^\/bench\/result\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (match && req.method === 'DELETE') {
      await storage.delete(resultKey(match[1]!, match[2]!));
      return send(res, 200, {});
    }
    match = /^\/bench\/object\/(.+)$/.exec(url.pathname);
    if (match && req.method === 'DELETE') {
      await storage.delete(match[1]!);
      return send(res, 200, {});
    }
    send(res, 404, { error: 'no such bench route' });
  })().catch((error) => {
    if (!res.headersSent) send(res, 500, { error: String(error) });
    else res.destroy();
  });
});
http.keepAliveTimeout = 60_000;
http.headersTimeout = 0;
http.requestTimeout = 0;
await new Promise<void>((resolve) => http.listen(config.port, config.host, resolve));
const address = http.address() as import('node:net').AddressInfo;
const url = `http://${config.host}:${address.port}`;
caller = createBackhaulClient({ url, token: CALLER_TOKEN });
onTerminate(async () => {
  await backhaul.close();
  await deployment?.close();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});
announceReady({ url, pid: process.pid, port: address.port });

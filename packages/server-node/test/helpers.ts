import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Checksummer, createChecksummer, type ObjectStorage } from '@backhaul/core';
import { type BackhaulServer, type BackhaulServerOptions, createBackhaulServer } from '@backhaul/server-node';
import { createFsStorage } from '@backhaul/storage-fs';
import { type EventSourceMessage, EventSourceParserStream } from 'eventsource-parser/stream';

export const gatewayA = { id: 'gw-a', token: 'gateway-a-token-0123456789' };
export const gatewayB = { id: 'gw-b', token: 'gateway-b-token-0123456789' };
export const callerToken = 'caller-token-0123456789';

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

export interface TestServer {
  server: BackhaulServer;
  url: string;
  storage: ObjectStorage;
  /** Sizes of every part written to storage, in order. */
  parts: number[];
  close(): Promise<void>;
}

/** A real server on 127.0.0.1 with filesystem storage in a temp dir; timers scaled down. */
export async function startServer(
  overrides: Partial<BackhaulServerOptions> = {},
  { minPartSize }: { minPartSize?: number } = {},
): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'backhaul-server-'));
  const parts: number[] = [];
  const fs = createFsStorage({ root });
  const storage = recordParts(minPartSize ? withMinPartSize(fs, minPartSize) : fs, parts);
  const server = createBackhaulServer({
    storage,
    gateways: [gatewayA, gatewayB],
    callerTokens: [callerToken],
    sweepIntervalMs: 50,
    heartbeatMs: 1000,
    ...overrides,
  });
  const { url } = await server.listen(0, '127.0.0.1');
  return {
    server,
    url,
    storage,
    parts,
    async close() {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Wraps a storage to record part sizes (tests assert part sizes on what the adapter is sent). */
function recordParts(storage: ObjectStorage, parts: number[]): ObjectStorage {
  return {
    specificationVersion: storage.specificationVersion,
    name: storage.name,
    capabilities: storage.capabilities,
    beginUpload: async (key, options) => {
      const upload = await storage.beginUpload(key, options);
      return {
        key: upload.key,
        writePart: async (bytes) => {
          parts.push(bytes.length);
          await upload.writePart(bytes);
        },
        complete: () => upload.complete(),
        abort: () => upload.abort(),
      };
    },
    head: (key) => storage.head(key),
    read: (key, range) => storage.read(key, range),
    delete: (key) => storage.delete(key),
    sweep: (before) => storage.sweep(before),
  };
}

/** A storage that says it needs parts of `minPartSize` (as S3 does), to see the part buffer at work. */
function withMinPartSize(storage: ObjectStorage, minPartSize: number): ObjectStorage {
  return { ...storage, capabilities: { ...storage.capabilities, minPartSize } };
}

/** One open SSE stream, read event by event. */
export interface EventStream {
  status: number;
  headers: Headers;
  next(timeoutMs?: number): Promise<EventSourceMessage>;
  /** Events of a type, skipping others. */
  nextOf(type: string, timeoutMs?: number): Promise<EventSourceMessage>;
  /** Everything received so far that nobody took. */
  drain(): EventSourceMessage[];
  close(): void;
}

export async function openStream(url: string, headers: Record<string, string>): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const queue: EventSourceMessage[] = [];
  const waiters: ((message: EventSourceMessage | undefined) => void)[] = [];
  let ended = false;
  if (response.ok && response.body) {
    void (async () => {
      try {
        const events = response
          .body!.pipeThrough(new TextDecoderStream())
          .pipeThrough(new EventSourceParserStream());
        for await (const message of events) {
          const waiter = waiters.shift();
          if (waiter) waiter(message);
          else queue.push(message);
        }
      } catch {
        // aborted
      } finally {
        ended = true;
        for (const waiter of waiters.splice(0)) waiter(undefined);
      }
    })();
  }
  const next = (timeoutMs = 5000) =>
    new Promise<EventSourceMessage>((resolve, reject) => {
      const queued = queue.shift();
      if (queued) return resolve(queued);
      if (ended) return reject(new Error('the stream ended'));
      const timer = setTimeout(() => {
        const index = waiters.indexOf(take);
        if (index >= 0) waiters.splice(index, 1);
        reject(new Error(`no event within ${timeoutMs} ms`));
      }, timeoutMs);
      const take = (message: EventSourceMessage | undefined) => {
        clearTimeout(timer);
        if (message) resolve(message);
        else reject(new Error('the stream ended'));
      };
      waiters.push(take);
    });
  return {
    status: response.status,
    headers: response.headers,
    next,
    async nextOf(type, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const message = await next(Math.max(1, until - Date.now()));
        if (message.event === type) return message;
      }
    },
    drain: () => queue.splice(0),
    close: () => controller.abort(),
  };
}

export function openCommandStream(base: string, token: string, lastEventId?: string) {
  return openStream(`${base}/v1/gateway/commands`, {
    ...auth(token),
    ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
  });
}

export async function submit(base: string, body: Record<string, unknown>) {
  const response = await fetch(`${base}/v1/queries`, {
    method: 'POST',
    headers: { ...auth(callerToken), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    response,
    view: (await response.json()) as { id: string; state: string } & Record<string, unknown>,
  };
}

export const gatewayPost = (base: string, token: string, id: string, action: string, body?: unknown) =>
  fetch(`${base}/v1/gateway/commands/${id}/${action}`, {
    method: 'POST',
    headers: { ...auth(token), 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

let checksummer: Checksummer | undefined;
export async function xxhash(bytes: Uint8Array): Promise<string> {
  checksummer ??= await createChecksummer();
  return checksummer.digest(bytes);
}

export async function putChunk(
  base: string,
  token: string,
  id: string,
  index: number,
  body: Uint8Array,
  headers: Partial<{ codec: string; checksum: string; rawLength: number }> = {},
) {
  return fetch(`${base}/v1/gateway/commands/${id}/chunks/${index}`, {
    method: 'PUT',
    headers: {
      ...auth(token),
      'content-type': 'application/octet-stream',
      'backhaul-codec': headers.codec ?? 'identity',
      'backhaul-checksum': headers.checksum ?? (await xxhash(body)),
      'backhaul-raw-length': String(headers.rawLength ?? body.length),
    },
    body,
  });
}

export async function getJson(url: string, token: string) {
  const response = await fetch(url, { headers: auth(token), redirect: 'manual' });
  const text = await response.text();
  return { response, body: text ? JSON.parse(text) : undefined };
}

export function randomBytesOf(length: number, seed = 1): Uint8Array {
  // Deterministic bytes (a tiny LCG): failures reproduce.
  const bytes = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(20);
  }
}

/** Submits a query and acks it over a fresh stream; returns the command id and the stream. */
export async function dispatchedCommand(base: string, mode: 'rows' | 'file' | 'auto', gateway = gatewayA) {
  const stream = await openCommandStream(base, gateway.token);
  await stream.nextOf('hello');
  const { view } = await submit(base, { gatewayId: gateway.id, sql: 'select 1', mode });
  const command = await stream.nextOf('command');
  const ack = await gatewayPost(base, gateway.token, view.id, 'ack');
  if (ack.status !== 204) throw new Error(`ack failed: ${ack.status}`);
  return { id: view.id, stream, command: JSON.parse(command.data) };
}

/** A file completion for tests about who may send it, not about the file (it matches nothing). */
export const placeholderFileCompletion = {
  kind: 'file',
  format: 'parquet',
  size: 1024,
  checksum: '0000000000000000',
  rowCount: 1,
  chunkCount: 1,
};

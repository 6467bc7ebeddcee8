import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Checksummer,
  type Codec,
  CodecRegistry,
  type Command,
  type Completion,
  createChecksummer,
  DEFAULT_CHUNK_SIZE,
  type Failure,
  type Hello,
  type Progress,
  type RowBatch,
} from '@backhaul/core';

/**
 * A protocol-speaking stand-in for the server, just enough for the gateway's unit tests: it says
 * hello, sends commands, and records every ack, row batch, chunk and completion. The real
 * server is exercised by the end-to-end suite at the repository root.
 */
export interface FakeServerOptions {
  token?: string;
  hello?: Partial<Hello>;
  retryMs?: number;
  heartbeatMs?: number;
  codecs?: Codec[];
  /** Delay before each chunk answer, so requests overlap and the window is observable. */
  chunkDelayMs?: number;
}

export interface ChunkFault {
  status: number;
  code: string;
  retryable: boolean;
  retryAfter?: string;
}

export interface ReceivedChunk {
  index: number;
  raw: Uint8Array;
  codec: string;
  checksum: string;
  attempts: number;
  attemptTimes: number[];
}

export interface StreamConnection {
  lastEventId: string | undefined;
  response: ServerResponse;
  open: boolean;
}

export interface FakeServer {
  url: string;
  hello: Hello;
  connections: StreamConnection[];
  acks: string[];
  rows: Map<string, RowBatch[]>;
  chunks: Map<string, Map<number, ReceivedChunk>>;
  completions: Map<string, Completion>;
  failures: Map<string, Failure>;
  progress: Map<string, Progress[]>;
  chunkRequests: { open: number; maxOpen: number; total: number };
  /** Decides a fault for a chunk attempt (1-based); undefined lets it through. */
  chunkFault?: (commandId: string, index: number, attempt: number) => ChunkFault | undefined;
  /** Holds a chunk's answer until the promise it returns settles; undefined answers at once. */
  chunkAnswerGate?: (commandId: string, index: number) => Promise<void> | undefined;
  /** Decides a refusal of a command stream connection (1-based); undefined accepts it. */
  streamFault?: (attempt: number) => ChunkFault | undefined;
  /** Sends a command on every open stream, and again on every reconnection until acked (§4.2). */
  send(command: Partial<Command> & { id: string; sql: string }): Command;
  /** Stops heartbeats on the open streams but keeps their sockets: a dead stream that looks alive. */
  silence(): void;
  /** The whole file of a command: chunks decoded and concatenated in index order. */
  file(commandId: string): Buffer;
  close(): Promise<void>;
}

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const token = options.token ?? 'good-token';
  const registry = new CodecRegistry(options.codecs ?? []);
  const checksummer: Checksummer = await createChecksummer();
  const hello: Hello = {
    v: 1,
    gatewayId: 'gw-1',
    codecs: registry.names,
    chunkSize: DEFAULT_CHUNK_SIZE,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    chunkWindow: 64,
    ...options.hello,
  };
  const pending: Command[] = [];
  let silenced = false;

  const fake: FakeServer = {
    url: '',
    hello,
    connections: [],
    acks: [],
    rows: new Map(),
    chunks: new Map(),
    completions: new Map(),
    failures: new Map(),
    progress: new Map(),
    chunkRequests: { open: 0, maxOpen: 0, total: 0 },
    send(partial) {
      const command: Command = {
        v: 1,
        type: 'query',
        params: [],
        mode: 'rows',
        rowsByteLimit: 1_000_000,
        issuedAt: Date.now(),
        delivery: 1,
        ...partial,
      };
      pending.push(command);
      for (const connection of fake.connections)
        if (connection.open) writeCommand(connection.response, command);
      return command;
    },
    silence() {
      silenced = true;
    },
    file(commandId) {
      const chunks = [...(fake.chunks.get(commandId)?.values() ?? [])].sort((a, b) => a.index - b.index);
      return Buffer.concat(chunks.map((c) => c.raw));
    },
    async close() {
      clearInterval(heartbeat);
      for (const connection of fake.connections) connection.response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const writeCommand = (response: ServerResponse, command: Command) => {
    response.write(`event: command\nid: ${command.id}\ndata: ${JSON.stringify(command)}\n\n`);
  };

  const heartbeat = setInterval(
    () => {
      if (silenced) return;
      for (const connection of fake.connections)
        if (connection.open) connection.response.write(': heartbeat\n\n');
    },
    Math.min(hello.heartbeatMs, 1000),
  );

  const problem = (
    response: ServerResponse,
    status: number,
    code: string,
    retryable: boolean,
    headers = {},
  ) => {
    response.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
    response.end(
      JSON.stringify({
        type: `https://backhaul.dev/problems/${code}`,
        title: code,
        status,
        code,
        detail: code,
        retryable,
      }),
    );
  };

  const readBody = async (request: IncomingMessage): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const part of request) parts.push(part as Buffer);
    return Buffer.concat(parts);
  };

  let streamAttempts = 0;
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.headers.authorization !== `Bearer ${token}`)
      return problem(response, 401, 'unauthorized', false);
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method === 'GET' && url.pathname === '/v1/gateway/commands') {
      const fault = fake.streamFault?.(++streamAttempts);
      if (fault) {
        const headers = fault.retryAfter ? { 'retry-after': fault.retryAfter } : {};
        return problem(response, fault.status, fault.code, fault.retryable, headers);
      }
      silenced = false;
      const lastEventId = request.headers['last-event-id'];
      const connection: StreamConnection = {
        lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined,
        response,
        open: true,
      };
      fake.connections.push(connection);
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      });
      response.write(`retry: ${options.retryMs ?? 50}\n\n`);
      response.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);
      // §4.2 Every command not yet acked is sent again on a new connection, oldest first.
      for (const command of pending) if (!fake.acks.includes(command.id)) writeCommand(response, command);
      response.on('close', () => {
        connection.open = false;
      });
      return;
    }
    const match =
      /^\/v1\/gateway\/commands\/([^/]+)\/(ack|progress|rows|chunks|complete|fail)(?:\/(\d+))?$/.exec(
        url.pathname,
      );
    if (!match) return problem(response, 404, 'not-found', false);
    const id = decodeURIComponent(match[1]!);
    const action = match[2]!;
    const body = await readBody(request);
    const json = () => JSON.parse(body.toString('utf8'));
    switch (action) {
      case 'ack':
        fake.acks.push(id);
        response.writeHead(204).end();
        return;
      case 'progress':
        fake.progress.set(id, [...(fake.progress.get(id) ?? []), json()]);
        response.writeHead(204).end();
        return;
      case 'rows': {
        const batch = json() as RowBatch;
        const batches = fake.rows.get(id) ?? [];
        if (!batches.some((b) => b.seq === batch.seq)) batches.push(batch);
        fake.rows.set(id, batches);
        response.writeHead(204).end();
        return;
      }
      case 'complete':
        fake.completions.set(id, json());
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id, state: 'completed' }));
        return;
      case 'fail':
        fake.failures.set(id, json());
        response.writeHead(204).end();
        return;
      case 'chunks': {
        if (request.method === 'GET') {
          const stored = [...(fake.chunks.get(id)?.keys() ?? [])];
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ contiguous: 0, buffered: stored }));
          return;
        }
        return receiveChunk(id, Number(match[3]), request, body, response);
      }
    }
  };

  const attempts = new Map<string, number>();
  const attemptTimes = new Map<string, number[]>();
  const receiveChunk = async (
    id: string,
    index: number,
    request: IncomingMessage,
    body: Buffer,
    response: ServerResponse,
  ) => {
    const key = `${id}/${index}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    attemptTimes.set(key, [...(attemptTimes.get(key) ?? []), Date.now()]);
    try {
      if (options.chunkDelayMs) await new Promise((resolve) => setTimeout(resolve, options.chunkDelayMs));
      await fake.chunkAnswerGate?.(id, index);
      const fault = fake.chunkFault?.(id, index, attempt);
      if (fault) {
        const headers = fault.retryAfter ? { 'retry-after': fault.retryAfter } : {};
        return problem(response, fault.status, fault.code, fault.retryable, headers);
      }
      const codec = String(request.headers['backhaul-codec']);
      const checksum = String(request.headers['backhaul-checksum']);
      const rawLength = Number(request.headers['backhaul-raw-length']);
      const raw = await registry.get(codec).decode(new Uint8Array(body), hello.chunkSize);
      // §6.2 What a real server checks: the decoded bytes match the headers.
      if (raw.length !== rawLength || checksummer.digest(raw) !== checksum) {
        return problem(response, 422, 'checksum-mismatch', true);
      }
      const chunks = fake.chunks.get(id) ?? new Map<number, ReceivedChunk>();
      fake.chunks.set(id, chunks);
      const existed = chunks.has(index);
      chunks.set(index, {
        index,
        raw,
        codec,
        checksum,
        attempts: attempt,
        attemptTimes: attemptTimes.get(key)!,
      });
      response.writeHead(existed ? 200 : 201).end();
    } finally {
      fake.chunkRequests.open--;
    }
  };

  const server = createServer((request, response) => {
    if (request.method === 'PUT') {
      fake.chunkRequests.total++;
      fake.chunkRequests.open++;
      fake.chunkRequests.maxOpen = Math.max(fake.chunkRequests.maxOpen, fake.chunkRequests.open);
    }
    handle(request, response).catch((error) => {
      if (!response.headersSent) problem(response, 500, 'internal', true);
      else response.destroy(error);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

/** Polls until `predicate` holds, or fails with `what` after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * An HTTP proxy between a gateway and the server that can corrupt, duplicate or hold requests,
 * drop every connection and refuse new ones: the faults the protocol must survive, on real
 * sockets. Faults below HTTP (a connection cut after N bytes, a reset, a stalled stream) are the
 * TCP proxy's (tcp-fault-proxy.ts); duplication needs request boundaries, so it lives here.
 */
export interface FaultProxy {
  url: string;
  /** Every request that passed, in order, with the status the server answered (0: stalled). */
  log: { method: string; path: string; headers: IncomingMessage['headers']; status: number }[];
  /** Destroys open connections and, while `refuse` is true, new ones too. */
  cutAll(options?: { refuse?: boolean }): void;
  /** Accepts connections again after `cutAll({ refuse: true })`. */
  accept(): void;
  close(): Promise<void>;
}

/**
 * `corrupt` flips one bit in the middle of the body; `duplicate` sends the request twice (the
 * client sees the second answer); `stall` never forwards it and never answers, until the client
 * gives up (or the process that sent it dies); `lose-answer` forwards it and lets the server
 * answer, then cuts the client's connection instead of passing the answer on (the server did the
 * work, the client cannot know); `unavailable` answers 503 with `Retry-After: 0` itself, as a load
 * balancer does with no server behind it, and forwards nothing.
 */
export type RequestFault = 'corrupt' | 'duplicate' | 'stall' | 'lose-answer' | 'unavailable' | undefined;

export async function startFaultProxy(
  target: string,
  /**
   * Picks the fault for one request once its body has arrived. It may return a promise: the
   * request is held until it settles, which is how a test reorders requests (hold chunk 0 until
   * chunk 3 was stored).
   */
  chooseFault: (method: string, path: string) => RequestFault | Promise<RequestFault> = () => undefined,
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  let refusing = false;
  const log: FaultProxy['log'] = [];

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; response: IncomingMessage }>(
      (resolve, reject) => {
        const out = request(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (response) => resolve({ status: response.statusCode ?? 502, headers: response.headers, response }),
        );
        out.on('error', reject);
        out.end(body);
      },
    );

  const server: Server = createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    try {
      if (method === 'GET') {
        // Streams (SSE) and downloads are piped as they come.
        const { status, headers, response } = await forward(req, Buffer.alloc(0));
        log.push({ method, path, headers: req.headers, status });
        res.writeHead(status, headers);
        response.pipe(res);
        // A cut on the gateway's side must reach the server too, as it would through a real network.
        res.on('close', () => response.destroy());
        return;
      }
      const pieces: Buffer[] = [];
      for await (const piece of req) pieces.push(piece as Buffer);
      let body = Buffer.concat(pieces);
      const fault = await chooseFault(method, path);
      if (fault === 'stall') {
        log.push({ method, path, headers: req.headers, status: 0 });
        await new Promise((resolve) => res.once('close', resolve));
        return;
      }
      if (fault === 'unavailable') {
        log.push({ method, path, headers: req.headers, status: 503 });
        const problem = { status: 503, code: 'service-unavailable', detail: 'no server', retryable: true };
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '0' });
        res.end(JSON.stringify(problem));
        return;
      }
      if (fault === 'corrupt' && body.length > 0) {
        body = Buffer.from(body);
        body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0x10;
      }
      if (fault === 'duplicate') {
        const first = await forward(req, body);
        first.response.resume();
        log.push({ method, path, headers: req.headers, status: first.status });
      }
      const { status, headers, response } = await forward(req, body);
      log.push({ method, path, headers: req.headers, status });
      if (fault === 'lose-answer') {
        // The whole answer is read, so the server finished; the client only sees its socket die.
        await new Promise((resolve) => {
          response.on('end', resolve);
          response.resume();
        });
        res.destroy();
        return;
      }
      res.writeHead(status, headers);
      response.pipe(res);
    } catch {
      res.destroy();
    }
  });
  server.on('connection', (socket: Socket) => {
    if (refusing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');

  return {
    url: `http://127.0.0.1:${address.port}`,
    log,
    cutAll({ refuse = false } = {}) {
      refusing = refuse;
      for (const socket of sockets) socket.destroy();
    },
    accept() {
      refusing = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

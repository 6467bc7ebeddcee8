import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { BackhaulError, type Logger, toProblem } from '@backhaul/core';

/** How long `listen()` keeps an idle client connection open (Node's default is 5 s). */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface OwnHttpServerOptions {
  /** Node's `headersTimeout`: a client trickling its headers is answered 408 and closed. */
  headersTimeoutMs: number;
  /** Node's `requestTimeout`: the whole request, body included. */
  requestTimeoutMs: number;
  logger: Logger;
}

/**
 * The http.Server that `listen()` creates. What Node's defaults leave to us:
 *
 * - Idle keep-alive connections are kept 65 s, not 5 (see KEEP_ALIVE_TIMEOUT_MS).
 * - Request timeouts are checked every `connectionsCheckingInterval` (30 s by default), so a
 *   short timeout would be enforced up to 30 s late; the interval follows the timeouts.
 * - Node answers a request it cannot parse (headers too large, a timeout, garbage) itself, with a
 *   bare text response. We answer it as every other error, `application/problem+json`
 *   (docs/protocol.md §2), and close the socket: a crash or a leaked socket is never an option.
 */
export function createOwnHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: OwnHttpServerOptions,
): Server {
  const shortest = Math.min(options.headersTimeoutMs, options.requestTimeoutMs);
  const server = createServer(
    { connectionsCheckingInterval: Math.min(30_000, Math.max(25, Math.floor(shortest / 4))) },
    handler,
  );
  server.headersTimeout = options.headersTimeoutMs;
  server.requestTimeout = options.requestTimeoutMs;
  // Node closes an idle keep-alive connection after 5 s (and says so in `Keep-Alive: timeout=5`,
  // which undici obeys): a gateway's chunksInFlight connections would be gone between two files
  // a few seconds apart, and each file would pay new handshakes on a long link. Keep them a minute.
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const problem = clientProblem(error);
    if (problem) {
      options.logger.warn('refused a request before routing', { code: problem.code, reason: error.code });
      // Like Node's own handler: write only where no response of ours has started on this socket.
      const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
      if (socket.writable && !inFlight?.headersSent) socket.write(rawProblemResponse(problem));
    }
    socket.destroy();
  });
  return server;
}

/** The problem for a request Node's parser refused; undefined when the peer is simply gone. */
function clientProblem(error: NodeJS.ErrnoException): BackhaulError | undefined {
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return new BackhaulError('headers-too-large', 'The request headers exceed the server limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new BackhaulError('request-timeout', 'The request did not arrive within the server timeout');
    default:
      return new BackhaulError('bad-request', `The request could not be parsed (${error.code ?? 'unknown'})`);
  }
}

function rawProblemResponse(problem: BackhaulError): string {
  const body = JSON.stringify(toProblem(problem));
  return [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

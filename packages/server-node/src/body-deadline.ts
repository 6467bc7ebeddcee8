import type { IncomingMessage, ServerResponse } from 'node:http';
import { BackhaulError } from '@backhaul/core';
import { sendProblemAndClose } from './http-io.js';

/**
 * The slowloris defence for request bodies, inside the handler: a client that sends a body byte
 * by byte holds a socket, a parser and (for a chunk) a growing buffer for as long as it likes.
 * Node's `requestTimeout` only guards a server Backhaul created itself (`listen()`); the handler
 * mounted in Express, Fastify or Hono must hold its own line, so every request that still has a
 * body coming is watched from the moment the handler sees it, whichever route reads it (or none).
 */
export interface BodyDeadlines {
  /** The whole body must have arrived this long after the handler received the headers. */
  totalMs: number;
  /** The body must not stall this long without a byte. */
  idleMs: number;
}

/**
 * Watches a request's body until the client has sent all of it; on a deadline, answers
 * `408 request-timeout` (when no answer has started) and closes the connection.
 *
 * Progress is read from the socket's byte count rather than from `data` events, which would
 * consume the body. While a route holds the body unread (awaiting its store), the client is held
 * up by us, not stalling, so the idle deadline is generous by design (default 30 s).
 */
export function watchRequestBody(
  req: IncomingMessage,
  res: ServerResponse,
  deadlines: BodyDeadlines,
  onExpired: (error: BackhaulError) => void,
): void {
  if (req.complete || !hasBody(req)) return;
  const socket = req.socket;
  const startedAt = Date.now();
  let lastBytesRead = socket.bytesRead;
  let lastProgressAt = startedAt;
  // Checked a few times per idle period: the deadline is met within a quarter of it.
  const periodMs = Math.max(10, Math.min(deadlines.idleMs, deadlines.totalMs) / 4);
  const timer = setInterval(() => {
    if (req.complete || res.writableEnded || socket.destroyed) return stop();
    const now = Date.now();
    if (socket.bytesRead !== lastBytesRead) {
      lastBytesRead = socket.bytesRead;
      lastProgressAt = now;
    }
    let error: BackhaulError | undefined;
    if (now - startedAt >= deadlines.totalMs) {
      error = new BackhaulError(
        'request-timeout',
        `The request body did not arrive within ${deadlines.totalMs} ms`,
      );
    } else if (now - lastProgressAt >= deadlines.idleMs) {
      error = new BackhaulError(
        'request-timeout',
        `The request body stalled for ${deadlines.idleMs} ms without a byte`,
      );
    }
    if (!error) return;
    stop();
    onExpired(error);
    sendProblemAndClose(res, error);
  }, periodMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    res.off('close', stop);
  };
  res.once('close', stop);
}

/** RFC 9112 §6.3: a request has a body when it declares a length above 0 or a transfer coding. */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

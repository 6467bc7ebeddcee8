import type { IncomingMessage, ServerResponse } from 'node:http';
import { BackhaulError, parseJson, toProblem } from '@backhaul/core';

/**
 * The HTTP edges every route shares: problem responses, JSON responses and body reading with a
 * byte cap. Nothing here buffers more than the cap it is given.
 */

/** How much of an unwanted body we read and throw away to keep the connection usable. */
const DISCARD_LIMIT = 8 * 1024 * 1024;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}) {
  res.writeHead(status, headers);
  res.end();
}

/** Turns anything thrown into a typed error; an unexpected one becomes a bare 500 (no stack leaves). */
export function asBackhaulError(error: unknown): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  return new BackhaulError('internal', 'An internal error occurred', { cause: error });
}

/**
 * docs/protocol.md §2: every non-2xx response carries `application/problem+json`. A request body
 * nobody read is drained first (up to a limit) so the client sees the answer instead of a reset
 * socket; past the limit the connection is closed after the answer.
 */
export async function sendProblem(
  req: IncomingMessage,
  res: ServerResponse,
  error: BackhaulError,
): Promise<void> {
  if (res.headersSent) {
    // Too late for a status: a streaming response broke halfway. Cutting it is the only honest signal.
    res.destroy();
    return;
  }
  const drained = await discardBody(req, DISCARD_LIMIT);
  if (res.headersSent || res.destroyed) return;
  writeProblem(res, error, !drained);
}

/**
 * Answers with a problem without touching the request body, then closes the connection: for a
 * client that is not sending its body (too slow, or the server will not wait for it).
 */
export function sendProblemAndClose(res: ServerResponse, error: BackhaulError): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  res.once('finish', () => res.socket?.destroy());
  writeProblem(res, error, true);
}

function writeProblem(res: ServerResponse, error: BackhaulError, closeConnection: boolean): void {
  const body = JSON.stringify(toProblem(error));
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (error.retryAfterMs !== undefined)
    headers['retry-after'] = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
  if (closeConnection) headers.connection = 'close';
  res.writeHead(error.status, headers);
  res.end(body);
}

/**
 * Refuses a body whose declared media type is not one the route reads (415), before a byte of
 * it is read. A request without Content-Type is let through: its body is still validated.
 */
export function requireMediaType(req: IncomingMessage, accepted: readonly string[]): void {
  const declared = req.headers['content-type'];
  if (declared === undefined) return;
  const essence = declared.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  const isAccepted = accepted.some((type) =>
    // `application/*+json` (RFC 6839) is JSON too.
    type === 'application/json'
      ? essence === type || /^application\/[^/]+\+json$/.test(essence)
      : essence === type,
  );
  if (!isAccepted) {
    throw new BackhaulError(
      'unsupported-media-type',
      `Content-Type '${declared.slice(0, 100)}' is not accepted here; send ${accepted.join(' or ')}`,
      { details: { accepted } },
    );
  }
}

/** Reads and drops what is left of a request body; false when it is longer than `limit`. */
export function discardBody(req: IncomingMessage, limit: number): Promise<boolean> {
  if (req.complete || req.readableEnded) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false);
  // A body declared past the limit is not waited for at all: answer now and close.
  if (Number(req.headers['content-length']) > limit) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (result: boolean) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onEnd);
      if (!result) req.pause();
      resolve(result);
    };
    const onData = (piece: Buffer) => {
      seen += piece.length;
      if (seen > limit) finish(false);
    };
    const onEnd = () => finish(req.complete);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onEnd);
    req.once('close', onEnd);
    req.resume();
  });
}

/**
 * Reads a whole body into one buffer, refusing it with `413 payload-too-large` as soon as it is
 * known to exceed `maxBytes`: from `Content-Length` before a byte is read, or while streaming.
 * With a Content-Length the buffer is allocated once and filled in place (one copy per byte).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = (length: number | string) =>
    new BackhaulError(
      'payload-too-large',
      `The body of ${length} bytes exceeds the limit of ${maxBytes} bytes`,
      {
        details: { limit: maxBytes },
      },
    );
  const early = bodyReadBefore(req);
  if (early) {
    if (early.kind !== 'bytes') return Promise.reject(consumedBody(req));
    if (early.bytes.length > maxBytes) return Promise.reject(tooLarge(early.bytes.length));
    return Promise.resolve(early.bytes);
  }
  const declared = req.headers['content-length'];
  const declaredLength = declared === undefined ? undefined : Number(declared);
  if (declaredLength !== undefined && (!Number.isSafeInteger(declaredLength) || declaredLength < 0)) {
    return Promise.reject(new BackhaulError('bad-request', 'Content-Length is not a valid length'));
  }
  if (declaredLength !== undefined && declaredLength > maxBytes)
    return Promise.reject(tooLarge(declaredLength));

  return new Promise((resolve, reject) => {
    const target = declaredLength === undefined ? undefined : Buffer.allocUnsafe(declaredLength);
    const pieces: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const fail = (error: Error) => {
      cleanup();
      req.pause();
      reject(error);
    };
    const onData = (piece: Buffer) => {
      if (received + piece.length > maxBytes) return fail(tooLarge(`more than ${maxBytes}`));
      if (target) {
        if (received + piece.length > target.length) {
          return fail(new BackhaulError('bad-request', 'The body is longer than its Content-Length'));
        }
        piece.copy(target, received);
      } else {
        pieces.push(piece);
      }
      received += piece.length;
    };
    const onEnd = () => {
      cleanup();
      if (target) {
        if (received !== target.length)
          return reject(new BackhaulError('bad-request', 'The body ended early'));
        return resolve(target);
      }
      resolve(pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, received));
    };
    const onError = (error: Error) =>
      fail(new BackhaulError('bad-request', 'The request body failed', { cause: error }));
    const onClose = () => {
      if (!req.complete)
        fail(new BackhaulError('bad-request', 'The client closed the request before the body ended'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
    req.resume();
  });
}

/**
 * Reads and parses a JSON body; the caller validates it with core's `parseMessage`
 * (docs/protocol.md §2: malformed input is a 400 `invalid-message`, never a crash).
 */
export async function readJson(
  req: IncomingMessage,
  what: string,
  maxBytes: number,
): Promise<{ json: unknown; byteLength: number }> {
  requireMediaType(req, ['application/json']);
  const early = bodyReadBefore(req);
  if (early?.kind === 'json') {
    // Already parsed by a framework's JSON parser: measured as its JSON text for the cap.
    const byteLength = Buffer.byteLength(JSON.stringify(early.json) ?? '');
    if (byteLength > maxBytes) {
      throw new BackhaulError(
        'payload-too-large',
        `The body of ${byteLength} bytes exceeds the limit of ${maxBytes} bytes`,
        { details: { limit: maxBytes } },
      );
    }
    return { json: early.json, byteLength };
  }
  const body = await readBody(req, maxBytes);
  return { json: parseJson(body.toString('utf8'), what), byteLength: body.length };
}

/**
 * A body something in front of the handler read before it: Express's body parsers set `req.body`
 * (a Buffer from `express.raw()`, a string from `express.text()`, a value from `express.json()`).
 * Undefined while the stream is unread, which is the normal case: the handler reads it itself.
 * `consumed` when the stream was read and nothing was left behind (Fastify's parsers keep the
 * body on their own request object): waiting for it would hang, so the request fails at once.
 */
type EarlyBody = { kind: 'bytes'; bytes: Buffer } | { kind: 'json'; json: unknown } | { kind: 'consumed' };

function bodyReadBefore(req: IncomingMessage): EarlyBody | undefined {
  if (!req.readableEnded && !req.readableDidRead) return undefined;
  const body = (req as IncomingMessage & { body?: unknown }).body;
  if (Buffer.isBuffer(body)) return { kind: 'bytes', bytes: body };
  if (typeof body === 'string') return { kind: 'bytes', bytes: Buffer.from(body, 'utf8') };
  if (body !== undefined) return { kind: 'json', json: body };
  return { kind: 'consumed' };
}

/** A server misconfiguration, not the client's fault: 500, with the fix in the detail and the log. */
function consumedBody(req: IncomingMessage): BackhaulError {
  return new BackhaulError(
    'internal',
    `The body of ${req.method} ${req.url} was read before the Backhaul handler got it: mount the handler without a body parser in front of it (Fastify: a content-type parser that leaves the body unread; see the server-node README, "Mount it in a framework")`,
    { retryable: false },
  );
}

/** The bearer token of a request, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

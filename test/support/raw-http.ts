import { connect, type Socket } from 'node:net';

/**
 * HTTP/1.1 spoken by hand over a plain socket, for requests no well-behaved client sends:
 * headers past the limit, a body that never comes, a body trickled byte by byte. The client
 * never closes first, so a socket that ends was closed by the server.
 */

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** The first response, once its head and Content-Length bytes of body arrived. */
  response(): RawResponse | undefined;
  /** True once the server ended or reset the connection. */
  closedByServer(): boolean;
  /** Resolves when the server closed the connection (it never resolves if the server does not). */
  closed: Promise<void>;
  /** Writes, resolving once the bytes left (false when the socket is gone). */
  write(bytes: string | Uint8Array): Promise<boolean>;
}

export function openRaw(url: string): Promise<RawConnection> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.hostname, port: Number(target.port) });
    let text = '';
    let serverClosed = false;
    let markClosed!: () => void;
    const closed = new Promise<void>((done) => {
      markClosed = done;
    });
    socket.setEncoding('latin1');
    socket.on('data', (piece: string) => {
      text += piece;
    });
    socket.on('error', () => {
      // ECONNRESET from the server: recorded by 'close' below.
    });
    socket.on('close', () => {
      serverClosed = true;
      markClosed();
    });
    socket.once('connect', () => {
      resolve({
        socket,
        received: () => text,
        response: () => parseResponse(text),
        closedByServer: () => serverClosed,
        closed,
        write: (bytes) =>
          new Promise((done) => {
            if (socket.destroyed || !socket.writable) return done(false);
            socket.write(bytes, (error) => done(!error));
          }),
      });
    });
    socket.once('error', reject);
  });
}

/** Sends a whole request and waits for the server's answer and its closing of the socket. */
export async function rawExchange(
  url: string,
  head: string,
  body?: Uint8Array,
): Promise<{ response: RawResponse | undefined; closedByServer: boolean }> {
  const connection = await openRaw(url);
  await connection.write(head);
  if (body) await connection.write(body);
  await connection.closed;
  return { response: connection.response(), closedByServer: connection.closedByServer() };
}

/** The request head for `method path` with the given headers (CRLF, blank line included). */
export function requestHead(method: string, url: string, headers: Record<string, string | number>): string {
  const target = new URL(url);
  const lines = [`${method} ${target.pathname}${target.search} HTTP/1.1`, `host: ${target.host}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function parseResponse(text: string): RawResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const body = text.slice(end + 4, end + 4 + length);
  if (body.length < length) return undefined;
  return { status, headers, body };
}

import { connect } from 'node:net';
import type pg from 'pg';

/** Protocol code of a CancelRequest (PostgreSQL protocol 3, "Canceling Requests in Progress"). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Asks the server to cancel whatever the client's backend is running, over a new connection,
 * as the protocol prescribes: the busy connection itself cannot be interrupted. Without it an
 * abort would have to wait for the running fetch to finish (up to statement_timeout).
 * Best effort: the server sends no reply, and a failure only means the fetch runs to its end.
 *
 * Resolves once the server closed the cancel connection, which it does after signalling the
 * backend. The request races the work it cancels: if that work ends first, the signal still comes,
 * and it must reach the backend while it is idle (where PostgreSQL ignores it), not in the next
 * query on the connection. So the connection is not handed on before this resolves.
 */
export function sendCancelRequest(client: pg.PoolClient): Promise<void> {
  // pg keeps the BackendKeyData of the session on the client; @types/pg does not declare it.
  const { processID, secretKey } = client as unknown as { processID?: number; secretKey?: number };
  if (typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve();
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  const host = client.host || 'localhost';
  const socket = host.startsWith('/')
    ? connect(`${host}/.s.PGSQL.${client.port}`)
    : connect({ host, port: client.port });
  return new Promise((resolve) => {
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.once('close', () => resolve());
    socket.once('connect', () => socket.end(packet));
  });
}

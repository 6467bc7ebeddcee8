import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTcpFaultProxy, type TcpFaultProxy } from './tcp-fault-proxy.js';
import { until } from './until.js';

/** The proxy's own check, on real sockets: an echo server behind it, raw clients in front. */
describe('TCP fault proxy', () => {
  let echo: Server;
  let received: Buffer[];
  let proxy: TcpFaultProxy;
  const clients: Socket[] = [];

  beforeEach(async () => {
    received = [];
    echo = createServer((socket) => {
      socket.on('data', (piece: Buffer) => {
        received.push(piece);
        socket.write(piece);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    proxy = await startTcpFaultProxy(`http://127.0.0.1:${address.port}`);
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await proxy.close();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  const connect = async () => {
    const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    clients.push(socket);
    await once(socket, 'connect');
    const seen: Buffer[] = [];
    const outcome = new Promise<string>((resolve) => {
      socket.on('data', (piece: Buffer) => seen.push(piece));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      socket.on('end', () => resolve('end'));
    });
    return { socket, seen: () => Buffer.concat(seen), outcome };
  };
  const serverGot = () => Buffer.concat(received).toString('latin1');

  it('forwards both ways untouched without a rule, and keeps order under a delay', async () => {
    proxy.setDelay(5);
    const { socket, seen } = await connect();
    const pieces = Array.from({ length: 20 }, (_, i) => `piece-${i};`);
    for (const piece of pieces) socket.write(piece);
    const expected = pieces.join('');
    await until(() => seen().length >= expected.length, 'the echo');
    expect(seen().toString('latin1')).toBe(expected);
    expect(proxy.connections[0]?.bytes).toEqual({ upstream: expected.length, downstream: expected.length });
  });

  it('cuts a connection (FIN) exactly N bytes after a marker', async () => {
    proxy.addRule({ marker: 'PUT /chunks/3', fault: { kind: 'cut', afterBytes: 20 } });
    const { socket, outcome } = await connect();
    socket.write('GET /other HTTP/1.1\r\n\r\n');
    socket.write(`PUT /chunks/3 HTTP/1.1\r\n\r\n${'x'.repeat(1000)}`);
    expect(await outcome).toBe('end');
    // Everything before the marker, then exactly 20 bytes from the marker on.
    const expected = 'GET /other HTTP/1.1\r\n\r\nPUT /chunks/3 HTTP/1';
    await until(() => serverGot().length >= expected.length, 'the bytes before the cut');
    expect(serverGot()).toBe(expected);
    expect(proxy.fired).toBe(1);
    // The rule fired once: a second connection passes untouched.
    const second = await connect();
    second.socket.write('PUT /chunks/3 again');
    await until(() => second.seen().length === 19, 'the second echo');
  });

  it('finds a marker split across two writes and resets the connection (RST)', async () => {
    proxy.addRule({ marker: 'MARKER', fault: { kind: 'reset', afterBytes: 5 } });
    const { socket, outcome } = await connect();
    socket.write('abcMAR');
    await until(() => serverGot().length === 6, 'the first half');
    socket.write('KERdefgh');
    expect(await outcome).toBe('ECONNRESET');
    // 5 bytes from the marker's start, 3 of which came with the first write.
    await until(() => serverGot().length >= 8, 'the bytes before the reset');
    expect(serverGot()).toBe('abcMARKE');
  });

  it('stalls a connection without closing it: no byte passes, both sockets stay open', async () => {
    const { socket, seen } = await connect();
    socket.write('hello');
    await until(() => seen().length === 5, 'the first echo');
    proxy.connections[0]?.stall();
    socket.write('lost in the stall');
    // A second connection through the same proxy proves the first one's bytes were processed.
    const other = await connect();
    other.socket.write('ping');
    await until(() => other.seen().length === 4, 'the other echo');
    await until(() => proxy.connections[0]?.bytes.upstream === 5 + 17, 'the stalled bytes to arrive');
    expect(serverGot()).toBe('helloping');
    expect(seen().toString('latin1')).toBe('hello');
    expect(proxy.connections[0]?.state).toBe('stalled');
    expect(socket.destroyed).toBe(false);
    expect(socket.readyState).toBe('open');
  });

  it('stalls downstream after N bytes of what the server sends', async () => {
    proxy.addRule({ direction: 'downstream', fault: { kind: 'stall', afterBytes: 4 } });
    const { socket, seen } = await connect();
    socket.write('abcdefgh');
    await until(() => serverGot() === 'abcdefgh', 'the server to get every byte');
    await until(() => proxy.connections[0]?.bytes.downstream === 8, 'the echo to reach the proxy');
    expect(seen().toString('latin1')).toBe('abcd');
    expect(proxy.connections[0]?.state).toBe('stalled');
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createChecksummer } from '@backhaul/core';
import { createGateway } from '@backhaul/gateway-node';
import { type BackhaulServer, type BackhaulServerOptions, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureDemoDatabase } from '../../examples/src/demo-data.js';
import { openRaw, type RawConnection, requestHead } from '../support/raw-http.js';

/**
 * Slowloris: many connections that each send their request a byte at a time, to hold sockets
 * and buffers open for as long as the server lets them. The server closes every one within its
 * timeouts (headersTimeoutMs, requestTimeoutMs, bodyIdleTimeoutMs, scaled down here), while a
 * legitimate gateway's commands and upload complete during the attack.
 */

const gatewayId = 'gw-slowloris';
const gatewayToken = 'gateway-token-slowloris';
const callerToken = 'caller-token-slowloris';
/** A second gateway that never connects: the attackers hold its token, and aim at its command. */
const idleGateway = { id: 'gw-idle', token: 'gateway-token-idle-slowloris' };
const chunkSize = 64 * 1024;

const timeouts = { headersTimeoutMs: 1000, requestTimeoutMs: 3000, bodyIdleTimeoutMs: 1000 };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newServer(extra: Partial<BackhaulServerOptions> = {}): BackhaulServer {
  const root = mkdtempSync(join(tmpdir(), 'backhaul-slowloris-'));
  const server = createBackhaulServer({
    storage: createFsStorage({ root }),
    gateways: [{ id: gatewayId, token: gatewayToken }, idleGateway],
    callerTokens: [callerToken],
    chunkSize,
    sweepIntervalMs: 50,
    ...timeouts,
    ...extra,
  });
  cleanups.push(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });
  return server;
}

interface Attacker {
  kind: string;
  connection: RawConnection;
  /** Bytes it managed to send before the server closed it. */
  sent: number;
}

/**
 * Opens `count` connections that send `prefix` whole, then `trickle` one byte every `everyMs`
 * (or nothing, for a stall), and never close: any close is the server's.
 */
async function attack(
  kind: string,
  url: string,
  count: number,
  prefix: string,
  trickle: string,
  everyMs: number,
): Promise<Attacker[]> {
  const attackers: Attacker[] = [];
  for (let i = 0; i < count; i++) {
    const connection = await openRaw(url);
    const attacker: Attacker = { kind, connection, sent: 0 };
    attackers.push(attacker);
    cleanups.push(() => void connection.socket.destroy());
    await connection.write(prefix);
    if (trickle.length === 0) continue;
    let position = 0;
    const timer = setInterval(() => {
      if (connection.closedByServer() || position >= trickle.length) return clearInterval(timer);
      void connection.write(trickle[position++]!).then((ok) => {
        if (ok) attacker.sent++;
      });
    }, everyMs);
    cleanups.push(() => clearInterval(timer));
  }
  return attackers;
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Every attacker closed by the server, and every answer it got before that a 408 problem. */
function expectAllClosedWith408(attackers: Attacker[]) {
  const summary = attackers.map((attacker) => ({
    kind: attacker.kind,
    closedByServer: attacker.connection.closedByServer(),
    status: attacker.connection.response()?.status,
    type: attacker.connection.response()?.headers['content-type'],
  }));
  for (const entry of summary) {
    expect(entry).toMatchObject({ closedByServer: true });
    if (entry.status !== undefined)
      expect(entry).toMatchObject({ status: 408, type: 'application/problem+json' });
  }
  return summary;
}

const attackerAuth = `Bearer ${idleGateway.token}`;
const chunkHead = (url: string, commandId: string, contentLength: number) =>
  requestHead('PUT', `${url}/v1/gateway/commands/${commandId}/chunks/0`, {
    authorization: attackerAuth,
    'content-type': 'application/octet-stream',
    'backhaul-codec': 'identity',
    'backhaul-checksum': '0000000000000000',
    'backhaul-raw-length': contentLength,
    'content-length': contentLength,
  });

describe('slowloris on the SSE and upload endpoints, with a legitimate gateway at work', () => {
  it('closes every slow connection within the timeouts while the gateway runs a rows and a file query', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backhaul-slowloris-db-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dbPath = ensureDemoDatabase(join(dir, 'orders.sqlite'), 20_000).path;
    const server = newServer();
    const { url } = await server.listen(0, '127.0.0.1');
    const client = createBackhaulClient({ url, token: callerToken });
    const source = createSqliteDataSource({ filename: dbPath });
    const gateway = createGateway({ serverUrl: url, token: gatewayToken, dataSource: source });
    cleanups.push(async () => {
      await gateway.stop();
      await source.close();
    });
    await gateway.start();

    // A command the attackers' chunk uploads aim at: real, in file mode, of a gateway not running.
    const target = await client.submit({ gatewayId: idleGateway.id, sql: 'SELECT 1 AS one', mode: 'file' });
    const streamHead = requestHead('GET', `${url}/v1/gateway/commands`, {
      authorization: attackerAuth,
      accept: 'text/event-stream',
    });
    const uploadHead = chunkHead(url, target.id, chunkSize);
    const perKind = 12;
    const attackers = [
      // Headers a byte at a time, never finished: Node's headersTimeout.
      ...(await attack('SSE headers', url, perKind, '', streamHead, 50)),
      ...(await attack('upload headers', url, perKind, '', uploadHead, 50)),
      // Whole headers, then the body a byte every 50 ms: never idle, so the request deadline.
      ...(await attack('upload body trickled', url, perKind, uploadHead, 'x'.repeat(chunkSize), 50)),
      // Whole headers and 1000 bytes, then silence: the idle deadline.
      ...(await attack('upload body stalled', url, perKind, `${uploadHead}${'y'.repeat(1000)}`, '', 0)),
    ];

    // The legitimate work, during the attack.
    const rows = await client.submit({ gatewayId, sql: 'SELECT count(*) AS n FROM orders', mode: 'rows' });
    const file = await client.submit({ gatewayId, sql: 'SELECT * FROM orders', mode: 'file' });
    const [rowsDone, fileDone] = await Promise.all([client.waitFor(rows.id), client.waitFor(file.id)]);
    expect(rowsDone.state).toBe('completed');
    expect((await client.rows(rows.id)).rows).toEqual([[20_000]]);
    expect(fileDone.state).toBe('completed');
    const result = fileDone.result;
    if (result?.kind !== 'file') throw new Error('the file query has no file result');
    expect(result.size).toBeGreaterThan(4 * chunkSize); // several chunks went up during the attack
    const download = new Uint8Array(await (await fetch(result.url)).arrayBuffer());
    expect(download.length).toBe(result.size);
    expect((await createChecksummer()).digest(download)).toBe(result.checksum);
    // The gateway finished while at least some attackers were still holding on.
    const stillOpenWhenDone = attackers.filter((attacker) => !attacker.connection.closedByServer()).length;

    await until(
      () => attackers.every((attacker) => attacker.connection.closedByServer()),
      'every slow socket closed',
    );
    const summary = expectAllClosedWith408(attackers);
    // A trickled body never got far: the request deadline cut it long before 64 KiB.
    for (const attacker of attackers.filter((a) => a.kind === 'upload body trickled'))
      expect(attacker.sent).toBeLessThan(chunkSize);
    // Nothing any attacker sent was stored.
    const receipt = await fetch(`${url}/v1/gateway/commands/${target.id}/chunks`, {
      headers: { authorization: attackerAuth },
    });
    expect(await receipt.json()).toEqual({ contiguous: 0, buffered: [], checksums: {} });
    expect(gateway.connected).toBe(true);
    console.info(
      JSON.stringify({
        attackers: summary.length,
        stillOpenWhenTheGatewayFinished: stillOpenWhenDone,
        answered408: summary.filter((entry) => entry.status === 408).length,
      }),
    );
  }, 90_000);
});

describe('the handler holds its own body deadlines when mounted in a server without timeouts', () => {
  it('closes a trickled and a stalled chunk body with 408 though the host server would wait forever', async () => {
    const backhaul = newServer();
    // A host like Express's app.listen(), with Node's request timeout switched off.
    const host = createServer({ requestTimeout: 0 }, (req, res) => backhaul.handler(req, res));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          host.closeAllConnections();
          host.close(() => resolve());
        }),
    );
    const url = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
    const target = await backhaul.submitQuery({ gatewayId: idleGateway.id, sql: 'SELECT 1', mode: 'file' });
    const uploadHead = chunkHead(url, target.id, chunkSize);
    const attackers = [
      ...(await attack('upload body trickled', url, 4, uploadHead, 'x'.repeat(chunkSize), 50)),
      ...(await attack('upload body stalled', url, 4, `${uploadHead}${'y'.repeat(1000)}`, '', 0)),
    ];
    await until(
      () => attackers.every((attacker) => attacker.connection.closedByServer()),
      'every slow socket closed',
    );
    const summary = expectAllClosedWith408(attackers);
    expect(summary.filter((entry) => entry.status === 408).length).toBeGreaterThan(0);
    for (const attacker of attackers.filter((a) => a.kind === 'upload body trickled'))
      expect(attacker.sent).toBeLessThan(chunkSize);
  }, 60_000);
});

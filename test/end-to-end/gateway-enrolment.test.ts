import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulClient } from '@backhaul/client';
import { createGateway, type Gateway, type GatewayEvent } from '@backhaul/gateway-node';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import {
  createRedisCommandStore,
  createRedisCredentialStore,
  type RedisCommandStore,
  type RedisCredentialStore,
} from '@backhaul/store-redis';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackhaulAdmin } from '../support/admin-cli-process.js';
import { deleteRedisKeys, redisService, redisUrl, uniqueName } from '../support/production-services.js';

/**
 * docs/protocol.md §10 end to end: an operator enrols a gateway with the `backhaul-admin` program,
 * a real gateway (gateway-node, SQLite) connects with the printed token and answers queries, the
 * token is rotated and the old one revoked, and three servers sharing one Redis all end the
 * streams that used it. The servers run in this process, each with its own Redis connections,
 * as separate processes would.
 */

const adminToken = 'admin-token-for-the-enrolment-test';
const callerToken = 'caller-token-for-the-enrolment-test';
const gatewayId = 'gw-enrolled-e2e';
const rowCount = 500;

interface Node {
  server: BackhaulServer;
  url: string;
  store: RedisCommandStore;
  credentials: RedisCredentialStore;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

redisService.describe(
  'gateway enrolment end to end: backhaul-admin, a real gateway, three servers on one Redis',
  () => {
    const prefix = `${uniqueName('backhaul-test-enrol')}:`;
    const dir = mkdtempSync(join(tmpdir(), 'backhaul-enrol-'));
    const sqlitePath = join(dir, 'items.db');
    const nodes: Node[] = [];
    const gateways: Gateway[] = [];
    const issuedTokens: string[] = [];
    const admin = (args: string[]) =>
      runBackhaulAdmin([...args, '--server', nodes[0]!.url], { BACKHAUL_ADMIN_TOKEN: adminToken });

    beforeAll(async () => {
      const db = new Database(sqlitePath);
      db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
      const insert = db.prepare('INSERT INTO items (id, name) VALUES (?, ?)');
      db.transaction(() => {
        for (let id = 1; id <= rowCount; id++) insert.run(id, `item-${id}`);
      })();
      db.close();
      for (let i = 0; i < 3; i++) {
        const store = createRedisCommandStore({ url: redisUrl, keyPrefix: prefix });
        const credentials = createRedisCredentialStore({ url: redisUrl, keyPrefix: prefix });
        const server = createBackhaulServer({
          storage: createFsStorage({ root: join(dir, `storage-${i}`) }),
          store,
          credentialStore: credentials,
          gateways: [],
          callerTokens: [callerToken],
          adminTokens: [adminToken],
          sweepIntervalMs: 50,
          tokenRecheckMs: 100,
        });
        const { url } = await server.listen(0, '127.0.0.1');
        nodes.push({ server, url, store, credentials });
      }
    });

    afterAll(async () => {
      await Promise.all(gateways.map((gateway) => gateway.stop()));
      for (const node of nodes) {
        await node.server.close();
        await node.store.close();
        await node.credentials.close();
      }
      await deleteRedisKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    });

    function startGateway(on: Node, token: string, events: GatewayEvent[] = []) {
      const gateway = createGateway({
        serverUrl: on.url,
        token,
        dataSource: createSqliteDataSource({ filename: sqlitePath }),
        reconnect: { baseDelayMs: 50, maxDelayMs: 200 },
      });
      gateway.on((event) => events.push(event));
      gateways.push(gateway);
      return { gateway, events, started: gateway.start() };
    }

    /**
     * Submits on the server that holds the gateway's stream: row batches and the caller's live
     * events stay with the server the gateway answered (docs/redis.md), so the caller asks that one.
     */
    async function runQuery(on: Node) {
      const client = createBackhaulClient({ url: on.url, token: callerToken });
      const submitted = await client.submit({
        gatewayId,
        sql: 'SELECT id, name FROM items ORDER BY id',
        mode: 'rows',
      });
      const done = await client.waitFor(submitted.id);
      expect(done.state).toBe('completed');
      const { rows } = await client.rows(submitted.id);
      expect(rows).toHaveLength(rowCount);
      expect(rows[0]).toEqual([1, 'item-1']);
      expect(rows[rowCount - 1]).toEqual([rowCount, `item-${rowCount}`]);
    }

    let firstToken = '';
    let firstTokenId = '';
    let firstGateway: ReturnType<typeof startGateway>;
    let rawStreamOnA: Response;

    describe('§10.1 enrol with backhaul-admin, then a gateway connects with the printed token', () => {
      it('`backhaul-admin enrol` prints the token alone on stdout, exit 0; the gateway runs a query with it', async () => {
        const enrolled = await admin(['enrol', gatewayId]);
        expect(enrolled.status, enrolled.stderr).toBe(0);
        expect(enrolled.stdout).toMatch(/^bhg_[A-Za-z0-9_-]{43}\n$/);
        expect(enrolled.stderr).toContain(`Enrolled ${gatewayId}: token tok-`);
        firstToken = enrolled.stdout.trim();
        issuedTokens.push(firstToken);

        const listed = await admin(['list', '--json']);
        expect(listed.status, listed.stderr).toBe(0);
        const { gateways } = JSON.parse(listed.stdout) as {
          gateways: { gatewayId: string; tokens: { id: string }[] }[];
        };
        expect(gateways.map((g) => [g.gatewayId, g.tokens.length])).toEqual([[gatewayId, 1]]);
        firstTokenId = gateways[0]!.tokens[0]!.id;
        expect(listed.stdout).not.toContain(firstToken);

        // The gateway dials server B, and the CLI spoke to server A: the enrolment is shared.
        firstGateway = startGateway(nodes[1]!, firstToken);
        await firstGateway.started;
        await runQuery(nodes[1]!);
      });
    });

    describe('§10.3 rotate: the old and the new token both work until the old one is revoked', () => {
      it('`backhaul-admin rotate` prints a second token; a gateway on server C connects with it while the first keeps its stream', async () => {
        const rotated = await admin(['rotate', gatewayId, '--json']);
        expect(rotated.status, rotated.stderr).toBe(0);
        const issued = JSON.parse(rotated.stdout) as { gatewayId: string; tokenId: string; token: string };
        expect(issued.gatewayId).toBe(gatewayId);
        expect(issued.token).not.toBe(firstToken);
        issuedTokens.push(issued.token);

        const second = startGateway(nodes[2]!, issued.token);
        await second.started;
        // The old token still opens a stream, here on server A.
        rawStreamOnA = await fetch(`${nodes[0]!.url}/v1/gateway/commands`, {
          headers: { authorization: `Bearer ${firstToken}`, accept: 'text/event-stream' },
        });
        expect(rawStreamOnA.status).toBe(200);
        expect(firstGateway.gateway.connected).toBe(true);
        expect(second.gateway.connected).toBe(true);
      });
    });

    describe('§10.4 revoke: every stream using the token ends, on every server, and it is refused everywhere', () => {
      it('`backhaul-admin revoke` through server A ends the stream on A at once and the gateway’s stream on B; the gateway stops on 401', async () => {
        const revoked = await admin(['revoke', gatewayId, firstTokenId]);
        expect(revoked.status, revoked.stderr).toBe(0);
        expect(revoked.stdout).toContain(`Revoked token ${firstTokenId} of ${gatewayId}`);

        // Server A handled the revocation: its stream with the token ends (the body reaches its end).
        const body = await rawStreamOnA.text();
        expect(body).toContain('event: hello');
        // Server B notices on its re-check: the gateway's stream ends, its reconnect is refused.
        const refusal = await until('the first gateway is refused', () =>
          firstGateway.events.find(
            (event) =>
              event.type === 'disconnected' &&
              (event.error as { status?: number } | undefined)?.status === 401,
          ),
        );
        expect(refusal).toBeDefined();
        await expect(firstGateway.started).resolves.toBeUndefined();
        expect(firstGateway.gateway.connected).toBe(false);
        for (const node of nodes) {
          const response = await fetch(`${node.url}/v1/gateway/commands`, {
            headers: { authorization: `Bearer ${firstToken}` },
          });
          expect(response.status).toBe(401);
          await response.body?.cancel();
        }
        // Only the gateway with the new token (on server C) gets commands now, and answers them.
        await runQuery(nodes[2]!);
      });

      it('Redis holds only token hashes: no key and no value contains a token', async () => {
        const redis = new Redis(redisUrl);
        try {
          const keys: string[] = [];
          let cursor = '0';
          do {
            const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
            cursor = next;
            keys.push(...found);
          } while (cursor !== '0');
          expect(keys.some((key) => key.startsWith(`${prefix}enrolment:`))).toBe(true);
          let dump = keys.join('\n');
          for (const key of keys) {
            const type = await redis.type(key);
            if (type === 'string') dump += await redis.get(key);
            else if (type === 'hash') dump += JSON.stringify(await redis.hgetall(key));
            else if (type === 'set') dump += (await redis.smembers(key)).join('\n');
            else if (type === 'zset') dump += (await redis.zrange(key, 0, -1)).join('\n');
            else if (type === 'stream') dump += JSON.stringify(await redis.xrange(key, '-', '+'));
          }
          expect(issuedTokens).toHaveLength(2);
          for (const token of issuedTokens) {
            expect(dump).not.toContain(token);
            expect(dump).not.toContain(token.slice(4)); // the random part alone either
          }
        } finally {
          await redis.quit();
        }
      });
    });

    describe('backhaul-admin exits non-zero with the problem’s title and detail', () => {
      it('1 for a refusal by the server (unknown gateway, wrong admin token, already enrolled), 2 for wrong usage', async () => {
        const unknown = await admin(['revoke', 'gw-nobody', 'tok-000000000000']);
        expect(unknown.status).toBe(1);
        expect(unknown.stderr).toBe(
          "backhaul-admin: No such resource: Gateway 'gw-nobody' is not enrolled\n",
        );

        const again = await admin(['enrol', gatewayId]);
        expect(again.status).toBe(1);
        expect(again.stderr).toContain(
          `The resource already exists: Gateway '${gatewayId}' is already enrolled`,
        );
        expect(again.stdout).toBe('');

        const wrongToken = await runBackhaulAdmin([
          'list',
          '--server',
          nodes[0]!.url,
          '--admin-token',
          callerToken,
        ]);
        expect(wrongToken.status).toBe(1);
        expect(wrongToken.stderr).toContain('This credential may not touch that resource');

        const noToken = await runBackhaulAdmin(['list', '--server', nodes[0]!.url]);
        expect(noToken.status).toBe(2);
        expect(noToken.stderr).toContain('BACKHAUL_ADMIN_TOKEN');
        const badUsage = await admin(['revoke', gatewayId]);
        expect(badUsage.status).toBe(2);
        expect(badUsage.stderr).toContain('revoke takes 2 argument(s), got 1');

        const removed = await admin(['remove', gatewayId]);
        expect(removed.status, removed.stderr).toBe(0);
        expect(JSON.parse((await admin(['list', '--json'])).stdout)).toEqual({ gateways: [] });
      });
    });
  },
);

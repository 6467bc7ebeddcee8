import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackhaulAdminClient, createBackhaulClient } from '@backhaul/client';
import {
  type CommandStore,
  type CredentialStore,
  createMemoryCommandStore,
  createMemoryCredentialStore,
} from '@backhaul/core';
import { createGateway, type Gateway } from '@backhaul/gateway-node';
import { type BackhaulServer, createBackhaulServer } from '@backhaul/server-node';
import { createSqliteDataSource } from '@backhaul/source-sqlite';
import { createFsStorage } from '@backhaul/storage-fs';
import { createRedisCommandStore, createRedisCredentialStore } from '@backhaul/store-redis';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackhaulAdmin } from '../support/admin-cli-process.js';
import { deleteRedisKeys, redisService, redisUrl, uniqueName } from '../support/production-services.js';

/*
 * docs/security.md "Caller isolation", through the real HTTP API: two servers share one command
 * store and one credential store (in memory, then on Redis), a real gateway answers from SQLite,
 * and callers configured in the options and enrolled through the admin API see only their own
 * queries, on either server.
 */

const gatewayId = 'gw-isolation';
const otherGatewayId = 'gw-isolation-other';
const gatewayToken = 'isolation-gateway-token';
const otherGatewayToken = 'isolation-other-gateway-token';
const staticCallerToken = 'isolation-static-caller-token';
const adminToken = 'isolation-admin-token';

interface Stores {
  store: () => CommandStore;
  credentials: () => CredentialStore;
  cleanup(): Promise<void>;
}

function suite(name: string, makeStores: () => Stores) {
  describe(`caller isolation with the ${name} stores`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'backhaul-isolation-'));
    const dbPath = join(dir, 'numbers.sqlite');
    const servers: { server: BackhaulServer; url: string }[] = [];
    const owned: { close(): Promise<void> }[] = [];
    let gateway: Gateway;
    let stores: Stores;

    beforeAll(async () => {
      const db = new Database(dbPath);
      db.exec('CREATE TABLE numbers (n INTEGER NOT NULL)');
      const insert = db.prepare('INSERT INTO numbers VALUES (?)');
      for (let n = 1; n <= 100; n++) insert.run(n);
      db.close();
      stores = makeStores();
      for (let i = 0; i < 2; i++) {
        const store = stores.store();
        const credentialStore = stores.credentials();
        owned.push(store, credentialStore);
        const server = createBackhaulServer({
          storage: createFsStorage({ root: join(dir, 'storage') }),
          store,
          credentialStore,
          gateways: [
            { id: gatewayId, token: gatewayToken },
            { id: otherGatewayId, token: otherGatewayToken },
          ],
          callerTokens: [staticCallerToken],
          adminTokens: [adminToken],
          // Streams of revoked tokens on the other server end at its next re-check.
          tokenRecheckMs: 100,
          // Download links signed by one server work on the other.
          downloadSecret: 'isolation-download-secret-0123456789',
        });
        servers.push({ server, url: (await server.listen()).url });
      }
      gateway = createGateway({
        serverUrl: servers[0]!.url,
        token: gatewayToken,
        dataSource: createSqliteDataSource({ filename: dbPath }),
      });
      await gateway.start();
    });

    afterAll(async () => {
      await gateway?.stop();
      for (const { server } of servers) await server.close();
      for (const store of owned) await store.close();
      await stores?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    const status = async (url: string, token: string, path: string, init: RequestInit = {}) => {
      const response = await fetch(`${url}${path}`, {
        ...init,
        redirect: 'manual',
        headers: { authorization: `Bearer ${token}`, ...init.headers },
      });
      await response.body?.cancel();
      return response.status;
    };

    it("another caller gets 404 on a query's state, events and result, on either server; admins see every query", async () => {
      const [first, second] = [servers[0]!.url, servers[1]!.url];
      const admin = createBackhaulAdminClient({ url: first, token: adminToken });
      const enrolled = await admin.callers.enrol({ callerId: `billing-${name}` });
      expect(enrolled.token.startsWith('bhc_')).toBe(true);

      const owner = createBackhaulClient({ url: first, token: staticCallerToken });
      // Queries are submitted and followed where the gateway is connected (relaying commands and
      // events between servers is not what this test is about); reads go to both servers.
      const other = createBackhaulClient({ url: first, token: enrolled.token });

      const rowsQuery = await owner.submit({
        gatewayId,
        sql: 'SELECT n FROM numbers ORDER BY n',
        mode: 'rows',
      });
      const fileQuery = await owner.submit({ gatewayId, sql: 'SELECT n FROM numbers', mode: 'file' });
      expect((await owner.waitFor(rowsQuery.id)).state).toBe('completed');
      const file = await owner.waitFor(fileQuery.id);
      expect(file.result?.kind).toBe('file');
      expect((await owner.rows(rowsQuery.id)).rows.length).toBe(100);

      // The other caller, on the other server: 404 as for an ID that does not exist.
      for (const url of [first, second]) {
        for (const id of [rowsQuery.id, fileQuery.id]) {
          for (const path of [`/v1/queries/${id}`, `/v1/queries/${id}/events`, `/v1/queries/${id}/result`]) {
            expect({ url, path, status: await status(url, enrolled.token, path) }).toEqual({
              url,
              path,
              status: 404,
            });
          }
        }
      }
      const refused = await other.get(rowsQuery.id).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'not-found', message: `No query ${rowsQuery.id}` });
      await expect(other.rows(rowsQuery.id)).rejects.toMatchObject({ code: 'not-found' });
      // Its own query is its own, and the first caller cannot see that one either.
      const own = await other.submit({ gatewayId, sql: 'SELECT count(*) AS c FROM numbers', mode: 'rows' });
      expect((await other.waitFor(own.id)).state).toBe('completed');
      expect((await other.rows(own.id)).rows).toEqual([[100]]);
      expect(await status(first, staticCallerToken, `/v1/queries/${own.id}`)).toBe(404);

      // A rotated token is the same caller: it still owns its queries.
      const rotated = await admin.callers.issueToken(enrolled.callerId);
      expect(await status(second, rotated.token, `/v1/queries/${own.id}`)).toBe(200);

      // Admins read every query, the file result's redirect included; they submit none.
      for (const url of [first, second]) {
        expect(await status(url, adminToken, `/v1/queries/${rowsQuery.id}`)).toBe(200);
        expect(await status(url, adminToken, `/v1/queries/${fileQuery.id}/result`)).toBe(303);
      }
      // Rows are kept by the server the gateway sent them to.
      expect(await status(first, adminToken, `/v1/queries/${own.id}/result`)).toBe(200);
      expect(
        await status(first, adminToken, '/v1/queries', {
          method: 'POST',
          body: JSON.stringify({ gatewayId, sql: 'SELECT 1' }),
          headers: { 'content-type': 'application/json' },
        }),
      ).toBe(403);
      // An enrolled admin is an admin too.
      const enrolledAdmin = await admin.callers.enrol({ callerId: `ops-${name}`, role: 'admin' });
      expect(enrolledAdmin.token.startsWith('bha_')).toBe(true);
      expect(await status(second, enrolledAdmin.token, `/v1/queries/${rowsQuery.id}`)).toBe(200);
      expect(
        (await createBackhaulAdminClient({ url: second, token: enrolledAdmin.token }).callers.list()).length,
      ).toBeGreaterThanOrEqual(2);
    });

    it('a caller restricted to some gateways gets 404 submitting elsewhere and sees only its gateways', async () => {
      const [first, second] = [servers[0]!.url, servers[1]!.url];
      const admin = createBackhaulAdminClient({ url: first, token: adminToken });
      const restricted = await admin.callers.enrol({
        callerId: `reports-${name}`,
        gateways: [otherGatewayId],
      });
      const client = createBackhaulClient({ url: first, token: restricted.token });

      const refused = await client
        .submit({ gatewayId, sql: 'SELECT 1', mode: 'rows' })
        .catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: 'not-found', status: 404 });
      // Word for word the answer for a gateway that does not exist: nothing to tell them apart.
      const unknown = await client
        .submit({ gatewayId: 'gw-nowhere', sql: 'SELECT 1', mode: 'rows' })
        .catch((error: unknown) => error);
      expect((refused as Error).message).toBe(`No gateway '${gatewayId}' is configured`);
      expect((unknown as Error).message).toBe(`No gateway 'gw-nowhere' is configured`);
      expect((await client.gateways()).map((g) => g.id)).toEqual([otherGatewayId]);
      expect(await status(second, restricted.token, '/v1/gateways')).toBe(200);
      // Its allowed gateway takes the query (the gateway is not connected: the query waits, pending).
      const allowed = await client.submit({ gatewayId: otherGatewayId, sql: 'SELECT 1', mode: 'rows' });
      expect(allowed.state).toBe('pending');

      // Lifting the restriction applies from the next request, on every server.
      await admin.callers.restrict(restricted.callerId, null);
      const lifted = await client.submit({ gatewayId, sql: 'SELECT 1 AS one', mode: 'rows' });
      expect((await client.waitFor(lifted.id)).state).toBe('completed');
      expect((await client.gateways()).map((g) => g.id).sort()).toEqual([gatewayId, otherGatewayId]);
    });

    it('a revoked or removed caller is refused at once by every server sharing the credential store', async () => {
      const [first, second] = [servers[0]!.url, servers[1]!.url];
      const admin = createBackhaulAdminClient({ url: first, token: adminToken });
      const caller = await admin.callers.enrol({ callerId: `temp-${name}` });
      const spare = await admin.callers.issueToken(caller.callerId);
      expect(await status(second, caller.token, '/v1/gateways')).toBe(200);

      const revoked = await admin.callers.revokeToken(caller.callerId, caller.tokenId);
      expect(revoked.revokedAt).toBeDefined();
      for (const url of [first, second]) expect(await status(url, caller.token, '/v1/gateways')).toBe(401);
      expect(await status(second, spare.token, '/v1/gateways')).toBe(200);
      expect((await admin.callers.get(caller.callerId)).tokens.map((t) => t.id)).toEqual([
        caller.tokenId,
        spare.tokenId,
      ]);

      await admin.callers.remove(caller.callerId);
      for (const url of [first, second]) expect(await status(url, spare.token, '/v1/gateways')).toBe(401);
      await expect(admin.callers.get(caller.callerId)).rejects.toMatchObject({ code: 'not-found' });
      // A configured caller's ID cannot be enrolled over it.
      const configuredId = `caller-${(await import('node:crypto')).createHash('sha256').update(staticCallerToken).digest('hex').slice(0, 12)}`;
      await expect(admin.callers.enrol({ callerId: configuredId })).rejects.toMatchObject({
        code: 'conflict',
      });
      // Unknown members and gateways for an admin are refused.
      await expect(
        admin.callers.enrol({ callerId: `x-${name}`, role: 'admin', gateways: [gatewayId] }),
      ).rejects.toMatchObject({ code: 'invalid-message' });
    });

    it("a revoked caller token's open event streams end: at once where revoked, at the re-check elsewhere", async () => {
      const [first, second] = [servers[0]!.url, servers[1]!.url];
      const admin = createBackhaulAdminClient({ url: first, token: adminToken });
      const caller = await admin.callers.enrol({ callerId: `follower-${name}` });
      const spare = await admin.callers.issueToken(caller.callerId);
      // A query on a gateway that is not connected: it stays pending, its stream stays open.
      const waiting = await createBackhaulClient({ url: first, token: caller.token }).submit({
        gatewayId: otherGatewayId,
        sql: 'SELECT 1',
        mode: 'rows',
      });
      const open = async (url: string, token: string) => {
        const response = await fetch(`${url}/v1/queries/${waiting.id}/events`, {
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        });
        expect(response.status).toBe(200);
        const reader = response.body!.getReader();
        // Up to the current state: the stream is open and registered.
        let text = '';
        while (!text.includes('event: state')) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the stream ended early: ${text}`);
          text += new TextDecoder().decode(value);
        }
        return async () => {
          for (;;) if ((await reader.read()).done) return 'ended';
        };
      };
      const onFirst = await open(first, caller.token);
      const onSecond = await open(second, caller.token);
      const spareStream = await open(first, spare.token);
      await admin.callers.revokeToken(caller.callerId, caller.tokenId);
      expect(await onFirst()).toBe('ended');
      expect(await onSecond()).toBe('ended');
      // The other token of the same caller keeps its stream until the caller is removed.
      const afterRevoke = await fetch(`${first}/v1/queries/${waiting.id}`, {
        headers: { authorization: `Bearer ${spare.token}` },
      });
      expect(afterRevoke.status).toBe(200);
      await admin.callers.remove(caller.callerId);
      expect(await spareStream()).toBe('ended');
    });

    it('backhaul-admin enrols, restricts, lists, rotates, revokes and removes callers', async () => {
      const [first, second] = [servers[0]!.url, servers[1]!.url];
      const admin = (args: string[]) =>
        runBackhaulAdmin([...args, '--server', first], { BACKHAUL_ADMIN_TOKEN: adminToken });
      const callerId = `cli-${name}`;
      const enrolled = await admin(['enrol-caller', callerId, '--gateways', otherGatewayId]);
      expect(enrolled.status).toBe(0);
      const token = enrolled.stdout.trim();
      expect(token.startsWith('bhc_')).toBe(true);
      expect(enrolled.stderr).toContain(`Enrolled caller ${callerId}`);
      const client = createBackhaulClient({ url: second, token });
      expect((await client.gateways()).map((g) => g.id)).toEqual([otherGatewayId]);

      expect((await admin(['restrict-caller', callerId, '--all-gateways'])).stdout).toContain(
        'gateways: all',
      );
      expect((await client.gateways()).length).toBe(2);
      const listed = await admin(['callers', '--json']);
      const { callers } = JSON.parse(listed.stdout) as {
        callers: { callerId: string; tokens: { id: string }[] }[];
      };
      const mine = callers.find((c) => c.callerId === callerId);
      expect(mine?.tokens.length).toBe(1);

      const rotated = await admin(['rotate-caller', callerId]);
      expect(rotated.status).toBe(0);
      const revoked = await admin(['revoke-caller', callerId, mine!.tokens[0]!.id]);
      expect(revoked.stdout).toContain(`Revoked token ${mine!.tokens[0]!.id}`);
      expect(await status(second, token, '/v1/gateways')).toBe(401);
      expect(await status(second, rotated.stdout.trim(), '/v1/gateways')).toBe(200);
      expect((await admin(['remove-caller', callerId])).status).toBe(0);
      expect(await status(second, rotated.stdout.trim(), '/v1/gateways')).toBe(401);
      const wrongUsage = await admin(['restrict-caller', callerId]);
      expect(wrongUsage.status).toBe(2);
      const admins = await admin(['enrol-caller', `cli-admin-${name}`, '--role', 'admin']);
      expect(admins.stdout.trim().startsWith('bha_')).toBe(true);
    });
  });
}

suite('memory', () => {
  // One store object per kind, shared by both servers: how several processes share Redis.
  const store = createMemoryCommandStore();
  const credentials = createMemoryCredentialStore();
  const shared = <T extends { close(): Promise<void> }>(target: T): T =>
    Object.create(target, { close: { value: async () => undefined } }) as T;
  return {
    store: () => shared(store),
    credentials: () => shared(credentials),
    async cleanup() {
      await store.close();
      await credentials.close();
    },
  };
});

redisService.describe('on Redis', () => {
  const keyPrefix = `${uniqueName('backhaul-test-isolation')}:`;
  suite('Redis', () => ({
    // Each server its own connections, as separate processes would have.
    store: () => createRedisCommandStore({ url: redisUrl, keyPrefix }),
    credentials: () => createRedisCredentialStore({ url: redisUrl, keyPrefix }),
    cleanup: async () => {
      await deleteRedisKeys(keyPrefix);
    },
  }));
});

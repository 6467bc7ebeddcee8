import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialStore, GatewayTokenRecord } from '../credential-store.js';
import { expectBackhaulError } from './expect-backhaul-error.js';

/**
 * The rules every `CredentialStore` must follow. An adapter calls this once from its own tests:
 *
 *     runCredentialStoreConformance('redis', async () => createRedisCredentialStore({ url }));
 *
 * Like the command store suite, it assumes a durable store shared with other runs: every test
 * enrols gateways of its own and never expects the store to start empty.
 */
export function runCredentialStoreConformance(
  name: string,
  createStore: () => Promise<CredentialStore>,
): void {
  describe(`CredentialStore conformance: ${name}`, () => {
    let store: CredentialStore;
    beforeAll(async () => {
      store = await createStore();
    });
    afterAll(async () => {
      await store?.close();
    });

    const run = randomUUID().slice(0, 8);
    let counter = 0;
    const uniqueId = (prefix: string) => `${prefix}-${run}-${++counter}`;
    const newToken = (createdAt = Date.now()): GatewayTokenRecord => ({
      id: uniqueId('tok'),
      sha256: createHash('sha256').update(randomBytes(32)).digest('hex'),
      createdAt,
    });

    it('enrol then get, list and findActiveToken return the gateway with its one token', async () => {
      const gatewayId = uniqueId('gw');
      const token = newToken(1_700_000_000_123);
      await store.enrol(gatewayId, token);

      const expected = { gatewayId, createdAt: token.createdAt, tokens: [token] };
      expect(await store.get(gatewayId)).toEqual(expected);
      expect((await store.list()).find((g) => g.gatewayId === gatewayId)).toEqual(expected);
      expect(await store.findActiveToken(token.sha256)).toEqual({ gatewayId, tokenId: token.id });
      expect(await store.get(uniqueId('missing'))).toBeUndefined();
      expect(await store.findActiveToken(newToken().sha256)).toBeUndefined();
    });

    it('hands out copies: mutating a returned enrolment does not change the store', async () => {
      const gatewayId = uniqueId('gw');
      const token = newToken();
      await store.enrol(gatewayId, token);
      const loaded = await store.get(gatewayId);
      loaded!.tokens[0]!.revokedAt = 1;
      loaded!.tokens.push(newToken());
      token.revokedAt = 2;
      const again = await store.get(gatewayId);
      expect(again?.tokens).toHaveLength(1);
      expect(again?.tokens[0]?.revokedAt).toBeUndefined();
    });

    it('enrolling an enrolled gateway is a conflict and keeps the first token only', async () => {
      const gatewayId = uniqueId('gw');
      const first = newToken();
      const second = newToken();
      await store.enrol(gatewayId, first);
      await expectBackhaulError(store.enrol(gatewayId, second), 'conflict');
      expect((await store.get(gatewayId))?.tokens).toEqual([first]);
      expect(await store.findActiveToken(second.sha256)).toBeUndefined();
    });

    it('addToken gives a gateway a second valid token; to an unknown gateway it is not-found', async () => {
      const gatewayId = uniqueId('gw');
      const first = newToken();
      const second = newToken(first.createdAt + 1);
      await store.enrol(gatewayId, first);
      await store.addToken(gatewayId, second);
      expect((await store.get(gatewayId))?.tokens).toEqual([first, second]);
      expect(await store.findActiveToken(first.sha256)).toEqual({ gatewayId, tokenId: first.id });
      expect(await store.findActiveToken(second.sha256)).toEqual({ gatewayId, tokenId: second.id });

      const stray = newToken();
      await expectBackhaulError(store.addToken(uniqueId('missing'), stray), 'not-found');
      expect(await store.findActiveToken(stray.sha256)).toBeUndefined();
    });

    it('a revoked token stops authenticating at once, stays listed with revokedAt, and the other token keeps working', async () => {
      const gatewayId = uniqueId('gw');
      const old = newToken();
      const fresh = newToken(old.createdAt + 1);
      await store.enrol(gatewayId, old);
      await store.addToken(gatewayId, fresh);

      const revokedAt = old.createdAt + 5000;
      expect(await store.revokeToken(gatewayId, old.id, revokedAt)).toEqual({ ...old, revokedAt });
      expect(await store.findActiveToken(old.sha256)).toBeUndefined();
      expect(await store.findActiveToken(fresh.sha256)).toEqual({ gatewayId, tokenId: fresh.id });
      expect((await store.get(gatewayId))?.tokens).toEqual([{ ...old, revokedAt }, fresh]);

      // Revoking again changes nothing: the first revocation time stays.
      expect(await store.revokeToken(gatewayId, old.id, revokedAt + 1)).toEqual({ ...old, revokedAt });
      const unknownToken = await expectBackhaulError(
        store.revokeToken(gatewayId, uniqueId('tok'), revokedAt),
        'not-found',
      );
      expect(unknownToken.message).toMatch(/has no token/);
      const unknownGateway = await expectBackhaulError(
        store.revokeToken(uniqueId('missing'), old.id, revokedAt),
        'not-found',
      );
      expect(unknownGateway.message).toMatch(/is not enrolled/);
    });

    it('remove deletes the gateway and every token; it can then be enrolled anew', async () => {
      const gatewayId = uniqueId('gw');
      const first = newToken();
      const second = newToken();
      await store.enrol(gatewayId, first);
      await store.addToken(gatewayId, second);

      expect(await store.remove(gatewayId)).toBe(true);
      expect(await store.get(gatewayId)).toBeUndefined();
      expect((await store.list()).some((g) => g.gatewayId === gatewayId)).toBe(false);
      expect(await store.findActiveToken(first.sha256)).toBeUndefined();
      expect(await store.findActiveToken(second.sha256)).toBeUndefined();
      expect(await store.remove(gatewayId)).toBe(false);

      const again = newToken();
      await store.enrol(gatewayId, again);
      expect((await store.get(gatewayId))?.tokens).toEqual([again]);
    });

    it('list is ordered by gateway ID', async () => {
      const ids = [uniqueId('gw-c'), uniqueId('gw-a'), uniqueId('gw-b')];
      for (const id of ids) await store.enrol(id, newToken());
      const listed = (await store.list()).map((g) => g.gatewayId).filter((id) => ids.includes(id));
      expect(listed).toEqual([...ids].sort());
    });

    it('callers and admins: enrol, restrict, rotate, revoke and remove, with their role and gateways in every lookup', async () => {
      const callerId = uniqueId('caller');
      const first = newToken(1_700_000_000_000);
      const second = newToken(first.createdAt + 1);
      await store.enrolCaller(
        { callerId, role: 'caller', gateways: ['gw-1', 'gw-2'], createdAt: first.createdAt },
        first,
      );
      const expected = {
        callerId,
        role: 'caller',
        gateways: ['gw-1', 'gw-2'],
        createdAt: first.createdAt,
        tokens: [first],
      };
      expect(await store.getCaller(callerId)).toEqual(expected);
      expect((await store.listCallers()).find((c) => c.callerId === callerId)).toEqual(expected);
      expect(await store.findActiveCallerToken(first.sha256)).toEqual({
        callerId,
        tokenId: first.id,
        role: 'caller',
        gateways: ['gw-1', 'gw-2'],
      });
      // A caller's token is no gateway's, and a gateway's token is no caller's.
      expect(await store.findActiveToken(first.sha256)).toBeUndefined();
      const gatewayId = uniqueId('gw');
      const gatewayToken = newToken();
      await store.enrol(gatewayId, gatewayToken);
      expect(await store.findActiveCallerToken(gatewayToken.sha256)).toBeUndefined();
      // The same ID as a gateway is a different identity; the same ID as a caller is a conflict.
      await expectBackhaulError(
        store.enrolCaller({ callerId, role: 'admin', createdAt: 1 }, newToken()),
        'conflict',
      );

      expect(await store.restrictCaller(callerId, ['gw-3'])).toMatchObject({ gateways: ['gw-3'] });
      expect(await store.findActiveCallerToken(first.sha256)).toMatchObject({ gateways: ['gw-3'] });
      const open = await store.restrictCaller(callerId, null);
      expect(open).not.toHaveProperty('gateways');
      expect(await store.findActiveCallerToken(first.sha256)).toEqual({
        callerId,
        tokenId: first.id,
        role: 'caller',
      });
      await expectBackhaulError(store.restrictCaller(uniqueId('missing'), null), 'not-found');

      await store.addCallerToken(callerId, second);
      const revokedAt = second.createdAt + 10;
      expect(await store.revokeCallerToken(callerId, first.id, revokedAt)).toEqual({ ...first, revokedAt });
      expect(await store.findActiveCallerToken(first.sha256)).toBeUndefined();
      expect(await store.findActiveCallerToken(second.sha256)).toMatchObject({
        callerId,
        tokenId: second.id,
      });
      expect((await store.getCaller(callerId))?.tokens).toEqual([{ ...first, revokedAt }, second]);
      await expectBackhaulError(store.addCallerToken(uniqueId('missing'), newToken()), 'not-found');
      await expectBackhaulError(store.revokeCallerToken(callerId, uniqueId('tok'), revokedAt), 'not-found');

      const adminId = uniqueId('admin');
      const adminToken = newToken();
      await store.enrolCaller(
        { callerId: adminId, role: 'admin', createdAt: adminToken.createdAt },
        adminToken,
      );
      expect(await store.findActiveCallerToken(adminToken.sha256)).toEqual({
        callerId: adminId,
        tokenId: adminToken.id,
        role: 'admin',
      });
      const listed = (await store.listCallers())
        .map((c) => c.callerId)
        .filter((id) => id === callerId || id === adminId);
      expect(listed).toEqual([callerId, adminId].sort());

      expect(await store.removeCaller(callerId)).toBe(true);
      expect(await store.getCaller(callerId)).toBeUndefined();
      expect(await store.findActiveCallerToken(second.sha256)).toBeUndefined();
      expect(await store.removeCaller(callerId)).toBe(false);
      // Removing a caller leaves a gateway of the same name alone.
      expect(await store.findActiveToken(gatewayToken.sha256)).toEqual({
        gatewayId,
        tokenId: gatewayToken.id,
      });
    });
  });
}

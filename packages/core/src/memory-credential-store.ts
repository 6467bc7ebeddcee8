import type {
  ActiveCallerToken,
  ActiveGatewayToken,
  CallerEnrolment,
  CredentialStore,
  GatewayEnrolment,
  GatewayTokenRecord,
} from './credential-store.js';
import { BackhaulError } from './errors.js';

/**
 * A `CredentialStore` in process memory: the embedded default. Enrolments are lost on restart and
 * seen only by this process (or the servers handed this same object); use a shared store (e.g.
 * @backhaul/store-redis) for several servers. Records are copied in and out.
 */
export function createMemoryCredentialStore(): CredentialStore {
  // One index of valid token hashes for gateways and callers alike: a hash names one identity.
  const byHash = new Map<string, { kind: 'gateway' | 'caller'; id: string; tokenId: string }>();
  const gateways = tokenBook<GatewayEnrolment>('gateway', 'Gateway', byHash);
  const callers = tokenBook<CallerEnrolment>('caller', 'Caller', byHash);

  return {
    specificationVersion: 'v1',
    name: 'memory',
    async enrol(gatewayId, token) {
      gateways.create(gatewayId, { gatewayId, createdAt: token.createdAt, tokens: [] }, token);
    },
    addToken: async (gatewayId, token) => gateways.addToken(gatewayId, token),
    revokeToken: async (gatewayId, tokenId, now) => gateways.revoke(gatewayId, tokenId, now),
    remove: async (gatewayId) => gateways.remove(gatewayId),
    get: async (gatewayId) => gateways.get(gatewayId),
    list: async () => gateways.list(),
    async findActiveToken(sha256) {
      const found = byHash.get(sha256);
      if (found?.kind !== 'gateway') return undefined;
      return { gatewayId: found.id, tokenId: found.tokenId } satisfies ActiveGatewayToken;
    },

    async enrolCaller(caller, token) {
      const { gateways: allowed, ...rest } = caller;
      callers.create(
        caller.callerId,
        { ...rest, ...(allowed ? { gateways: [...allowed] } : {}), tokens: [] },
        token,
      );
    },
    async restrictCaller(callerId, allowed) {
      const caller = callers.find(callerId);
      if (allowed === null) delete caller.gateways;
      else caller.gateways = [...allowed];
      return structuredClone(caller);
    },
    addCallerToken: async (callerId, token) => callers.addToken(callerId, token),
    revokeCallerToken: async (callerId, tokenId, now) => callers.revoke(callerId, tokenId, now),
    removeCaller: async (callerId) => callers.remove(callerId),
    getCaller: async (callerId) => callers.get(callerId),
    listCallers: async () => callers.list(),
    async findActiveCallerToken(sha256) {
      const found = byHash.get(sha256);
      if (found?.kind !== 'caller') return undefined;
      const caller = callers.find(found.id);
      return {
        callerId: caller.callerId,
        tokenId: found.tokenId,
        role: caller.role,
        ...(caller.gateways ? { gateways: [...caller.gateways] } : {}),
      } satisfies ActiveCallerToken;
    },

    async close() {
      gateways.clear();
      callers.clear();
      byHash.clear();
    },
  };
}

/** The records of one kind of enrolled identity and their tokens, indexed in the shared `byHash`. */
function tokenBook<E extends { createdAt: number; tokens: GatewayTokenRecord[] }>(
  kind: 'gateway' | 'caller',
  label: string,
  byHash: Map<string, { kind: 'gateway' | 'caller'; id: string; tokenId: string }>,
) {
  const records = new Map<string, E>();
  const copy = <T>(value: T): T => structuredClone(value);
  const find = (id: string): E => {
    const found = records.get(id);
    if (!found) throw new BackhaulError('not-found', `${label} '${id}' is not enrolled`);
    return found;
  };
  const index = (id: string, token: GatewayTokenRecord) => {
    if (byHash.has(token.sha256)) throw new BackhaulError('conflict', 'This token hash is already in use');
    byHash.set(token.sha256, { kind, id, tokenId: token.id });
  };
  return {
    find,
    create(id: string, record: E, token: GatewayTokenRecord) {
      if (records.has(id)) throw new BackhaulError('conflict', `${label} '${id}' is already enrolled`);
      index(id, token);
      records.set(id, { ...copy(record), tokens: [copy(token)] });
    },
    addToken(id: string, token: GatewayTokenRecord) {
      const record = find(id);
      if (record.tokens.some((t) => t.id === token.id))
        throw new BackhaulError('conflict', `${label} '${id}' already has a token '${token.id}'`);
      index(id, token);
      record.tokens.push(copy(token));
    },
    revoke(id: string, tokenId: string, now: number): GatewayTokenRecord {
      const token = find(id).tokens.find((t) => t.id === tokenId);
      if (!token) throw new BackhaulError('not-found', `${label} '${id}' has no token '${tokenId}'`);
      if (token.revokedAt === undefined) {
        token.revokedAt = now;
        byHash.delete(token.sha256);
      }
      return copy(token);
    },
    remove(id: string): boolean {
      const record = records.get(id);
      if (!record) return false;
      for (const token of record.tokens) byHash.delete(token.sha256);
      records.delete(id);
      return true;
    },
    get: (id: string): E | undefined => {
      const record = records.get(id);
      return record && copy(record);
    },
    list: (): E[] => [...records.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, r]) => copy(r)),
    clear: () => records.clear(),
  };
}

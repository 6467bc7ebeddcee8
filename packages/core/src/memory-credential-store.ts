import type {
  ActiveGatewayToken,
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
  const gateways = new Map<string, GatewayEnrolment>();
  const byHash = new Map<string, ActiveGatewayToken>();
  const copy = <T>(value: T): T => structuredClone(value);

  const enrolled = (gatewayId: string): GatewayEnrolment => {
    const found = gateways.get(gatewayId);
    if (!found) throw new BackhaulError('not-found', `Gateway '${gatewayId}' is not enrolled`);
    return found;
  };
  const indexToken = (gatewayId: string, token: GatewayTokenRecord) => {
    if (byHash.has(token.sha256)) throw new BackhaulError('conflict', 'This token hash is already in use');
    byHash.set(token.sha256, { gatewayId, tokenId: token.id });
  };

  return {
    specificationVersion: 'v1',
    name: 'memory',
    async enrol(gatewayId, token) {
      if (gateways.has(gatewayId))
        throw new BackhaulError('conflict', `Gateway '${gatewayId}' is already enrolled`);
      indexToken(gatewayId, token);
      gateways.set(gatewayId, { gatewayId, createdAt: token.createdAt, tokens: [copy(token)] });
    },
    async addToken(gatewayId, token) {
      const gateway = enrolled(gatewayId);
      if (gateway.tokens.some((t) => t.id === token.id))
        throw new BackhaulError('conflict', `Gateway '${gatewayId}' already has a token '${token.id}'`);
      indexToken(gatewayId, token);
      gateway.tokens.push(copy(token));
    },
    async revokeToken(gatewayId, tokenId, now) {
      const token = enrolled(gatewayId).tokens.find((t) => t.id === tokenId);
      if (!token) throw new BackhaulError('not-found', `Gateway '${gatewayId}' has no token '${tokenId}'`);
      if (token.revokedAt === undefined) {
        token.revokedAt = now;
        byHash.delete(token.sha256);
      }
      return copy(token);
    },
    async remove(gatewayId) {
      const gateway = gateways.get(gatewayId);
      if (!gateway) return false;
      for (const token of gateway.tokens) byHash.delete(token.sha256);
      gateways.delete(gatewayId);
      return true;
    },
    async get(gatewayId) {
      const gateway = gateways.get(gatewayId);
      return gateway && copy(gateway);
    },
    async list() {
      return [...gateways.values()].sort((a, b) => (a.gatewayId < b.gatewayId ? -1 : 1)).map(copy);
    },
    async findActiveToken(sha256) {
      const found = byHash.get(sha256);
      return found && { ...found };
    },
    async close() {
      gateways.clear();
      byHash.clear();
    },
  };
}

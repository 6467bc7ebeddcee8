import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BackhaulError, type CredentialStore } from '@backhaul/core';
import { bearerToken } from './http-io.js';

/**
 * Bearer-token credentials (docs/protocol.md §1). Only SHA-256 hashes are kept: plain tokens
 * given in the options are hashed at start and dropped. A lookup hashes the presented token and
 * finds its hash in a map; because an attacker cannot steer the bytes of a SHA-256 digest, the
 * map's string compare leaks nothing useful, and the final comparison is timing-safe anyway.
 * A token not in the options may be one of an enrolled gateway (§10): its hash is then looked up
 * in the credential store, on every request, so a revocation holds from the next request on.
 */
export interface GatewayCredential {
  id: string;
  token?: string;
  tokenSha256?: string;
}

/** The gateway a request speaks for; `enrolled` when its token came from the credential store. */
export interface GatewayPrincipal {
  gatewayId: string;
  enrolled?: EnrolledToken;
}

/** An enrolled token as a live stream remembers it, to check later whether it was revoked. */
export interface EnrolledToken {
  tokenId: string;
  sha256: string;
}

/**
 * `callerId` names a caller for fair shares and monitoring (docs/protocol.md §3.7) without
 * revealing its token: `caller-` and the first 12 hex digits of the token's SHA-256.
 */
export type Principal =
  | ({ kind: 'gateway' } & GatewayPrincipal)
  | { kind: 'caller'; callerId: string }
  | { kind: 'admin' };

export interface Credentials {
  /** The gateways configured in the options (enrolled ones are in the credential store). */
  readonly gatewayIds: readonly string[];
  isConfiguredGateway(id: string): boolean;
  /** Configured or enrolled. */
  hasGateway(id: string): Promise<boolean>;
  /** docs/protocol.md §1: no or wrong credential → 401; another role's token on a gateway endpoint → 403. */
  requireGateway(req: IncomingMessage): Promise<GatewayPrincipal>;
  /** Another role's token on a caller endpoint → 403; none or unknown → 401. Returns the caller's ID. */
  requireCaller(req: IncomingMessage): Promise<string>;
  /** §10: only an admin token opens the admin API; another role's token → 403. */
  requireAdmin(req: IncomingMessage): Promise<void>;
}

export interface EnrolmentCredentials {
  adminTokens: readonly string[];
  store: CredentialStore;
}

/** Hex SHA-256 of a token: what stores and options hold instead of the token. */
export const tokenSha256 = (token: string) => sha256(token).toString('hex');

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();

const roleNames = { gateway: 'A gateway token', caller: 'A caller token', admin: 'An admin token' } as const;

export function createCredentials(
  gateways: readonly GatewayCredential[],
  callerTokens: readonly string[],
  enrolment: EnrolmentCredentials,
): Credentials {
  const byHash = new Map<string, { digest: Buffer; principal: Principal }>();
  const gatewayIds: string[] = [];
  const known = new Set<string>();

  const add = (digest: Buffer, principal: Principal, label: string) => {
    const hex = digest.toString('hex');
    if (byHash.has(hex)) throw new RangeError(`${label}: the same token is configured twice`);
    byHash.set(hex, { digest, principal });
  };

  for (const gateway of gateways) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(gateway.id)) {
      throw new RangeError(`Gateway id '${gateway.id}' may use letters, digits and . _ : - only`);
    }
    if (known.has(gateway.id)) throw new RangeError(`Gateway '${gateway.id}' is configured twice`);
    let digest: Buffer;
    if (gateway.token !== undefined) {
      if (gateway.token.length === 0) throw new RangeError(`Gateway '${gateway.id}': the token is empty`);
      digest = sha256(gateway.token);
    } else if (gateway.tokenSha256 !== undefined && /^[0-9a-fA-F]{64}$/.test(gateway.tokenSha256)) {
      digest = Buffer.from(gateway.tokenSha256, 'hex');
    } else {
      throw new RangeError(`Gateway '${gateway.id}' needs a token or a tokenSha256 of 64 hex digits`);
    }
    add(digest, { kind: 'gateway', gatewayId: gateway.id }, `Gateway '${gateway.id}'`);
    gatewayIds.push(gateway.id);
    known.add(gateway.id);
  }
  for (const token of callerTokens) {
    if (token.length === 0) throw new RangeError('A caller token is empty');
    const digest = sha256(token);
    add(
      digest,
      { kind: 'caller', callerId: `caller-${digest.toString('hex').slice(0, 12)}` },
      'Caller tokens',
    );
  }
  for (const token of enrolment.adminTokens) {
    if (token.length === 0) throw new RangeError('An admin token is empty');
    add(sha256(token), { kind: 'admin' }, 'Admin tokens');
  }

  const identify = async (req: IncomingMessage): Promise<Principal> => {
    const token = bearerToken(req);
    if (token === undefined) throw new BackhaulError('unauthorized', 'Send Authorization: Bearer <token>');
    const digest = sha256(token);
    const hex = digest.toString('hex');
    const entry = byHash.get(hex);
    if (entry && timingSafeEqual(entry.digest, digest)) return entry.principal;
    const enrolled = await enrolment.store.findActiveToken(hex);
    if (enrolled) {
      return {
        kind: 'gateway',
        gatewayId: enrolled.gatewayId,
        enrolled: { tokenId: enrolled.tokenId, sha256: hex },
      };
    }
    throw new BackhaulError('unauthorized', 'The bearer token is not valid');
  };

  const requireRole = async <K extends Principal['kind']>(
    req: IncomingMessage,
    kind: K,
    endpoints: string,
  ) => {
    const principal = await identify(req);
    if (principal.kind !== kind)
      throw new BackhaulError('forbidden', `${roleNames[principal.kind]} cannot use ${endpoints} endpoints`);
    return principal as Extract<Principal, { kind: K }>;
  };

  return {
    gatewayIds,
    isConfiguredGateway: (id) => known.has(id),
    hasGateway: async (id) => known.has(id) || (await enrolment.store.get(id)) !== undefined,
    async requireGateway(req) {
      const { gatewayId, enrolled } = await requireRole(req, 'gateway', 'gateway');
      return enrolled ? { gatewayId, enrolled } : { gatewayId };
    },
    async requireCaller(req) {
      return (await requireRole(req, 'caller', 'caller')).callerId;
    },
    async requireAdmin(req) {
      await requireRole(req, 'admin', 'admin');
    },
  };
}

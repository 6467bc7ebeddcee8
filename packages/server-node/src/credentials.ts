import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BackhaulError, type CallerRole, type CredentialStore } from '@backhaul/core';
import { bearerToken } from './http-io.js';

/**
 * Bearer-token credentials (docs/protocol.md §1). Only SHA-256 hashes are kept: plain tokens
 * given in the options are hashed at start and dropped. A lookup hashes the presented token and
 * finds its hash in a map; because an attacker cannot steer the bytes of a SHA-256 digest, the
 * map's string compare leaks nothing useful, and the final comparison is timing-safe anyway.
 * A token not in the options may be one of an enrolled gateway, caller or admin (§10): its hash is
 * then looked up in the credential store, on every request, so a revocation holds from the next
 * request on, on every server sharing the store.
 */
export interface GatewayCredential {
  id: string;
  token?: string;
  tokenSha256?: string;
}

/** A caller configured in the options: a name its queries are owned by, and optionally its gateways. */
export interface CallerCredential {
  id: string;
  token?: string;
  tokenSha256?: string;
  /** The gateways this caller may query; default: every gateway. */
  gateways?: string[];
}

/**
 * Who is asking on a caller endpoint. A caller owns the queries it submitted and sees no other
 * (docs/security.md, "Caller isolation"); an admin reads and cancels every query.
 */
export interface CallerPrincipal {
  callerId: string;
  role: CallerRole;
  /** The gateways a caller may query; absent: every gateway. */
  gateways?: readonly string[];
  /** Set when the token came from the credential store. */
  enrolled?: EnrolledToken;
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
 * `callerId` names a caller for ownership, fair shares and monitoring without revealing its token:
 * the configured or enrolled ID, or for a bare token of `callerTokens` (`adminTokens`) `caller-`
 * (`admin-`) and the first 12 hex digits of the token's SHA-256.
 */
export type Principal =
  | ({ kind: 'gateway' } & GatewayPrincipal)
  | ({ kind: 'caller' } & CallerPrincipal)
  | ({ kind: 'admin' } & CallerPrincipal);

export interface Credentials {
  /** The gateways configured in the options (enrolled ones are in the credential store). */
  readonly gatewayIds: readonly string[];
  isConfiguredGateway(id: string): boolean;
  /** Whether a caller or admin of this ID is configured in the options (enrolling it is a conflict). */
  isConfiguredCaller(id: string): boolean;
  /** Configured or enrolled. */
  hasGateway(id: string): Promise<boolean>;
  /** docs/protocol.md §1: no or wrong credential → 401; another role's token on a gateway endpoint → 403. */
  requireGateway(req: IncomingMessage): Promise<GatewayPrincipal>;
  /** Submitting: a caller token only. Another role's token → 403; none or unknown → 401. */
  requireCaller(req: IncomingMessage): Promise<CallerPrincipal>;
  /** Reading and cancelling queries: a caller (its own queries) or an admin (every query). */
  requireCallerOrAdmin(req: IncomingMessage): Promise<CallerPrincipal>;
  /** §10: only an admin token opens the admin API; another role's token → 403. */
  requireAdmin(req: IncomingMessage): Promise<CallerPrincipal>;
}

export interface EnrolmentCredentials {
  adminTokens: readonly string[];
  store: CredentialStore;
}

/** Hex SHA-256 of a token: what stores and options hold instead of the token. */
export const tokenSha256 = (token: string) => sha256(token).toString('hex');

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();

const roleNames = { gateway: 'A gateway token', caller: 'A caller token', admin: 'An admin token' } as const;

const identifierPattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The digest of a configured credential, from its plain token or its hex SHA-256. */
function configuredDigest(label: string, token: string | undefined, hex: string | undefined): Buffer {
  if (token !== undefined) {
    if (token.length === 0) throw new RangeError(`${label}: the token is empty`);
    return sha256(token);
  }
  if (hex !== undefined && /^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  throw new RangeError(`${label} needs a token or a tokenSha256 of 64 hex digits`);
}

export function createCredentials(
  gateways: readonly GatewayCredential[],
  callerTokens: readonly string[],
  enrolment: EnrolmentCredentials,
  callers: readonly CallerCredential[] = [],
): Credentials {
  const byHash = new Map<string, { digest: Buffer; principal: Principal }>();
  const gatewayIds: string[] = [];
  const known = new Set<string>();
  const knownCallers = new Set<string>();

  const add = (digest: Buffer, principal: Principal, label: string) => {
    const hex = digest.toString('hex');
    if (byHash.has(hex)) throw new RangeError(`${label}: the same token is configured twice`);
    byHash.set(hex, { digest, principal });
  };

  for (const gateway of gateways) {
    if (!identifierPattern.test(gateway.id)) {
      throw new RangeError(`Gateway id '${gateway.id}' may use letters, digits and . _ : - only`);
    }
    if (known.has(gateway.id)) throw new RangeError(`Gateway '${gateway.id}' is configured twice`);
    const label = `Gateway '${gateway.id}'`;
    add(
      configuredDigest(label, gateway.token, gateway.tokenSha256),
      { kind: 'gateway', gatewayId: gateway.id },
      label,
    );
    gatewayIds.push(gateway.id);
    known.add(gateway.id);
  }
  for (const caller of callers) {
    if (!identifierPattern.test(caller.id)) {
      throw new RangeError(`Caller id '${caller.id}' may use letters, digits and . _ : - only`);
    }
    if (knownCallers.has(caller.id)) throw new RangeError(`Caller '${caller.id}' is configured twice`);
    if (caller.gateways !== undefined && !Array.isArray(caller.gateways))
      throw new TypeError(`Caller '${caller.id}': gateways must be an array of gateway IDs`);
    const label = `Caller '${caller.id}'`;
    add(
      configuredDigest(label, caller.token, caller.tokenSha256),
      {
        kind: 'caller',
        callerId: caller.id,
        role: 'caller',
        ...(caller.gateways ? { gateways: [...caller.gateways] } : {}),
      },
      label,
    );
    knownCallers.add(caller.id);
  }
  const anonymous = (tokens: readonly string[], role: 'caller' | 'admin', label: string) => {
    for (const token of tokens) {
      if (token.length === 0) throw new RangeError(`An ${role} token is empty`);
      const digest = sha256(token);
      const callerId = `${role}-${digest.toString('hex').slice(0, 12)}`;
      add(digest, { kind: role, callerId, role }, label);
      knownCallers.add(callerId);
    }
  };
  anonymous(callerTokens, 'caller', 'Caller tokens');
  anonymous(enrolment.adminTokens, 'admin', 'Admin tokens');

  const identify = async (req: IncomingMessage): Promise<Principal> => {
    const token = bearerToken(req);
    if (token === undefined) throw new BackhaulError('unauthorized', 'Send Authorization: Bearer <token>');
    const digest = sha256(token);
    const hex = digest.toString('hex');
    const entry = byHash.get(hex);
    if (entry && timingSafeEqual(entry.digest, digest)) return entry.principal;
    // Gateways first: their requests (every chunk) are the many; a caller's costs one more read.
    const enrolled = await enrolment.store.findActiveToken(hex);
    if (enrolled) {
      return {
        kind: 'gateway',
        gatewayId: enrolled.gatewayId,
        enrolled: { tokenId: enrolled.tokenId, sha256: hex },
      };
    }
    const caller = await enrolment.store.findActiveCallerToken(hex);
    if (caller) {
      return {
        kind: caller.role,
        callerId: caller.callerId,
        role: caller.role,
        ...(caller.role === 'caller' && caller.gateways ? { gateways: caller.gateways } : {}),
        enrolled: { tokenId: caller.tokenId, sha256: hex },
      };
    }
    throw new BackhaulError('unauthorized', 'The bearer token is not valid');
  };

  const requireRole = async <K extends Principal['kind']>(
    req: IncomingMessage,
    kinds: readonly K[],
    action: string,
  ) => {
    const principal = await identify(req);
    if (!(kinds as readonly string[]).includes(principal.kind))
      throw new BackhaulError('forbidden', `${roleNames[principal.kind]} cannot ${action}`);
    return principal as Extract<Principal, { kind: K }>;
  };
  const callerOf = ({ kind: _kind, ...principal }: Extract<Principal, { kind: 'caller' | 'admin' }>) =>
    principal;

  return {
    gatewayIds,
    isConfiguredGateway: (id) => known.has(id),
    isConfiguredCaller: (id) => knownCallers.has(id),
    hasGateway: async (id) => known.has(id) || (await enrolment.store.get(id)) !== undefined,
    async requireGateway(req) {
      const { gatewayId, enrolled } = await requireRole(req, ['gateway'], 'use gateway endpoints');
      return enrolled ? { gatewayId, enrolled } : { gatewayId };
    },
    requireCaller: async (req) => callerOf(await requireRole(req, ['caller'], 'submit queries')),
    requireCallerOrAdmin: async (req) =>
      callerOf(await requireRole(req, ['caller', 'admin'], 'use caller endpoints')),
    requireAdmin: async (req) => callerOf(await requireRole(req, ['admin'], 'use admin endpoints')),
  };
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BackhaulError } from '@backhaul/core';
import { bearerToken } from './http-io.js';

/**
 * Bearer-token credentials (docs/protocol.md §1). Only SHA-256 hashes are kept: plain tokens
 * given in the options are hashed at start and dropped. A lookup hashes the presented token and
 * finds its hash in a map; because an attacker cannot steer the bytes of a SHA-256 digest, the
 * map's string compare leaks nothing useful, and the final comparison is timing-safe anyway.
 */
export interface GatewayCredential {
  id: string;
  token?: string;
  tokenSha256?: string;
}

/**
 * `callerId` names a caller for fair shares and monitoring (docs/protocol.md §3.7) without
 * revealing its token: `caller-` and the first 12 hex digits of the token's SHA-256.
 */
export type Principal = { kind: 'gateway'; gatewayId: string } | { kind: 'caller'; callerId: string };

export interface Credentials {
  readonly gatewayIds: readonly string[];
  hasGateway(id: string): boolean;
  /** docs/protocol.md §1: no or wrong credential → 401; a caller token on a gateway endpoint → 403. */
  requireGateway(req: IncomingMessage): string;
  /** A gateway token on a caller endpoint → 403; none or unknown → 401. Returns the caller's ID. */
  requireCaller(req: IncomingMessage): string;
}

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export function createCredentials(
  gateways: readonly GatewayCredential[],
  callerTokens: readonly string[],
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

  const identify = (req: IncomingMessage): Principal => {
    const token = bearerToken(req);
    if (token === undefined) throw new BackhaulError('unauthorized', 'Send Authorization: Bearer <token>');
    const digest = sha256(token);
    const entry = byHash.get(digest.toString('hex'));
    if (!entry || !timingSafeEqual(entry.digest, digest)) {
      throw new BackhaulError('unauthorized', 'The bearer token is not valid');
    }
    return entry.principal;
  };

  return {
    gatewayIds,
    hasGateway: (id) => known.has(id),
    requireGateway(req) {
      const principal = identify(req);
      if (principal.kind !== 'gateway')
        throw new BackhaulError('forbidden', 'A caller token cannot use gateway endpoints');
      return principal.gatewayId;
    },
    requireCaller(req) {
      const principal = identify(req);
      if (principal.kind !== 'caller')
        throw new BackhaulError('forbidden', 'A gateway token cannot use caller endpoints');
      return principal.callerId;
    },
  };
}

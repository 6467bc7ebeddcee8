import { randomBytes } from 'node:crypto';
import {
  BackhaulError,
  type CredentialStore,
  type EnrolledGatewayView,
  enrolGatewaySchema,
  type GatewayEnrolment,
  type GatewayTokenRecord,
  type GatewayTokenView,
  gatewayPathSchema,
  gatewayTokenPathSchema,
  type IssuedGatewayToken,
  parseMessage,
} from '@backhaul/core';
import { tokenSha256 } from './credentials.js';
import { readJson, sendEmpty, sendJson } from './http-io.js';
import type { Route } from './router.js';
import { type ServerParts, SMALL_JSON_BYTES } from './server-parts.js';

/**
 * The operator's side (docs/protocol.md §10): enrol gateways, rotate and revoke their tokens,
 * remove them. Every route needs an admin token. Tokens are made here, shown once in the answer
 * that creates them, and only their hashes reach the credential store.
 */
export function adminRoutes(parts: ServerParts, store: CredentialStore): Route[] {
  const { credentials, streams, options } = parts;

  const gatewayPath = (id: string) => parseMessage(gatewayPathSchema, { gatewayId: id }, 'gateway path');
  const enrolled = async (gatewayId: string): Promise<GatewayEnrolment> => {
    const found = await store.get(gatewayId);
    if (!found) throw new BackhaulError('not-found', `Gateway '${gatewayId}' is not enrolled`);
    return found;
  };

  const gateways = '/v1/admin/gateways';
  const gateway = `${gateways}/([^/]+)`;
  return [
    {
      method: 'POST',
      pattern: new RegExp(`^${gateways}/?$`),
      async handle({ req, res }) {
        await credentials.requireAdmin(req);
        const { json } = await readJson(req, 'enrolment', SMALL_JSON_BYTES);
        const { gatewayId } = parseMessage(enrolGatewaySchema, json, 'enrolment');
        if (credentials.isConfiguredGateway(gatewayId)) {
          throw new BackhaulError('conflict', `Gateway '${gatewayId}' is configured in the server's options`);
        }
        const { record, token } = newToken();
        await store.enrol(gatewayId, record); // `conflict` when already enrolled
        options.logger.info('gateway enrolled', { gatewayId, tokenId: record.id });
        sendJson(res, 201, issued(gatewayId, record, token));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${gateways}/?$`),
      async handle({ req, res }) {
        await credentials.requireAdmin(req);
        sendJson(res, 200, { gateways: (await store.list()).map(enrolmentView) });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${gateway}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        sendJson(res, 200, enrolmentView(await enrolled(gatewayPath(id).gatewayId)));
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^${gateway}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        const { gatewayId } = gatewayPath(id);
        if (!(await store.remove(gatewayId)))
          throw new BackhaulError('not-found', `Gateway '${gatewayId}' is not enrolled`);
        // §10.4: the stream ends now on this server; other servers notice on their next re-check.
        streams.closeEnrolled(gatewayId);
        options.logger.info('gateway removed', { gatewayId });
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${gateway}/tokens/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        const { gatewayId } = gatewayPath(id);
        const { record, token } = newToken();
        await store.addToken(gatewayId, record); // `not-found` when not enrolled
        options.logger.info('gateway token issued', { gatewayId, tokenId: record.id });
        sendJson(res, 201, issued(gatewayId, record, token));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${gateway}/tokens/([^/]+)/revoke$`),
      async handle({ req, res, params: [id = '', tokenText = ''] }) {
        await credentials.requireAdmin(req);
        const { gatewayId, tokenId } = parseMessage(
          gatewayTokenPathSchema,
          { gatewayId: id, tokenId: tokenText },
          'token path',
        );
        const record = await store.revokeToken(gatewayId, tokenId, Date.now());
        // §10.4: the stream using the token ends now on this server.
        streams.closeEnrolled(gatewayId, tokenId);
        options.logger.info('gateway token revoked', { gatewayId, tokenId });
        sendJson(res, 200, tokenView(record));
      },
    },
  ];
}

/**
 * 256 random bits: as strong as the SHA-256 that stores it, which is why a fast hash suffices
 * (packages/core/src/credential-store.ts). The prefix (`bhg_` gateway, `bhc_` caller, `bha_` admin)
 * lets secret scanners spot a leaked one.
 */
export function newToken(prefix = 'bhg'): { record: GatewayTokenRecord; token: string } {
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  const record = {
    id: `tok-${randomBytes(6).toString('hex')}`,
    sha256: tokenSha256(token),
    createdAt: Date.now(),
  };
  return { record, token };
}

function issued(gatewayId: string, record: GatewayTokenRecord, token: string): IssuedGatewayToken {
  return { gatewayId, tokenId: record.id, token, createdAt: new Date(record.createdAt).toISOString() };
}

export function tokenView(record: GatewayTokenRecord): GatewayTokenView {
  return {
    id: record.id,
    createdAt: new Date(record.createdAt).toISOString(),
    ...(record.revokedAt === undefined ? {} : { revokedAt: new Date(record.revokedAt).toISOString() }),
  };
}

function enrolmentView(enrolment: GatewayEnrolment): EnrolledGatewayView {
  return {
    gatewayId: enrolment.gatewayId,
    createdAt: new Date(enrolment.createdAt).toISOString(),
    tokens: enrolment.tokens.map(tokenView),
  };
}

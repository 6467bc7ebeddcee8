import {
  BackhaulError,
  type CallerEnrolment,
  type CredentialStore,
  callerPathSchema,
  callerTokenPathSchema,
  type EnrolledCallerView,
  enrolCallerSchema,
  type GatewayTokenRecord,
  type IssuedCallerToken,
  parseMessage,
  restrictCallerSchema,
} from '@backhaul/core';
import { newToken, tokenView } from './admin-api.js';
import { readJson, sendEmpty, sendJson } from './http-io.js';
import type { Route } from './router.js';
import { type ServerParts, SMALL_JSON_BYTES } from './server-parts.js';

/**
 * The operator's side for callers and admins (docs/protocol.md §10.5): enrol them, restrict a
 * caller to some gateways, rotate, revoke and remove. The same rules as for gateways: tokens are
 * made here, shown once, and only their hashes reach the credential store, so a revocation
 * through one server refuses the token on every server sharing the store from the next request.
 */
export function callerAdminRoutes(parts: ServerParts, store: CredentialStore): Route[] {
  const { credentials, options, events } = parts;
  const callerPath = (id: string) => parseMessage(callerPathSchema, { callerId: id }, 'caller path');
  const tokenPrefix = (role: CallerEnrolment['role']) => (role === 'admin' ? 'bha' : 'bhc');
  const enrolled = async (callerId: string): Promise<CallerEnrolment> => {
    const found = await store.getCaller(callerId);
    if (!found) throw new BackhaulError('not-found', `Caller '${callerId}' is not enrolled`);
    return found;
  };

  const callers = '/v1/admin/callers';
  const caller = `${callers}/([^/]+)`;
  return [
    {
      method: 'POST',
      pattern: new RegExp(`^${callers}/?$`),
      async handle({ req, res }) {
        await credentials.requireAdmin(req);
        const { json } = await readJson(req, 'caller enrolment', SMALL_JSON_BYTES);
        const { callerId, role, gateways } = parseMessage(enrolCallerSchema, json, 'caller enrolment');
        if (credentials.isConfiguredCaller(callerId)) {
          throw new BackhaulError('conflict', `Caller '${callerId}' is configured in the server's options`);
        }
        const { record, token } = newToken(tokenPrefix(role));
        const createdAt = record.createdAt;
        await store.enrolCaller({ callerId, role, ...(gateways ? { gateways } : {}), createdAt }, record);
        options.logger.info('caller enrolled', { callerId, role, tokenId: record.id });
        sendJson(res, 201, issued(callerId, role, record, token));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${callers}/?$`),
      async handle({ req, res }) {
        await credentials.requireAdmin(req);
        sendJson(res, 200, { callers: (await store.listCallers()).map(callerView) });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${caller}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        sendJson(res, 200, callerView(await enrolled(callerPath(id).callerId)));
      },
    },
    {
      method: 'PATCH',
      pattern: new RegExp(`^${caller}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        const { callerId } = callerPath(id);
        const { json } = await readJson(req, 'caller restriction', SMALL_JSON_BYTES);
        const { gateways } = parseMessage(restrictCallerSchema, json, 'caller restriction');
        const current = await enrolled(callerId);
        if (current.role === 'admin' && gateways !== null) {
          throw new BackhaulError(
            'invalid-message',
            'An admin reads every query: gateways apply to callers only',
          );
        }
        const changed = await store.restrictCaller(callerId, gateways);
        options.logger.info('caller gateways changed', { callerId, gateways });
        sendJson(res, 200, callerView(changed));
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^${caller}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        const { callerId } = callerPath(id);
        if (!(await store.removeCaller(callerId)))
          throw new BackhaulError('not-found', `Caller '${callerId}' is not enrolled`);
        // Its event streams end now on this server; other servers on their next re-check.
        events.closeEnrolled(callerId);
        options.logger.info('caller removed', { callerId });
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${caller}/tokens/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await credentials.requireAdmin(req);
        const { callerId } = callerPath(id);
        const { role } = await enrolled(callerId);
        const { record, token } = newToken(tokenPrefix(role));
        await store.addCallerToken(callerId, record); // `not-found` when removed meanwhile
        options.logger.info('caller token issued', { callerId, tokenId: record.id });
        sendJson(res, 201, issued(callerId, role, record, token));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${caller}/tokens/([^/]+)/revoke$`),
      async handle({ req, res, params: [id = '', tokenText = ''] }) {
        await credentials.requireAdmin(req);
        const { callerId, tokenId } = parseMessage(
          callerTokenPathSchema,
          { callerId: id, tokenId: tokenText },
          'token path',
        );
        const record = await store.revokeCallerToken(callerId, tokenId, Date.now());
        events.closeEnrolled(callerId, tokenId);
        options.logger.info('caller token revoked', { callerId, tokenId });
        sendJson(res, 200, tokenView(record));
      },
    },
  ];
}

function issued(
  callerId: string,
  role: CallerEnrolment['role'],
  record: GatewayTokenRecord,
  token: string,
): IssuedCallerToken {
  return { callerId, role, tokenId: record.id, token, createdAt: new Date(record.createdAt).toISOString() };
}

function callerView(caller: CallerEnrolment): EnrolledCallerView {
  return {
    callerId: caller.callerId,
    role: caller.role,
    ...(caller.gateways ? { gateways: caller.gateways } : {}),
    createdAt: new Date(caller.createdAt).toISOString(),
    tokens: caller.tokens.map(tokenView),
  };
}

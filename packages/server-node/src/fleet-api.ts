import { BackhaulError, parseMessage, queryPathSchema, type SubmitQuery } from '@backhaul/core';
import { type FleetSources, fleetView } from './fleet-view.js';
import { sendJson } from './http-io.js';
import type { Route } from './router.js';
import type { ServerParts } from './server-parts.js';

/** Who owns a replayed query whose record names no caller (written before callers were recorded). */
export const REPLAY_CALLER = 'admin-replay';

/**
 * What the fleet page reads and does (docs/operations.md, "Fleet page"): `GET /v1/admin/fleet`,
 * one JSON snapshot of the fleet, and `POST /v1/admin/dead-letters/{id}/replay`, which submits
 * a dead-lettered query again. Both want an admin token, like the rest of `/v1/admin`.
 */
export function fleetRoutes(parts: ServerParts, sources: FleetSources): Route[] {
  const { credentials, dispatcher, views, options } = parts;
  return [
    {
      method: 'GET',
      pattern: /^\/v1\/admin\/fleet\/?$/,
      async handle({ req, res }) {
        await credentials.requireAdmin(req);
        sendJson(res, 200, await fleetView(sources));
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/admin\/dead-letters\/([^/]+)\/replay$/,
      async handle({ req, res, params: [text = ''] }) {
        const admin = await credentials.requireAdmin(req);
        const { queryId: id } = parseMessage(queryPathSchema, { queryId: text }, 'dead-letter path');
        const record = await sources.store.get(id);
        if (!record) throw new BackhaulError('not-found', `No query ${id}`);
        if (record.state !== 'dead-lettered')
          throw new BackhaulError('conflict', `Query ${id} is ${record.state}, not dead-lettered`);
        const { command } = record;
        const query: SubmitQuery = {
          gatewayId: record.gatewayId,
          sql: command.sql,
          params: command.params,
          mode: command.mode,
          ...(command.maxRows === undefined ? {} : { maxRows: command.maxRows }),
          ...(command.timeoutMs === undefined ? {} : { timeoutMs: command.timeoutMs }),
        };
        // The replay belongs to the original caller, who may then read it; the idempotency key
        // makes a second click (or a second operator) answer the same new query, not run it twice.
        const { record: replay, replayed } = await dispatcher.submit(
          query,
          record.callerId ?? REPLAY_CALLER,
          `replay-of-${id}`,
        );
        if (!replayed)
          options.logger.info('dead letter replayed', { id, replayId: replay.id, by: admin.callerId });
        sendJson(res, 202, await views.view(replay, parts.baseUrl(req)), {
          ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
        });
      },
    },
  ];
}

import {
  BackhaulError,
  type CommandRecord,
  type ErrorCode,
  isErrorCode,
  type RowBatch,
  type SubmitQuery,
} from '@backhaul/core';
import { callerTrace, traceSubmission } from './command-trace.js';
import type { CallerPrincipal } from './credentials.js';
import { serveDownload } from './downloads.js';
import { readJson, sendJson } from './http-io.js';
import { readIdempotencyKey } from './idempotency-key.js';
import type { Route } from './router.js';
import { QUERY_JSON_BYTES, type ServerParts } from './server-parts.js';

const resultFailureCodes = new Set<ErrorCode>([
  'query-failed',
  'timeout',
  'file-incomplete',
  'checksum-mismatch',
  'corrupt-data',
  'payload-too-large',
  'storage-failed',
  'service-unavailable',
  'internal',
]);

/** The caller's side of the protocol (docs/protocol.md §3). */
export function callerRoutes(parts: ServerParts): Route[] {
  const { credentials, store, dispatcher, rowLog, views, events, options } = parts;

  /**
   * The query, if `principal` may see it: its own, or any for an admin. Another caller's query is
   * the same 404 as one that does not exist, so no caller learns which IDs are in use.
   */
  const findQuery = async (id: string, principal: CallerPrincipal): Promise<CommandRecord> => {
    const record = await store.get(id);
    if (!record || !(principal.role === 'admin' || record.callerId === principal.callerId))
      throw new BackhaulError('not-found', `No query ${id}`);
    return record;
  };

  /** §3.4 The rows of a completed query, in `seq` order, read from the row log (any instance's). */
  const keptRows = async (id: string) => {
    const summary = await rowLog.summary(id);
    if (!summary) throw new BackhaulError('gone', `The rows of query ${id} are no longer kept`);
    const batches: RowBatch[] = [];
    for (let after = 0; ; ) {
      const entries = await rowLog.read(id, after);
      if (entries.length === 0) break;
      for (const entry of entries) batches.push(entry.batch);
      after = entries[entries.length - 1]?.position ?? after;
    }
    batches.sort((a, b) => a.seq - b.seq);
    return { columns: summary.columns, rows: batches.flatMap((batch) => batch.rows) };
  };

  const query = '/v1/queries/([^/]+)';
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/queries\/?$/,
      async handle({ req, res }) {
        const { callerId, gateways } = await credentials.requireCaller(req);
        // A malformed key is refused before the body is read (400).
        const idempotencyKey = readIdempotencyKey(req);
        const { json } = await readJson(req, 'query', QUERY_JSON_BYTES);
        requireAllowedGateway(json, gateways);
        // Validated inside; 429 + Retry-After when its class is full and it may not queue (§3.7).
        // A repeated key answers the command it created, with the same 202 as the first time.
        // The caller's `traceparent` (§3.1); an invalid one is ignored and the query starts a trace.
        const { record, replayed } = await traceSubmission(callerTrace(req), callerId, (trace) =>
          dispatcher.submit(json as SubmitQuery, callerId, idempotencyKey, trace),
        );
        const expressBase = (req as { baseUrl?: unknown }).baseUrl;
        const mount = `${typeof expressBase === 'string' ? expressBase : ''}${options.basePath}`;
        // §3.1: 202 + QueryView, `Location: /v1/queries/{id}` (under the mount path, if any).
        sendJson(res, 202, await views.view(record, parts.baseUrl(req)), {
          location: `${mount}/v1/queries/${encodeURIComponent(record.id)}`,
          ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
        });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${query}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        const principal = await credentials.requireCallerOrAdmin(req);
        sendJson(res, 200, await views.view(await findQuery(id, principal), parts.baseUrl(req)));
      },
    },
    {
      // §3.8 Cancel: 200 + the cancelled QueryView, the same again on a repeat; 409 once ended.
      // Its owner's to cancel (another caller gets 404), or an operator's.
      method: 'DELETE',
      pattern: new RegExp(`^${query}/?$`),
      async handle({ req, res, params: [id = ''] }) {
        await findQuery(id, await credentials.requireCallerOrAdmin(req));
        sendJson(res, 200, await views.view(await dispatcher.cancel(id), parts.baseUrl(req)));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${query}/events$`),
      async handle({ req, res, params: [id = ''] }) {
        const principal = await credentials.requireCallerOrAdmin(req);
        await findQuery(id, principal); // a 404 is still possible before the stream opens
        await events.subscribe(id, req, res, parts.baseUrl(req), principal);
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^${query}/result$`),
      async handle({ req, res, params: [id = ''] }) {
        const principal = await credentials.requireCallerOrAdmin(req);
        const record = await findQuery(id, principal);
        switch (record.state) {
          case 'completed': {
            const result = record.result;
            if (result?.kind === 'file') {
              // §3.4: file → 303 to the download URL.
              const { url } = await views.fileUrl(result.key, parts.baseUrl(req));
              res.writeHead(303, { location: url, 'cache-control': 'no-store' });
              res.end();
              return;
            }
            sendJson(res, 200, await keptRows(id));
            return;
          }
          case 'failed': {
            const failure = record.error;
            // The gateway's code is kept when it describes a failed result; one like `unauthorized`
            // would make the caller doubt its own token, so it reads `query-failed` instead.
            const code =
              failure && isErrorCode(failure.code) && resultFailureCodes.has(failure.code)
                ? failure.code
                : 'query-failed';
            throw new BackhaulError(code, failure?.message ?? 'The query failed', {
              retryable: false,
              details: { queryState: record.state, ...(failure ? { failure } : {}) },
            });
          }
          case 'expired':
            throw new BackhaulError('timeout', `Query ${id} expired: ${record.reason ?? 'deadline passed'}`, {
              retryable: false,
              details: { queryState: record.state },
            });
          case 'cancelled':
            throw new BackhaulError('cancelled', `Query ${id} was cancelled: it has no result`, {
              details: { queryState: record.state },
            });
          case 'dead-lettered':
            throw new BackhaulError(
              'gateway-unavailable',
              `Query ${id} was never acknowledged: ${record.reason ?? ''}`,
              {
                retryable: false,
                details: { queryState: record.state },
              },
            );
          default:
            throw new BackhaulError('result-not-ready', `Query ${id} is ${record.state}`, {
              retryAfterMs: 1000,
              details: { queryState: record.state },
            });
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/gateways\/?$/,
      async handle({ req, res }) {
        const { gateways } = await credentials.requireCallerOrAdmin(req);
        const all = parts.streams.views();
        sendJson(res, 200, { gateways: gateways ? all.filter((g) => gateways.includes(g.id)) : all });
      },
    },
    ...(['GET', 'HEAD'] as const).map(
      (method): Route => ({
        method,
        pattern: /^\/v1\/downloads\/(.+)$/,
        raw: true,
        // §3.5: the signature in the link is the credential; no caller token.
        handle: ({ req, res, params: [key = ''], query: search }) =>
          serveDownload(req, res, key, search, options.storage, parts.signer),
      }),
    ),
  ];
}

/**
 * A caller restricted to some gateways submitting to another gets the 404 of an unknown gateway
 * (not a 403): it learns nothing about gateways it may not use. A body without a usable
 * `gatewayId` is left to the schema's 400.
 */
function requireAllowedGateway(json: unknown, allowed: readonly string[] | undefined): void {
  if (!allowed || typeof json !== 'object' || json === null) return;
  const { gatewayId } = json as { gatewayId?: unknown };
  if (typeof gatewayId === 'string' && !allowed.includes(gatewayId))
    throw new BackhaulError('not-found', `No gateway '${gatewayId}' is configured`);
}

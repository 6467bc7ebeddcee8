import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import {
  type CommandRecord,
  type DownloadSigner,
  type ObjectStorage,
  parseTraceparent,
  type QueryResultView,
  type QueryView,
  type RowLog,
} from '@backhaul/core';

/**
 * What a caller reads about a query (docs/protocol.md §3.2). A file result's URL is minted when
 * the view is built, so every read hands out a link valid for the full TTL; a file that failed
 * its checks (§6.4) never reaches `completed`, so it never gets a URL.
 */
export interface QueryViews {
  view(record: CommandRecord, baseUrl: string): Promise<QueryView>;
  /** Only the URL, for the §3.4 redirect. */
  fileUrl(key: string, baseUrl: string): Promise<{ url: string; expiresAt: string }>;
}

export interface QueryViewOptions {
  storage: ObjectStorage;
  signer: DownloadSigner;
  downloadTtlSeconds: number;
  rowLog: RowLog;
  /** §3.7 The place of a queued query in this process's admission queue. */
  queuePosition(id: string): number | undefined;
}

/** `results/gw/x.parquet` → `results/gw/x.parquet` with each segment percent-encoded. */
export function downloadPath(key: string): string {
  return `/v1/downloads/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * The base URL the client used to reach this handler: scheme and host from the request (a proxy's
 * `X-Forwarded-Proto` wins) plus the mount path, Express's `req.baseUrl` or the `basePath` option.
 */
export function requestBaseUrl(req: IncomingMessage, mountPath: string): string {
  const forwarded = req.headers['x-forwarded-proto'];
  const proto =
    (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim() ||
    ((req.socket as TLSSocket).encrypted ? 'https' : 'http');
  const host = req.headers.host ?? 'localhost';
  const expressBase = (req as IncomingMessage & { baseUrl?: unknown }).baseUrl;
  return `${proto}://${host}${typeof expressBase === 'string' ? expressBase : ''}${mountPath}`;
}

/** How many times the command was sent: a pending or queued record waits for its next send. */
export function deliveries(record: CommandRecord): number {
  return record.state === 'pending' || record.state === 'queued'
    ? record.redeliveries
    : record.redeliveries + 1;
}

export function createQueryViews(options: QueryViewOptions): QueryViews {
  const { storage, signer, downloadTtlSeconds } = options;

  const fileUrl = async (key: string, baseUrl: string) => {
    const expiresAtMs = Date.now() + downloadTtlSeconds * 1000;
    if (storage.capabilities.presignedUrls && storage.presignGet) {
      const url = await storage.presignGet(key, downloadTtlSeconds);
      return { url, expiresAt: new Date(expiresAtMs).toISOString() };
    }
    const query = signer.sign(key, expiresAtMs);
    // The signer rounds to whole seconds; report the moment the link really stops working.
    const expires = Number(query.get('expires')) * 1000;
    return { url: `${baseUrl}${downloadPath(key)}?${query}`, expiresAt: new Date(expires).toISOString() };
  };

  const resultView = async (record: CommandRecord, baseUrl: string): Promise<QueryResultView | undefined> => {
    const result = record.result;
    if (!result || record.state !== 'completed') return undefined;
    if (result.kind === 'rows') {
      return {
        kind: 'rows',
        rowCount: result.rowCount,
        columns: (await options.rowLog.summary(record.id))?.columns ?? [],
      };
    }
    const { url, expiresAt } = await fileUrl(result.key, baseUrl);
    return {
      kind: 'file',
      format: 'parquet',
      url,
      expiresAt,
      size: result.size,
      checksum: result.checksum,
      rowCount: result.rowCount,
    };
  };

  const queuePosition = (record: CommandRecord) => {
    if (record.state !== 'queued') return {};
    const position = options.queuePosition(record.id);
    return position === undefined ? {} : { queuePosition: position };
  };

  return {
    fileUrl,
    async view(record, baseUrl) {
      const result = await resultView(record, baseUrl);
      return {
        id: record.id,
        gatewayId: record.gatewayId,
        state: record.state,
        mode: record.command.mode,
        createdAt: new Date(record.createdAt).toISOString(),
        updatedAt: new Date(record.updatedAt).toISOString(),
        deliveries: deliveries(record),
        ...queuePosition(record),
        ...(record.progress ? { progress: record.progress } : {}),
        ...(record.liveRows !== undefined ? { liveRows: record.liveRows } : {}),
        ...(result ? { result } : {}),
        ...(record.error ? { error: record.error } : {}),
        ...(record.reason && !record.error ? { error: { code: record.state, message: record.reason } } : {}),
        ...traceIdOf(record),
      };
    },
  };
}

/** §3.2 The query's trace ID, for finding its spans and log lines; none on records from before traces. */
function traceIdOf(record: CommandRecord): { traceId?: string } {
  const traceId = parseTraceparent(record.command.traceparent)?.traceId;
  return traceId ? { traceId } : {};
}

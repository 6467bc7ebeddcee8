import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  activeTrace,
  BackhaulError,
  CodecRegistry,
  createChecksummer,
  createDownloadSigner,
  createMemoryAdmissionLedger,
  createMemoryClusterBus,
  createMemoryCommandStore,
  createMemoryCredentialStore,
  createMemoryRowLog,
  type DeliveryEvent,
  type GatewayView,
  isTerminal,
  PROTOCOL_VERSION,
  type QueryView,
  type SubmitQuery,
} from '@backhaul/core';
import type { Registry } from 'prom-client';
import { adminRoutes } from './admin-api.js';
import { type AdmissionSnapshot, createAdmission } from './admission.js';
import { watchRequestBody } from './body-deadline.js';
import { callerAdminRoutes } from './caller-admin-api.js';
import { callerRoutes } from './caller-api.js';
import { type ChunkIngest, createChunkIngest } from './chunk-ingest.js';
import { createCommandDispatcher } from './command-dispatcher.js';
import { createCommandStreams } from './command-stream.js';
import { commandLogger, traceSubmission } from './command-trace.js';
import { createCredentials } from './credentials.js';
import { fleetRoutes } from './fleet-api.js';
import { fleetPageRoutes } from './fleet-page.js';
import { gatewayRoutes } from './gateway-api.js';
import { createGatewayPush } from './gateway-push.js';
import { asBackhaulError, sendProblem } from './http-io.js';
import { operationsRoutes } from './operations-api.js';
import { createOwnHttpServer } from './own-http-server.js';
import { createQueryEvents } from './query-events.js';
import { createQueryViews, requestBaseUrl } from './query-views.js';
import { createRevocationWatch } from './revocation-watch.js';
import { createRouter } from './router.js';
import { createServerMetrics } from './server-metrics.js';
import { type BackhaulServerOptions, resolveOptions } from './server-options.js';
import type { ServerParts } from './server-parts.js';
import { createSseHub } from './sse-connection.js';
import { createStagedChunkIngest } from './staged-chunk-ingest.js';

export interface BackhaulServer {
  /**
   * A Node-style handler `(req, res, next?)`: mount it in node:http, Express
   * (`app.use('/backhaul', server.handler)`), Fastify (`reply.hijack()`, then
   * `handler(request.raw, reply.raw)`) or Hono's node server. Routes on `req.url`; an unknown
   * path calls `next()` when given, else answers a 404 problem.
   */
  handler: (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;
  /** Starts an own http.Server; default port 0 (any free one) on 127.0.0.1. */
  listen(port?: number, host?: string): Promise<{ url: string; port: number }>;
  /**
   * Stops timers, ends every stream, aborts uploads in progress (those of this process only: a
   * shared upload, with `uploadLedger`, goes on through another instance), closes the own http.Server.
   */
  close(): Promise<void>;
  /**
   * Planned shutdown (docs/cluster.md, "Draining"): from now on new submits and new streams are
   * refused with 503 and `Retry-After`, and every open stream is ended, so gateways and callers
   * reconnect to another instance (commands not yet acked stay in the store and are sent again
   * there). Requests in flight here (acks, chunks, row batches, completions) and uploads in
   * progress may finish for up to `timeoutMs` (default 30 000); then the server closes.
   */
  drain(options?: { timeoutMs?: number }): Promise<void>;
  /** True from `drain()` on: what a readiness check reports as "not ready". */
  readonly draining: boolean;
  /** In-process caller API: as `POST /v1/queries`, without a token. */
  submitQuery(request: SubmitQuery): Promise<QueryView>;
  getQuery(id: string): Promise<QueryView>;
  listGateways(): GatewayView[];
  /** Slots in use and queries queued per concurrency class of this process (docs/protocol.md §3.7). */
  admission(): AdmissionSnapshot;
  /** This server's Prometheus registry (served at `GET /metrics`; docs/operations.md). */
  readonly metrics: Registry;
}

/** The caller identity of queries submitted in-process (`submitQuery`), for fair shares. */
const IN_PROCESS_CALLER = 'in-process';

/**
 * State changes that get a log line of their own; the others have theirs where they happen
 * (accepted, sent, gave up), and progress would flood the log.
 */
const loggedEvents = new Set<DeliveryEvent['type']>(['ack', 'admit', 'complete', 'fail', 'cancel']);

/** What a client refused by a draining server is told to wait before it tries again. */
const DRAIN_RETRY_AFTER_MS = 1000;
/** How often a drain looks whether the last request ended. */
const DRAIN_POLL_MS = 25;

/** Requests that would start something a draining server must not take on: submits and streams. */
function startsNewWork(method: string, path: string): boolean {
  if (method === 'POST') return /^\/v1\/queries\/?$/.test(path);
  return method === 'GET' && (/^\/v1\/gateway\/commands\/?$/.test(path) || /\/events$/.test(path));
}

/** How long a client waits before reconnecting an SSE stream (the `retry:` field). */
const SSE_RETRY_MS = 2000;

export function createBackhaulServer(options: BackhaulServerOptions): BackhaulServer {
  const config = resolveOptions(options);
  const { logger } = config;
  const metrics = createServerMetrics(config.metrics.registry);
  const storage = metrics.timedStorage(config.storage);
  const ownsStore = config.store === undefined;
  const plainStore = config.store ?? createMemoryCommandStore();
  const store = metrics.timedStore(plainStore);
  const ownsCredentialStore = config.credentialStore === undefined;
  const credentialStore = config.credentialStore ?? createMemoryCredentialStore();
  const credentials = createCredentials(
    config.gateways,
    config.callerTokens,
    { adminTokens: config.adminTokens, store: credentialStore },
    config.callers,
  );
  const codecs = new CodecRegistry(config.codecs);
  const signer = createDownloadSigner(config.downloadSecret);
  const hub = createSseHub(config.heartbeatMs, config.streamBufferBytes);
  const ownsBus = config.bus === undefined;
  const bus = config.bus ?? createMemoryClusterBus();
  const ownsRowLog = config.rowLog === undefined;
  const rowLog = config.rowLog ?? createMemoryRowLog();
  // A queued query that gets its slot is handed to the dispatcher, which is created below.
  const admission = createAdmission({
    limits: config.admission,
    ledger: config.admissionLedger ?? createMemoryAdmissionLedger(),
    onAdmit: (id) => void dispatcher.admit(id),
    retryMs: config.sweepIntervalMs,
    logger,
  });
  const views = createQueryViews({
    storage,
    signer,
    downloadTtlSeconds: config.downloadTtlSeconds,
    rowLog,
    queuePosition: admission.position,
  });
  const streams = createCommandStreams({
    hub,
    gatewayIds: credentials.gatewayIds,
    retryMs: SSE_RETRY_MS,
    hello: {
      v: PROTOCOL_VERSION,
      codecs: codecs.names,
      chunkSize: config.chunkSize,
      heartbeatMs: config.heartbeatMs,
      chunkWindow: config.chunkWindow,
    },
  });
  const events = createQueryEvents({ hub, store, views, rowLog, bus, retryMs: SSE_RETRY_MS, logger });
  const push = createGatewayPush({ bus, deliver: (id) => dispatcher.deliver(id), logger });

  let ingest: ChunkIngest | undefined;
  let listenUrl: string | undefined;
  let httpServer: Server | undefined;
  let closed = false;
  let draining = false;
  /** Requests being handled now; a drain waits for them. */
  let inFlight = 0;

  const dispatcher = createCommandDispatcher({
    store,
    policy: config.delivery,
    streams,
    hasGateway: credentials.hasGateway,
    admission,
    rowsByteLimit: config.rowsByteLimit,
    idempotencyKeyRetentionMs: config.idempotencyKeyRetentionMs,
    sweepIntervalMs: config.sweepIntervalMs,
    logger,
    announce: push.announce,
    onChange(record, event) {
      metrics.changed(record, event);
      events.changed(record, event.type === 'progress');
      const log = commandLogger(logger, record);
      if (loggedEvents.has(event.type)) log.info(`command ${record.state}`, { event: event.type });
      if (isTerminal(record.state)) {
        // §3.7: however it ended, its slot (or queue place) goes to the next query at once.
        admission.release(record.id);
        // A command that ended any other way than completed must not leave a half-written file.
        if (record.state !== 'completed') {
          ingest?.abort(record.id).catch((error) => log.warn('abort failed', { error: String(error) }));
        }
        rowLog
          .end(record.id, config.rowRetentionMs)
          .catch((error) => log.warn('could not end the row log', { error: String(error) }));
      }
    },
  });

  // xxhash64 is WebAssembly: loaded once, before the first request is served.
  const ready = createChecksummer().then((checksummer) => {
    const ingestOptions = {
      storage,
      codecs,
      checksummer,
      chunkSize: config.chunkSize,
      chunkWindow: config.chunkWindow,
      logger,
    };
    if (config.uploadLedger) {
      ingest = createStagedChunkIngest({
        ...ingestOptions,
        ledger: config.uploadLedger,
        instanceId: config.instanceId,
      });
      return;
    }
    ingest = createChunkIngest({
      ...ingestOptions,
      onBroken(commandId, error) {
        logger.error('a result file broke mid-upload', { commandId, error: error.message });
        dispatcher
          .apply(commandId, { type: 'fail', error: { code: error.code, message: error.message } })
          .catch((failure) =>
            logger.warn('could not fail the command', { commandId, error: String(failure) }),
          );
      },
    });
  });
  ready.catch(() => undefined);

  const baseUrl = (req?: IncomingMessage) =>
    config.publicUrl ?? (req ? requestBaseUrl(req, config.basePath) : (listenUrl ?? config.basePath));

  const parts: ServerParts = {
    options: config,
    store,
    credentials,
    streams,
    dispatcher,
    admission,
    ingest: () => {
      if (!ingest)
        throw new BackhaulError('service-unavailable', 'The server is starting', { retryAfterMs: 1000 });
      return ingest;
    },
    rowLog,
    views,
    events,
    push,
    signer,
    metrics,
    baseUrl,
  };
  const router = createRouter([
    ...gatewayRoutes(parts),
    ...callerRoutes(parts),
    ...adminRoutes(parts, credentialStore),
    ...callerAdminRoutes(parts, credentialStore),
    ...fleetRoutes(parts, {
      instanceId: config.instanceId,
      store: plainStore,
      credentialStore,
      configuredGatewayIds: credentials.gatewayIds,
      streams,
    }),
    ...fleetPageRoutes(),
    ...operationsRoutes({
      registry: metrics.registry,
      metricsToken: config.metrics.token,
      store,
      storage,
      probeTimeoutMs: config.readinessTimeoutMs,
      draining: () => draining,
    }),
  ]);
  metrics.observe({
    gatewaysConnected: () => streams.connectedGatewayIds().length,
    admission: () => admission.snapshot(),
  });
  const revocations = createRevocationWatch({
    streams,
    events,
    store: credentialStore,
    intervalMs: config.tokenRecheckMs,
    logger,
  });
  dispatcher.start();
  revocations.start();

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    next?: (err?: unknown) => void,
  ): Promise<void> {
    // A client that vanishes mid-answer must cost us nothing but that answer.
    res.once('error', (error) => logger.warn('response failed', { url: req.url, error: String(error) }));
    watchRequestBody(
      req,
      res,
      { totalMs: config.requestTimeoutMs, idleMs: config.bodyIdleTimeoutMs },
      (error) =>
        logger.warn('closed a request whose body was too slow', { url: req.url, error: error.message }),
    );
    try {
      if (closed)
        throw new BackhaulError('service-unavailable', 'The server is shutting down', { retryAfterMs: 5000 });
      if (!ingest) await ready;
      let path = new URL(req.url ?? '/', 'http://backhaul.invalid').pathname;
      if (config.basePath) {
        if (path !== config.basePath && !path.startsWith(`${config.basePath}/`))
          return notFound(req, res, next);
        path = path.slice(config.basePath.length) || '/';
      }
      if (draining && startsNewWork(req.method ?? 'GET', path))
        throw new BackhaulError('service-unavailable', 'The server is draining; try another instance', {
          retryAfterMs: DRAIN_RETRY_AFTER_MS,
        });
      const match = router.match(req.method ?? 'GET', path);
      if (match.kind === 'none') return notFound(req, res, next);
      if (match.kind === 'method-not-allowed') {
        res.setHeader('allow', match.allow.join(', '));
        throw new BackhaulError('method-not-allowed', `${req.method} is not allowed on ${path}`);
      }
      const query = new URL(req.url ?? '/', 'http://backhaul.invalid').searchParams;
      await match.handle({ req, res, params: match.params, query });
    } catch (error) {
      const problem = asBackhaulError(error);
      if (problem.code === 'internal' || problem.code === 'storage-failed') {
        logger.error('request failed', {
          method: req.method,
          url: req.url,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          cause: problem.cause instanceof Error ? problem.cause.message : undefined,
        });
      }
      await sendProblem(req, res, problem).catch(() => res.destroy());
    }
  }

  function notFound(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) {
    if (next) {
      next();
      return;
    }
    return sendProblem(req, res, new BackhaulError('not-found', `No route for ${req.method} ${req.url}`));
  }

  /** Counts the request while it is handled, so a drain knows when the last one ended. */
  function tracked(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> {
    inFlight++;
    return handle(req, res, next).finally(() => {
      inFlight--;
    });
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    dispatcher.stop();
    // Its slots are freed for the other servers while the rest shuts down.
    const admissionClosed = admission.close();
    revocations.stop();
    hub.closeAll();
    await ready.catch(() => undefined);
    await ingest?.abortAll();
    await admissionClosed;
    if (httpServer) {
      const server = httpServer;
      httpServer = undefined;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    if (ownsStore) await store.close();
    if (ownsBus) await bus.close();
    if (ownsRowLog) await rowLog.close();
    if (ownsCredentialStore) await credentialStore.close();
  }

  return {
    handler(req, res, next) {
      void tracked(req, res, next);
    },
    listen(port = 0, host = '127.0.0.1') {
      if (httpServer) return Promise.reject(new Error('This server is already listening'));
      const server = createOwnHttpServer((req, res) => void tracked(req, res), {
        headersTimeoutMs: config.headersTimeoutMs,
        requestTimeoutMs: config.requestTimeoutMs,
        logger,
      });
      httpServer = server;
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
          listenUrl = `http://${shownHost}:${address.port}${config.basePath}`;
          logger.info('backhaul server listening', { url: listenUrl });
          resolve({ url: listenUrl, port: address.port });
        });
      });
    },

    close,

    async drain({ timeoutMs = 30_000 } = {}) {
      if (closed) return;
      if (!draining) {
        draining = true;
        logger.info('draining: refusing new work, handing gateways off', { inFlight });
        // Gateways and callers reconnect elsewhere; what this server sent and nobody acked is
        // pending again after its ack deadline, on whichever server holds the new stream.
        hub.closeAll();
      }
      const deadline = Date.now() + timeoutMs;
      // Busy while a request is being handled, an upload is open, or a query admitted here is
      // being answered by a gateway (acked, not ended): its next request may come here.
      const busy = async () => {
        if (inFlight > 0 || (ingest?.uploading().length ?? 0) > 0) return true;
        for (const id of admission.tracked()) {
          const record = await store.get(id).catch(() => undefined);
          if (record?.state === 'acknowledged' || record?.state === 'running') return true;
        }
        return false;
      };
      while (Date.now() < deadline && (await busy())) {
        await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      }
      await close();
    },

    get draining() {
      return draining;
    },

    async submitQuery(request) {
      // In-process, the caller's trace is the span active in its OpenTelemetry context, if any.
      const { record } = await traceSubmission(activeTrace(), IN_PROCESS_CALLER, (trace) =>
        dispatcher.submit(request, IN_PROCESS_CALLER, undefined, trace),
      );
      return views.view(record, baseUrl());
    },

    async getQuery(id) {
      const record = await store.get(id);
      if (!record) throw new BackhaulError('not-found', `No query ${id}`);
      return views.view(record, baseUrl());
    },

    listGateways: () => streams.views(),

    admission: () => admission.snapshot(),

    metrics: metrics.registry,
  };
}

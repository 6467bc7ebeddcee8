import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type AdmissionLedger,
  type ClusterBus,
  type Codec,
  type CommandStore,
  type CredentialStore,
  DEFAULT_CHUNK_SIZE,
  type DeliveryPolicy,
  defaultDeliveryPolicy,
  type Logger,
  type ObjectStorage,
  type RowLog,
  silentLogger,
  type UploadLedger,
} from '@backhaul/core';
import type { Registry } from 'prom-client';
import { type AdmissionLimits, resolveAdmissionLimits } from './admission.js';
import type { CallerCredential, GatewayCredential } from './credentials.js';

/** One typed configuration object; defaults are the design's figures (docs/protocol.md, docs/reliability.md). */
export interface BackhaulServerOptions {
  /** Where assembled result files go. */
  storage: ObjectStorage;
  /** The durable command log; default: in memory (nothing survives a restart). */
  store?: CommandStore;
  /**
   * Chunk receipts and completion claims shared by server instances (docs/cluster.md "Shared
   * uploads"): with one, each chunk is stored in `storage` under `staging/` before it is
   * acknowledged, and chunks and completion of a file may reach any instance that shares this
   * ledger and this storage. Default: none, each file is assembled in the memory of the one
   * process that takes all of its chunks.
   */
  uploadLedger?: UploadLedger;
  /**
   * How server instances of one deployment ring each other (docs/cluster.md "Bus and row log"):
   * a command accepted here for a gateway streaming from another instance is sent by that one at
   * once, and callers following a query on any instance see its events. Default: in memory, one
   * instance. Give every instance the same one (`createRedisClusterBus` in @backhaul/store-redis).
   */
  bus?: ClusterBus;
  /**
   * Row batches of every query, by position, readable by every instance: rows followed live
   * or read (`GET …/result`) on another instance than the one that took them. Default: in memory.
   */
  rowLog?: RowLog;
  /** This instance's name in logs; default `<hostname>-<pid>-<random>`. */
  instanceId?: string;
  /** Codecs accepted for chunks besides `identity`, which is always accepted. */
  codecs?: Codec[];
  /** Gateways allowed to connect. Plain tokens are hashed at start and not kept. */
  gateways: GatewayCredential[];
  /**
   * Tokens of callers (services that submit queries); hashed at start. Each is its own caller:
   * it sees only the queries it submitted (docs/security.md, "Caller isolation").
   */
  callerTokens: string[];
  /**
   * Named callers, optionally restricted to some gateways; hashed at start. Callers can also be
   * enrolled through the admin API (docs/protocol.md §10.5). Default: none.
   */
  callers?: CallerCredential[];
  /** Tokens of operators, for the admin API (docs/protocol.md §10); hashed at start. Default: none (the API answers 401). */
  adminTokens?: string[];
  /** Enrolled gateways and their token hashes; default: in memory. Servers sharing one share enrolments. */
  credentialStore?: CredentialStore;
  /** How often live streams of enrolled tokens are re-checked for revocation by another server; default 5000. */
  tokenRecheckMs?: number;
  /** Signs download links of storages without presigned URLs; default: random per process. */
  downloadSecret?: string;
  /** Base URL for links handed out (download URLs); default: from the request's Host. */
  publicUrl?: string;
  /** Path prefix the handler is mounted under when the framework does not strip it (Fastify, Hono). */
  basePath?: string;
  /** How long a download link is valid; default 3600. */
  downloadTtlSeconds?: number;
  /** Ack and completion deadlines, redeliveries (docs/protocol.md §5, §7). */
  delivery?: Partial<DeliveryPolicy>;
  /** SSE heartbeat comment interval; default 15 000 (§4: at most 15 s). */
  heartbeatMs?: number;
  /**
   * Bytes one SSE stream (a gateway's commands, a caller's query events) may have queued for a
   * client that does not read them; past it the stream is cut, its buffer freed, and the client
   * reconnects and catches up (unacked commands are sent again, §4). Default 16 MiB.
   */
  streamBufferBytes?: number;
  /**
   * How often the deadline timer runs; default 1000. Besides deadlines it looks up pending
   * commands of the gateways streaming here, the safety net for an announcement the bus lost.
   */
  sweepIntervalMs?: number;
  /** Bytes per chunk, announced in `hello`; default 524 288 (§6.1). */
  chunkSize?: number;
  /** How many chunks past the first gap are buffered, announced in `hello`; default 64. */
  chunkWindow?: number;
  /** Sent to gateways in commands: `auto` mode switches to a file past this many bytes; default 8 MiB. */
  rowsByteLimit?: number;
  /** Cap on one row batch body; default 16 MiB. Other JSON bodies are capped at 64 KiB. */
  maxJsonBodyBytes?: number;
  /** How long row batches of an ended query stay readable; default: downloadTtlSeconds. */
  rowRetentionMs?: number;
  /**
   * How long the command store remembers a caller's `Idempotency-Key` (docs/protocol.md §3.1):
   * a retry of `POST /v1/queries` within this time returns the command the key created instead
   * of creating another. Default 24 h.
   */
  idempotencyKeyRetentionMs?: number;
  /**
   * Concurrency classes and fair shares of this server process (docs/protocol.md §3.7, deploy.md);
   * defaults: 200 small queries, 50 medium files, 10 large files (past 100 MiB) at once.
   */
  admission?: Partial<AdmissionLimits>;
  /**
   * Where admission slots are counted. Default: in this process, so N servers admit N times the
   * limits; give every server one shared ledger (e.g. `createRedisAdmissionLedger` of
   * @backhaul/store-redis) to count the limits and shares across the cluster (docs/cluster.md).
   */
  admissionLedger?: AdmissionLedger;
  /**
   * Time allowed to receive a request's headers on the own `listen()` server (Node's
   * `headersTimeout`): a client that trickles headers (slowloris) is answered 408 and closed.
   * Default 60 000 (Node's default). A framework you mount the handler in sets its own.
   */
  headersTimeoutMs?: number;
  /**
   * Time allowed to receive a whole request, body included: Node's `requestTimeout` on the own
   * `listen()` server, and enforced by the handler itself on every body it reads (chunks, JSON),
   * so it holds when mounted in Express or Fastify too. Default 300 000 (Node's default).
   */
  requestTimeoutMs?: number;
  /**
   * The handler answers 408 and closes the connection when a request body stalls this long
   * without a byte (wherever the handler is mounted). Default 30 000.
   */
  bodyIdleTimeoutMs?: number;
  /**
   * Prometheus series (docs/operations.md). `registry`: where they are registered; default a new
   * one per server (never prom-client's global registry), read it as `server.metrics`. `token`:
   * when set, `GET /metrics` wants `Authorization: Bearer <token>`; default none, the endpoint is
   * open like `/healthz` (the series carry no IDs, tokens or SQL).
   */
  metrics?: { registry?: Registry; token?: string };
  /** How long each `/readyz` probe (command store, object storage) may take; default 2000. */
  readinessTimeoutMs?: number;
  /** Default: silent. */
  logger?: Logger;
}

export interface ResolvedOptions {
  storage: ObjectStorage;
  store: CommandStore | undefined;
  uploadLedger: UploadLedger | undefined;
  bus: ClusterBus | undefined;
  rowLog: RowLog | undefined;
  instanceId: string;
  codecs: Codec[];
  gateways: GatewayCredential[];
  callerTokens: string[];
  callers: CallerCredential[];
  adminTokens: string[];
  credentialStore: CredentialStore | undefined;
  tokenRecheckMs: number;
  downloadSecret: string;
  publicUrl: string | undefined;
  basePath: string;
  downloadTtlSeconds: number;
  delivery: DeliveryPolicy;
  heartbeatMs: number;
  streamBufferBytes: number;
  sweepIntervalMs: number;
  chunkSize: number;
  chunkWindow: number;
  rowsByteLimit: number;
  maxJsonBodyBytes: number;
  rowRetentionMs: number;
  idempotencyKeyRetentionMs: number;
  admission: AdmissionLimits;
  admissionLedger: AdmissionLedger | undefined;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  metrics: { registry: Registry | undefined; token: string | undefined };
  readinessTimeoutMs: number;
  logger: Logger;
}

const positiveInteger = (
  name: string,
  value: number | undefined,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
) => {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen <= 0 || chosen > max) {
    throw new RangeError(`${name} must be a whole number between 1 and ${max}, got ${String(value)}`);
  }
  return chosen;
};

const trimSlashes = (value: string) => value.replace(/\/+$/, '');

/** Validates at start-up, so a typo fails the boot rather than the first request. */
export function resolveOptions(options: BackhaulServerOptions): ResolvedOptions {
  if (!options?.storage) throw new TypeError('options.storage is required');
  if (!Array.isArray(options.gateways)) throw new TypeError('options.gateways must be an array');
  if (!Array.isArray(options.callerTokens)) throw new TypeError('options.callerTokens must be an array');
  if (options.callers !== undefined && !Array.isArray(options.callers))
    throw new TypeError('options.callers must be an array');
  if (options.adminTokens !== undefined && !Array.isArray(options.adminTokens))
    throw new TypeError('options.adminTokens must be an array');
  const downloadTtlSeconds = positiveInteger(
    'downloadTtlSeconds',
    options.downloadTtlSeconds,
    3600,
    7 * 86_400,
  );
  const delivery: DeliveryPolicy = { ...defaultDeliveryPolicy, ...options.delivery };
  for (const [name, value] of Object.entries(delivery)) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`delivery.${name} must be a whole number ≥ 0`);
  }
  if (options.downloadSecret !== undefined && options.downloadSecret.length < 16) {
    throw new RangeError('downloadSecret must be at least 16 characters');
  }
  const headersTimeoutMs = positiveInteger('headersTimeoutMs', options.headersTimeoutMs, 60_000);
  const requestTimeoutMs = positiveInteger('requestTimeoutMs', options.requestTimeoutMs, 300_000);
  // Node refuses a headersTimeout above requestTimeout; say so at start-up, in our names.
  if (headersTimeoutMs > requestTimeoutMs)
    throw new RangeError('headersTimeoutMs must not exceed requestTimeoutMs');
  let basePath = trimSlashes(options.basePath ?? '');
  if (basePath && !basePath.startsWith('/')) basePath = `/${basePath}`;
  return {
    storage: options.storage,
    store: options.store,
    uploadLedger: options.uploadLedger,
    bus: options.bus,
    rowLog: options.rowLog,
    instanceId: options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    codecs: options.codecs ?? [],
    gateways: options.gateways,
    callerTokens: options.callerTokens,
    callers: options.callers ?? [],
    adminTokens: options.adminTokens ?? [],
    credentialStore: options.credentialStore,
    tokenRecheckMs: positiveInteger('tokenRecheckMs', options.tokenRecheckMs, 5000),
    downloadSecret: options.downloadSecret ?? randomBytes(32).toString('hex'),
    publicUrl: options.publicUrl ? trimSlashes(options.publicUrl) : undefined,
    basePath,
    downloadTtlSeconds,
    delivery,
    // docs/protocol.md §4: the gateway treats 45 s of silence as dead; more than 15 s is refused.
    heartbeatMs: positiveInteger('heartbeatMs', options.heartbeatMs, 15_000, 15_000),
    streamBufferBytes: positiveInteger('streamBufferBytes', options.streamBufferBytes, 16 * 1024 * 1024),
    sweepIntervalMs: positiveInteger('sweepIntervalMs', options.sweepIntervalMs, 1000),
    chunkSize: positiveInteger('chunkSize', options.chunkSize, DEFAULT_CHUNK_SIZE, 64 * 1024 * 1024),
    chunkWindow: positiveInteger('chunkWindow', options.chunkWindow, 64, 10_000),
    rowsByteLimit: positiveInteger('rowsByteLimit', options.rowsByteLimit, 8 * 1024 * 1024),
    maxJsonBodyBytes: positiveInteger('maxJsonBodyBytes', options.maxJsonBodyBytes, 16 * 1024 * 1024),
    rowRetentionMs: positiveInteger('rowRetentionMs', options.rowRetentionMs, downloadTtlSeconds * 1000),
    idempotencyKeyRetentionMs: positiveInteger(
      'idempotencyKeyRetentionMs',
      options.idempotencyKeyRetentionMs,
      24 * 60 * 60 * 1000,
    ),
    admission: resolveAdmissionLimits(options.admission),
    admissionLedger: options.admissionLedger,
    headersTimeoutMs,
    requestTimeoutMs,
    bodyIdleTimeoutMs: positiveInteger('bodyIdleTimeoutMs', options.bodyIdleTimeoutMs, 30_000),
    metrics: { registry: options.metrics?.registry, token: metricsToken(options.metrics?.token) },
    readinessTimeoutMs: positiveInteger('readinessTimeoutMs', options.readinessTimeoutMs, 2000),
    logger: options.logger ?? silentLogger,
  };
}

function metricsToken(token: string | undefined): string | undefined {
  if (token !== undefined && token.length < 16)
    throw new RangeError('metrics.token must be at least 16 characters');
  return token;
}

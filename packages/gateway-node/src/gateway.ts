import {
  BackhaulError,
  type Codec,
  CodecRegistry,
  type Command,
  type Completion,
  createChecksummer,
  type DataSource,
  defaultRetryPolicy,
  type Hello,
  type Logger,
  type RetryPolicy,
  silentLogger,
} from '@backhaul/core';
import type { Registry } from 'prom-client';
import { AUTO_CODEC, type CodecChoice } from './codec-choice.js';
import { CommandRunner, type GatewaySession } from './command-runner.js';
import { CommandStreamClient, DEFAULT_MAX_EVENT_LENGTH } from './command-stream-client.js';
import { createGatewayMetrics } from './gateway-metrics.js';
import { type GatewayStatusOptions, listenStatus, type StatusServer } from './gateway-status.js';
import {
  DEFAULT_PARQUET_COMPRESSION,
  FILE_BATCH_SIZE,
  type ParquetFileCompression,
} from './parquet-encoding.js';
import { createConnectionPool, ServerApi } from './server-api.js';

/**
 * Chunk PUTs in flight per file. One 512 KiB request per round trip caps a long link's throughput
 * at window / RTT: at 81 ms, 16 in flight moved 100 MB in 1.7–2.0 s and 32 in 1.2–1.4 s
 * (docs/benchmarks.md); on loopback the two are alike. The server's `chunkWindow` (64) caps it.
 */
export const DEFAULT_CHUNKS_IN_FLIGHT = 32;

export interface GatewayOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080; the `/v1/...` paths are appended. */
  serverUrl: string;
  token: string;
  dataSource: DataSource;
  /** Codecs this gateway can encode chunks with; identity is always available. */
  codecs?: Codec[];
  /**
   * The chunk codec to use. Default: 'zstd' when given in `codecs` and accepted by the server,
   * else 'identity'. Set explicitly, a codec the server does not accept is an error, never a guess.
   * `'auto'`: every 8th chunk of a file is tried with zstd (else lz4), and the chunks up to the next
   * sample keep it only if it saved 10 % or more and, once the upload has measured the link, the
   * saved bytes would take longer on the wire than compressing costs; else they go uncompressed
   * (identity). A `codec-chosen` event gives each file's summary once it is uploaded.
   */
  preferredCodec?: string;
  /**
   * Page compression of the Parquet files this gateway writes: 'zstd' (default, level 3),
   * `{ codec: 'zstd', level }` (1–22), 'snappy' or 'none'. Compressed pages leave the chunk codec
   * little to do: `preferredCodec: 'auto'` then sends them as identity (docs/benchmarks.md).
   */
  parquetCompression?: ParquetFileCompression;
  /** Chunk requests in flight per file (default 32), capped by the server's `chunkWindow`. */
  chunksInFlight?: number;
  /** Per chunk and per request (default: core's `defaultRetryPolicy`, 10 attempts). */
  retry?: RetryPolicy;
  /** Rows per batch off the cursor in rows and auto mode (default 1000); file mode reads 8192. */
  rowBatchSize?: number;
  /** No bytes on the command stream for this long means it is dead (default 45 000, §4). */
  heartbeatTimeoutMs?: number;
  /**
   * Most characters one command-stream event may take (default 8 Mi, twice the largest query a
   * server accepts); a larger one drops the stream, which is then reconnected with backoff.
   */
  maxEventLength?: number;
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  progressIntervalMs?: number;
  maxConcurrentCommands?: number;
  /** Where the Prometheus series go; default a new registry per gateway (docs/operations.md). */
  metricsRegistry?: Registry;
  /**
   * An HTTP status port with `/healthz`, `/readyz` (stream open, database answers) and `/metrics`;
   * default: none. It listens from `start()` on, so it answers (not ready) while connecting.
   */
  status?: GatewayStatusOptions;
  logger?: Logger;
}

export type GatewayEvent =
  | { type: 'connected'; hello: Hello }
  | { type: 'disconnected'; error?: unknown }
  | { type: 'command'; command: Command; duplicate: boolean }
  | {
      type: 'progress';
      commandId: string;
      rows: number;
      bytes: number;
      stage: 'querying' | 'encoding' | 'uploading';
    }
  | { type: 'completed'; commandId: string; completion: Completion }
  | { type: 'failed'; commandId: string; error: unknown }
  /** The caller cancelled the command (§4.3): the query was stopped, nothing more is sent for it. */
  | { type: 'cancelled'; commandId: string }
  /**
   * `preferredCodec: 'auto'` uploaded a file: its main codec and why (`reason`: 'data' or 'link'),
   * chunks per codec, `sampleRatio` = encoded / raw, `goodput` = the link's bytes per second.
   */
  | ({ type: 'codec-chosen'; commandId: string } & CodecChoice);

export interface Gateway {
  /** Resolves once the first hello arrived; rejects when the server refuses the token (401/403). */
  start(): Promise<void>;
  /** Closes the stream and aborts running commands. */
  stop(): Promise<void>;
  /** Returns a function that unsubscribes. */
  on(listener: (event: GatewayEvent) => void): () => void;
  readonly connected: boolean;
  /** This gateway's Prometheus registry (served on the status port, if any). */
  readonly metrics: Registry;
  /** The status port's base URL once listening (`status` option), else undefined. */
  readonly statusUrl: string | undefined;
}

const REMEMBERED_COMMANDS = 10_000;

export function createGateway(options: GatewayOptions): Gateway {
  const config = resolveOptions(options);
  const logger = config.logger;
  const registry = new CodecRegistry(options.codecs ?? []);
  const auto = options.preferredCodec === AUTO_CODEC;
  // An unknown codec name throws here, at construction.
  if (options.preferredCodec !== undefined && !auto) registry.get(options.preferredCodec);

  const dispatcher = createConnectionPool(config.chunksInFlight);
  const api = new ServerApi({
    serverUrl: options.serverUrl,
    token: options.token,
    dispatcher,
    retry: config.retry,
    logger,
  });
  const metrics = createGatewayMetrics(options.metricsRegistry);
  metrics.instrument(api);
  metrics.observe({ connected: () => connected });

  const listeners = new Set<(event: GatewayEvent) => void>([(event) => metrics.event(event)]);
  const emit = (event: GatewayEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.error('a gateway event listener threw', { error: String(error) });
      }
    }
  };

  let session: GatewaySession | undefined;
  let connected = false;
  let started: { promise: Promise<void>; resolve(): void; reject(error: unknown): void } | undefined;
  let runner: CommandRunner | undefined;
  let stream: CommandStreamClient | undefined;
  let statusServer: StatusServer | undefined;

  const chooseCodec = (hello: Hello): Codec => {
    if (auto) {
      // The candidate each file is sampled with: the better ratio first, then the faster codec.
      const candidate = ['zstd', 'lz4'].find(
        (name) => registry.names.includes(name) && hello.codecs.includes(name),
      );
      return registry.get(candidate ?? 'identity');
    }
    if (options.preferredCodec !== undefined) {
      if (!hello.codecs.includes(options.preferredCodec)) {
        throw new BackhaulError(
          'unsupported-codec',
          `preferredCodec '${options.preferredCodec}' is not accepted by the server (it accepts: ${hello.codecs.join(', ')})`,
        );
      }
      return registry.get(options.preferredCodec);
    }
    if (registry.names.includes('zstd') && hello.codecs.includes('zstd')) return registry.get('zstd');
    return registry.get('identity');
  };

  const stop = async () => {
    connected = false;
    await stream?.stop();
    await runner?.stop();
    await dispatcher.close().catch(() => {});
    await statusServer?.close();
    statusServer = undefined;
  };

  return {
    get connected() {
      return connected;
    },
    metrics: metrics.registry,
    get statusUrl() {
      return statusServer?.url;
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (started) return started.promise;
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // The status port listens before the first hello, so it can answer "not ready" meanwhile.
      const listening = options.status
        ? listenStatus(options.status, {
            registry: metrics.registry,
            dataSource: options.dataSource,
            connected: () => connected,
          }).then((server) => {
            statusServer = server;
          })
        : Promise.resolve();
      listening.catch((error) => void stop().finally(() => reject(error)));
      started = { promise: promise.then(() => listening), resolve, reject };
      let helloSeen = false;

      void createChecksummer().then(
        (checksummer) => {
          runner = new CommandRunner({
            api,
            dataSource: options.dataSource,
            session: () => session,
            checksummer,
            chunksInFlight: config.chunksInFlight,
            retry: config.retry,
            rowBatchSize: config.rowBatchSize,
            fileBatchSize: Math.max(FILE_BATCH_SIZE, config.rowBatchSize),
            parquetCompression: options.parquetCompression ?? DEFAULT_PARQUET_COMPRESSION,
            progressIntervalMs: config.progressIntervalMs,
            maxConcurrentCommands: config.maxConcurrentCommands,
            rememberedCommands: REMEMBERED_COMMANDS,
            logger,
            emit,
          });
          const activeRunner = runner;
          stream = new CommandStreamClient({
            api,
            heartbeatTimeoutMs: config.heartbeatTimeoutMs,
            maxEventLength: config.maxEventLength,
            reconnect: config.reconnect,
            logger,
            handlers: {
              onHello(hello) {
                let codec: Codec | undefined;
                let codecError: Error | undefined;
                try {
                  codec = chooseCodec(hello);
                } catch (error) {
                  codecError = error as Error;
                }
                session = {
                  hello,
                  codec,
                  codecError,
                  ...(auto && codec && codec.name !== 'identity'
                    ? { autoCodec: registry.get('identity') }
                    : {}),
                };
                if (codecError && !helloSeen) {
                  // A misconfigured codec must fail start-up loudly, not surface as failed files later.
                  logger.error(codecError.message);
                  void stop().finally(() => reject(codecError));
                  return;
                }
                if (codecError) logger.error(codecError.message);
                helloSeen = true;
                connected = true;
                logger.info('connected', { gatewayId: hello.gatewayId, codec: codec?.name });
                emit({ type: 'connected', hello });
                resolve();
              },
              onCommand: (data, eventId) => activeRunner.receive(data, eventId),
              onCancel: (data) => activeRunner.cancel(data),
              onDisconnected(error) {
                connected = false;
                emit({ type: 'disconnected', error });
              },
              onFatal(error) {
                // A refused token cannot heal by retrying: shut down, and say so through start().
                connected = false;
                emit({ type: 'disconnected', error });
                void stop().finally(() => reject(error));
              },
            },
          });
          stream.start();
        },
        (error) => reject(error),
      );
      return started.promise;
    },
    async stop() {
      await stop();
      started?.reject(new Error('the gateway was stopped before it connected'));
    },
  };
}

function resolveOptions(options: GatewayOptions) {
  const positive = (name: string, value: number | undefined, fallback: number) => {
    const resolved = value ?? fallback;
    if (!Number.isFinite(resolved) || resolved <= 0)
      throw new RangeError(`${name} must be a positive number`);
    return resolved;
  };
  if (!options.serverUrl) throw new TypeError('serverUrl is required');
  new URL(options.serverUrl); // throws on a malformed URL at start-up, not at the first request
  if (!options.token) throw new TypeError('token is required');
  if (!options.dataSource) throw new TypeError('dataSource is required');
  return {
    chunksInFlight: Math.floor(positive('chunksInFlight', options.chunksInFlight, DEFAULT_CHUNKS_IN_FLIGHT)),
    retry: options.retry ?? defaultRetryPolicy,
    rowBatchSize: Math.floor(positive('rowBatchSize', options.rowBatchSize, 1000)),
    heartbeatTimeoutMs: positive('heartbeatTimeoutMs', options.heartbeatTimeoutMs, 45_000),
    maxEventLength: Math.floor(positive('maxEventLength', options.maxEventLength, DEFAULT_MAX_EVENT_LENGTH)),
    reconnect: {
      baseDelayMs: positive('reconnect.baseDelayMs', options.reconnect?.baseDelayMs, 250),
      maxDelayMs: positive('reconnect.maxDelayMs', options.reconnect?.maxDelayMs, 15_000),
    },
    progressIntervalMs: positive('progressIntervalMs', options.progressIntervalMs, 1000),
    maxConcurrentCommands: Math.floor(positive('maxConcurrentCommands', options.maxConcurrentCommands, 4)),
    logger: options.logger ?? silentLogger,
  };
}

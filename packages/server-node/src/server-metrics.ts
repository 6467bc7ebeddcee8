import type { IncomingMessage } from 'node:http';
import {
  admissionClasses,
  BackhaulError,
  type CommandRecord,
  type CommandState,
  type CommandStore,
  commandStateSchema,
  type DeliveryEvent,
  headers,
  isTerminal,
  type ObjectStorage,
  type ObjectUpload,
} from '@backhaul/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AdmissionSnapshot, ClassOccupancy } from './admission.js';
import type { Route } from './router.js';

/**
 * The server's Prometheus series (docs/operations.md lists them). Every series lives in one
 * `Registry` per server, never prom-client's global one, so two servers in one process (tests, a
 * blue/green swap) keep their own counts. Labels are bounded sets (states, codecs, problem codes,
 * classes, storage operations): no gateway, caller or command ID ever becomes a label.
 *
 * Counts are of what this process saw: with several servers sharing one store, sum over them.
 */
export interface ServerMetrics {
  readonly registry: Registry;
  /** The dispatcher wrote a state change (the server's `onChange`). */
  changed(record: CommandRecord, event: DeliveryEvent): void;
  /** A row batch was taken (not a repeat of a seq). */
  rowBatch(byteLength: number): void;
  /** Wraps the chunk PUT route: counts chunks by codec and outcome, and refusals by reason. */
  chunkRoute(route: Route): Route;
  /** Times every operation of the object storage. */
  timedStorage(storage: ObjectStorage): ObjectStorage;
  /** Times every operation of the command store, and counts the commands it creates. */
  timedStore(store: CommandStore): CommandStore;
  /** Gauges read when scraped. */
  observe(sources: { gatewaysConnected(): number; admission(): AdmissionSnapshot }): void;
}

/** Latencies from a millisecond (a memory store) to minutes (a file crossing a slow link). */
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Encoded / raw bytes of a chunk: 1 is identity (or data that does not compress). */
const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1, 1.05];
/** Bytes per second: 1 MB/s to 2 GB/s. */
const GOODPUT_BUCKETS = [1e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9, 2e9];

/** When each step of one file's path was seen by this process (epoch ms). */
interface FilePath {
  dispatchedAt?: number;
  acknowledgedAt?: number;
  firstChunkAt?: number;
  lastChunkAt?: number;
}

export function createServerMetrics(registry: Registry = new Registry()): ServerMetrics {
  const registers = [registry];
  const commands = new Counter({
    name: 'backhaul_server_commands_total',
    help: 'Commands that entered each state, as written by this server',
    labelNames: ['state'],
    registers,
  });
  /** The last state this process wrote for each command not yet terminal. */
  const lastState = new Map<string, CommandState>();
  const liveStates = commandStateSchema.options.filter((state) => !isTerminal(state));
  new Gauge({
    name: 'backhaul_server_commands_in_flight',
    help: 'Commands this server last saw in each non-terminal state',
    labelNames: ['state'],
    registers,
    collect() {
      // Every live state is present, at 0 when empty, so an alert never meets a missing series.
      const counts = new Map<CommandState, number>(liveStates.map((state) => [state, 0]));
      for (const state of lastState.values()) counts.set(state, (counts.get(state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  const dispatchSeconds = new Histogram({
    name: 'backhaul_server_dispatch_seconds',
    help: 'From a query being created to its command first written to the gateway stream',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const ackSeconds = new Histogram({
    name: 'backhaul_server_ack_seconds',
    help: 'From a command written to the gateway stream to its delivery ack',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const querySeconds = new Histogram({
    name: 'backhaul_server_query_seconds',
    help: 'From a query being created to its terminal state, by that state',
    labelNames: ['state'],
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const rows = new Counter({
    name: 'backhaul_server_rows_total',
    help: 'Rows of completed queries, by result kind (rows or file)',
    labelNames: ['kind'],
    registers,
  });
  const bytes = new Counter({
    name: 'backhaul_server_result_bytes_total',
    help: 'Result bytes moved: row batch JSON bodies taken, and sizes of completed files',
    labelNames: ['kind'],
    registers,
  });
  const chunks = new Counter({
    name: 'backhaul_server_chunks_total',
    help: 'Chunks answered 2xx, by codec and outcome (stored, or duplicate of a stored chunk)',
    labelNames: ['codec', 'outcome'],
    registers,
  });
  const chunkWireBytes = new Counter({
    name: 'backhaul_server_chunk_wire_bytes_total',
    help: 'Encoded bytes of stored chunks as received (Content-Length), by codec',
    labelNames: ['codec'],
    registers,
  });
  const chunkRawBytes = new Counter({
    name: 'backhaul_server_chunk_raw_bytes_total',
    help: 'Decoded bytes of stored chunks, by codec',
    labelNames: ['codec'],
    registers,
  });
  const chunkRatio = new Histogram({
    name: 'backhaul_server_chunk_compression_ratio',
    help: 'Encoded / decoded bytes of each stored chunk, by codec',
    labelNames: ['codec'],
    buckets: RATIO_BUCKETS,
    registers,
  });
  const refusals = new Counter({
    name: 'backhaul_server_chunk_refusals_total',
    help: 'Chunk PUTs answered with an error, by problem code',
    labelNames: ['reason'],
    registers,
  });
  const goodput = new Histogram({
    name: 'backhaul_server_upload_goodput_bytes_per_second',
    help: "A completed file's size over the time from its first chunk to its last",
    buckets: GOODPUT_BUCKETS,
    registers,
  });
  const fileStage = new Histogram({
    name: 'backhaul_server_file_stage_seconds',
    help: 'Each stage of a file result: ack (since dispatch), first_chunk (since ack), last_chunk (since first chunk), url (since last chunk: verified, visible, link ready)',
    labelNames: ['stage'],
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const storageSeconds = new Histogram({
    name: 'backhaul_server_storage_seconds',
    help: 'Object storage operations, by operation and outcome (ok or error)',
    labelNames: ['operation', 'outcome'],
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const storeSeconds = new Histogram({
    name: 'backhaul_server_store_seconds',
    help: 'Command store operations, by operation and outcome (ok or error)',
    labelNames: ['operation', 'outcome'],
    buckets: SECONDS_BUCKETS,
    registers,
  });

  const filePaths = new Map<string, FilePath>();
  const pathOf = (id: string) => {
    let path = filePaths.get(id);
    if (!path) {
      path = {};
      filePaths.set(id, remember(filePaths, id, path));
    }
    return path;
  };
  const seconds = (from: number | undefined, to: number | undefined) =>
    from === undefined || to === undefined ? undefined : Math.max(0, to - from) / 1000;
  const observe = (histogram: Histogram, value: number | undefined, labels = {}) => {
    if (value !== undefined) histogram.observe(labels, value);
  };

  const completed = (record: CommandRecord) => {
    const result = record.result;
    if (!result) return;
    rows.inc({ kind: result.kind }, result.rowCount);
    if (result.kind !== 'file') return;
    bytes.inc({ kind: 'file' }, result.size);
    const path = filePaths.get(record.id);
    if (!path) return;
    observe(fileStage, seconds(path.dispatchedAt, path.acknowledgedAt), { stage: 'ack' });
    observe(fileStage, seconds(path.acknowledgedAt, path.firstChunkAt), { stage: 'first_chunk' });
    observe(fileStage, seconds(path.firstChunkAt, path.lastChunkAt), { stage: 'last_chunk' });
    observe(fileStage, seconds(path.lastChunkAt, record.updatedAt), { stage: 'url' });
    const upload = seconds(path.firstChunkAt, path.lastChunkAt);
    if (upload !== undefined && upload > 0) goodput.observe(result.size / upload);
  };

  /** Runs `operation`, timing it into `histogram` by name and outcome. */
  const timed = <T>(histogram: Histogram, operation: string, run: () => Promise<T>): Promise<T> => {
    const stop = histogram.startTimer({ operation });
    return run().then(
      (value) => {
        stop({ outcome: 'ok' });
        return value;
      },
      (error: unknown) => {
        stop({ outcome: 'error' });
        throw error;
      },
    );
  };

  const timedUpload = (upload: ObjectUpload): ObjectUpload => ({
    get key() {
      return upload.key;
    },
    writePart: (part) => timed(storageSeconds, 'write_part', () => upload.writePart(part)),
    complete: () => timed(storageSeconds, 'complete', () => upload.complete()),
    abort: () => timed(storageSeconds, 'abort', () => upload.abort()),
  });

  return {
    registry,

    changed(record, event) {
      const now = record.updatedAt;
      if (record.state !== lastState.get(record.id)) commands.inc({ state: record.state });
      if (isTerminal(record.state)) lastState.delete(record.id);
      else lastState.set(record.id, remember(lastState, record.id, record.state));

      if (event.type === 'dispatch' && record.state === 'dispatched') {
        // The first send only: a redelivery's wait is the ack timeout, not dispatch latency.
        if (record.redeliveries === 0) dispatchSeconds.observe(seconds(record.createdAt, now) ?? 0);
        pathOf(record.id).dispatchedAt = now;
      } else if (event.type === 'ack' && record.state === 'acknowledged') {
        const path = pathOf(record.id);
        path.acknowledgedAt = now;
        observe(ackSeconds, seconds(path.dispatchedAt, now));
      }
      if (!isTerminal(record.state)) return;
      querySeconds.observe({ state: record.state }, seconds(record.createdAt, now) ?? 0);
      if (record.state === 'completed') completed(record);
      filePaths.delete(record.id);
    },

    rowBatch(byteLength) {
      bytes.inc({ kind: 'rows' }, byteLength);
    },

    chunkRoute(route) {
      return {
        ...route,
        async handle(context) {
          try {
            await route.handle(context);
          } catch (error) {
            const code = BackhaulError.isInstance(error) ? error.code : 'internal';
            refusals.inc({ reason: code });
            throw error;
          }
          const codec = headerOf(context.req, headers.codec) ?? 'unknown';
          const stored = context.res.statusCode === 201;
          chunks.inc({ codec, outcome: stored ? 'stored' : 'duplicate' });
          if (!stored) return;
          const wire = Number(headerOf(context.req, 'content-length'));
          const raw = Number(headerOf(context.req, headers.rawLength));
          if (Number.isFinite(wire)) chunkWireBytes.inc({ codec }, wire);
          if (Number.isFinite(raw)) chunkRawBytes.inc({ codec }, raw);
          if (Number.isFinite(wire) && raw > 0) chunkRatio.observe({ codec }, wire / raw);
          const id = context.params[0];
          if (id === undefined) return;
          const path = pathOf(id);
          const now = Date.now();
          path.firstChunkAt ??= now;
          path.lastChunkAt = now;
        },
      };
    },

    timedStorage(storage) {
      const timedStorage: ObjectStorage = {
        specificationVersion: storage.specificationVersion,
        name: storage.name,
        capabilities: storage.capabilities,
        beginUpload: (key, options) =>
          timed(storageSeconds, 'begin_upload', () => storage.beginUpload(key, options)).then(timedUpload),
        head: (key) => timed(storageSeconds, 'head', () => storage.head(key)),
        read: (key, range) => timed(storageSeconds, 'read', () => storage.read(key, range)),
        delete: (key) => timed(storageSeconds, 'delete', () => storage.delete(key)),
        sweep: (before) => timed(storageSeconds, 'sweep', () => storage.sweep(before)),
      };
      const presign = storage.presignGet?.bind(storage);
      if (presign) {
        timedStorage.presignGet = (key, ttl) => timed(storageSeconds, 'presign', () => presign(key, ttl));
      }
      return timedStorage;
    },

    timedStore(store) {
      // A command enters its first state (pending or queued) by being written, not by an event.
      const created = (record: CommandRecord) => {
        commands.inc({ state: record.state });
        lastState.set(record.id, remember(lastState, record.id, record.state));
      };
      return {
        specificationVersion: store.specificationVersion,
        name: store.name,
        insert: (record) =>
          timed(storeSeconds, 'insert', () => store.insert(record)).then(() => created(record)),
        get: (id) => timed(storeSeconds, 'get', () => store.get(id)),
        compareAndSet: (next) => timed(storeSeconds, 'compare_and_set', () => store.compareAndSet(next)),
        insertClaimed: async (record, claim) => {
          const existing = await timed(storeSeconds, 'insert_claimed', () =>
            store.insertClaimed(record, claim),
          );
          // A claim stored first means nothing was written: a replay creates no command.
          if (!existing) created(record);
          return existing;
        },
        findClaim: (callerId, key) => timed(storeSeconds, 'find_claim', () => store.findClaim(callerId, key)),
        listUndelivered: (gatewayId) =>
          timed(storeSeconds, 'list_undelivered', () => store.listUndelivered(gatewayId)),
        listDue: (now, limit) => timed(storeSeconds, 'list_due', () => store.listDue(now, limit)),
        close: () => store.close(),
      };
    },

    observe(sources) {
      new Gauge({
        name: 'backhaul_server_gateways_connected',
        help: 'Gateways with a command stream open on this server',
        registers,
        collect() {
          this.set(sources.gatewaysConnected());
        },
      });
      const perClass = (name: string, help: string, pick: (occupancy: ClassOccupancy) => number) =>
        new Gauge({
          name,
          help,
          labelNames: ['class'],
          registers,
          collect() {
            const { classes } = sources.admission();
            for (const admissionClass of admissionClasses) {
              this.set({ class: admissionClass }, pick(classes[admissionClass]));
            }
          },
        });
      perClass(
        'backhaul_server_admission_in_use',
        'Admission slots held, by concurrency class',
        (c) => c.inUse,
      );
      perClass(
        'backhaul_server_admission_limit',
        'Admission slots of this process, by class',
        (c) => c.limit,
      );
      perClass('backhaul_server_admission_queued', 'Queries waiting for a slot, by class', (c) => c.queued);
    },
  };
}

/**
 * Commands that end on another server sharing the store are never seen ending here: past this
 * many entries the oldest is forgotten, so the bookkeeping stays bounded.
 */
const TRACKED_COMMANDS = 100_000;

/** Makes room for `key` in `map` (dropping the oldest entry when full); returns `value`. */
function remember<T>(map: Map<string, T>, key: string, value: T): T {
  if (!map.has(key) && map.size >= TRACKED_COMMANDS) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  return value;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

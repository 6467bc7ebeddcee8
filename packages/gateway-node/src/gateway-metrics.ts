import { BackhaulError } from '@backhaul/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServerApi } from './server-api.js';

/**
 * The gateway's Prometheus series (docs/operations.md lists them), in one `Registry` per gateway,
 * never prom-client's global one. Most are read off the gateway's own events; the API client is
 * wrapped for what only a request sees (ack round trips, each chunk's bytes, retries). Labels are
 * bounded sets: no command ID, SQL or token becomes a label.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Feeds on the gateway's events (`gateway.on`). */
  event(event: MeteredEvent): void;
  /** Wraps the API client's `ack` and `putChunk` in place. */
  instrument(api: ServerApi): void;
  /** Gauges read when scraped. */
  observe(sources: { connected(): boolean }): void;
}

/** The events the metrics read, a subset of `GatewayEvent` (kept structural to avoid a cycle). */
export type MeteredEvent =
  | { type: 'connected' }
  | { type: 'disconnected' }
  | { type: 'command'; command: { id: string; mode: string }; duplicate: boolean }
  | {
      type: 'completed';
      commandId: string;
      completion: { kind: 'rows'; rowCount: number } | { kind: 'file'; rowCount: number; size: number };
    }
  | { type: 'failed'; commandId: string }
  | { type: 'cancelled'; commandId: string }
  | { type: 'codec-chosen'; commandId: string; codec: string; reason: string }
  | { type: 'progress' };

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1, 1.05];
const GOODPUT_BUCKETS = [1e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, 1e9, 2e9];

/** One command's upload as the wrapped API client saw it. */
interface UploadTally {
  /** Indices sent at least once: a second PUT of one is a retry. */
  sent: Set<number>;
  firstSentAt: number;
  lastAnsweredAt: number | undefined;
  wireBytes: number;
  rawBytes: number;
}

export function createGatewayMetrics(registry: Registry = new Registry()): GatewayMetrics {
  const registers = [registry];
  const commands = new Counter({
    name: 'backhaul_gateway_commands_total',
    help: 'Commands by outcome: received, duplicate (a redelivery of one already here), completed, failed, cancelled',
    labelNames: ['outcome'],
    registers,
  });
  const querySeconds = new Histogram({
    name: 'backhaul_gateway_query_seconds',
    help: 'From a command received to its completion or failure reported, by outcome and mode',
    labelNames: ['outcome', 'mode'],
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const ackSeconds = new Histogram({
    name: 'backhaul_gateway_ack_seconds',
    help: 'Delivery ack round trips to the server, retries included',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const rows = new Counter({
    name: 'backhaul_gateway_rows_total',
    help: 'Rows of completed commands, by result kind (rows or file)',
    labelNames: ['kind'],
    registers,
  });
  const fileBytes = new Counter({
    name: 'backhaul_gateway_file_bytes_total',
    help: 'Bytes of completed result files (the Parquet size, before chunk codecs)',
    registers,
  });
  const chunks = new Counter({
    name: 'backhaul_gateway_chunks_total',
    help: 'Chunk PUTs answered 2xx, by codec',
    labelNames: ['codec'],
    registers,
  });
  const chunkWireBytes = new Counter({
    name: 'backhaul_gateway_chunk_wire_bytes_total',
    help: 'Encoded bytes of chunks the server took, by codec',
    labelNames: ['codec'],
    registers,
  });
  const chunkRawBytes = new Counter({
    name: 'backhaul_gateway_chunk_raw_bytes_total',
    help: 'Raw bytes of chunks the server took, by codec',
    labelNames: ['codec'],
    registers,
  });
  const retries = new Counter({
    name: 'backhaul_gateway_chunk_retries_total',
    help: 'Chunk PUTs that were a second or later attempt of the same chunk',
    registers,
  });
  const chunkErrors = new Counter({
    name: 'backhaul_gateway_chunk_errors_total',
    help: 'Chunk PUTs that failed, by problem code (network errors: network)',
    labelNames: ['reason'],
    registers,
  });
  const codecChoices = new Counter({
    name: 'backhaul_gateway_codec_choices_total',
    help: "Files uploaded with preferredCodec 'auto', by the codec most chunks went with and why",
    labelNames: ['codec', 'reason'],
    registers,
  });
  const fileRatio = new Histogram({
    name: 'backhaul_gateway_file_compression_ratio',
    help: 'Encoded / raw bytes of the chunks of each completed file',
    buckets: RATIO_BUCKETS,
    registers,
  });
  const goodput = new Histogram({
    name: 'backhaul_gateway_upload_goodput_bytes_per_second',
    help: "Encoded bytes of a completed file's chunks over the time from its first PUT to its last answer",
    buckets: GOODPUT_BUCKETS,
    registers,
  });
  const disconnects = new Counter({
    name: 'backhaul_gateway_disconnects_total',
    help: 'Times the command stream was lost (each is followed by a reconnect with backoff)',
    registers,
  });

  /** When each running command was received, and its mode. */
  const running = new Map<string, { startedAt: number; mode: string }>();
  const uploads = new Map<string, UploadTally>();
  new Gauge({
    name: 'backhaul_gateway_commands_running',
    help: 'Commands received and not yet completed or failed',
    registers,
    collect() {
      this.set(running.size);
    },
  });

  const ended = (commandId: string, outcome: 'completed' | 'failed' | 'cancelled') => {
    commands.inc({ outcome });
    const started = running.get(commandId);
    running.delete(commandId);
    if (started) {
      querySeconds.observe({ outcome, mode: started.mode }, (performance.now() - started.startedAt) / 1000);
    }
  };

  return {
    registry,

    event(event) {
      switch (event.type) {
        case 'disconnected':
          disconnects.inc();
          return;
        case 'command':
          commands.inc({ outcome: event.duplicate ? 'duplicate' : 'received' });
          if (!event.duplicate) {
            running.set(event.command.id, { startedAt: performance.now(), mode: event.command.mode });
          }
          return;
        case 'completed': {
          const { completion } = event;
          rows.inc({ kind: completion.kind }, completion.rowCount);
          const upload = uploads.get(event.commandId);
          uploads.delete(event.commandId);
          if (completion.kind === 'file') {
            fileBytes.inc(completion.size);
            if (upload && upload.rawBytes > 0) fileRatio.observe(upload.wireBytes / upload.rawBytes);
            const seconds = upload?.lastAnsweredAt && (upload.lastAnsweredAt - upload.firstSentAt) / 1000;
            if (upload && seconds && seconds > 0) goodput.observe(upload.wireBytes / seconds);
          }
          ended(event.commandId, 'completed');
          return;
        }
        case 'failed':
        case 'cancelled':
          uploads.delete(event.commandId);
          ended(event.commandId, event.type);
          return;
        case 'codec-chosen':
          codecChoices.inc({ codec: event.codec, reason: event.reason });
          return;
        default:
          return;
      }
    },

    instrument(api) {
      const ack = api.ack.bind(api);
      // Every argument is passed on, the answer's trace context (scope) too.
      api.ack = async (...args) => {
        const stop = ackSeconds.startTimer();
        try {
          return await ack(...args);
        } finally {
          stop();
        }
      };
      const putChunk = api.putChunk.bind(api);
      api.putChunk = async (...args) => {
        const [commandId, chunk] = args;
        let upload = uploads.get(commandId);
        if (!upload) {
          upload = {
            sent: new Set(),
            firstSentAt: performance.now(),
            lastAnsweredAt: undefined,
            wireBytes: 0,
            rawBytes: 0,
          };
          uploads.set(commandId, upload);
        }
        if (upload.sent.has(chunk.index)) retries.inc();
        upload.sent.add(chunk.index);
        try {
          const status = await putChunk(...args);
          chunks.inc({ codec: chunk.codec });
          chunkWireBytes.inc({ codec: chunk.codec }, chunk.body.length);
          chunkRawBytes.inc({ codec: chunk.codec }, chunk.rawLength);
          upload.wireBytes += chunk.body.length;
          upload.rawBytes += chunk.rawLength;
          upload.lastAnsweredAt = performance.now();
          return status;
        } catch (error) {
          chunkErrors.inc({ reason: BackhaulError.isInstance(error) ? error.code : 'network' });
          throw error;
        }
      };
    },

    observe(sources) {
      new Gauge({
        name: 'backhaul_gateway_connected',
        help: '1 while the command stream to the server is open, else 0',
        registers,
        collect() {
          this.set(sources.connected() ? 1 : 0);
        },
      });
    },
  };
}

import type { Logger } from '@backhaul/core';
import {
  BackhaulError,
  type Checksummer,
  type Codec,
  type Column,
  type Command,
  type Completion,
  cancelSchema,
  commandLogFields,
  commandSchema,
  type DataSource,
  type Hello,
  parseJson,
  parseMessage,
  parseTraceparent,
  type QueryCursor,
  type RetryPolicy,
  startSpan,
  withFields,
} from '@backhaul/core';
import { sendAutoResult } from './auto-result.js';
import type { CodecChoice } from './codec-choice.js';
import { uploadFile } from './file-uploader.js';
import { type FileBatch, fileBatches, type ParquetFileCompression } from './parquet-encoding.js';
import type { ProgressState } from './progress.js';
import { sendRowBatches } from './row-batch-sender.js';
import { type AnswerScope, describeError, type ServerApi } from './server-api.js';
import { TRACER_NAME } from './tracer-name.js';

export type RunnerEvent =
  | { type: 'command'; command: Command; duplicate: boolean }
  | { type: 'progress'; commandId: string; rows: number; bytes: number; stage: ProgressState['stage'] }
  | { type: 'completed'; commandId: string; completion: Completion }
  | { type: 'failed'; commandId: string; error: unknown }
  | { type: 'cancelled'; commandId: string }
  | ({ type: 'codec-chosen'; commandId: string } & CodecChoice);

/** What the current stream's hello settled: the chunk codec, or why none fits. */
export interface GatewaySession {
  hello: Hello;
  /** The codec of every chunk; with `autoCodec`, the candidate each file's first chunk is tried with. */
  codec: Codec | undefined;
  codecError?: Error;
  /** `preferredCodec: 'auto'`: the identity codec a file falls back to when `codec` saves too little. */
  autoCodec?: Codec;
}

export interface CommandRunnerOptions {
  api: ServerApi;
  dataSource: DataSource;
  /** The hello of the current stream and the codec chosen from it; undefined when none fits. */
  session: () => GatewaySession | undefined;
  checksummer: Checksummer;
  chunksInFlight: number;
  retry: RetryPolicy;
  rowBatchSize: number;
  fileBatchSize: number;
  parquetCompression: ParquetFileCompression;
  progressIntervalMs: number;
  maxConcurrentCommands: number;
  rememberedCommands: number;
  logger: Logger;
  emit: (event: RunnerEvent) => void;
}

/**
 * Receives commands from the stream, makes sure each runs once (docs/protocol.md §4.2), acks it
 * at once (§5.1) and runs at most `maxConcurrentCommands` of them, answering with rows, a file
 * or a failure (§5).
 */
export class CommandRunner {
  readonly #options: CommandRunnerOptions;
  /** Commands received and not finished: queued or running. */
  readonly #active = new Map<string, AbortController>();
  /** The logger of each active command: its lines carry its command, gateway and trace IDs. */
  readonly #loggers = new Map<string, Logger>();
  /** IDs of finished commands, oldest first (a Map keeps insertion order): a bounded LRU. */
  readonly #finished = new Map<string, true>();
  readonly #queue: Command[] = [];
  readonly #running = new Set<Promise<void>>();
  #stopped = false;
  /** Cancels acks still retrying when the gateway stops. */
  readonly #stopping = new AbortController();

  constructor(options: CommandRunnerOptions) {
    this.#options = options;
  }

  /** One `command` event off the stream. Never throws: a bad command is logged and skipped. */
  receive(data: string, eventId: string | undefined): void {
    const { logger, emit } = this.#options;
    let command: Command;
    try {
      command = parseMessage(commandSchema, parseJson(data, 'command'), 'command');
    } catch (error) {
      logger.error('invalid command skipped', { eventId, error: describeError(error) });
      return;
    }
    // §4.2 "The gateway MUST recognise a command it already has by its ID and MUST NOT run it twice."
    const duplicate = this.#active.has(command.id) || this.#finished.has(command.id);
    emit({ type: 'command', command, duplicate });
    // The ack is idempotent (§5.1): a redelivered command means the server missed our ack, so say it again.
    void this.#ack(command, duplicate);
    if (duplicate || this.#stopped) return;
    this.#active.set(command.id, new AbortController());
    this.#loggers.set(command.id, this.#commandLogger(command));
    this.#queue.push(command);
    this.#drain();
  }

  /**
   * One `cancel` event off the stream (§4.3). Never throws. A queued command is dropped; a running
   * one is aborted: the source stops the statement on the database, the upload stops sending,
   * and nothing more is answered for it (the server has already marked it `cancelled`).
   */
  cancel(data: string): void {
    const { logger, emit } = this.#options;
    let id: string;
    let reason: string | undefined;
    try {
      ({ id, reason } = parseMessage(cancelSchema, parseJson(data, 'cancel'), 'cancel'));
    } catch (error) {
      logger.error('invalid cancel skipped', { error: describeError(error) });
      return;
    }
    const controller = this.#active.get(id);
    // Finished already, or never received: nothing runs that could be stopped.
    if (!controller) return;
    (this.#loggers.get(id) ?? logger).info('command cancelled by the caller', { commandId: id });
    const queued = this.#queue.findIndex((command) => command.id === id);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      this.#active.delete(id);
      this.#loggers.delete(id);
      this.#remember(id);
      emit({ type: 'cancelled', commandId: id });
      return;
    }
    controller.abort(cancellation(reason));
  }

  /** Aborts every queued and running command and waits for them to wind down. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort(new Error('gateway stopped'));
    this.#queue.length = 0;
    for (const controller of this.#active.values()) controller.abort(new Error('gateway stopped'));
    await Promise.allSettled([...this.#running]);
  }

  /** `logger` with the command's `commandId`, `gatewayId` and `traceId` on every line. */
  #commandLogger(command: Command): Logger {
    return withFields(
      this.#options.logger,
      commandLogFields(command, this.#options.session()?.hello.gatewayId),
    );
  }

  /** The ack, sent from the command's `backhaul.receive` span (a child of the server's dispatch). */
  async #ack(command: Command, duplicate: boolean): Promise<void> {
    const logger = this.#commandLogger(command);
    const span = startSpan(
      TRACER_NAME,
      'backhaul.receive',
      parseTraceparent(command.traceparent, command.tracestate),
      {
        kind: 'consumer',
        attributes: {
          'backhaul.command.id': command.id,
          'backhaul.delivery': command.delivery,
          'backhaul.duplicate': duplicate,
        },
      },
    );
    logger.info(duplicate ? 'command received again' : 'command received', { delivery: command.delivery });
    try {
      // §5.1 The delivery ack goes out before the command runs, so a long query is not redelivered.
      await this.#options.api.ack(command.id, this.#stopping.signal, { trace: span.trace, logger });
      span.end();
    } catch (error) {
      span.end(error);
      if (this.#stopped) return;
      logger.error('ack failed; the server will redeliver', { error: describeError(error) });
    }
  }

  #drain(): void {
    while (this.#running.size < this.#options.maxConcurrentCommands && this.#queue.length > 0) {
      const command = this.#queue.shift()!;
      const task: Promise<void> = this.#run(command).finally(() => {
        this.#running.delete(task);
        this.#active.delete(command.id);
        this.#loggers.delete(command.id);
        this.#remember(command.id);
        this.#drain();
      });
      this.#running.add(task);
    }
  }

  #remember(commandId: string): void {
    this.#finished.delete(commandId);
    this.#finished.set(commandId, true);
    if (this.#finished.size > this.#options.rememberedCommands) {
      const oldest = this.#finished.keys().next().value;
      if (oldest !== undefined) this.#finished.delete(oldest);
    }
  }

  async #run(command: Command): Promise<void> {
    const { api, emit } = this.#options;
    const logger = this.#loggers.get(command.id) ?? this.#commandLogger(command);
    // The run's span: every answer below is sent from it (or from its upload's), so the server's
    // answer spans are its children; the source's own instrumentation, if any, nests under it.
    const span = startSpan(
      TRACER_NAME,
      'backhaul.query',
      parseTraceparent(command.traceparent, command.tracestate),
      {
        kind: 'client',
        attributes: { 'backhaul.command.id': command.id, 'backhaul.mode': command.mode },
      },
    );
    const scope: AnswerScope = { trace: span.trace, logger };
    let spanError: unknown;
    const controller = this.#active.get(command.id) ?? new AbortController();
    const signal = controller.signal;
    const progress: ProgressState = { rows: 0, bytes: 0, stage: 'querying' };
    // A server that refuses progress because the command was cancelled stops it too: the cancel
    // message may have been sent while this gateway's stream was down.
    const reporter = this.#startProgress(command.id, progress, signal, scope, () =>
      controller.abort(cancellation()),
    );
    let cursor: QueryCursor | undefined;
    try {
      try {
        cursor = await span.run(() =>
          this.#options.dataSource.query({
            sql: command.sql,
            params: command.params,
            maxRows: command.maxRows,
            timeoutMs: command.timeoutMs,
            signal,
            // File mode writes Parquet column by column: a source that can decode straight into
            // columns saves a JS value per cell. Rows and auto need rows.
            columnar: command.mode === 'file',
          }),
        );
      } catch (error) {
        throw asQueryError(error);
      }
      const completion = await this.#produce(command, cursor, progress, signal, scope);
      reporter.stop();
      await api.complete(command.id, completion, signal, scope);
      span.setAttributes({
        'backhaul.result.kind': completion.kind,
        'backhaul.row.count': completion.rowCount,
      });
      logger.info('command completed', { commandId: command.id, ...completion });
      emit({ type: 'completed', commandId: command.id, completion });
    } catch (error) {
      reporter.stop();
      // Stopping the gateway is not the query's failure: the server's completion deadline decides.
      if (signal.aborted && this.#stopped) return;
      // Cancelled (§4.3), or an answer refused because the server holds it cancelled: the
      // server already knows, and a failure report would only be refused.
      if (isCancellation(signal.reason) || refusedAsCancelled(error)) {
        controller.abort(cancellation());
        logger.info('command stopped: cancelled', { commandId: command.id });
        emit({ type: 'cancelled', commandId: command.id });
        return;
      }
      const failure = {
        code: BackhaulError.isInstance(error) ? error.code : 'internal',
        message: (error instanceof Error ? error.message : String(error)).slice(0, 4096),
      };
      logger.error('command failed', { commandId: command.id, ...failure });
      spanError = error;
      emit({ type: 'failed', commandId: command.id, error });
      try {
        await api.fail(command.id, failure, undefined, scope);
      } catch (reportError) {
        logger.error('could not report the failure', {
          commandId: command.id,
          error: describeError(reportError),
        });
      }
    } finally {
      reporter.stop();
      await cursor?.close().catch(() => {});
      span.end(spanError);
    }
  }

  async #produce(
    command: Command,
    cursor: QueryCursor,
    progress: ProgressState,
    signal: AbortSignal,
    scope: AnswerScope,
  ): Promise<Completion> {
    const { api } = this.#options;
    const columns = cursor.columns;
    if (command.mode === 'rows') {
      const batches = guardCursor(cursor.batches(this.#options.rowBatchSize));
      return sendRowBatches({ api, commandId: command.id, columns, batches, progress, signal, scope });
    }
    if (command.mode === 'file') {
      return this.#uploadFile(
        command,
        columns,
        guardCursor(fileBatches(cursor, this.#options.fileBatchSize)),
        progress,
        signal,
        scope,
      );
    }

    // Auto (§3.9): rows live while they stay under rowsByteLimit, then a file of the whole result.
    return sendAutoResult({
      api,
      commandId: command.id,
      columns,
      batches: guardCursor(cursor.batches(this.#options.rowBatchSize)),
      rowsByteLimit: command.rowsByteLimit,
      progress,
      signal,
      scope,
      uploadFile: (batches) => this.#uploadFile(command, columns, batches, progress, signal, scope),
      onSwitch: (liveRows) =>
        (scope.logger ?? this.#options.logger).info('auto result switched to a file', {
          commandId: command.id,
          liveRows,
        }),
    });
  }

  async #uploadFile(
    command: Command,
    columns: readonly Column[],
    batches: AsyncIterable<FileBatch>,
    progress: ProgressState,
    signal: AbortSignal,
    scope: AnswerScope,
  ): Promise<Extract<Completion, { kind: 'file' }>> {
    const { api } = this.#options;
    const logger = scope.logger ?? this.#options.logger;
    const session = this.#options.session();
    if (!session) throw new BackhaulError('gateway-unavailable', 'No hello from the server yet');
    if (!session.codec) {
      throw (
        session.codecError ?? new BackhaulError('unsupported-codec', 'No codec this gateway has is accepted')
      );
    }
    // §6.3 Any run may follow an earlier, interrupted one: a redelivery, or this command sent
    // again after the gateway restarted mid-upload (§4), when it has no memory of that run. One
    // GET per file tells which chunks the server holds; the uploader skips those whose checksum
    // matches the chunk it produces again.
    let alreadyStored: Map<number, string | undefined> | undefined;
    try {
      const receipt = await api.chunkReceipt(command.id, signal, scope.trace);
      alreadyStored = new Map();
      const stored = (index: number) => alreadyStored?.set(index, receipt.checksums?.[String(index)]);
      for (let i = 0; i < receipt.contiguous; i++) stored(i);
      for (const index of receipt.buffered) stored(index);
      if (alreadyStored.size > 0) {
        logger.info('resuming an upload', { commandId: command.id, chunksStored: alreadyStored.size });
      }
    } catch (error) {
      if (signal.aborted) throw error;
      logger.warn('could not read the chunk receipt; uploading every chunk', {
        commandId: command.id,
        error: describeError(error),
      });
    }
    return uploadFile({
      api,
      commandId: command.id,
      columns,
      batches,
      parquetCompression: this.#options.parquetCompression,
      hello: session.hello,
      codec: session.codec,
      ...(session.autoCodec
        ? {
            autoCodec: {
              identity: session.autoCodec,
              onChoice: (choice: CodecChoice) => {
                logger.info('codec chosen', { commandId: command.id, ...choice });
                this.#options.emit({ type: 'codec-chosen', commandId: command.id, ...choice });
              },
            },
          }
        : {}),
      checksummer: this.#options.checksummer,
      chunksInFlight: this.#options.chunksInFlight,
      retry: this.#options.retry,
      progress,
      logger,
      signal,
      alreadyStored,
      ...(scope.trace ? { trace: scope.trace } : {}),
    });
  }

  /** §5.2 Progress at a fixed pace keeps the completion deadline moving while the command runs. */
  #startProgress(
    commandId: string,
    progress: ProgressState,
    signal: AbortSignal,
    scope: AnswerScope,
    onCancelled: () => void,
  ): { stop(): void } {
    const { api, emit, progressIntervalMs } = this.#options;
    const logger = scope.logger ?? this.#options.logger;
    let sending = false;
    const timer = setInterval(() => {
      const snapshot = { rows: progress.rows, bytes: progress.bytes, stage: progress.stage };
      emit({ type: 'progress', commandId, ...snapshot });
      if (sending) return;
      sending = true;
      api
        .progress(commandId, snapshot, signal, scope)
        .catch((error) => {
          if (refusedAsCancelled(error)) onCancelled();
          else logger.warn('progress not delivered', { commandId, error: describeError(error) });
        })
        .finally(() => {
          sending = false;
        });
    }, progressIntervalMs);
    timer.unref?.();
    return { stop: () => clearInterval(timer) };
  }
}

/** The abort reason of a cancelled command: a typed error the sources pass on unchanged. */
function cancellation(reason = 'cancelled by the caller'): BackhaulError {
  return new BackhaulError('cancelled', reason);
}

function isCancellation(reason: unknown): boolean {
  return BackhaulError.isInstance(reason) && reason.code === 'cancelled';
}

/** The server refused an answer (409) because the command is `cancelled`. */
function refusedAsCancelled(error: unknown): boolean {
  return (
    BackhaulError.isInstance(error) && error.code === 'invalid-state' && error.details?.state === 'cancelled'
  );
}

/** Errors raised by the data source while reading become `query-failed` unless already typed (§5.6). */
async function* guardCursor<T>(batches: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* batches;
  } catch (error) {
    throw asQueryError(error);
  }
}

function asQueryError(error: unknown): unknown {
  if (BackhaulError.isInstance(error)) return error;
  if (error instanceof Error && error.name === 'AbortError') return error;
  return new BackhaulError('query-failed', error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}

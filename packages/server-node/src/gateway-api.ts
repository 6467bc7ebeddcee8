import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BackhaulError,
  type CommandRecord,
  type Completion,
  chunkIndexSchema,
  completionSchema,
  failureSchema,
  headers,
  isTerminal,
  parseMessage,
  progressSchema,
  rowBatchSchema,
} from '@backhaul/core';
import { resultKey, type StoredFile } from './chunk-ingest.js';
import { startAnswerSpan } from './command-trace.js';
import { failpoint } from './failpoints.js';
import { readJson, sendEmpty, sendJson } from './http-io.js';
import type { Route } from './router.js';
import { type ServerParts, SMALL_JSON_BYTES } from './server-parts.js';

/** The gateway's side of the protocol: the command stream (§4) and the answers (§5, §6). */
export function gatewayRoutes(parts: ServerParts): Route[] {
  const { credentials, store, streams, dispatcher, rowLog, events, options } = parts;

  /**
   * docs/protocol.md §1: "A gateway MUST only see and answer its own commands: a request about a
   * command of another gateway MUST be refused with 403 and change nothing." Checked before any
   * body is read and before any state is touched. The answer then gets its span (`span`, e.g.
   * `backhaul.ack`) in the query's trace, ended with the response.
   */
  const ownCommand = async (
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    span: string,
  ): Promise<CommandRecord> => {
    const { gatewayId } = await credentials.requireGateway(req);
    streams.touch(gatewayId);
    const record = await store.get(id);
    if (!record) throw new BackhaulError('not-found', `No command ${id}`);
    if (record.gatewayId !== gatewayId)
      throw new BackhaulError('forbidden', `Command ${id} belongs to another gateway`);
    startAnswerSpan(span, req, res, record);
    return record;
  };

  /**
   * Uploads and row batches are taken until the command ends. A pending command is included: it
   * went back to pending because its ack was lost, but the gateway has it (§7). A queued one is not.
   */
  const requireInFlight = (record: CommandRecord, what: string) => {
    // A queued command (§3.7) was never sent: no gateway can be answering it.
    if (isTerminal(record.state) || record.state === 'queued') {
      throw new BackhaulError(
        'invalid-state',
        `Cannot accept ${what} for command ${record.id} in state ${record.state}`,
        {
          details: { state: record.state },
        },
      );
    }
  };

  /**
   * §4: a gateway that (re)connects is also sent again every acknowledged command whose file it
   * was uploading here. A gateway that restarted has forgotten it and would otherwise leave it to
   * expire; it runs it again and sends only the chunks this server lacks (§6.3). A gateway that
   * merely reconnected recognises the command by ID and goes on with its upload.
   */
  const resendUploads = async (gatewayId: string) => {
    for (const id of parts.ingest().uploading()) {
      const record = await store.get(id);
      if (record?.gatewayId !== gatewayId) continue;
      if (record.state !== 'acknowledged' && record.state !== 'running') continue;
      await streams.drained(gatewayId);
      if (!streams.send(record)) return;
    }
  };

  /** False only when the token is refused now (revoked); a store error leaves the stream be. */
  const stillValid = (req: Parameters<typeof credentials.requireGateway>[0]) =>
    credentials.requireGateway(req).then(
      () => true,
      (error: unknown) => !(BackhaulError.isInstance(error) && error.code === 'unauthorized'),
    );

  const command = '/v1/gateway/commands/([^/]+)';
  return [
    {
      method: 'GET',
      pattern: /^\/v1\/gateway\/commands\/?$/,
      async handle({ req, res }) {
        const { gatewayId, enrolled } = await credentials.requireGateway(req);
        const lastEventId = req.headers[headers.lastEventId];
        // An enrolled token's stream remembers the token, so a revocation can end it (§10.4).
        const stream = streams.open(gatewayId, req, res, enrolled);
        // A revocation that landed between the check above and open() found no stream to end:
        // look the token up once more now that the stream can be found, and end it if it is gone.
        if (enrolled && !(await stillValid(req))) {
          streams.closeEnrolled(gatewayId, enrolled.tokenId);
          return;
        }
        // Listening for commands announced by other instances before reading the store: one
        // accepted meanwhile is either read below or announced after this (gateway-push.ts).
        await parts.push.watch(gatewayId, stream);
        options.logger.info('gateway connected', { gatewayId, lastEventId, instance: options.instanceId });
        // §4: "On every (re)connection the server MUST send every command of this gateway that
        // is not yet acknowledged, oldest first" — whatever Last-Event-ID says, since a command
        // the gateway saw may still have been lost before its ack.
        await dispatcher.sendUndelivered(gatewayId);
        await resendUploads(gatewayId);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${command}/ack$`),
      async handle({ req, res, params: [id = ''] }) {
        await ownCommand(req, res, id, 'backhaul.ack');
        failpoint('before-ack-recorded');
        await dispatcher.apply(id, { type: 'ack' }); // §5.1 idempotent
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${command}/progress$`),
      async handle({ req, res, params: [id = ''] }) {
        await ownCommand(req, res, id, 'backhaul.progress');
        const { json } = await readJson(req, 'progress', SMALL_JSON_BYTES);
        const progress = parseMessage(progressSchema, json, 'progress');
        await dispatcher.apply(id, { type: 'progress', progress }); // §5: moves the completion deadline
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${command}/rows$`),
      async handle({ req, res, params: [id = ''] }) {
        const record = await ownCommand(req, res, id, 'backhaul.rows');
        requireInFlight(record, 'row batches');
        if (record.command.mode === 'file') {
          throw new BackhaulError('invalid-state', `Command ${id} asked for a file, not row batches`);
        }
        const { json, byteLength } = await readJson(req, 'row batch', options.maxJsonBodyBytes);
        const batch = parseMessage(rowBatchSchema, json, 'row batch');
        if (record.liveRows !== undefined) await refuseRowsAfterSwitch(record, batch.seq);
        // §5.3: "the same seq again is accepted and ignored".
        const appended = await rowLog.append(id, batch, { byteLength, maxBytes: options.rowsByteLimit * 2 });
        if (appended.added) {
          parts.metrics.rowBatch(byteLength);
          events.rows(id, appended.position);
          // Rows are progress: they keep the completion deadline alive.
          const rowCount = (await rowLog.summary(id))?.rowCount ?? 0;
          await dispatcher.apply(id, { type: 'progress', progress: { ...record.progress, rows: rowCount } });
        }
        sendEmpty(res, 204);
      },
    },
    parts.metrics.chunkRoute({
      method: 'PUT',
      pattern: new RegExp(`^${command}/chunks/([^/]+)$`),
      async handle({ req, res, params: [id = '', indexText] }) {
        const record = await ownCommand(req, res, id, 'backhaul.chunk');
        const index = parseMessage(chunkIndexSchema, indexText, 'chunk index');
        // Ended without a file (cancelled, failed) through another instance: what this one staged
        // for it is discarded on the first chunk that comes after, not left to the storage sweep.
        if (isTerminal(record.state) && record.state !== 'completed') await parts.ingest().abort(id);
        requireInFlight(record, 'chunks');
        if (record.command.mode === 'rows') {
          throw new BackhaulError('invalid-state', `Command ${id} asked for row batches, not a file`);
        }
        // §3.9: the first chunk of an auto query is its switch to a file.
        if (record.command.mode === 'auto' && record.liveRows === undefined) await switchToFile(id);
        // §3.7: a file that grows past a class boundary needs that class's slot before more bytes
        // are taken; without one this chunk is 429 + Retry-After and nothing is stored. Only a chunk
        // inside the reorder window counts: an index far ahead (refused below with 409) must not
        // move a file into the large class it has not reached.
        const ingest = parts.ingest();
        if (ingest.inWindow(id, index)) {
          await parts.admission.promote({ id, gatewayId: record.gatewayId }, (index + 1) * options.chunkSize);
        }
        const outcome = await ingest.putChunk(id, resultKey(record.gatewayId, id), index, req);
        sendEmpty(res, outcome === 'stored' ? 201 : 200); // §5.4
      },
    }),
    {
      method: 'GET',
      pattern: new RegExp(`^${command}/chunks/?$`),
      async handle({ req, res, params: [id = ''] }) {
        const record = await ownCommand(req, res, id, 'backhaul.receipt');
        const result = record.result;
        // §6.3; a completed file is all there.
        const receipt =
          record.state === 'completed' && result?.kind === 'file'
            ? { contiguous: result.chunkCount, buffered: [] }
            : await parts.ingest().receipt(id);
        sendJson(res, 200, receipt);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${command}/complete$`),
      async handle({ req, res, params: [id = ''] }) {
        let record = await ownCommand(req, res, id, 'backhaul.complete');
        const { json } = await readJson(req, 'completion', SMALL_JSON_BYTES);
        const completion = parseMessage(completionSchema, json, 'completion');
        // A repeated completion (its first answer was lost) gets the same answer.
        if (record.state !== 'completed') {
          requireInFlight(record, 'a completion');
          record = await complete(record, completion);
        }
        sendJson(res, 200, await parts.views.view(record, parts.baseUrl(req)));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${command}/fail$`),
      async handle({ req, res, params: [id = ''] }) {
        await ownCommand(req, res, id, 'backhaul.fail');
        const { json } = await readJson(req, 'failure', SMALL_JSON_BYTES);
        const error = parseMessage(failureSchema, json, 'failure');
        await dispatcher.apply(id, { type: 'fail', error }); // the state listener aborts any upload
        sendEmpty(res, 204);
      },
    },
  ];

  /**
   * §3.9 An auto query's gateway sends every live batch, each answered, before its first chunk: the
   * rows the log holds now are the rows callers got live, and the file's first rows. Recorded
   * once (a repeat changes nothing), which tells every caller stream of the switch.
   */
  async function switchToFile(id: string): Promise<void> {
    const liveRows = (await rowLog.summary(id))?.rowCount ?? 0;
    await dispatcher.apply(id, { type: 'switch-to-file', liveRows });
  }

  /**
   * §3.9 Once an auto query switched to a file, no new row batch is taken: callers were told the
   * live rows are over. A batch it already holds (a restarted gateway running the command again
   * sends its head again) is still accepted and ignored, as §5.3 says.
   */
  async function refuseRowsAfterSwitch(record: CommandRecord, seq: number): Promise<void> {
    const held = (await rowLog.summary(record.id))?.contiguousBatches ?? 0;
    if (seq < held) return;
    throw new BackhaulError(
      'invalid-state',
      `Command ${record.id} switched to a file after ${record.liveRows} live rows: no more row batches`,
      { details: { state: record.state, liveRows: record.liveRows } },
    );
  }

  async function complete(record: CommandRecord, completion: Completion): Promise<CommandRecord> {
    const { id, command: query } = record;
    if (query.mode !== 'auto' && query.mode !== completion.kind) {
      throw new BackhaulError(
        'invalid-message',
        `Command ${id} asked for ${query.mode}, the completion is ${completion.kind}`,
      );
    }
    // The completion states what the gateway produced; the server checks it against what it
    // received before anything becomes visible, and a mismatch ends the command (§6.4).
    const refuse = async (problem: BackhaulError): Promise<never> => {
      await dispatcher.apply(id, { type: 'fail', error: { code: problem.code, message: problem.message } });
      throw problem;
    };
    if (completion.kind === 'rows') {
      const received = (await rowLog.summary(id)) ?? { batchCount: 0, contiguousBatches: 0, rowCount: 0 };
      if (
        received.batchCount !== completion.batchCount ||
        received.contiguousBatches !== completion.batchCount ||
        received.rowCount !== completion.rowCount
      ) {
        return refuse(
          new BackhaulError(
            'file-incomplete',
            `Announced ${completion.batchCount} batches of ${completion.rowCount} rows; received ${received.batchCount} batches (0..${received.contiguousBatches - 1} without a gap) of ${received.rowCount} rows`,
            { retryable: false },
          ),
        );
      }
      return dispatcher.apply(id, { type: 'complete', result: completion });
    }

    // §3.9 The file of an auto query holds the whole result, the live rows first.
    const liveRows = record.liveRows ?? 0;
    const sentLive = (await rowLog.summary(id))?.rowCount ?? 0;
    if (query.mode === 'auto' && (sentLive > liveRows || liveRows > completion.rowCount)) {
      return refuse(
        new BackhaulError(
          'file-incomplete',
          `The file holds ${completion.rowCount} rows; ${Math.max(sentLive, liveRows)} were sent live before it`,
          { retryable: false },
        ),
      );
    }
    let stored: StoredFile;
    try {
      stored = await parts.ingest().finish(id, resultKey(record.gatewayId, id), completion);
    } catch (error) {
      if (
        BackhaulError.isInstance(error) &&
        (error.code === 'file-incomplete' || error.code === 'checksum-mismatch')
      ) {
        return refuse(error);
      }
      throw error;
    }
    try {
      return await dispatcher.apply(id, { type: 'complete', result: stored });
    } catch (error) {
      // The command ended meanwhile (e.g. expired): the file must not outlive it unseen.
      await options.storage.delete(stored.key).catch(() => undefined);
      throw error;
    }
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterBus, Logger, RowLog } from '@backhaul/core';
import { type CommandRecord, type CommandStore, headers, isTerminal, sseEvents } from '@backhaul/core';
import { busChannels, subscribeWhileOpen } from './bus-channels.js';
import type { EnrolledToken } from './credentials.js';
import type { QueryViews } from './query-views.js';
import type { SseConnection, SseHub } from './sse-connection.js';

/**
 * Callers' live streams of one query (docs/protocol.md §3.3): `state` on every state change,
 * `rows` with each batch, `progress`, and `result` once the query has ended (any final state),
 * after which the stream closes. A late subscriber first gets the current state and every row
 * batch kept so far, so following a query never depends on when one started to listen.
 *
 * Every instance of a deployment can serve the stream (docs/cluster.md "Bus and row log"): the
 * instance that applies a change or takes a batch rings the query's bus channel, and each
 * stream reads what it has not sent yet from the command store and the row log. Every event
 * carries `id:`, the row-log position of the last batch sent, so a client that reconnects with
 * `Last-Event-ID` gets the current state and only the batches after it.
 */
export interface QueryEvents {
  /** `reader`: who opened the stream; one opened with an enrolled token ends when it is revoked. */
  subscribe(
    id: string,
    req: IncomingMessage,
    res: ServerResponse,
    baseUrl: string,
    reader?: StreamReader,
  ): Promise<void>;
  /** Live streams opened with enrolled caller or admin tokens, for the revocation re-check. */
  enrolledStreams(): { callerId: string; token: EnrolledToken }[];
  /**
   * Ends the live streams of this caller opened with an enrolled token (with this one, when
   * `tokenId` is given): the token was revoked or the caller removed. Returns how many ended.
   */
  closeEnrolled(callerId: string, tokenId?: string): number;
  /** A record changed (from the dispatcher); `progress` when the change was a progress message. */
  changed(record: CommandRecord, progressed: boolean): void;
  /** A batch was appended to the row log at `position`. */
  rows(id: string, position: number): void;
}

export interface QueryEventOptions {
  hub: SseHub;
  store: CommandStore;
  views: QueryViews;
  rowLog: RowLog;
  bus: ClusterBus;
  retryMs: number;
  logger: Logger;
}

export interface StreamReader {
  callerId: string;
  enrolled?: EnrolledToken;
}

interface Subscriber {
  id: string;
  stream: SseConnection;
  baseUrl: string;
  /** The last state this subscriber was told, so repeats are not sent twice. */
  state: string | undefined;
  lastVersion: number;
  /** Row-log position of the last batch sent: the `id:` of every event. */
  position: number;
  /** Whether this stream told of an auto query's switch to a file (§3.9). */
  switched: boolean;
  /** Sends run in order even though reading the store and the log is async. */
  queue: Promise<void>;
}

/** `Last-Event-ID` as a row-log position; anything else (absent, not ours) starts from the beginning. */
function resumePosition(req: IncomingMessage): number {
  const value = req.headers[headers.lastEventId];
  const text = Array.isArray(value) ? value[0] : value;
  const position = Number(text);
  return text && /^\d{1,15}$/.test(text) && Number.isSafeInteger(position) ? position : 0;
}

export function createQueryEvents(options: QueryEventOptions): QueryEvents {
  const { views, logger, rowLog, bus, store } = options;
  const enrolledReaders = new Set<{ callerId: string; token: EnrolledToken; stream: SseConnection }>();

  const enqueue = (subscriber: Subscriber, step: () => Promise<void> | void) => {
    subscriber.queue = subscriber.queue.then(step).catch((error) => {
      logger.warn('a query event could not be sent', { error: String(error) });
      subscriber.stream.close();
    });
  };

  const send = (subscriber: Subscriber, event: string, data: unknown) =>
    subscriber.stream.send(event, data, String(subscriber.position));

  /** Every batch after the subscriber's position, at the reader's pace. False once the stream closed. */
  async function sendRows(subscriber: Subscriber): Promise<boolean> {
    for (;;) {
      const entries = await rowLog.read(subscriber.id, subscriber.position);
      if (entries.length === 0) return !subscriber.stream.closed;
      for (const { position, batch } of entries) {
        subscriber.position = position;
        if (!send(subscriber, sseEvents.rows, batch)) return false;
        // Written all at once, a large result would pass streamBufferBytes and cut even a
        // reader that reads as fast as it can.
        await subscriber.stream.drained();
      }
    }
  }

  /**
   * §3.9 An auto query that switched to a file: every live batch first (all are in the log before
   * the switch is recorded), then `switched`, once per stream. False once the stream closed.
   */
  async function announceSwitch(subscriber: Subscriber, record: CommandRecord): Promise<boolean> {
    if (record.liveRows === undefined || subscriber.switched) return !subscriber.stream.closed;
    if (!(await sendRows(subscriber))) return false;
    subscriber.switched = true;
    return send(subscriber, sseEvents.switched, await views.view(record, subscriber.baseUrl));
  }

  /** Sends what changed since this subscriber's last view; ends the stream after a final state. */
  async function sendRecord(subscriber: Subscriber, record: CommandRecord, progressed: boolean) {
    if (subscriber.stream.closed || record.version <= subscriber.lastVersion) return;
    subscriber.lastVersion = record.version;
    if (progressed && record.progress) send(subscriber, sseEvents.progress, record.progress);
    if (!(await announceSwitch(subscriber, record))) return;
    if (record.state === subscriber.state) return;
    subscriber.state = record.state;
    const ended = isTerminal(record.state);
    // Every batch is in the log before the gateway's completion is taken (§5.5): read the rest
    // first, so `result` is the last event and no row follows it.
    if (ended && !(await sendRows(subscriber))) return;
    const view = await views.view(record, subscriber.baseUrl);
    send(subscriber, sseEvents.state, view);
    if (ended) {
      if (record.state === 'cancelled') send(subscriber, sseEvents.cancelled, view);
      send(subscriber, sseEvents.result, view);
      subscriber.stream.close();
    }
  }

  const ring = (id: string, message: { type: string; [key: string]: number | boolean | string }) => {
    bus.publish(busChannels.query(id), message).catch((error) =>
      // A follower on another instance misses this change until the next one rings.
      logger.warn('announcing a query event failed', { commandId: id, error: String(error) }),
    );
  };

  return {
    async subscribe(id, req, res, baseUrl, reader) {
      const stream = options.hub.open(req, res, options.retryMs);
      const enrolled = reader?.enrolled;
      if (enrolled) {
        const entry = { callerId: reader.callerId, token: enrolled, stream };
        enrolledReaders.add(entry);
        stream.onClose(() => enrolledReaders.delete(entry));
      }
      const subscriber: Subscriber = {
        id,
        stream,
        baseUrl,
        state: undefined,
        lastVersion: 0,
        position: resumePosition(req),
        switched: false,
        queue: Promise.resolve(),
      };
      // Listen before reading the record and the log: a change that lands meanwhile is then
      // either in what is read or rung after it (the version and the position drop repeats).
      await subscribeWhileOpen(
        bus,
        busChannels.query(id),
        stream,
        (message) => {
          if (message.type === 'rows') {
            enqueue(subscriber, async () => {
              if (typeof message.position === 'number' && message.position <= subscriber.position) return;
              await sendRows(subscriber);
            });
          } else if (message.type === 'record') {
            enqueue(subscriber, async () => {
              const record = await store.get(id);
              if (record) await sendRecord(subscriber, record, message.progressed === true);
            });
          }
        },
        logger,
      );
      // The state first, then the rows after the resume position, then (for an ended query)
      // the result; anything rung from now on queues behind this step.
      enqueue(subscriber, async () => {
        const record = await store.get(id);
        if (!record) {
          stream.close();
          return;
        }
        subscriber.state = record.state;
        subscriber.lastVersion = record.version;
        const view = await views.view(record, baseUrl);
        send(subscriber, sseEvents.state, view);
        if (!(await sendRows(subscriber))) return;
        if (!(await announceSwitch(subscriber, record))) return;
        if (isTerminal(record.state)) {
          if (record.state === 'cancelled') send(subscriber, sseEvents.cancelled, view);
          send(subscriber, sseEvents.result, view);
          stream.close();
        }
      });
    },

    enrolledStreams: () =>
      [...enrolledReaders]
        .filter((r) => !r.stream.closed)
        .map(({ callerId, token }) => ({ callerId, token })),

    closeEnrolled(callerId, tokenId) {
      let ended = 0;
      for (const reader of [...enrolledReaders]) {
        if (reader.callerId !== callerId || (tokenId !== undefined && reader.token.tokenId !== tokenId))
          continue;
        enrolledReaders.delete(reader);
        reader.stream.close();
        ended++;
      }
      return ended;
    },

    changed(record, progressed) {
      ring(record.id, { type: 'record', progressed });
    },

    rows(id, position) {
      ring(id, { type: 'rows', position });
    },
  };
}

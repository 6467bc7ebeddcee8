import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@backhaul/core';
import { type CommandRecord, type CommandStore, isTerminal, type RowBatch, sseEvents } from '@backhaul/core';
import type { QueryViews } from './query-views.js';
import type { RowResults } from './row-results.js';
import type { SseConnection, SseHub } from './sse-connection.js';

/**
 * Callers' live streams of one query (docs/protocol.md §3.3): `state` on every state change,
 * `rows` with each batch, `progress`, and `result` once the query has ended (any final state),
 * after which the stream closes. A late subscriber first gets the current state and every row
 * batch kept so far, so following a query never depends on when one started to listen.
 */
export interface QueryEvents {
  subscribe(id: string, req: IncomingMessage, res: ServerResponse, baseUrl: string): Promise<void>;
  /** A record changed (from the dispatcher); `progress` when the change was a progress message. */
  changed(record: CommandRecord, progressed: boolean): void;
  rows(id: string, batch: RowBatch): void;
}

export interface QueryEventOptions {
  hub: SseHub;
  store: CommandStore;
  views: QueryViews;
  rows: RowResults;
  retryMs: number;
  logger: Logger;
}

interface Subscriber {
  stream: SseConnection;
  baseUrl: string;
  /** The last state this subscriber was told, so repeats are not sent twice. */
  state: string | undefined;
  lastVersion: number;
  /** Sends run in order even though building a view is async (presigning a URL may be). */
  queue: Promise<void>;
}

export function createQueryEvents(options: QueryEventOptions): QueryEvents {
  const { views, logger } = options;
  const subscribers = new Map<string, Set<Subscriber>>();

  const enqueue = (subscriber: Subscriber, step: () => Promise<void> | void) => {
    subscriber.queue = subscriber.queue.then(step).catch((error) => {
      logger.warn('a query event could not be sent', { error: String(error) });
      subscriber.stream.close();
    });
  };

  /** Sends what changed since this subscriber's last view; ends the stream after a final state. */
  const sendRecord = (subscriber: Subscriber, record: CommandRecord, progressed: boolean) =>
    enqueue(subscriber, async () => {
      if (subscriber.stream.closed || record.version <= subscriber.lastVersion) return;
      subscriber.lastVersion = record.version;
      if (progressed && record.progress) subscriber.stream.send(sseEvents.progress, record.progress);
      if (record.state === subscriber.state) return;
      subscriber.state = record.state;
      const view = await views.view(record, subscriber.baseUrl);
      subscriber.stream.send(sseEvents.state, view);
      if (isTerminal(record.state)) {
        if (record.state === 'cancelled') subscriber.stream.send(sseEvents.cancelled, view);
        subscriber.stream.send(sseEvents.result, view);
        subscriber.stream.close();
      }
    });

  return {
    async subscribe(id, req, res, baseUrl) {
      const stream = options.hub.open(req, res, options.retryMs);
      const subscriber: Subscriber = {
        stream,
        baseUrl,
        state: undefined,
        lastVersion: 0,
        queue: Promise.resolve(),
      };
      // Register before reading the record, and replay the kept batches in the same tick: a
      // change or batch that lands meanwhile is then either in the replay or delivered live.
      let set = subscribers.get(id);
      if (!set) {
        set = new Set();
        subscribers.set(id, set);
      }
      set.add(subscriber);
      stream.onClose(() => {
        set.delete(subscriber);
        if (set.size === 0 && subscribers.get(id) === set) subscribers.delete(id);
      });
      const kept = options.rows.batches(id);
      // The state first, then the rows so far, then (for an ended query) the result; anything
      // published from now on queues behind this step.
      enqueue(subscriber, async () => {
        const record = await options.store.get(id);
        if (!record) {
          stream.close();
          return;
        }
        subscriber.state = record.state;
        subscriber.lastVersion = record.version;
        const view = await views.view(record, baseUrl);
        stream.send(sseEvents.state, view);
        for (const batch of kept) {
          if (!stream.send(sseEvents.rows, batch)) return;
          // The replay goes out at the reader's pace: written all at once, a large result would
          // pass streamBufferBytes and cut even a reader that reads as fast as it can.
          await stream.drained();
        }
        if (isTerminal(record.state)) {
          if (record.state === 'cancelled') stream.send(sseEvents.cancelled, view);
          stream.send(sseEvents.result, view);
          stream.close();
        }
      });
    },

    changed(record, progressed) {
      const set = subscribers.get(record.id);
      if (!set) return;
      for (const subscriber of set) sendRecord(subscriber, record, progressed);
    },

    rows(id, batch) {
      const set = subscribers.get(id);
      if (!set) return;
      for (const subscriber of set) {
        enqueue(subscriber, () => {
          subscriber.stream.send(sseEvents.rows, batch);
        });
      }
    },
  };
}

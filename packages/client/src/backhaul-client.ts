import {
  BackhaulError,
  type Column,
  type GatewayView,
  type Progress,
  type QueryView,
  type SubmitQuery,
  sseEvents,
  terminalStates,
} from '@backhaul/core';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { type ServerConnectionOptions, serverRequests } from './server-requests.js';

/** `token` is a caller token configured on the server. */
export type BackhaulClientOptions = ServerConnectionOptions;

/** What a caller sees while following a query (docs/protocol.md §3.3). */
export type QueryEvent =
  | { type: 'state'; query: QueryView }
  | { type: 'rows'; seq: number; columns?: Column[]; rows: unknown[][] }
  | { type: 'progress'; progress: Progress }
  | { type: 'result'; query: QueryView };

export interface RowsResult {
  columns: Column[];
  rows: unknown[][];
}

export interface BackhaulClient {
  submit(query: SubmitQuery): Promise<QueryView>;
  get(id: string): Promise<QueryView>;
  /** Live events until the query ends (the stream closes) or `signal` aborts. */
  follow(id: string, options?: { signal?: AbortSignal }): AsyncGenerator<QueryEvent>;
  /** Follows the query and resolves with its final view. */
  waitFor(
    id: string,
    options?: { signal?: AbortSignal; onEvent?: (event: QueryEvent) => void },
  ): Promise<QueryView>;
  rows(id: string): Promise<RowsResult>;
  gateways(): Promise<GatewayView[]>;
}

export function createBackhaulClient(options: BackhaulClientOptions): BackhaulClient {
  const { call, json, postJson } = serverRequests(options);
  const queryPath = (id: string) => `/v1/queries/${encodeURIComponent(id)}`;

  async function* follow(id: string, { signal }: { signal?: AbortSignal } = {}): AsyncGenerator<QueryEvent> {
    const response = await call(`${queryPath(id)}/events`, {
      headers: { accept: 'text/event-stream' },
      signal,
    });
    if (!response.body) return;
    const events = response.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream());
    for await (const message of events) {
      const data = JSON.parse(message.data);
      switch (message.event) {
        case sseEvents.state:
          yield { type: 'state', query: data as QueryView };
          break;
        case sseEvents.rows:
          yield { type: 'rows', ...(data as { seq: number; columns?: Column[]; rows: unknown[][] }) };
          break;
        case sseEvents.progress:
          yield { type: 'progress', progress: data as Progress };
          break;
        case sseEvents.result:
          yield { type: 'result', query: data as QueryView };
          return;
      }
    }
  }

  return {
    submit: (query) => postJson<QueryView>('/v1/queries', query),
    get: (id) => json<QueryView>(queryPath(id)),
    follow,
    async waitFor(id, { signal, onEvent } = {}) {
      let last: QueryView | undefined;
      for await (const event of follow(id, { signal })) {
        onEvent?.(event);
        if (event.type === 'state' || event.type === 'result') last = event.query;
        if (event.type === 'result') return event.query;
      }
      // The stream ended without a result event (e.g. a proxy cut it): ask once more.
      last = await json<QueryView>(queryPath(id));
      if (!terminalStates.includes(last.state)) {
        throw new BackhaulError('service-unavailable', `The event stream of query ${id} ended early`);
      }
      return last;
    },
    rows: (id) => json<RowsResult>(`${queryPath(id)}/result`),
    gateways: async () => (await json<{ gateways: GatewayView[] }>('/v1/gateways')).gateways,
  };
}

import type { IncomingMessage } from 'node:http';
import type { CommandStore, DownloadSigner, RowLog } from '@backhaul/core';
import type { Admission } from './admission.js';
import type { ChunkIngest } from './chunk-ingest.js';
import type { CommandDispatcher } from './command-dispatcher.js';
import type { CommandStreams } from './command-stream.js';
import type { Credentials } from './credentials.js';
import type { GatewayPush } from './gateway-push.js';
import type { QueryEvents } from './query-events.js';
import type { QueryViews } from './query-views.js';
import type { ServerMetrics } from './server-metrics.js';
import type { ResolvedOptions } from './server-options.js';

/** The wired pieces of one server, as the route tables see them. */
export interface ServerParts {
  options: ResolvedOptions;
  store: CommandStore;
  credentials: Credentials;
  streams: CommandStreams;
  dispatcher: CommandDispatcher;
  admission: Admission;
  /** Ready once the xxhash WebAssembly module has loaded (before the first request is served). */
  ingest(): ChunkIngest;
  /** Row batches of every query, shared by the instances of a deployment. */
  rowLog: RowLog;
  views: QueryViews;
  events: QueryEvents;
  push: GatewayPush;
  signer: DownloadSigner;
  metrics: ServerMetrics;
  /** The base URL for links in answers to this request (`publicUrl` when configured). */
  baseUrl(req: IncomingMessage): string;
}

/** Bodies other than row batches and query submissions: progress, completion, failure. */
export const SMALL_JSON_BYTES = 64 * 1024;
/** A submitted query carries SQL of up to 1,000,000 characters and 10,000 parameters. */
export const QUERY_JSON_BYTES = 4 * 1024 * 1024;

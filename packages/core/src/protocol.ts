import { z } from 'zod';
import { BackhaulError } from './errors.js';

/**
 * Wire protocol v1: every message that crosses the network, as a schema that validates it at
 * runtime and a type inferred from it. docs/protocol.md is the normative text; section numbers
 * below point into it.
 */
export const PROTOCOL_VERSION = 1 as const;

/** 512 KiB: ten chunks make exactly one 5 MiB S3 part (docs/protocol.md §6). */
export const DEFAULT_CHUNK_SIZE = 524_288;

export const headers = {
  codec: 'backhaul-codec',
  checksum: 'backhaul-checksum',
  rawLength: 'backhaul-raw-length',
  lastEventId: 'last-event-id',
} as const;

export const sseEvents = {
  hello: 'hello',
  command: 'command',
  state: 'state',
  rows: 'rows',
  progress: 'progress',
  result: 'result',
  /** On the command stream (§4.3): stop running this command. */
  cancel: 'cancel',
  /** On the caller's events stream (§3.3): the query was cancelled (§3.8). */
  cancelled: 'cancelled',
  /**
   * On the caller's events stream (§3.3, §3.9): an `auto` query passed `rowsByteLimit` and its
   * result is becoming a file; no row batch follows, and the file starts with the rows sent.
   */
  switched: 'switched',
} as const;

// IDs end up in storage keys and file names: no '/', no leading '.', and no '..' anywhere, so no
// ID can ever be read as a path segment that climbs out of its folder.
const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._:-]*$/,
    "letters, digits and . _ : - only, starting with a letter or digit, no '..'",
  );

export const checksumSchema = z.string().regex(/^[0-9a-f]{16}$/, 'xxhash64 as 16 lower-case hex digits');

export const columnTypeSchema = z.enum([
  'boolean',
  'int32',
  'int64',
  'float64',
  'decimal',
  'string',
  'binary',
  'json',
  'date',
  'timestamp',
  /** An array of `element` values (PostgreSQL's one-dimensional arrays); Parquet LIST. */
  'list',
]);
export type ColumnType = z.infer<typeof columnTypeSchema>;

/** The type of a list column's elements: any column type but `list` (lists do not nest). */
export const listElementSchema = z.object({
  type: columnTypeSchema.exclude(['list']),
  precision: z.number().int().min(1).max(76).optional(),
  scale: z.number().int().min(0).max(76).optional(),
});
export type ListElement = z.infer<typeof listElementSchema>;

export const columnSchema = z
  .object({
    name: z.string().min(1).max(1024),
    type: columnTypeSchema,
    nullable: z.boolean().default(true),
    precision: z.number().int().min(1).max(76).optional(),
    scale: z.number().int().min(0).max(76).optional(),
    /** List columns only, and required there: the elements' type. */
    element: listElementSchema.optional(),
  })
  .refine((column) => (column.type === 'list') === (column.element !== undefined), {
    message: 'a list column, and only a list column, names its element type',
    path: ['element'],
  });
export type Column = z.infer<typeof columnSchema>;

export const resultModeSchema = z.enum(['rows', 'file', 'auto']);
export type ResultMode = z.infer<typeof resultModeSchema>;

const sqlParameter = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/**
 * §3.1 What the caller sends to run a query on a gateway. Unknown members are refused (400): a
 * typo such as `timeoutMS` must not silently run the query without its limit.
 */
export const submitQuerySchema = z.strictObject({
  gatewayId: identifier,
  sql: z.string().min(1).max(1_000_000),
  params: z.array(sqlParameter).max(10_000).default([]),
  mode: resultModeSchema.default('auto'),
  /** Upper bound on rows the gateway reads; the source enforces it. */
  maxRows: z.number().int().positive().optional(),
  /** How long the query may run on the database. */
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
  /**
   * §3.7 What the server does when the query's concurrency class is full: `refuse` answers
   * 429 with `Retry-After` and creates nothing; `queue` creates the query in state `queued`.
   */
  whenBusy: z.enum(['refuse', 'queue']).default('refuse'),
});
export type SubmitQuery = z.input<typeof submitQuerySchema>;

/** §4.2 The `data` of an SSE `command` event. The event's `id:` is the command ID. */
export const commandSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: identifier,
  type: z.literal('query'),
  sql: z.string().min(1),
  params: z.array(sqlParameter),
  mode: resultModeSchema,
  maxRows: z.number().int().positive().optional(),
  timeoutMs: z.number().int().positive().optional(),
  /**
   * Auto mode only: row batches are sent live while they stay within this many bytes; the batch
   * that would pass it switches the result to a file holding every row (§3.9).
   */
  rowsByteLimit: z.number().int().positive(),
  issuedAt: z.number().int(),
  /** 1 on first delivery, incremented by every redelivery after an ack timeout. */
  delivery: z.number().int().positive(),
  /**
   * §4.2 (v1.x) The W3C `traceparent` of the server's span that accepted the query: the gateway's
   * spans are its children and every answer names the same trace. A gateway that does not know
   * the member ignores it; a malformed one is ignored too, as the W3C spec asks.
   */
  traceparent: z.string().max(256).optional(),
  /** §4.2 (v1.x) The caller's `tracestate`, passed on unchanged. */
  tracestate: z.string().max(8192).optional(),
});
export type Command = z.infer<typeof commandSchema>;

/**
 * §4.3 The `data` of an SSE `cancel` event (a v1.x addition): the caller cancelled the command, so
 * the gateway stops the database query and the upload. A gateway that does not know the event
 * ignores it (§4); its later answers are refused (409) since the command is `cancelled`.
 */
export const cancelSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  id: identifier,
  reason: z.string().max(1024).optional(),
});
export type CommandCancel = z.infer<typeof cancelSchema>;

/** §4.1 The first event on every command stream: what this server accepts. */
export const helloSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  gatewayId: identifier,
  codecs: z.array(z.string()).min(1),
  chunkSize: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
  /** How far ahead of the first missing chunk the server buffers (in chunks). */
  chunkWindow: z.number().int().positive(),
});
export type Hello = z.infer<typeof helloSchema>;

/** §5.2 Progress keeps the completion deadline alive. */
export const progressSchema = z.object({
  rows: z.number().int().nonnegative().optional(),
  bytes: z.number().int().nonnegative().optional(),
  stage: z.enum(['querying', 'encoding', 'uploading']).optional(),
});
export type Progress = z.infer<typeof progressSchema>;

/** §5.3 A batch of rows, idempotent by `seq`. Batch 0 carries the columns. */
export const rowBatchSchema = z.object({
  seq: z.number().int().nonnegative(),
  columns: z.array(columnSchema).optional(),
  rows: z.array(z.array(z.unknown())),
});
export type RowBatch = z.infer<typeof rowBatchSchema>;

/** §5.5 Completion: the gateway states what it produced so the server can check it. */
export const completionSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('rows'),
    rowCount: z.number().int().nonnegative(),
    batchCount: z.number().int().nonnegative(),
  }),
  z.object({
    kind: z.literal('file'),
    format: z.literal('parquet'),
    size: z.number().int().nonnegative(),
    checksum: checksumSchema,
    rowCount: z.number().int().nonnegative(),
    chunkCount: z.number().int().nonnegative(),
  }),
]);
export type Completion = z.infer<typeof completionSchema>;

/** §5.6 The gateway could not run the command. */
export const failureSchema = z.object({
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
});
export type Failure = z.infer<typeof failureSchema>;

/** A header or path segment holding a plain decimal integer: no '', '0x10' or '1e3'. */
const decimalInteger = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,14})$/, 'a decimal integer')
  .transform(Number);

/** §6.1 Chunk headers, validated before the body is read. */
export const chunkHeadersSchema = z.object({
  codec: z.string().min(1).max(32),
  checksum: checksumSchema,
  rawLength: decimalInteger,
});
export type ChunkHeaders = z.infer<typeof chunkHeadersSchema>;

export const chunkIndexSchema = decimalInteger.pipe(z.number().max(1_000_000));

/** §6.3 What the server already holds, so a restarted gateway sends only what is missing. */
export const chunkReceiptSchema = z.object({
  /** Chunks 0..contiguous-1 are stored. */
  contiguous: z.number().int().nonnegative(),
  /** Indices past `contiguous` held in the reorder window. */
  buffered: z.array(z.number().int().nonnegative()),
  /**
   * The checksum stored for each chunk the server holds, keyed by index (decimal). A resuming
   * gateway skips a chunk only when its own re-encoded chunk has the same checksum. Absent for a
   * completed file, and from servers that do not send it.
   */
  checksums: z.record(z.string().regex(/^\d+$/), checksumSchema).optional(),
});
export type ChunkReceipt = z.infer<typeof chunkReceiptSchema>;

export const commandStateSchema = z.enum([
  'queued',
  'pending',
  'dispatched',
  'acknowledged',
  'running',
  'completed',
  'failed',
  'expired',
  'dead-lettered',
  'cancelled',
]);
export type CommandState = z.infer<typeof commandStateSchema>;

export const terminalStates: readonly CommandState[] = [
  'completed',
  'failed',
  'expired',
  'dead-lettered',
  'cancelled',
];

export type QueryResultView =
  | { kind: 'rows'; rowCount: number; columns: Column[] }
  | {
      kind: 'file';
      format: 'parquet';
      url: string;
      expiresAt: string;
      size: number;
      checksum: string;
      rowCount: number;
    };

/** §3.2 What the caller reads back about a query. */
export interface QueryView {
  id: string;
  gatewayId: string;
  state: CommandState;
  mode: ResultMode;
  createdAt: string;
  updatedAt: string;
  deliveries: number;
  /** §3.7 While `queued`: 1 for the next query of its class to run. */
  queuePosition?: number;
  progress?: Progress;
  /**
   * §3.9 Present once an `auto` query switched to a file: how many rows were sent live as row
   * batches before the switch. They are the file's first rows; the file holds the whole result.
   */
  liveRows?: number;
  result?: QueryResultView;
  error?: Failure;
  /** §3.2 The W3C trace ID every span and log line of this query carries (32 hex digits). */
  traceId?: string;
}

/** §10.1 What an operator sends to enrol a gateway. Unknown members are refused: a typo must not pass. */
export const enrolGatewaySchema = z.strictObject({ gatewayId: identifier });
export type EnrolGateway = z.infer<typeof enrolGatewaySchema>;

/** §10 The path parameters of the admin API: a gateway ID and, where the path has one, a token ID. */
export const gatewayPathSchema = z.object({ gatewayId: identifier });
/** A query ID in an admin path, e.g. the dead letter to replay (docs/operations.md, "Fleet page"). */
export const queryPathSchema = z.object({ queryId: identifier });
export const gatewayTokenPathSchema = z.object({ gatewayId: identifier, tokenId: identifier });

/**
 * §10.5 What an operator sends to enrol a caller (default) or an admin. `gateways` restricts a
 * caller to those gateways; without it the caller may query every gateway.
 */
export const enrolCallerSchema = z
  .strictObject({
    callerId: identifier,
    role: z.enum(['caller', 'admin']).default('caller'),
    gateways: z.array(identifier).max(10_000).optional(),
  })
  .refine((caller) => caller.role === 'caller' || caller.gateways === undefined, {
    message: 'an admin reads every query: gateways apply to callers only',
    path: ['gateways'],
  });
export type EnrolCaller = z.input<typeof enrolCallerSchema>;

/** §10.5 A caller's new gateway list; `null` lifts the restriction. */
export const restrictCallerSchema = z.strictObject({
  gateways: z.array(identifier).max(10_000).nullable(),
});

/** §10.5 The path parameters of the callers' admin API. */
export const callerPathSchema = z.object({ callerId: identifier });
export const callerTokenPathSchema = z.object({ callerId: identifier, tokenId: identifier });

/** §10.5 An enrolled caller or admin, as listings show it. */
export interface EnrolledCallerView {
  callerId: string;
  role: 'caller' | 'admin';
  gateways?: string[];
  createdAt: string;
  tokens: GatewayTokenView[];
}

/** §10.5 A newly issued caller or admin token: the only answer that ever carries it. */
export interface IssuedCallerToken {
  callerId: string;
  role: 'caller' | 'admin';
  tokenId: string;
  token: string;
  createdAt: string;
}

/** §10 A token as listings show it: its ID and dates, never the token or its hash. */
export interface GatewayTokenView {
  id: string;
  createdAt: string;
  revokedAt?: string;
}

/** §10.2 An enrolled gateway. */
export interface EnrolledGatewayView {
  gatewayId: string;
  createdAt: string;
  tokens: GatewayTokenView[];
}

/** §10.1, §10.3 A newly issued token: the only answer that ever carries the token itself. */
export interface IssuedGatewayToken {
  gatewayId: string;
  tokenId: string;
  token: string;
  createdAt: string;
}

export interface GatewayView {
  id: string;
  connected: boolean;
  connectedAt?: string;
  lastSeenAt?: string;
}

/**
 * Validates an inbound message. A failure is an `invalid-message` error naming the first
 * offending path, never a crash, so the HTTP layer answers 400 with a problem body.
 */
export function parseMessage<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw new BackhaulError('invalid-message', `Invalid ${what}${where}: ${issue?.message ?? 'malformed'}`, {
    details: {
      issues: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })),
    },
  });
}

/** Parses JSON text, turning a syntax error into `invalid-message`. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BackhaulError('invalid-message', `${what} is not valid JSON`);
  }
}

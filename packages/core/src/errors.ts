/**
 * Typed errors with a stable `code`. Status and retryability come from one table, so the HTTP
 * layer, the gateway's retry loop and the docs all read the same facts (docs/protocol.md §9).
 */
export const errorCatalog = {
  'bad-request': { status: 400, retryable: false, title: 'The request is malformed' },
  'invalid-message': { status: 400, retryable: false, title: 'The message does not match the protocol' },
  unauthorized: { status: 401, retryable: false, title: 'Credentials are missing or wrong' },
  forbidden: { status: 403, retryable: false, title: 'This credential may not touch that resource' },
  'not-found': { status: 404, retryable: false, title: 'No such resource' },
  'method-not-allowed': { status: 405, retryable: false, title: 'Method not allowed here' },
  'request-timeout': {
    status: 408,
    retryable: true,
    title: 'The request did not arrive in time',
  },
  'invalid-state': { status: 409, retryable: false, title: 'The command is not in a state that allows this' },
  conflict: { status: 409, retryable: false, title: 'The resource already exists' },
  'chunk-conflict': {
    status: 409,
    retryable: false,
    title: 'A different chunk is already stored at this index',
  },
  'chunk-out-of-window': {
    status: 409,
    retryable: true,
    title: 'The chunk is too far ahead of the contiguous upload',
  },
  cancelled: { status: 409, retryable: false, title: 'The query was cancelled' },
  'result-not-ready': { status: 409, retryable: true, title: 'The result is not ready yet' },
  gone: { status: 410, retryable: false, title: 'The resource has expired' },
  'payload-too-large': {
    status: 413,
    retryable: false,
    title: 'The body or its decoded form exceeds the limit',
  },
  'unsupported-codec': { status: 415, retryable: false, title: 'The codec is not accepted by this server' },
  'unsupported-media-type': {
    status: 415,
    retryable: false,
    title: 'The Content-Type is not accepted here',
  },
  'checksum-mismatch': { status: 422, retryable: true, title: 'The checksum does not match the bytes' },
  'corrupt-data': { status: 422, retryable: true, title: 'The compressed bytes cannot be decoded' },
  'file-incomplete': { status: 422, retryable: false, title: 'The file is missing chunks' },
  'idempotency-key-reused': {
    status: 422,
    retryable: false,
    title: 'The Idempotency-Key was already used for a different request',
  },
  'too-many-requests': { status: 429, retryable: true, title: 'Too many requests' },
  'headers-too-large': {
    status: 431,
    retryable: false,
    title: 'The request headers exceed the limit',
  },
  'query-failed': { status: 502, retryable: false, title: 'The database rejected or aborted the query' },
  'gateway-unavailable': { status: 503, retryable: true, title: 'The gateway is not connected' },
  'service-unavailable': { status: 503, retryable: true, title: 'A backing service is unavailable' },
  timeout: { status: 504, retryable: true, title: 'The operation timed out' },
  'storage-failed': { status: 500, retryable: true, title: 'Object storage failed' },
  internal: { status: 500, retryable: true, title: 'Internal error' },
} as const satisfies Record<string, { status: number; retryable: boolean; title: string }>;

export type ErrorCode = keyof typeof errorCatalog;

const marker = Symbol.for('backhaul.error');

export interface BackhaulErrorOptions {
  cause?: unknown;
  /** Overrides the catalogue, e.g. a 503 that the peer says to retry after a given time. */
  retryable?: boolean;
  retryAfterMs?: number;
  details?: Record<string, unknown>;
}

export class BackhaulError extends Error {
  readonly [marker] = true;
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: BackhaulErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackhaulError';
    this.code = code;
    this.status = errorCatalog[code].status;
    this.retryable = options.retryable ?? errorCatalog[code].retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  /** Works across duplicated copies of this package, where `instanceof` would not. */
  static isInstance(value: unknown): value is BackhaulError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalog, value);
}

/** An RFC 9457 problem document, as every non-2xx response of the protocol carries. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  retryable: boolean;
  [extension: string]: unknown;
}

export const problemTypeBase = 'https://backhaul.dev/problems/';

export function toProblem(error: BackhaulError): ProblemDetails {
  return {
    // Extensions first: a detail named like a standard member must never overwrite it.
    ...error.details,
    type: `${problemTypeBase}${error.code}`,
    title: errorCatalog[error.code].title,
    status: error.status,
    code: error.code,
    detail: error.message,
    retryable: error.retryable,
  };
}

/** Rebuilds a typed error from a problem+json body received over HTTP. */
export function fromProblem(status: number, body: unknown, retryAfterMs?: number): BackhaulError {
  const problem = (typeof body === 'object' && body !== null ? body : {}) as Partial<ProblemDetails>;
  const code: ErrorCode = isErrorCode(problem.code) ? problem.code : codeForStatus(status);
  const message = typeof problem.detail === 'string' ? problem.detail : `HTTP ${status}`;
  // Extension members (e.g. the accepted codecs of an `unsupported-codec`) come back as details.
  const details = Object.fromEntries(Object.entries(problem).filter(([key]) => !problemMembers.has(key)));
  return new BackhaulError(code, message, {
    retryable: typeof problem.retryable === 'boolean' ? problem.retryable : undefined,
    retryAfterMs,
    details: Object.keys(details).length > 0 ? details : undefined,
  });
}

const problemMembers = new Set(['type', 'title', 'status', 'code', 'detail', 'retryable', 'instance']);

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 408) return 'request-timeout';
  if (status === 413) return 'payload-too-large';
  if (status === 415) return 'unsupported-media-type';
  if (status === 431) return 'headers-too-large';
  if (status === 429) return 'too-many-requests';
  if (status === 503) return 'service-unavailable';
  if (status === 504) return 'timeout';
  if (status >= 500) return 'internal';
  return 'bad-request';
}

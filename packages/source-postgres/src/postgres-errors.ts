import { BackhaulError } from '@backhaul/core';

/** SQLSTATE of a statement cancelled by statement_timeout (or a cancel request). */
const QUERY_CANCELED = '57014';

/**
 * A pg error → a typed Backhaul error. The database's message is kept as it is: it is what the
 * caller needs to fix the SQL ("cannot execute INSERT in a read-only transaction").
 */
export function toBackhaulError(error: unknown, context: { timeoutMs?: number } = {}): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const details = typeof code === 'string' ? { sqlState: code } : undefined;
  if (code === QUERY_CANCELED) {
    const limit = context.timeoutMs === undefined ? '' : ` (${context.timeoutMs} ms)`;
    return new BackhaulError('timeout', `The query ran longer than its time limit${limit}: ${message}`, {
      cause: error,
      details,
    });
  }
  // The extended protocol pg-cursor speaks takes one statement per Parse; PostgreSQL says so itself.
  if (code === '42601' && /multiple commands/i.test(message)) {
    return new BackhaulError('bad-request', `Only one statement per query is allowed: ${message}`, {
      cause: error,
      details,
    });
  }
  if (isConnectionError(error)) {
    return new BackhaulError('service-unavailable', `PostgreSQL is unreachable: ${message}`, {
      cause: error,
    });
  }
  return new BackhaulError('query-failed', message, { cause: error, details });
}

/** Socket-level failures (no SQLSTATE): the database may be back soon, so the error is retryable. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // Node's socket errors (ECONNREFUSED, ETIMEDOUT…); SQLSTATEs are five digits/upper-case letters.
  if (typeof code === 'string' && /^E[A-Z]{4,}$/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(message);
}

/** A statement without a result (INSERT, SET, CREATE…), refused before it runs. */
export function noResultError(): BackhaulError {
  return new BackhaulError(
    'bad-request',
    'The statement returns no rows; only queries (SELECT, WITH … SELECT, VALUES, TABLE) are allowed',
  );
}

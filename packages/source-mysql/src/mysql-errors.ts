import { BackhaulError } from '@backhaul/core';

/** Server error numbers of a statement stopped by a time limit. */
const TIMEOUT_ERRNOS = new Set([
  1969, // MariaDB ER_STATEMENT_TIMEOUT: max_statement_time exceeded
  3024, // MySQL ER_QUERY_TIMEOUT: max_execution_time exceeded
]);
/** ER_PARSE_ERROR: also what a second statement gets when multipleStatements is off. */
const PARSE_ERROR = 1064;

/**
 * A mysql2 error → a typed Backhaul error, keeping the server's message: it is what the caller
 * needs to fix the SQL ("Cannot execute statement in a READ ONLY transaction").
 */
export function toBackhaulError(
  error: unknown,
  context: { timeoutMs?: number; sql?: string } = {},
): BackhaulError {
  if (BackhaulError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const { errno, code, sqlState, fatal } = (error ?? {}) as {
    errno?: unknown;
    code?: unknown;
    sqlState?: unknown;
    fatal?: unknown;
  };
  const details = {
    ...(typeof errno === 'number' ? { errno } : {}),
    ...(typeof sqlState === 'string' ? { sqlState } : {}),
  };
  if (typeof errno === 'number' && TIMEOUT_ERRNOS.has(errno)) {
    const limit = context.timeoutMs === undefined ? '' : ` (${context.timeoutMs} ms)`;
    return new BackhaulError('timeout', `The query ran longer than its time limit${limit}: ${message}`, {
      cause: error,
      details,
    });
  }
  if (errno === PARSE_ERROR && context.sql !== undefined && hasSecondStatement(context.sql)) {
    return new BackhaulError('bad-request', `Only one statement per query is allowed: ${message}`, {
      cause: error,
      details,
    });
  }
  // No SQLSTATE means the server never answered: the connection, not the SQL, failed (retryable).
  const socketError = typeof code === 'string' && /^E[A-Z]{4,}$/.test(code);
  if (typeof sqlState !== 'string' && (socketError || fatal === true)) {
    return new BackhaulError('service-unavailable', `MySQL is unreachable: ${message}`, { cause: error });
  }
  return new BackhaulError('query-failed', message, { cause: error, details });
}

/** A `;` followed by more than blanks or a comment: a heuristic only used to word the error. */
function hasSecondStatement(sql: string): boolean {
  return /;\s*(?!--|#|\/\*|$)\S/.test(sql);
}

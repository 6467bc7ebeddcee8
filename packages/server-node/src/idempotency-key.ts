import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BackhaulError, type SubmitQuery } from '@backhaul/core';

/**
 * The `Idempotency-Key` request header of `POST /v1/queries` (docs/protocol.md §3.1), after the
 * IETF httpapi draft "The Idempotency-Key HTTP Header Field": an opaque string the caller picks
 * (a UUID is typical), sent bare or as a structured-field string in double quotes.
 */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** Longest key accepted; the draft leaves the bound to the server, this fits any UUID or ULID well. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Visible ASCII without `"`, `\` and `,`: a key never needs escaping inside the quoted form, and a
 * header sent twice (which Node joins with ", ") is refused instead of read as one odd key.
 */
const keyCharacters = /^[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+$/;

/** The key of a request, undefined when it has none; `400 bad-request` when it is malformed. */
export function readIdempotencyKey(req: IncomingMessage): string | undefined {
  const raw = req.headers[IDEMPOTENCY_KEY_HEADER];
  if (raw === undefined) return undefined;
  const value = (Array.isArray(raw) ? raw.join(', ') : raw).trim();
  const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
  const key = quoted ? value.slice(1, -1) : value;
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !keyCharacters.test(key)) {
    throw new BackhaulError(
      'bad-request',
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters other than '"', '\\' and ',' (optionally in double quotes), sent once`,
      { details: { header: 'Idempotency-Key' } },
    );
  }
  return key;
}

/**
 * A digest of the validated query: two requests with the same content, whatever their key order
 * or whitespace, have the same fingerprint, so a retry is told apart from the reuse of a key for
 * another query (422).
 */
export function requestFingerprint(query: SubmitQuery): string {
  return createHash('sha256').update(canonicalJson(query)).digest('hex');
}

/** JSON with object keys sorted at every depth and `undefined` members left out. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value as Record<string, unknown>)
      .filter(([, member]) => member !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, member]) => `${JSON.stringify(name)}:${canonicalJson(member)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

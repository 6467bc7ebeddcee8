import { randomBytes } from 'node:crypto';

/**
 * One position in a W3C Trace Context trace (https://www.w3.org/TR/trace-context/): what a
 * `traceparent` header says, plus the vendors' `tracestate`, carried unchanged. A query is one
 * trace: the caller's header on submit, the command sent to the gateway and every answer the
 * gateway sends back all name the same `traceId` (docs/protocol.md §3.1, §4.2, §5).
 */
export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** 16 lower-case hex digits, not all zero: the span that sent it. */
  spanId: string;
  /** The trace-flags byte; bit 0 is `sampled`. */
  flags: number;
  /** The `tracestate` header as received, when it came with a valid `traceparent`. */
  tracestate?: string;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** version-traceid-parentid-flags, lower-case hex only (upper case is invalid per the spec). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** The spec allows 32 list members of up to 256 characters; more than this is not ours to carry. */
const MAX_TRACESTATE_LENGTH = 8192;
/** Printable ASCII, which every list member is made of. */
const TRACESTATE = /^[\x20-\x7e]*$/;

/**
 * Reads a `traceparent` header (and its `tracestate`). Anything invalid yields `undefined` rather
 * than an error: the spec says a receiver ignores an invalid header and starts a new trace, so a
 * caller's broken tracer never fails its query. Version `ff` is invalid; a version above `00` is
 * read by its first four fields, as the spec asks of forward-compatible parsers, but only `00`
 * may carry nothing after them.
 */
export function parseTraceparent(
  traceparent: string | string[] | undefined,
  tracestate?: string | string[],
): TraceContext | undefined {
  // Two traceparent headers cannot both be the parent: the request's trace is unknown.
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  const context: TraceContext = { traceId, spanId, flags: Number.parseInt(flags, 16) };
  // Several tracestate headers are one list, joined with commas (the spec's own rule).
  const state = Array.isArray(tracestate) ? tracestate.join(',') : tracestate?.trim();
  if (state && state.length <= MAX_TRACESTATE_LENGTH && TRACESTATE.test(state)) context.tracestate = state;
  return context;
}

/** The `traceparent` header (version 00) naming `context`. */
export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${(context.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The headers that carry `context` on a request: `traceparent`, and `tracestate` when it has one. */
export function traceHeaders(context: TraceContext | undefined): Record<string, string> {
  if (!context) return {};
  return {
    traceparent: formatTraceparent(context),
    ...(context.tracestate ? { tracestate: context.tracestate } : {}),
  };
}

export function newTraceId(): string {
  return nonZeroHex(16);
}

export function newSpanId(): string {
  return nonZeroHex(8);
}

/** The trace-flags bit that says the sender may have recorded the trace. */
export const SAMPLED_FLAG = 0x01;

function nonZeroHex(bytes: number): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    // All zero is the spec's "invalid" value: one chance in 2^64 or 2^128, drawn again.
    if (/[^0]/.test(hex)) return hex;
  }
}

/**
 * The fields every log line about a command carries: its ID, its gateway's and its trace's (when
 * the command has one; commands written before traces were kept have none).
 */
export function commandLogFields(
  command: { id: string; traceparent?: string | undefined },
  gatewayId: string | undefined,
): { commandId: string; gatewayId?: string; traceId?: string } {
  const traceId = parseTraceparent(command.traceparent)?.traceId;
  return {
    commandId: command.id,
    ...(gatewayId === undefined ? {} : { gatewayId }),
    ...(traceId === undefined ? {} : { traceId }),
  };
}

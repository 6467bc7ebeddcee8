import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  activeTrace,
  type CommandRecord,
  commandLogFields,
  type Logger,
  parseTraceparent,
  startSpan,
  type TraceContext,
  type TracedSpan,
  withFields,
  withSpan,
} from '@backhaul/core';

/** The instrumentation scope of the server's spans. */
export const TRACER_NAME = '@backhaul/server-node';

/** Where the command sits in its query's trace: the span that accepted it (docs/protocol.md §4.2). */
export function commandTrace(record: CommandRecord): TraceContext | undefined {
  return parseTraceparent(record.command.traceparent, record.command.tracestate);
}

/**
 * The caller's trace (§3.1): its `traceparent`, or the span active in the embedding service's
 * OpenTelemetry context when that is in the same trace (its HTTP instrumentation's span for this
 * request, a child of the header) or there is no valid header. An active span of another trace is
 * not the caller's (e.g. one that was active when the server started listening).
 */
export function callerTrace(req: IncomingMessage): TraceContext | undefined {
  const sent = parseTraceparent(req.headers.traceparent, req.headers.tracestate);
  const active = activeTrace();
  if (sent && active?.traceId !== sent.traceId) return sent;
  return active ?? sent;
}

/** `logger` with the command's `commandId`, `gatewayId` and `traceId` on every line. */
export function commandLogger(logger: Logger, record: CommandRecord): Logger {
  return withFields(logger, commandLogFields(record.command, record.gatewayId));
}

/** The span attributes that name a command; the same on the server's and the gateway's spans. */
export function commandAttributes(record: CommandRecord) {
  return {
    'backhaul.command.id': record.id,
    'backhaul.gateway.id': record.gatewayId,
    'backhaul.mode': record.command.mode,
  };
}

/**
 * A span for one answer of the gateway (§5), ended when the response is. Its parent is the
 * gateway's span named by the request's `traceparent`; a header naming another trace, or none
 * (a gateway from before traces), falls back to the command's own, so a query stays one trace.
 */
export function startAnswerSpan(
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  record: CommandRecord,
): TracedSpan {
  const own = commandTrace(record);
  const sent = parseTraceparent(req.headers.traceparent, req.headers.tracestate);
  const parent = sent && (!own || sent.traceId === own.traceId) ? sent : own;
  const span = startSpan(TRACER_NAME, name, parent, {
    kind: 'server',
    attributes: commandAttributes(record),
  });
  res.once('close', () => {
    span.setAttributes({ 'http.response.status_code': res.statusCode });
    span.end(res.statusCode >= 500 ? new Error(`answered ${res.statusCode}`) : undefined);
  });
  return span;
}

/**
 * Runs a submission in its `backhaul.submit` span, the child of the caller's trace (`parent`) or
 * the root of a new one. `work` gets the span's context, which the command carries (§4.2).
 */
export function traceSubmission<T extends { record: CommandRecord; replayed: boolean }>(
  parent: TraceContext | undefined,
  callerId: string,
  work: (trace: TraceContext) => Promise<T>,
): Promise<T> {
  const options = { kind: 'server' as const, attributes: { 'backhaul.caller.id': callerId } };
  return withSpan(TRACER_NAME, 'backhaul.submit', parent, options, async (span) => {
    const submission = await work(span.trace);
    span.setAttributes({
      ...commandAttributes(submission.record),
      'backhaul.state': submission.record.state,
      'backhaul.replayed': submission.replayed,
    });
    return submission;
  });
}

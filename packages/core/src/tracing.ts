import {
  type Attributes,
  createTraceState,
  isSpanContextValid,
  type Context as OtelContext,
  context as otelContext,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { newSpanId, newTraceId, type TraceContext } from './trace-context.js';

/**
 * Spans through the OpenTelemetry API only. Without an SDK registered by the embedding service
 * the API is a no-op: nothing is recorded, and the trace IDs still flow through the protocol
 * (each span here gets a fresh span ID in the caller's trace, so the IDs in headers and log lines
 * are the same whether or not anything records them). With an SDK, the IDs are the recording
 * spans' own, so what the headers say and what the exporter stores agree.
 */
export interface TracedSpan {
  /** Where this span sits in the trace: what its children and outgoing requests carry. */
  readonly trace: TraceContext;
  /** The OpenTelemetry context with this span active, for running instrumented code under it. */
  readonly context: OtelContext;
  setAttributes(attributes: Attributes): void;
  /** Runs `work` with this span as the active one (only effective with a context manager registered). */
  run<T>(work: () => T): T;
  /** Ends the span; with an error it is marked failed and the error recorded as an exception. */
  end(error?: unknown): void;
}

export interface SpanOptions {
  kind?: 'server' | 'client' | 'internal' | 'producer' | 'consumer';
  attributes?: Attributes;
}

const kinds = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  internal: SpanKind.INTERNAL,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
} as const;

/**
 * Starts span `name` of the instrumentation scope `scope` (the package name) as a child of
 * `parent`, or as the root of a new trace without one.
 */
export function startSpan(
  scope: string,
  name: string,
  parent: TraceContext | undefined,
  options: SpanOptions = {},
): TracedSpan {
  const parentContext = parent ? contextOf(parent) : ROOT_CONTEXT;
  const span: Span = trace
    .getTracer(scope)
    .startSpan(
      name,
      { kind: kinds[options.kind ?? 'internal'], attributes: options.attributes },
      parentContext,
    );
  const recorded = span.spanContext();
  const ownContext: TraceContext = span.isRecording()
    ? {
        traceId: recorded.traceId,
        spanId: recorded.spanId,
        flags: recorded.traceFlags,
        ...(parent?.tracestate ? { tracestate: parent.tracestate } : {}),
      }
    : // A no-op span repeats its parent's IDs; this span is a new one in that trace all the same.
      {
        traceId: parent?.traceId ?? newTraceId(),
        spanId: newSpanId(),
        flags: parent?.flags ?? 0,
        ...(parent?.tracestate ? { tracestate: parent.tracestate } : {}),
      };
  const active = trace.setSpan(parentContext, span);
  return {
    trace: ownContext,
    context: active,
    setAttributes: (attributes) => span.setAttributes(attributes),
    run: (work) => otelContext.with(active, work),
    end(error) {
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
      }
      span.end();
    },
  };
}

/** The OpenTelemetry context whose (remote) parent is `parent`. */
function contextOf(parent: TraceContext): OtelContext {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.flags,
    isRemote: true,
    ...(parent.tracestate ? { traceState: createTraceState(parent.tracestate) } : {}),
  });
}

/**
 * The span active in the embedding service's OpenTelemetry context, if any: with an SDK and its
 * HTTP instrumentation, the request's own span, which already descends from the caller's
 * `traceparent`. Without an SDK there is none.
 */
export function activeTrace(): TraceContext | undefined {
  const active = trace.getSpanContext(otelContext.active());
  if (!active || !isSpanContextValid(active)) return undefined;
  return {
    traceId: active.traceId,
    spanId: active.spanId,
    flags: active.traceFlags,
    ...(active.traceState ? { tracestate: active.traceState.serialize() } : {}),
  };
}

/**
 * Runs `work` in a new span (as `startSpan`) and ends it when `work` settles: failed with the
 * error `work` throws, which is thrown on.
 */
export async function withSpan<T>(
  scope: string,
  name: string,
  parent: TraceContext | undefined,
  options: SpanOptions,
  work: (span: TracedSpan) => Promise<T>,
): Promise<T> {
  const span = startSpan(scope, name, parent, options);
  try {
    const result = await span.run(() => work(span));
    span.end();
    return result;
  } catch (error) {
    span.end(error);
    throw error;
  }
}

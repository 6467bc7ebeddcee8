/** The instrumentation scope of the gateway's spans (docs/operations.md, "Tracing and logs"). */
export const TRACER_NAME = '@backhaul/gateway-node';

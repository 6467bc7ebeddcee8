/** Credentials of the bench server: fixed, so a gateway side started elsewhere (--server-url) knows them. */
export const CALLER_TOKEN = process.env.BENCH_CALLER_TOKEN || 'bench-caller-token';

export const gatewayId = (index: number): string => (index === 0 ? 'gw-bench' : `gw-bench-${index}`);
export const gatewayToken = (index: number): string =>
  index === 0 ? process.env.BENCH_GATEWAY_TOKEN || 'bench-gateway-token' : `bench-gateway-token-${index}`;

export function gatewayCredentials(count: number) {
  return Array.from({ length: Math.max(1, count) }, (_, i) => ({ id: gatewayId(i), token: gatewayToken(i) }));
}

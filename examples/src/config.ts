import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

/**
 * One typed configuration for the reference server and gateway. Every field has a default that
 * runs on a laptop, and an environment variable of the same name in BACKHAUL_SNAKE_CASE
 * (docs/deploy.md lists them).
 */
export interface ReferenceConfig {
  server: {
    host: string;
    port: number;
    /** Base URL handed out in download links; default: the address the server listens on. */
    publicUrl: string | undefined;
    storage: { kind: 'fs'; root: string };
    store: { kind: 'memory' };
    /** Codecs the server accepts besides identity. */
    codecs: CodecName[];
    /** `id:token` pairs. */
    gateways: { id: string; token: string }[];
    callerTokens: string[];
    downloadSecret: string;
    downloadTtlSeconds: number;
  };
  gateway: {
    serverUrl: string;
    token: string;
    sqlitePath: string;
    codec: CodecName | 'identity';
    chunksInFlight: number;
  };
}

export type CodecName = 'zstd' | 'lz4';

export const demoGateway = { id: 'gw-demo', token: 'demo-gateway-token-change-me' };
export const demoCallerToken = 'demo-caller-token-change-me';

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  dataDir = '.backhaul-demo',
): ReferenceConfig {
  const read = (name: string) => env[`BACKHAUL_${name}`]?.trim() || undefined;
  const integer = (name: string, fallback: number) => {
    const value = read(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0)
      throw new Error(`BACKHAUL_${name} must be a whole number, got '${value}'`);
    return parsed;
  };
  const codec = (value: string): CodecName => {
    if (value === 'zstd' || value === 'lz4') return value;
    throw new Error(`Unknown codec '${value}': use zstd or lz4`);
  };
  const port = integer('PORT', 8080);
  const host = read('HOST') ?? '127.0.0.1';
  const gateways = (read('GATEWAYS') ?? `${demoGateway.id}:${demoGateway.token}`).split(',').map((pair) => {
    const [id, token, ...rest] = pair.split(':');
    if (!id || !token || rest.length > 0)
      throw new Error(`BACKHAUL_GATEWAYS wants id:token pairs, got '${pair}'`);
    return { id, token };
  });
  const storageKind = read('STORAGE') ?? 'fs';
  if (storageKind !== 'fs') throw new Error(`BACKHAUL_STORAGE='${storageKind}' is not available yet: use fs`);
  const gatewayCodec = read('CODEC') ?? 'zstd';

  return {
    server: {
      host,
      port,
      publicUrl: read('PUBLIC_URL'),
      storage: { kind: 'fs', root: resolve(read('STORAGE_ROOT') ?? `${dataDir}/storage`) },
      store: { kind: 'memory' },
      codecs: (read('CODECS') ?? 'zstd,lz4').split(',').filter(Boolean).map(codec),
      gateways,
      callerTokens: (read('CALLER_TOKENS') ?? demoCallerToken).split(','),
      downloadSecret: read('DOWNLOAD_SECRET') ?? randomBytes(32).toString('hex'),
      downloadTtlSeconds: integer('DOWNLOAD_TTL_SECONDS', 3600),
    },
    gateway: {
      serverUrl: read('SERVER_URL') ?? `http://${host}:${port}`,
      token: read('GATEWAY_TOKEN') ?? demoGateway.token,
      sqlitePath: resolve(read('SQLITE_PATH') ?? `${dataDir}/demo.sqlite`),
      codec: gatewayCodec === 'identity' ? 'identity' : codec(gatewayCodec),
      chunksInFlight: integer('CHUNKS_IN_FLIGHT', 16),
    },
  };
}

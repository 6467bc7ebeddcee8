import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { DEFAULT_CHUNKS_IN_FLIGHT, type ParquetFileCompression } from '@backhaul/gateway-node';

/**
 * One typed configuration for the reference server and gateway. Every field has a default that
 * runs on a laptop, and an environment variable of the same name in BACKHAUL_SNAKE_CASE
 * (docs/deploy.md lists them). Each process validates only its own half at start-up, so a
 * gateway host never needs the server's S3 keys and a server host never needs a database URL.
 */
export interface ReferenceConfig {
  server: ServerConfig;
  gateway: GatewayConfig;
}

/** The least severe log line written (BACKHAUL_LOG_LEVEL); pino's level names. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const logLevels: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface ServerConfig {
  host: string;
  port: number;
  /** Base URL handed out in download links; default: the address the server listens on. */
  publicUrl: string | undefined;
  storage: StorageConfig;
  store: StoreConfig;
  /** Codecs the server accepts besides identity. */
  codecs: CodecName[];
  /** `id:token` pairs. */
  gateways: { id: string; token: string }[];
  callerTokens: string[];
  /** Tokens that open the admin API (enrol, rotate, revoke gateways); none: the API is closed. */
  adminTokens: string[];
  /** Bearer token `GET /metrics` wants; undefined: the endpoint is open (docs/operations.md). */
  metricsToken: string | undefined;
  downloadSecret: string;
  downloadTtlSeconds: number;
  /** How long a caller's `Idempotency-Key` is remembered (docs/protocol.md §3.1.1). */
  idempotencyKeyRetentionSeconds: number;
  /** How long ended command records and dead letters are kept in the command log (docs/cluster.md). */
  retentionSeconds: number;
  /** How often expired result files are swept from the storage. */
  storageSweepIntervalSeconds: number;
  /** Concurrency limits of this server process (docs/deploy.md, "Admission control"); unset: the defaults. */
  admission: {
    small?: number;
    medium?: number;
    large?: number;
    largeFileBytes?: number;
    gatewayShare?: number;
    callerShare?: number;
  };
  /** Default `info`. */
  logLevel?: LogLevel;
}

export interface GatewayConfig {
  serverUrl: string;
  token: string;
  source: SourceConfig;
  codec: CodecName | 'identity' | 'auto';
  chunksInFlight: number;
  /** The status port (`/healthz`, `/readyz`, `/metrics`); undefined: none (the default). */
  status: { port: number; host: string } | undefined;
  /** Page compression of the Parquet files: BACKHAUL_PARQUET_COMPRESSION `zstd` (default), `zstd:LEVEL`, `snappy`, `none`. */
  parquetCompression: ParquetFileCompression;
  /** Default `info`. */
  logLevel?: LogLevel;
}

/** The command log: in memory (lost on restart) or Redis (durable, shared by several servers). */
export type StoreConfig = { kind: 'memory' } | { kind: 'redis'; url: string; keyPrefix: string };

/** Where result files go: a local directory, or an S3 / MinIO bucket with presigned URLs. */
export type StorageConfig =
  | { kind: 'fs'; root: string }
  | {
      kind: 's3';
      bucket: string;
      /** Omitted for AWS; e.g. `http://127.0.0.1:9000` for MinIO. */
      endpoint?: string;
      region: string;
      /** Both or neither; neither means the SDK's default chain (env, shared config, instance role). */
      accessKeyId?: string;
      secretAccessKey?: string;
      forcePathStyle: boolean;
      /** Every object key starts with it; the retention sweep touches nothing outside it. */
      prefix: string;
    };

/** The database the gateway answers from. */
export type SourceConfig =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; url: string }
  | { kind: 'mysql'; url: string };

export type CodecName = 'zstd' | 'lz4';

export const demoGateway = { id: 'gw-demo', token: 'demo-gateway-token-change-me' };
export const demoCallerToken = 'demo-caller-token-change-me';

/** Both halves; each program calls only the loader of its own half. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  dataDir = '.backhaul-demo',
): ReferenceConfig {
  return { server: loadServerConfig(env, dataDir), gateway: loadGatewayConfig(env, dataDir) };
}

export function loadServerConfig(
  env: NodeJS.ProcessEnv = process.env,
  dataDir = '.backhaul-demo',
): ServerConfig {
  const read = reader(env);
  const admin = adminTokens(env);
  // With the admin API open, gateways are enrolled through it: the demo gateway, whose token is
  // public, is then left out unless BACKHAUL_GATEWAYS names gateways itself.
  const configured = read('GATEWAYS') ?? (admin.length > 0 ? '' : `${demoGateway.id}:${demoGateway.token}`);
  const gateways = configured
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const [id, token, ...rest] = pair.split(':');
      if (!id || !token || rest.length > 0)
        throw new ConfigError(`BACKHAUL_GATEWAYS wants id:token pairs, got '${pair}'`);
      return { id, token };
    });
  const { host, port } = listenAddress(env);
  const idempotencyKeyRetentionSeconds = integer(env, 'IDEMPOTENCY_KEY_RETENTION_SECONDS', 86_400);
  const retentionSeconds = positive(env, 'RETENTION_SECONDS', 7 * 86_400);
  // A replayed key must find the command it names: the record outlives the key.
  if (idempotencyKeyRetentionSeconds > retentionSeconds)
    throw new ConfigError(
      `BACKHAUL_IDEMPOTENCY_KEY_RETENTION_SECONDS (${idempotencyKeyRetentionSeconds}) must not exceed BACKHAUL_RETENTION_SECONDS (${retentionSeconds})`,
    );
  return {
    host,
    port,
    publicUrl: optionalUrl(env, 'PUBLIC_URL', ['http:', 'https:']),
    storage: storageConfig(env, dataDir),
    store: storeConfig(env),
    codecs: (read('CODECS') ?? 'zstd,lz4').split(',').filter(Boolean).map(codec),
    gateways,
    callerTokens: (read('CALLER_TOKENS') ?? demoCallerToken).split(','),
    adminTokens: admin,
    metricsToken: read('METRICS_TOKEN'),
    downloadSecret: read('DOWNLOAD_SECRET') ?? randomBytes(32).toString('hex'),
    downloadTtlSeconds: integer(env, 'DOWNLOAD_TTL_SECONDS', 3600),
    idempotencyKeyRetentionSeconds,
    retentionSeconds,
    storageSweepIntervalSeconds: positive(env, 'STORAGE_SWEEP_INTERVAL_SECONDS', 60),
    admission: admissionConfig(env),
    logLevel: oneOf(env, 'LOG_LEVEL', logLevels, 'info'),
  };
}

/** Only what is set: the server's own defaults (200/50/10, 100 MiB, 0.8) fill the rest. */
function admissionConfig(env: NodeJS.ProcessEnv): ServerConfig['admission'] {
  const read = reader(env);
  const admission: ServerConfig['admission'] = {};
  const integers = {
    small: 'MAX_SMALL_QUERIES',
    medium: 'MAX_MEDIUM_FILES',
    large: 'MAX_LARGE_FILES',
    largeFileBytes: 'LARGE_FILE_BYTES',
  } as const;
  for (const [key, name] of Object.entries(integers)) {
    if (read(name) !== undefined) admission[key as keyof typeof integers] = integer(env, name, 0);
  }
  for (const [key, name] of [
    ['gatewayShare', 'GATEWAY_SHARE'],
    ['callerShare', 'CALLER_SHARE'],
  ] as const) {
    const value = read(name);
    if (value === undefined) continue;
    const parsed = Number(value);
    if (!(parsed > 0 && parsed <= 1))
      throw new ConfigError(`BACKHAUL_${name} must be a fraction in (0, 1], got '${value}'`);
    admission[key] = parsed;
  }
  return admission;
}

export function loadGatewayConfig(
  env: NodeJS.ProcessEnv = process.env,
  dataDir = '.backhaul-demo',
): GatewayConfig {
  const read = reader(env);
  const { host, port } = listenAddress(env);
  // auto: the Parquet pages are zstd-compressed already, so a chunk codec would mostly burn CPU
  // (docs/benchmarks.md); auto still compresses what the pages leave compressible.
  const gatewayCodec = read('CODEC') ?? 'auto';
  return {
    serverUrl: optionalUrl(env, 'SERVER_URL', ['http:', 'https:']) ?? `http://${host}:${port}`,
    token: read('GATEWAY_TOKEN') ?? demoGateway.token,
    source: sourceConfig(env, dataDir),
    codec: gatewayCodec === 'identity' || gatewayCodec === 'auto' ? gatewayCodec : codec(gatewayCodec),
    chunksInFlight: integer(env, 'CHUNKS_IN_FLIGHT', DEFAULT_CHUNKS_IN_FLIGHT),
    status:
      read('STATUS_PORT') === undefined
        ? undefined
        : { port: integer(env, 'STATUS_PORT', 0), host: read('STATUS_HOST') ?? '127.0.0.1' },
    parquetCompression: parquetCompression(read('PARQUET_COMPRESSION') ?? 'zstd'),
    logLevel: oneOf(env, 'LOG_LEVEL', logLevels, 'info'),
  };
}

/** `zstd`, `zstd:LEVEL` (1–22), `snappy` or `none`. */
function parquetCompression(value: string): ParquetFileCompression {
  if (value === 'zstd' || value === 'snappy' || value === 'none') return value;
  const level = /^zstd:(\d{1,2})$/.exec(value)?.[1];
  if (level !== undefined && Number(level) >= 1 && Number(level) <= 22)
    return { codec: 'zstd', level: Number(level) };
  throw new ConfigError(
    `BACKHAUL_PARQUET_COMPRESSION='${value}' is not one of: zstd, zstd:LEVEL (1-22), snappy, none`,
  );
}

/**
 * BACKHAUL_ADMIN_TOKEN, the variable `backhaul-admin` reads too; several separated by commas, so an
 * admin token can be rotated like the others. Unset: the admin API answers 401 to everyone.
 */
function adminTokens(env: NodeJS.ProcessEnv): string[] {
  const tokens = (reader(env)('ADMIN_TOKEN') ?? '').split(',').filter(Boolean);
  for (const token of tokens) {
    // An admin token enrols gateways: one short enough to guess would open every database.
    if (token.length < 32)
      throw new ConfigError('BACKHAUL_ADMIN_TOKEN: use at least 32 characters, e.g. $(openssl rand -hex 32)');
  }
  return tokens;
}

/** A configuration mistake, reported at start-up with the variable to fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function storeConfig(env: NodeJS.ProcessEnv): StoreConfig {
  const read = reader(env);
  const kind = oneOf(env, 'STORE', ['memory', 'redis'], 'memory');
  if (kind === 'memory') return { kind };
  return {
    kind,
    url: optionalUrl(env, 'REDIS_URL', ['redis:', 'rediss:']) ?? 'redis://127.0.0.1:6379',
    keyPrefix: read('REDIS_KEY_PREFIX') ?? 'backhaul:',
  };
}

function storageConfig(env: NodeJS.ProcessEnv, dataDir: string): StorageConfig {
  const read = reader(env);
  const kind = oneOf(env, 'STORAGE', ['fs', 's3'], 'fs');
  // Variables of the kinds not selected are ignored: the test suites read some of the same names.
  if (kind === 'fs') return { kind, root: resolve(read('STORAGE_ROOT') ?? `${dataDir}/storage`) };
  const bucket = read('S3_BUCKET');
  if (bucket === undefined) throw new ConfigError('BACKHAUL_STORAGE=s3 needs BACKHAUL_S3_BUCKET');
  const endpoint = optionalUrl(env, 'S3_ENDPOINT', ['http:', 'https:']);
  const accessKeyId = read('S3_ACCESS_KEY_ID');
  const secretAccessKey = read('S3_SECRET_ACCESS_KEY');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined))
    throw new ConfigError(
      'Set both BACKHAUL_S3_ACCESS_KEY_ID and BACKHAUL_S3_SECRET_ACCESS_KEY, or neither (the AWS SDK default chain)',
    );
  return {
    kind,
    bucket,
    endpoint,
    region: read('S3_REGION') ?? 'us-east-1',
    accessKeyId,
    secretAccessKey,
    // MinIO and s3rver need path-style URLs; AWS prefers virtual-host style.
    forcePathStyle: boolean(env, 'S3_FORCE_PATH_STYLE', endpoint !== undefined),
    prefix: read('S3_PREFIX') ?? 'backhaul',
  };
}

function sourceConfig(env: NodeJS.ProcessEnv, dataDir: string): SourceConfig {
  const read = reader(env);
  const kind = oneOf(env, 'SOURCE', ['sqlite', 'postgres', 'mysql'], 'sqlite');
  if (kind === 'sqlite') return { kind, path: resolve(read('SQLITE_PATH') ?? `${dataDir}/demo.sqlite`) };
  const protocols = kind === 'postgres' ? ['postgres:', 'postgresql:'] : ['mysql:'];
  const url = optionalUrl(env, 'DATABASE_URL', protocols);
  if (url === undefined)
    throw new ConfigError(
      `BACKHAUL_SOURCE=${kind} needs BACKHAUL_DATABASE_URL (${protocols[0]}//user:password@host:port/db)`,
    );
  return { kind, url };
}

function reader(env: NodeJS.ProcessEnv) {
  return (name: string) => env[`BACKHAUL_${name}`]?.trim() || undefined;
}

function listenAddress(env: NodeJS.ProcessEnv) {
  return { host: reader(env)('HOST') ?? '127.0.0.1', port: integer(env, 'PORT', 8080) };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = reader(env)(name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new ConfigError(`BACKHAUL_${name} must be a whole number, got '${value}'`);
  return parsed;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = integer(env, name, fallback);
  if (value < 1) throw new ConfigError(`BACKHAUL_${name} must be at least 1, got ${value}`);
  return value;
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = reader(env)(name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`BACKHAUL_${name} must be true or false, got '${value}'`);
}

function oneOf<const T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: T[], fallback: T): T {
  const value = reader(env)(name) ?? fallback;
  if ((allowed as string[]).includes(value)) return value as T;
  throw new ConfigError(`BACKHAUL_${name}='${value}' is not one of: ${allowed.join(', ')}`);
}

/** A URL of one of the given protocols, or undefined when the variable is not set. */
function optionalUrl(env: NodeJS.ProcessEnv, name: string, protocols: string[]): string | undefined {
  const value = reader(env)(name);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`BACKHAUL_${name} must be a URL, got '${redact(value)}'`);
  }
  if (!protocols.includes(parsed.protocol))
    throw new ConfigError(
      `BACKHAUL_${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got '${redact(value)}'`,
    );
  return value;
}

/** Error messages end up in logs: never print a password from a connection URL. */
function redact(value: string): string {
  return value.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

function codec(value: string): CodecName {
  if (value === 'zstd' || value === 'lz4') return value;
  throw new ConfigError(`Unknown codec '${value}': use zstd or lz4`);
}

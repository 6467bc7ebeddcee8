import { describe, expect, it } from 'vitest';
import { ConfigError, loadGatewayConfig, loadServerConfig } from '../src/config.js';

const server = (env: Record<string, string>) => loadServerConfig(env, '/data');
const gateway = (env: Record<string, string>) => loadGatewayConfig(env, '/data');

describe('the reference configuration runs on embedded defaults with no variables set', () => {
  it('memory store, filesystem storage, SQLite source', () => {
    expect(server({}).store).toEqual({ kind: 'memory' });
    expect(server({}).storage).toEqual({ kind: 'fs', root: '/data/storage' });
    expect(gateway({}).source).toEqual({ kind: 'sqlite', path: '/data/demo.sqlite' });
    expect(gateway({ BACKHAUL_SQLITE_PATH: '/srv/shop.sqlite' }).source).toEqual({
      kind: 'sqlite',
      path: '/srv/shop.sqlite',
    });
  });
});

describe('the admin API is closed unless BACKHAUL_ADMIN_TOKEN is set', () => {
  it('no admin token by default; one or several, separated by commas', () => {
    expect(server({}).adminTokens).toEqual([]);
    const [one, two] = ['a'.repeat(32), 'b'.repeat(40)];
    expect(server({ BACKHAUL_ADMIN_TOKEN: one }).adminTokens).toEqual([one]);
    expect(server({ BACKHAUL_ADMIN_TOKEN: `${one},${two}` }).adminTokens).toEqual([one, two]);
  });

  it('with an admin token, the demo gateway (whose token is public) is left out unless BACKHAUL_GATEWAYS is set', () => {
    const admin = 'a'.repeat(32);
    expect(server({}).gateways.map((g) => g.id)).toEqual(['gw-demo']);
    expect(server({ BACKHAUL_ADMIN_TOKEN: admin }).gateways).toEqual([]);
    expect(server({ BACKHAUL_ADMIN_TOKEN: admin, BACKHAUL_GATEWAYS: 'gw-1:secret-1' }).gateways).toEqual([
      { id: 'gw-1', token: 'secret-1' },
    ]);
  });
});

describe('Redis, S3 and PostgreSQL or MySQL are chosen by variables alone', () => {
  it('BACKHAUL_STORE=redis', () => {
    expect(server({ BACKHAUL_STORE: 'redis' }).store).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379',
      keyPrefix: 'backhaul:',
    });
    expect(
      server({
        BACKHAUL_STORE: 'redis',
        BACKHAUL_REDIS_URL: 'rediss://:pw@redis.internal:6380/2',
        BACKHAUL_REDIS_KEY_PREFIX: '{prod}:',
      }).store,
    ).toEqual({ kind: 'redis', url: 'rediss://:pw@redis.internal:6380/2', keyPrefix: '{prod}:' });
  });

  it('BACKHAUL_STORAGE=s3: path-style by default with an endpoint (MinIO), virtual-host style without (AWS)', () => {
    expect(
      server({
        BACKHAUL_STORAGE: 's3',
        BACKHAUL_S3_BUCKET: 'results',
        BACKHAUL_S3_ENDPOINT: 'http://127.0.0.1:9000',
        BACKHAUL_S3_ACCESS_KEY_ID: 'key',
        BACKHAUL_S3_SECRET_ACCESS_KEY: 'secret',
      }).storage,
    ).toEqual({
      kind: 's3',
      bucket: 'results',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      accessKeyId: 'key',
      secretAccessKey: 'secret',
      forcePathStyle: true,
      prefix: 'backhaul',
    });
    const aws = server({
      BACKHAUL_STORAGE: 's3',
      BACKHAUL_S3_BUCKET: 'results',
      BACKHAUL_S3_REGION: 'eu-west-1',
    });
    expect(aws.storage).toMatchObject({ kind: 's3', region: 'eu-west-1', forcePathStyle: false });
    expect(aws.storage).not.toHaveProperty('accessKeyId', expect.anything());
    expect(
      server({ BACKHAUL_STORAGE: 's3', BACKHAUL_S3_BUCKET: 'r', BACKHAUL_S3_FORCE_PATH_STYLE: 'true' })
        .storage,
    ).toMatchObject({ forcePathStyle: true });
  });

  it('BACKHAUL_SOURCE=postgres or mysql with BACKHAUL_DATABASE_URL', () => {
    expect(
      gateway({ BACKHAUL_SOURCE: 'postgres', BACKHAUL_DATABASE_URL: 'postgresql://reader@db:5432/shop' })
        .source,
    ).toEqual({ kind: 'postgres', url: 'postgresql://reader@db:5432/shop' });
    expect(
      gateway({ BACKHAUL_SOURCE: 'mysql', BACKHAUL_DATABASE_URL: 'mysql://reader@db:3306/shop' }).source,
    ).toEqual({ kind: 'mysql', url: 'mysql://reader@db:3306/shop' });
  });

  it('each half reads only its own variables: a gateway host needs no S3 bucket, a server host no database URL', () => {
    expect(() => gateway({ BACKHAUL_STORAGE: 's3' })).not.toThrow();
    expect(() => server({ BACKHAUL_SOURCE: 'postgres' })).not.toThrow();
  });
});

describe('a configuration mistake stops the start with the variable to fix', () => {
  const mistakes: [string, () => unknown, RegExp][] = [
    [
      'unknown store',
      () => server({ BACKHAUL_STORE: 'etcd' }),
      /BACKHAUL_STORE='etcd' is not one of: memory, redis/,
    ],
    [
      'redis URL scheme',
      () => server({ BACKHAUL_STORE: 'redis', BACKHAUL_REDIS_URL: 'http://x' }),
      /BACKHAUL_REDIS_URL must start with redis:\/\/ or rediss:\/\//,
    ],
    [
      'short admin token',
      () => server({ BACKHAUL_ADMIN_TOKEN: 'admin' }),
      /BACKHAUL_ADMIN_TOKEN: use at least 32 characters/,
    ],
    [
      's3 without bucket',
      () => server({ BACKHAUL_STORAGE: 's3' }),
      /BACKHAUL_STORAGE=s3 needs BACKHAUL_S3_BUCKET/,
    ],
    [
      'one S3 key without the other',
      () => server({ BACKHAUL_STORAGE: 's3', BACKHAUL_S3_BUCKET: 'r', BACKHAUL_S3_ACCESS_KEY_ID: 'k' }),
      /both BACKHAUL_S3_ACCESS_KEY_ID and BACKHAUL_S3_SECRET_ACCESS_KEY, or neither/,
    ],
    [
      'endpoint not a URL',
      () => server({ BACKHAUL_STORAGE: 's3', BACKHAUL_S3_BUCKET: 'r', BACKHAUL_S3_ENDPOINT: 'minio:9000' }),
      /BACKHAUL_S3_ENDPOINT must start with http:\/\/ or https:\/\//,
    ],
    [
      'path style not a boolean',
      () => server({ BACKHAUL_STORAGE: 's3', BACKHAUL_S3_BUCKET: 'r', BACKHAUL_S3_FORCE_PATH_STYLE: 'yes' }),
      /BACKHAUL_S3_FORCE_PATH_STYLE must be true or false/,
    ],
    [
      'source without URL',
      () => gateway({ BACKHAUL_SOURCE: 'postgres' }),
      /BACKHAUL_SOURCE=postgres needs BACKHAUL_DATABASE_URL/,
    ],
    [
      'unknown source',
      () => gateway({ BACKHAUL_SOURCE: 'oracle' }),
      /BACKHAUL_SOURCE='oracle' is not one of: sqlite, postgres, mysql/,
    ],
    ['bad port', () => server({ BACKHAUL_PORT: 'eighty' }), /BACKHAUL_PORT must be a whole number/],
  ];
  it.each(mistakes)('%s', (_label, load, message) => {
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it('never prints the password of a database URL', () => {
    const load = () =>
      gateway({ BACKHAUL_SOURCE: 'mysql', BACKHAUL_DATABASE_URL: 'postgres://reader:s3cret@db:5432/shop' });
    expect(load).toThrow(/must start with mysql:\/\/, got 'postgres:\/\/reader:\*\*\*@db:5432\/shop'/);
    expect(load).not.toThrow(/s3cret/);
  });
});

describe('admission limits come from variables, and only those set override the server defaults', () => {
  it('reads the four sizes and two shares, and refuses a share outside (0, 1]', () => {
    expect(server({}).admission).toEqual({});
    expect(
      server({
        BACKHAUL_MAX_SMALL_QUERIES: '400',
        BACKHAUL_MAX_MEDIUM_FILES: '20',
        BACKHAUL_MAX_LARGE_FILES: '4',
        BACKHAUL_LARGE_FILE_BYTES: '52428800',
        BACKHAUL_GATEWAY_SHARE: '1',
        BACKHAUL_CALLER_SHARE: '0.5',
      }).admission,
    ).toEqual({
      small: 400,
      medium: 20,
      large: 4,
      largeFileBytes: 52_428_800,
      gatewayShare: 1,
      callerShare: 0.5,
    });
    expect(() => server({ BACKHAUL_GATEWAY_SHARE: '1.5' })).toThrow(ConfigError);
    expect(() => server({ BACKHAUL_MAX_LARGE_FILES: 'ten' })).toThrow(ConfigError);
  });
});

describe('BACKHAUL_CODEC picks the gateway chunk codec', () => {
  it('auto by default; zstd, lz4 and identity as named; anything else is a ConfigError', () => {
    expect(gateway({}).codec).toBe('auto');
    for (const name of ['zstd', 'lz4', 'identity'] as const) {
      expect(gateway({ BACKHAUL_CODEC: name }).codec).toBe(name);
    }
    expect(() => gateway({ BACKHAUL_CODEC: 'gzip' })).toThrow(ConfigError);
  });
});

describe('operations: the gateway status port and the metrics token are set by variables', () => {
  it('no status port unless BACKHAUL_STATUS_PORT is set; on 127.0.0.1 unless BACKHAUL_STATUS_HOST says otherwise', () => {
    expect(gateway({}).status).toBeUndefined();
    expect(gateway({ BACKHAUL_STATUS_PORT: '9464' }).status).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(gateway({ BACKHAUL_STATUS_PORT: '9464', BACKHAUL_STATUS_HOST: '0.0.0.0' }).status).toEqual({
      port: 9464,
      host: '0.0.0.0',
    });
    expect(() => gateway({ BACKHAUL_STATUS_PORT: 'ninety' })).toThrow(ConfigError);
  });

  it('GET /metrics is open unless BACKHAUL_METRICS_TOKEN is set', () => {
    expect(server({}).metricsToken).toBeUndefined();
    expect(server({ BACKHAUL_METRICS_TOKEN: 'm'.repeat(32) }).metricsToken).toBe('m'.repeat(32));
  });
});

describe('BACKHAUL_PARQUET_COMPRESSION picks the page compression of the files', () => {
  it('zstd by default; zstd:LEVEL, snappy and none as named; anything else is a ConfigError', () => {
    expect(gateway({}).parquetCompression).toBe('zstd');
    expect(gateway({ BACKHAUL_PARQUET_COMPRESSION: 'zstd:9' }).parquetCompression).toEqual({
      codec: 'zstd',
      level: 9,
    });
    expect(gateway({ BACKHAUL_PARQUET_COMPRESSION: 'snappy' }).parquetCompression).toBe('snappy');
    expect(gateway({ BACKHAUL_PARQUET_COMPRESSION: 'none' }).parquetCompression).toBe('none');
    for (const value of ['gzip', 'zstd:0', 'zstd:23', 'zstd:x']) {
      expect(() => gateway({ BACKHAUL_PARQUET_COMPRESSION: value }), value).toThrow(ConfigError);
    }
  });
});

describe('retention of the command log and of result files', () => {
  it('7 days and a sweep a minute by default; an idempotency key may not outlive its command', () => {
    expect(server({}).retentionSeconds).toBe(604_800);
    expect(server({}).storageSweepIntervalSeconds).toBe(60);
    expect(
      server({ BACKHAUL_RETENTION_SECONDS: '86400', BACKHAUL_STORAGE_SWEEP_INTERVAL_SECONDS: '5' }),
    ).toMatchObject({
      retentionSeconds: 86_400,
      storageSweepIntervalSeconds: 5,
    });
    expect(() => server({ BACKHAUL_RETENTION_SECONDS: '3600' })).toThrow(ConfigError);
    expect(() => server({ BACKHAUL_STORAGE_SWEEP_INTERVAL_SECONDS: '0' })).toThrow(ConfigError);
  });
});

describe('BACKHAUL_LOG_LEVEL', () => {
  it('is info by default, takes pino’s level names, and refuses anything else at start-up', () => {
    expect(server({}).logLevel).toBe('info');
    expect(gateway({ BACKHAUL_LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(server({ BACKHAUL_LOG_LEVEL: 'silent' }).logLevel).toBe('silent');
    expect(() => server({ BACKHAUL_LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
  });
});

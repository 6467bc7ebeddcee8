// s3rver ships no types; this covers the part of its API the tests use (see its README).
declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }

  export default class S3rver {
    constructor(options?: S3rverOptions);
    /** Resolves with the address the HTTP server bound, its port included when `port: 0`. */
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}

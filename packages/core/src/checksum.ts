import xxhash, { type XXHashAPI } from 'xxhash-wasm';

/** xxhash64 with seed 0, written as 16 lower-case hex digits (docs/protocol.md §6.1). */
let api: Promise<XXHashAPI> | undefined;

function loadXxhash(): Promise<XXHashAPI> {
  api ??= xxhash();
  return api;
}

export interface Checksummer {
  /** xxhash64 of one buffer, as 16 hex digits. */
  digest(bytes: Uint8Array): string;
  /** An incremental hasher for a whole file fed piece by piece, in order. */
  stream(): FileHasher;
}

export interface FileHasher {
  update(bytes: Uint8Array): void;
  digest(): string;
}

const toHex = (value: bigint) => value.toString(16).padStart(16, '0');

/** Loads the WebAssembly module once per process; every later call resolves at once. */
export async function createChecksummer(): Promise<Checksummer> {
  const { h64Raw, create64 } = await loadXxhash();
  return {
    digest: (bytes) => toHex(h64Raw(bytes)),
    stream: () => {
      const state = create64();
      return {
        update: (bytes) => {
          state.update(bytes);
        },
        digest: () => toHex(state.digest()),
      };
    },
  };
}

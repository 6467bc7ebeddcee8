export { createZstdCodec, type ZstdCodecOptions } from './zstd-codec.js';

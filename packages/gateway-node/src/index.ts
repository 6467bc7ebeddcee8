export type { Logger } from '@backhaul/core';
// The upload half of the file flow (docs/protocol.md §6), for bytes that are already a file: the
// server API client, the command stream and the chunk uploader that `createGateway` is built from.
export {
  AdaptiveCodec,
  AUTO_CODEC,
  AUTO_SAMPLE_INTERVAL,
  type CodecChoice,
  type CodecDecisionInput,
  type CodecReason,
  type CodecSample,
  DEFAULT_LINK_FACTOR,
  DEFAULT_MIN_SAVING,
  decideCodec,
  type LinkWeighing,
  sampleCodec,
} from './codec-choice.js';
export {
  CommandStreamClient,
  type CommandStreamHandlers,
  type CommandStreamOptions,
} from './command-stream-client.js';
export { type ByteUploadOptions, type FileUploadOptions, uploadBytes, uploadFile } from './file-uploader.js';
export {
  createGateway,
  DEFAULT_CHUNKS_IN_FLIGHT,
  type Gateway,
  type GatewayEvent,
  type GatewayOptions,
} from './gateway.js';
export type { GatewayStatusOptions } from './gateway-status.js';
export {
  DEFAULT_PARQUET_COMPRESSION,
  encodeBatchesAsParquet,
  encodeCursorAsParquet,
  FILE_BATCH_SIZE,
  type FileBatch,
  fileBatches,
  type ParquetFileCompression,
} from './parquet-encoding.js';
export type { ProgressState } from './progress.js';
export { toJsonRows, toJsonValue } from './row-values.js';
export {
  type ChunkUpload,
  createConnectionPool,
  ServerApi,
  type ServerApiOptions,
} from './server-api.js';

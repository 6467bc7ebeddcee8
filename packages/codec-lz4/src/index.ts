export { createLz4Codec } from './lz4-codec.js';

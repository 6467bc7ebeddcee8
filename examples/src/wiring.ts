import { createLz4Codec } from '@backhaul/codec-lz4';
import { createZstdCodec } from '@backhaul/codec-zstd';
import type { Codec } from '@backhaul/core';
import type { CodecName } from './config.js';

export function codecFor(name: CodecName): Codec {
  return name === 'zstd' ? createZstdCodec() : createLz4Codec();
}

/** Log lines on stderr, so stdout stays free for the one machine-readable ready line. */
export function consoleLogger(who: string) {
  const line = (level: string) => (message: string, data?: object) =>
    process.stderr.write(
      `${new Date().toISOString()} ${who} ${level} ${message}${data ? ` ${JSON.stringify(data)}` : ''}\n`,
    );
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

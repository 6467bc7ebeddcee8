import { BackhaulError } from './errors.js';

/**
 * A chunk codec. `decode` is the trust boundary for compressed input: it must refuse to produce
 * more than `maxOutputBytes` (a decompression bomb is a small input that expands without bound)
 * and must not allocate past that cap before refusing.
 */
export interface Codec {
  readonly specificationVersion: 'v1';
  /** The name carried in the `backhaul-codec` header. */
  readonly name: string;
  encode(raw: Uint8Array): Promise<Uint8Array>;
  /**
   * @throws BackhaulError `payload-too-large` when the output would exceed the cap,
   *   `corrupt-data` when the input is not a valid frame.
   */
  decode(encoded: Uint8Array, maxOutputBytes: number): Promise<Uint8Array>;
}

export const identityCodec: Codec = {
  specificationVersion: 'v1',
  name: 'identity',
  encode: async (raw) => raw,
  decode: async (encoded, maxOutputBytes) => {
    assertWithinCap(encoded.length, maxOutputBytes, 'identity');
    return encoded;
  },
};

export function assertWithinCap(length: number, maxOutputBytes: number, codec: string): void {
  if (length > maxOutputBytes) {
    throw new BackhaulError(
      'payload-too-large',
      `${codec} output of ${length} bytes exceeds the cap of ${maxOutputBytes} bytes`,
    );
  }
}

/** The codecs one side accepts, looked up by header name; an unknown name is refused, never guessed. */
export class CodecRegistry {
  readonly #codecs = new Map<string, Codec>();

  constructor(codecs: readonly Codec[]) {
    for (const codec of [identityCodec, ...codecs]) this.#codecs.set(codec.name, codec);
  }

  get names(): string[] {
    return [...this.#codecs.keys()];
  }

  get(name: string): Codec {
    const codec = this.#codecs.get(name);
    if (!codec) {
      throw new BackhaulError(
        'unsupported-codec',
        `Codec '${name}' is not accepted; accepted: ${this.names.join(', ')}`,
        { details: { accepted: this.names } },
      );
    }
    return codec;
  }
}

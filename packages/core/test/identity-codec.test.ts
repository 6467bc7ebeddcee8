import { BackhaulError, type Codec, CodecRegistry, identityCodec } from '@backhaul/core';
import { runCodecConformance } from '@backhaul/core/testing';
import { describe, expect, it } from 'vitest';

// Every byte string is a valid identity encoding of itself, so there is no corrupt frame to detect.
runCodecConformance('identity', () => identityCodec, { validatesFrames: false });

const fakeCodec: Codec = {
  specificationVersion: 'v1',
  name: 'fake',
  encode: async (raw) => raw,
  decode: async (encoded) => encoded,
};

describe('CodecRegistry', () => {
  it('always accepts identity, listed first', () => {
    const registry = new CodecRegistry([]);
    expect(registry.names).toEqual(['identity']);
    expect(registry.get('identity')).toBe(identityCodec);
  });

  it('looks codecs up by their header name', () => {
    const registry = new CodecRegistry([fakeCodec]);
    expect(registry.names).toEqual(['identity', 'fake']);
    expect(registry.get('fake')).toBe(fakeCodec);
  });

  // §6.2: "A codec not in hello.codecs: 415 unsupported-codec".
  it('refuses an unknown name with unsupported-codec, listing the accepted ones', () => {
    const registry = new CodecRegistry([fakeCodec]);
    let caught: unknown;
    try {
      registry.get('brotli');
    } catch (error) {
      caught = error;
    }
    expect(BackhaulError.isInstance(caught)).toBe(true);
    const error = caught as BackhaulError;
    expect(error.code).toBe('unsupported-codec');
    expect(error.status).toBe(415);
    expect(error.details).toEqual({ accepted: ['identity', 'fake'] });
  });

  it('does not guess: names are matched exactly', () => {
    const registry = new CodecRegistry([fakeCodec]);
    for (const name of ['FAKE', ' fake', 'identity ', '']) {
      expect(() => registry.get(name)).toThrow(BackhaulError);
    }
  });
});

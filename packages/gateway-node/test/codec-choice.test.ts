import { type Codec, identityCodec } from '@backhaul/core';
import { describe, expect, it } from 'vitest';
import { AdaptiveCodec, type CodecDecisionInput, decideCodec } from '../src/codec-choice.js';
import { GoodputMeter } from '../src/goodput.js';

const MiB = 1 << 20;
const KiB = 1 << 10;

/** A 512 KiB sample zstd halved in 2 ms, weighed with the defaults. */
const sample = (overrides: Partial<CodecDecisionInput>): CodecDecisionInput => ({
  rawLength: 512 * KiB,
  encodedLength: 256 * KiB,
  encodeSeconds: 0.002,
  goodput: undefined,
  minSaving: 0.1,
  linkFactor: 2,
  ...overrides,
});

describe("decideCodec: 'auto' keeps the candidate if it saves enough bytes and they are worth its time", () => {
  it('before the link is measured, the data alone decides', () => {
    expect(decideCodec(sample({}))).toEqual({ keep: true, reason: 'data' });
    // 5 % saved is under minSaving, whatever the link.
    expect(decideCodec(sample({ encodedLength: 0.95 * 512 * KiB }))).toEqual({ keep: false, reason: 'data' });
    expect(decideCodec(sample({ encodedLength: 0.95 * 512 * KiB, goodput: 1 }))).toEqual({
      keep: false,
      reason: 'data',
    });
  });

  it('keeps it on a slow link: 256 KiB saved at 10 MiB/s is 25 ms of wire, against 2 × 2 ms of encoding', () => {
    expect(decideCodec(sample({ goodput: 10 * MiB }))).toEqual({ keep: true, reason: 'link' });
  });

  it('drops it on a fast link: 256 KiB saved at 200 MiB/s is 1.25 ms of wire, under 2 × 2 ms', () => {
    expect(decideCodec(sample({ goodput: 200 * MiB }))).toEqual({ keep: false, reason: 'link' });
  });

  it('the break-even is savedBytes / goodput = encodeSeconds × linkFactor', () => {
    // 256 KiB / 64 MiB/s = 3.9 ms: kept under factor 1 (2 ms), dropped under factor 2 (4 ms).
    expect(decideCodec(sample({ goodput: 64 * MiB, linkFactor: 1 })).keep).toBe(true);
    expect(decideCodec(sample({ goodput: 64 * MiB, linkFactor: 2 })).keep).toBe(false);
    // A slower encode (a loaded CPU) moves the same link to identity.
    expect(decideCodec(sample({ goodput: 10 * MiB, encodeSeconds: 0.02 })).keep).toBe(false);
  });
});

describe('GoodputMeter: bytes answered per second over the last window of PUTs', () => {
  const clock = () => {
    let now = 0;
    return {
      now: () => now,
      at: (ms: number) => {
        now = ms;
      },
    };
  };

  it('says nothing until 8 PUTs (or a whole smaller window) are answered, then counts from the first PUT sent', () => {
    const time = clock();
    // The query and the first row group took 5 s before any PUT: that is not the link's time.
    time.at(-5000);
    const meter = new GoodputMeter(32, time.now);
    time.at(0);
    meter.sending();
    meter.sending();
    for (let i = 1; i <= 7; i++) {
      time.at(i * 10);
      meter.record(MiB);
    }
    expect(meter.estimate()).toBeUndefined();
    time.at(80);
    meter.record(MiB);
    // 8 MiB in the 80 ms since the first PUT went out.
    expect(meter.estimate()).toBeCloseTo((8 * MiB) / 0.08);

    const small = new GoodputMeter(2, time.now);
    time.at(80);
    small.sending();
    time.at(100);
    small.record(MiB);
    expect(small.estimate()).toBeUndefined();
    time.at(120);
    small.record(MiB);
    expect(small.estimate()).toBeCloseTo((2 * MiB) / 0.04);
  });

  it('a burst of answers (a long link: a round trip of chunks answered at once) is averaged over the window', () => {
    const time = clock();
    const meter = new GoodputMeter(4, time.now);
    // Round trips of 100 ms, each answering 4 chunks of 1 MiB within 3 ms: 40 MiB/s, not 1 MiB/ms.
    for (let trip = 1; trip <= 5; trip++) {
      for (let i = 0; i < 4; i++) {
        time.at(trip * 100 + i);
        meter.record(MiB);
      }
    }
    expect(meter.estimate()).toBeCloseTo((4 * MiB) / 0.1);
  });
});

describe('AdaptiveCodec: each stretch follows its sample, and the summary says why', () => {
  /** Halves every chunk, so the data rule always keeps it. */
  const halve: Codec = {
    specificationVersion: 'v1',
    name: 'halve',
    encode: async (raw) => raw.subarray(0, raw.length / 2),
    decode: async () => {
      throw new Error('not used');
    },
  };
  const chunk = new Uint8Array(64 * KiB);

  it('data decides until there is a goodput; then an infinitely fast link drops it and a slow one keeps it', async () => {
    const goodputs = [undefined, Number.POSITIVE_INFINITY, 1];
    let stretch = 0;
    const adaptive = new AdaptiveCodec({
      candidate: halve,
      identity: identityCodec,
      interval: 2,
      goodput: () => goodputs[stretch++],
    });
    const codecs: string[] = [];
    for (let index = 0; index < 6; index++) codecs.push((await adaptive.encode(index, chunk)).codec);
    // Stretch 0: no goodput, halved. Stretch 1: 32 KiB saved / ∞ = 0 s, never worth an encode.
    // Stretch 2: 32 KiB at 1 byte/s would take 9 hours.
    expect(codecs).toEqual(['halve', 'halve', 'identity', 'identity', 'halve', 'halve']);
    expect(adaptive.choice()).toEqual({
      codec: 'halve',
      // 'halve' went 2 chunks by data, 2 by link: the link did not decide most of them.
      reason: 'data',
      sampleRatio: 0.5,
      samples: 3,
      chunks: { halve: 4, identity: 2 },
      goodput: 1,
    });
  });

  it("a file the link sent as identity says 'link', with the goodput it was weighed against", async () => {
    const adaptive = new AdaptiveCodec({
      candidate: halve,
      identity: identityCodec,
      interval: 2,
      // Infinitely fast: 0 s of wire saved, never worth an encode, however quick (no timing here).
      goodput: () => Number.POSITIVE_INFINITY,
    });
    for (let index = 0; index < 4; index++) await adaptive.encode(index, chunk);
    expect(adaptive.choice()).toMatchObject({
      codec: 'identity',
      reason: 'link',
      chunks: { identity: 4 },
      goodput: Number.POSITIVE_INFINITY,
    });
  });
});

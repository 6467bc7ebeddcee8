import { createHmac } from 'node:crypto';
import { BackhaulError, createDownloadSigner } from '@backhaul/core';
import { describe, expect, it } from 'vitest';

const secret = 'a-secret-of-at-least-16-bytes';
const key = 'results/gw-1/cmd-1.parquet';
const now = 1_700_000_000_000;
const expiresAt = now + 3_600_000;

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(BackhaulError.isInstance(error)).toBe(true);
    return (error as BackhaulError).code;
  }
}

describe('§3.5 a signed link verifies until it expires', () => {
  it('a valid link verifies, for the whole hour', () => {
    const signer = createDownloadSigner(secret);
    const query = signer.sign(key, expiresAt);
    expect(query.get('expires')).toBe(String(expiresAt / 1000));
    expect(query.get('signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(codeOf(() => signer.verify(key, query, now))).toBeUndefined();
    expect(codeOf(() => signer.verify(key, query, expiresAt - 1))).toBeUndefined();
    // As it arrives on a request: through a URL's search string.
    const url = new URL(`http://api.example.com/v1/downloads/${encodeURIComponent(key)}?${query}`);
    expect(codeOf(() => signer.verify(key, url.searchParams, now))).toBeUndefined();
  });

  it('the signature is HMAC-SHA256 of "key\\nexpires", so another implementation can check it', () => {
    const query = createDownloadSigner(secret).sign(key, expiresAt);
    const expected = createHmac('sha256', secret)
      .update(`${key}\n${expiresAt / 1000}`)
      .digest('hex');
    expect(query.get('signature')).toBe(expected);
  });

  it('a key as bytes signs like the same key as text', () => {
    const fromBytes = createDownloadSigner(new TextEncoder().encode(secret)).sign(key, expiresAt);
    expect(fromBytes.toString()).toBe(createDownloadSigner(secret).sign(key, expiresAt).toString());
  });

  it('refuses a secret shorter than 16 bytes', () => {
    expect(() => createDownloadSigner('short')).toThrow(RangeError);
  });
});

describe("§3.5 a link nobody signed is 'forbidden'", () => {
  const signer = createDownloadSigner(secret);
  const query = signer.sign(key, expiresAt);

  it('wrong signing key', () => {
    const other = createDownloadSigner('another-secret-of-16-bytes-or-more');
    expect(codeOf(() => other.verify(key, query, now))).toBe('forbidden');
  });

  it('another object key', () => {
    expect(codeOf(() => signer.verify('results/gw-2/cmd-9.parquet', query, now))).toBe('forbidden');
  });

  it('tampered expiry (a later time)', () => {
    const tampered = new URLSearchParams(query);
    tampered.set('expires', String(Number(query.get('expires')) + 86_400));
    expect(codeOf(() => signer.verify(key, tampered, now))).toBe('forbidden');
  });

  it('tampered signature (one digit changed)', () => {
    const signature = query.get('signature')!;
    const tampered = new URLSearchParams(query);
    tampered.set('signature', `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`);
    expect(codeOf(() => signer.verify(key, tampered, now))).toBe('forbidden');
  });

  it('malformed or missing parameters', () => {
    const signature = query.get('signature')!;
    for (const search of [
      '',
      `expires=${query.get('expires')}`,
      `signature=${signature}`,
      `expires=abc&signature=${signature}`,
      `expires=${query.get('expires')}&signature=${signature.toUpperCase()}`,
      `expires=${query.get('expires')}&signature=${signature.slice(2)}`,
    ]) {
      expect(
        codeOf(() => signer.verify(key, new URLSearchParams(search), now)),
        search,
      ).toBe('forbidden');
    }
  });
});

describe("§3.5 an expired link is 'gone'", () => {
  it('at and after its expiry', () => {
    const signer = createDownloadSigner(secret);
    const query = signer.sign(key, expiresAt);
    expect(codeOf(() => signer.verify(key, query, expiresAt))).toBe('gone');
    expect(codeOf(() => signer.verify(key, query, expiresAt + 86_400_000))).toBe('gone');
  });

  it('an expired link with a bad signature is still forbidden: expiry is told only to holders of a real link', () => {
    const signer = createDownloadSigner(secret);
    const query = createDownloadSigner('another-secret-of-16-bytes-or-more').sign(key, now - 1000);
    expect(codeOf(() => signer.verify(key, query, now))).toBe('forbidden');
  });
});

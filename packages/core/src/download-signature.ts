import { createHmac, timingSafeEqual } from 'node:crypto';
import { BackhaulError } from './errors.js';

/**
 * Expiring download links for storages that cannot presign their own (docs/protocol.md §3.5):
 * `?expires=<epoch s>&signature=<hex HMAC-SHA256 of "key\nexpires">`. Anyone holding the link
 * may download until it expires; nobody can forge one for another key or a later time.
 */
export interface DownloadSigner {
  sign(key: string, expiresAt: number): URLSearchParams;
  /** @throws BackhaulError `forbidden` for a bad signature, `gone` once expired. */
  verify(key: string, query: URLSearchParams, now?: number): void;
}

export function createDownloadSigner(secret: string | Uint8Array): DownloadSigner {
  if (secret.length < 16) throw new RangeError('The download signing secret must be at least 16 bytes');
  const mac = (key: string, expires: string) =>
    createHmac('sha256', secret).update(`${key}\n${expires}`).digest();

  return {
    sign(key, expiresAt) {
      const expires = String(Math.floor(expiresAt / 1000));
      return new URLSearchParams({ expires, signature: mac(key, expires).toString('hex') });
    },
    verify(key, query, now = Date.now()) {
      const expires = query.get('expires') ?? '';
      const signature = query.get('signature') ?? '';
      if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) {
        throw new BackhaulError('forbidden', 'The download link is malformed');
      }
      if (!timingSafeEqual(mac(key, expires), Buffer.from(signature, 'hex'))) {
        throw new BackhaulError('forbidden', 'The download link signature is not valid');
      }
      if (Number(expires) * 1000 <= now) throw new BackhaulError('gone', 'The download link has expired');
    },
  };
}

import type { CredentialStore, Logger } from '@backhaul/core';
import type { CommandStreams } from './command-stream.js';
import type { QueryEvents } from './query-events.js';

/**
 * Ends live command streams whose enrolled token was revoked, or whose gateway was removed, on
 * another server sharing the credential store (docs/protocol.md §10.4); and callers' query event
 * streams opened with an enrolled caller or admin token that was revoked or removed (§10.5). The server that handles
 * the revocation ends its own streams at once; this timer is how the others learn of it.
 *
 * Why a periodic re-check rather than Redis pub/sub: it works with every `CredentialStore` (the
 * interface needs no notification channel, and a shared memory store in tests behaves like Redis),
 * it cannot miss a revocation published while a subscriber connection was down (pub/sub is
 * fire-and-forget, so it would need this re-check as a fallback anyway), and its cost is bounded
 * and small: one lookup per live enrolled stream per interval, on the connection the server
 * already has. The price is latency: a stream on another server ends within one interval
 * (default 5 s), while every new request with the token is refused at once, because each
 * request looks its token up.
 */
export interface RevocationWatch {
  /** One pass, exposed for tests: checks every live enrolled stream once. */
  check(): Promise<void>;
  start(): void;
  stop(): void;
}

export function createRevocationWatch(options: {
  streams: CommandStreams;
  /** Callers' query event streams opened with enrolled tokens end the same way. */
  events?: Pick<QueryEvents, 'enrolledStreams' | 'closeEnrolled'>;
  store: CredentialStore;
  intervalMs: number;
  logger: Logger;
}): RevocationWatch {
  const { streams, store, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;

  async function check(): Promise<void> {
    await Promise.all(
      streams.enrolledStreams().map(async ({ gatewayId, token }) => {
        let active: Awaited<ReturnType<CredentialStore['findActiveToken']>>;
        try {
          active = await store.findActiveToken(token.sha256);
        } catch (error) {
          // An unreachable store proves nothing: the stream stays, the next pass asks again.
          logger.warn('could not re-check a gateway token', { gatewayId, error: String(error) });
          return;
        }
        if (active?.gatewayId === gatewayId && active.tokenId === token.tokenId) return;
        if (streams.closeEnrolled(gatewayId, token.tokenId)) {
          logger.info('ended the stream of a revoked gateway token', { gatewayId, tokenId: token.tokenId });
        }
      }),
    );
    await checkCallerStreams();
  }

  /** One lookup per distinct token, however many queries its caller follows. */
  async function checkCallerStreams(): Promise<void> {
    const tokens = new Map<string, { callerId: string; tokenId: string }>();
    for (const { callerId, token } of options.events?.enrolledStreams() ?? [])
      tokens.set(token.sha256, { callerId, tokenId: token.tokenId });
    await Promise.all(
      [...tokens].map(async ([sha256, { callerId, tokenId }]) => {
        let active: Awaited<ReturnType<CredentialStore['findActiveCallerToken']>>;
        try {
          active = await store.findActiveCallerToken(sha256);
        } catch (error) {
          logger.warn('could not re-check a caller token', { callerId, error: String(error) });
          return;
        }
        if (active?.callerId === callerId && active.tokenId === tokenId) return;
        const ended = options.events?.closeEnrolled(callerId, tokenId) ?? 0;
        if (ended > 0)
          logger.info('ended the event streams of a revoked caller token', { callerId, tokenId, ended });
      }),
    );
  }

  return {
    check,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        if (checking) return;
        checking = check().finally(() => {
          checking = undefined;
        });
      }, options.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

import { Redis } from 'ioredis';

/** Connects once and PINGs, failing fast: the reachability probe of every Redis-backed suite. */
export async function pingRedis(url: string): Promise<void> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket error (e.g. ECONNREFUSED) says more than connect()'s "Connection is closed".
  let socketError: Error | undefined;
  probe.on('error', (error: Error) => {
    socketError ??= error;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw socketError ?? error;
  } finally {
    probe.disconnect();
  }
}

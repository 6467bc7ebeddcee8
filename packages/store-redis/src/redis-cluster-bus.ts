import type { BusHandler, BusMessage, ClusterBus } from '@backhaul/core';
import { Redis } from 'ioredis';
import { closeConnection, defaultKeyPrefix, defaultRedisUrl, guard } from './redis-connection.js';

export interface RedisClusterBusOptions {
  /**
   * A connection to publish on; the bus then leaves it open on `close()`. Subscribing needs a
   * connection of its own (Redis puts a subscribing connection in a mode where it runs nothing
   * else): the bus opens it as a duplicate of this one, and closes it.
   */
  redis?: Redis;
  /** Used when `redis` is not given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prepended to every channel (ioredis does not prefix channels), so deployments can share one Redis. Default `backhaul:`. */
  keyPrefix?: string;
}

interface ChannelState {
  handlers: Set<BusHandler>;
  /** The SUBSCRIBE of this channel: every subscriber waits for it before it counts as subscribed. */
  ready: Promise<unknown>;
}

/**
 * A `ClusterBus` on Redis pub/sub (docs/cluster.md "Bus and row log"): at-most-once and in
 * order per publisher, as the bus asks. A message published while an instance's subscriber
 * connection is down is lost to it; ioredis subscribes again on reconnect, and the server's
 * sweep finds what the lost doorbell announced.
 */
export function createRedisClusterBus(options: RedisClusterBusOptions = {}): ClusterBus {
  const prefix = `${options.keyPrefix ?? defaultKeyPrefix}bus:`;
  const ownsPublisher = options.redis === undefined;
  const publisher = options.redis ?? new Redis(options.url ?? defaultRedisUrl, { maxRetriesPerRequest: 1 });
  // The subscriber keeps the publisher's settings but no key prefix: channels are prefixed here.
  const subscriber = publisher.duplicate({ keyPrefix: undefined, maxRetriesPerRequest: 1 });
  // Every failed call reports itself; the connection's own error events would only be noise.
  if (ownsPublisher) publisher.on('error', () => undefined);
  subscriber.on('error', () => undefined);
  const channels = new Map<string, ChannelState>();
  let closed = false;

  subscriber.on('message', (channel: string, text: string) => {
    const state = channels.get(channel);
    if (!state) return;
    let message: BusMessage;
    try {
      message = JSON.parse(text) as BusMessage;
    } catch {
      return; // not one of ours: another program publishing under this prefix
    }
    for (const handler of [...state.handlers]) handler(message);
  });

  return {
    name: 'redis',
    async publish(channel, message) {
      await guard('Redis publish failed', publisher.publish(prefix + channel, JSON.stringify(message)));
    },
    async subscribe(channel, handler) {
      if (closed) throw new Error('This bus is closed');
      const name = prefix + channel;
      const entry: BusHandler = (message) => handler(message);
      let state = channels.get(name);
      if (!state) {
        // Commands on one connection run in order: a SUBSCRIBE sent after an UNSUBSCRIBE of the
        // same channel (its last subscriber left a moment ago) leaves the channel subscribed.
        state = { handlers: new Set(), ready: subscriber.subscribe(name) };
        channels.set(name, state);
      }
      state.handlers.add(entry);
      const current = state;
      const unsubscribe = async () => {
        if (!current.handlers.delete(entry) || current.handlers.size > 0) return;
        if (channels.get(name) === current) channels.delete(name);
        if (!closed) await subscriber.unsubscribe(name).catch(() => undefined);
      };
      try {
        await guard('Redis subscribe failed', current.ready);
      } catch (error) {
        await unsubscribe();
        throw error;
      }
      return unsubscribe;
    },
    async close() {
      if (closed) return;
      closed = true;
      channels.clear();
      await closeConnection(subscriber);
      if (ownsPublisher) await closeConnection(publisher);
    },
  };
}

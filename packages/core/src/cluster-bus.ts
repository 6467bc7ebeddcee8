/**
 * Small JSON messages between the server instances of one deployment (docs/cluster.md, "Bus and
 * row log"): a command accepted on one instance rings the instance holding its gateway's stream,
 * and a query's changes ring every instance with a caller following it. A message is a doorbell,
 * never the data: the receiver reads the command store or the row log, so a message lost (an
 * instance restarting, Redis failing over) delays work until the sweep finds it, and loses nothing.
 */
export interface ClusterBus {
  readonly name: string;
  /** Sends `message` (JSON-serialisable, a few hundred bytes) to every subscriber of `channel`, this process's included. */
  publish(channel: string, message: BusMessage): Promise<void>;
  /**
   * Calls `handler` with every message published on `channel` from the moment this resolves
   * (the subscription is in place: a publish after it is delivered), in publish order per
   * publisher. Resolves with the function that ends this subscription.
   */
  subscribe(channel: string, handler: BusHandler): Promise<Unsubscribe>;
  /** Ends every subscription; a bus given to a server is closed by its owner. */
  close(): Promise<void>;
}

export type BusMessage = { [key: string]: string | number | boolean | null };
export type BusHandler = (message: BusMessage) => void;
export type Unsubscribe = () => Promise<void>;

/** The bus of one process: today's single-instance behaviour, and the default. */
export function createMemoryClusterBus(): ClusterBus {
  const channels = new Map<string, Set<BusHandler>>();
  let closed = false;
  return {
    name: 'memory',
    async publish(channel, message) {
      if (closed) return;
      // A copy, as over a network: no subscriber shares an object with the publisher.
      const json = JSON.stringify(message);
      const handlers = channels.get(channel);
      if (!handlers) return;
      // Delivered after the publisher's current step, like a message that crossed a wire.
      for (const handler of [...handlers]) {
        queueMicrotask(() => {
          if (channels.get(channel)?.has(handler)) handler(JSON.parse(json));
        });
      }
    },
    async subscribe(channel, handler) {
      // Each subscription is its own entry, so one handler subscribed twice is called twice.
      const entry: BusHandler = (message) => handler(message);
      let handlers = channels.get(channel);
      if (!handlers) {
        handlers = new Set();
        channels.set(channel, handlers);
      }
      handlers.add(entry);
      return async () => {
        const current = channels.get(channel);
        current?.delete(entry);
        if (current?.size === 0) channels.delete(channel);
      };
    },
    async close() {
      closed = true;
      channels.clear();
    },
  };
}

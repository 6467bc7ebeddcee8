import type { BusHandler, ClusterBus, Logger } from '@backhaul/core';
import type { SseConnection } from './sse-connection.js';

/**
 * The channels server instances ring each other on (docs/cluster.md "Bus and row log"). Every
 * message is a doorbell naming what changed; the receiver reads the store or the row log.
 */
export const busChannels = {
  /** `{ type: 'pending', id }`: a command waits for this gateway; the instance with its stream sends it. */
  gateway: (gatewayId: string) => `gateway:${gatewayId}`,
  /** `{ type: 'record', progressed }` or `{ type: 'rows', position }`: a query changed. */
  query: (queryId: string) => `query:${queryId}`,
};

/**
 * Subscribes `handler` to `channel` for as long as `stream` stays open. Resolves once the
 * subscription is in place, so whatever is read after it and whatever is rung after it together
 * cover every change.
 */
export async function subscribeWhileOpen(
  bus: ClusterBus,
  channel: string,
  stream: SseConnection,
  handler: BusHandler,
  logger: Logger,
): Promise<void> {
  const unsubscribe = await bus.subscribe(channel, handler);
  // Called at once when the stream closed while the subscription was being set up.
  stream.onClose(() => {
    unsubscribe().catch((error) =>
      logger.warn('leaving a bus channel failed', { channel, error: String(error) }),
    );
  });
}

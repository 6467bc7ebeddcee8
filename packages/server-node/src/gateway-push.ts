import type { ClusterBus, CommandRecord, Logger } from '@backhaul/core';
import { busChannels, subscribeWhileOpen } from './bus-channels.js';
import { commandLogger } from './command-trace.js';
import type { SseConnection } from './sse-connection.js';

/**
 * Push across instances (docs/cluster.md "Bus and row log"): a command pending for a gateway
 * whose stream another instance holds is announced on that gateway's channel, and the instance
 * holding the stream sends it at once. The dispatcher's sweep stays as the safety net for an
 * announcement lost (Redis failing over, an instance restarting between the two).
 */
export interface GatewayPush {
  /**
   * While `stream` is open, announcements for `gatewayId` are sent on it. Resolves once
   * listening, or once the bus refused (Redis down): the stream then works on the sweep alone.
   */
  watch(gatewayId: string, stream: SseConnection): Promise<void>;
  /** The command is pending and its gateway's stream is not on this instance: ring the one it is on. */
  announce(record: CommandRecord): void;
}

export interface GatewayPushOptions {
  bus: ClusterBus;
  /** Sends a pending command on this instance's stream of its gateway (compare-and-set: once). */
  deliver(id: string): Promise<void>;
  logger: Logger;
}

export function createGatewayPush(options: GatewayPushOptions): GatewayPush {
  const { bus, logger } = options;
  return {
    async watch(gatewayId, stream) {
      await subscribeWhileOpen(
        bus,
        busChannels.gateway(gatewayId),
        stream,
        (message) => {
          if (message.type !== 'pending' || typeof message.id !== 'string') return;
          const id = message.id;
          options.deliver(id).catch((error) =>
            logger.warn('a pushed command could not be sent', {
              commandId: id,
              gatewayId,
              error: String(error),
            }),
          );
        },
        logger,
      ).catch((error) =>
        logger.warn('listening for pushed commands failed; the sweep sends them', {
          gatewayId,
          error: String(error),
        }),
      );
    },
    announce(record) {
      bus.publish(busChannels.gateway(record.gatewayId), { type: 'pending', id: record.id }).catch((error) =>
        // The sweep of the instance holding the stream finds the command instead.
        commandLogger(logger, record).warn('announcing a command failed', { error: String(error) }),
      );
    },
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One Server-Sent Events response, for gateways' command streams and callers' query streams.
 * The headers are the ones docs/protocol.md §4 requires of a command stream; they suit any
 * stream that must cross proxies unbuffered and uncompressed.
 */
export interface SseConnection {
  readonly closed: boolean;
  /** The client has not yet taken what was written (the socket's buffer is past its high-water mark). */
  readonly backlogged: boolean;
  /** Writes one event; `id` becomes the client's Last-Event-ID. Returns false once closed. */
  send(event: string, data: unknown, id?: string): boolean;
  /**
   * A comment line: keeps proxies and the client's idle timer from cutting a quiet stream. False
   * when it was not written (closed, or earlier bytes still queued, which keep the stream alive).
   */
  comment(text: string): boolean;
  /**
   * Epoch ms of the last heartbeat written, undefined before the first. A heartbeat is skipped
   * while earlier bytes are still queued, so it also says the client was taking what it was sent.
   */
  readonly lastHeartbeatAt: number | undefined;
  /**
   * Resolves once the client has taken what was queued (or the stream closed): a sender of many
   * events in a row awaits it between them, so a burst never piles up past the cap.
   */
  drained(): Promise<void>;
  close(): void;
  onClose(listener: () => void): void;
}

export interface SseHub {
  open(req: IncomingMessage, res: ServerResponse, retryMs: number): SseConnection;
  closeAll(): void;
}

/** What the hub's timer sees of a stream: it also writes the heartbeat, and notes when. */
interface HubConnection extends SseConnection {
  heartbeat(): void;
}

/**
 * Owns every open stream and one heartbeat timer for all of them (not one timer per stream).
 * `maxPendingBytes`: a slow reader that lets more than this pile up in its stream's buffers
 * (ours and the socket's) is cut; it reconnects and catches up.
 */
export function createSseHub(heartbeatMs: number, maxPendingBytes: number): SseHub {
  const open = new Set<HubConnection>();
  let timer: NodeJS.Timeout | undefined;

  const ensureTimer = () => {
    if (timer || open.size === 0) return;
    // docs/protocol.md §4: a comment line at least every 15 s; the gateway calls 45 s of silence dead.
    timer = setInterval(() => {
      for (const connection of open) connection.heartbeat();
    }, heartbeatMs);
    timer.unref();
  };

  return {
    open(req, res, retryMs) {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      res.flushHeaders();
      req.socket.setNoDelay(true);
      req.socket.setKeepAlive(true, Math.min(heartbeatMs, 60_000));
      // A long-lived stream must not be cut by the server's own request/idle timeouts.
      req.socket.setTimeout(0);

      const listeners: (() => void)[] = [];
      let closed = false;
      let lastHeartbeatAt: number | undefined;
      /** The wait for the client to take a backlog, and what ends it (a drain, or the close). */
      let draining: Promise<void> | undefined;
      let endDrain: (() => void) | undefined;
      const write = (text: string): boolean => {
        if (closed) return false;
        if (res.writableLength > maxPendingBytes) {
          // end() would keep the queue until the client reads it, which it may never do: a
          // destroyed socket frees it now. The client reconnects (§4) and is sent what it missed.
          markClosed();
          res.destroy();
          return false;
        }
        res.write(text);
        return true;
      };
      const markClosed = () => {
        if (closed) return;
        closed = true;
        open.delete(connection);
        if (open.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
        endDrain?.();
        for (const listener of listeners) listener();
      };
      const connection: HubConnection = {
        get closed() {
          return closed;
        },
        get lastHeartbeatAt() {
          return lastHeartbeatAt;
        },
        get backlogged() {
          return !closed && res.writableNeedDrain;
        },
        send(event, data, id) {
          const json = JSON.stringify(data);
          return write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${json}\n\n`);
        },
        comment(text) {
          // Skip a heartbeat while earlier bytes are still queued: they keep the stream alive already.
          return res.writableLength === 0 && write(`: ${text}\n\n`);
        },
        heartbeat() {
          if (connection.comment('heartbeat')) lastHeartbeatAt = Date.now();
        },
        drained() {
          if (!connection.backlogged) return Promise.resolve();
          // One wait per backlog, shared by every caller: nothing accumulates on a long stream.
          draining ??= new Promise((resolve) => {
            const done = () => {
              res.off('drain', done);
              endDrain = undefined;
              draining = undefined;
              resolve();
            };
            endDrain = done;
            res.once('drain', done);
          });
          return draining;
        },
        close() {
          if (closed) return;
          markClosed();
          res.end();
        },
        onClose(listener) {
          if (closed) listener();
          else listeners.push(listener);
        },
      };
      res.once('close', markClosed);
      res.once('error', markClosed);
      open.add(connection);
      ensureTimer();
      write(`retry: ${retryMs}\n\n`);
      return connection;
    },
    closeAll() {
      for (const connection of [...open]) connection.close();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

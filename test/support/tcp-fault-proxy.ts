import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between a gateway (or a caller) and the server that breaks the transport itself,
 * below HTTP: it cuts a connection after N bytes (FIN), resets it (RST), delays every piece,
 * or stalls it (stops forwarding while both sockets stay open, the fault no HTTP-level proxy can
 * make). Faults are aimed by rules that watch the bytes of one direction for a marker (e.g.
 * `PUT /v1/gateway/commands/`): light HTTP awareness without parsing HTTP, so keep-alive
 * connections that carry many requests can still be hit at one request.
 *
 * Duplicating a request needs request boundaries, so it stays in the HTTP proxy (fault-proxy.ts).
 */

export type Direction = 'upstream' | 'downstream';

export type TcpFault =
  /** Forward `afterBytes` more bytes, then close both sockets politely (FIN): a truncated message. */
  | { kind: 'cut'; afterBytes: number }
  /** Forward `afterBytes` more bytes, then reset both sockets (RST). */
  | { kind: 'reset'; afterBytes: number }
  /** Forward `afterBytes` more bytes, then forward nothing more either way, sockets left open. */
  | { kind: 'stall'; afterBytes: number };

export interface TcpFaultRule {
  /** Which bytes are watched: client → server (`upstream`, default) or server → client. */
  direction?: Direction;
  /** Counting starts where this text first appears; without it, at the connection's first byte. */
  marker?: string;
  fault: TcpFault;
  /** How many connections this rule may hit (default 1). */
  times?: number;
}

/** One proxied connection, for a test that picks it by what the client sent first. */
export interface ProxiedConnection {
  readonly id: number;
  /** The client's first bytes (up to 512) as latin1 text, e.g. `GET /v1/gateway/commands HTTP/1.1…`. */
  readonly head: string;
  readonly bytes: Record<Direction, number>;
  readonly state: 'open' | 'stalled' | 'closed';
  /** Stops forwarding both ways; the sockets stay open and what arrives meanwhile is dropped. */
  stall(): void;
  /** Closes both sockets with a RST. */
  reset(): void;
}

export interface TcpFaultProxy {
  url: string;
  port: number;
  /** Every connection accepted, in order. */
  readonly connections: readonly ProxiedConnection[];
  /** Adds a rule; it applies to bytes that arrive from now on. */
  addRule(rule: TcpFaultRule): void;
  /** Holds every piece this long before forwarding it (both directions, order kept); 0 turns it off. */
  setDelay(ms: number): void;
  /** How many times a rule fired, all rules together. */
  readonly fired: number;
  close(): Promise<void>;
}

const HEAD_BYTES = 512;

interface ArmedRule {
  rule: TcpFaultRule;
  left: number;
}

export async function startTcpFaultProxy(target: string): Promise<TcpFaultProxy> {
  const upstreamUrl = new URL(target);
  const rules: ArmedRule[] = [];
  const connections: Connection[] = [];
  let delayMs = 0;
  let fired = 0;

  class Connection implements ProxiedConnection {
    readonly id: number;
    head = '';
    bytes: Record<Direction, number> = { upstream: 0, downstream: 0 };
    state: 'open' | 'stalled' | 'closed' = 'open';
    /** Per direction: the bytes still to forward before a triggered fault strikes. */
    readonly countdown: Partial<Record<Direction, { left: number; fault: TcpFault }>> = {};
    /** Per direction: the last bytes seen, so a marker split across two pieces is still found. */
    readonly tail: Record<Direction, string> = { upstream: '', downstream: '' };
    /** Per direction: the chain that keeps delayed pieces in order. */
    readonly queue: Record<Direction, Promise<void>> = {
      upstream: Promise.resolve(),
      downstream: Promise.resolve(),
    };

    constructor(
      readonly client: Socket,
      readonly server: Socket,
    ) {
      this.id = connections.length;
    }

    stall() {
      if (this.state === 'open') this.state = 'stalled';
    }

    reset() {
      this.state = 'closed';
      this.client.resetAndDestroy();
      this.server.resetAndDestroy();
    }

    cut() {
      this.state = 'closed';
      this.client.end();
      this.server.end();
    }

    strike(fault: TcpFault) {
      if (fault.kind === 'cut') this.cut();
      else if (fault.kind === 'reset') this.reset();
      else this.stall();
    }

    /** Arms a rule whose marker appears in this piece; returns where counting starts, or -1. */
    arm(direction: Direction, piece: Buffer): number {
      const text = this.tail[direction] + piece.toString('latin1');
      for (const armed of rules) {
        if (armed.left <= 0 || (armed.rule.direction ?? 'upstream') !== direction) continue;
        const marker = armed.rule.marker;
        let start = 0;
        /** Marker bytes that arrived in the previous piece and were forwarded already. */
        let forwarded = 0;
        if (marker === undefined) {
          if (this.bytes[direction] > 0) continue;
        } else {
          const at = text.indexOf(marker);
          if (at < 0) continue;
          const tailLength = this.tail[direction].length;
          start = Math.max(0, at - tailLength);
          forwarded = Math.max(0, tailLength - at);
        }
        armed.left--;
        fired++;
        const left = Math.max(0, armed.rule.fault.afterBytes - forwarded);
        this.countdown[direction] = { left, fault: armed.rule.fault };
        return start;
      }
      const keep = Math.max(0, ...rules.map((armed) => (armed.rule.marker?.length ?? 1) - 1));
      this.tail[direction] = keep === 0 ? '' : text.slice(-keep);
      return -1;
    }

    /** Forwards one piece, applying whatever fault it triggers. */
    forward(direction: Direction, piece: Buffer) {
      if (this.state === 'closed') return;
      if (this.state === 'stalled') {
        // Read and dropped: counted, so a test can tell they reached the stall.
        this.bytes[direction] += piece.length;
        return;
      }
      if (direction === 'upstream' && this.head.length < HEAD_BYTES) {
        this.head += piece.subarray(0, HEAD_BYTES - this.head.length).toString('latin1');
      }
      let from = 0;
      if (this.countdown[direction] === undefined) {
        const start = this.arm(direction, piece);
        if (start >= 0) from = start;
      }
      this.bytes[direction] += piece.length;
      const to = direction === 'upstream' ? this.server : this.client;
      const pending = this.countdown[direction];
      if (pending === undefined || from + pending.left > piece.length) {
        if (pending) pending.left -= piece.length - from;
        to.write(piece);
        return;
      }
      // The fault strikes inside this piece: what comes before it still goes through.
      delete this.countdown[direction];
      to.write(piece.subarray(0, from + pending.left), () => this.strike(pending.fault));
      if (pending.fault.kind === 'stall') this.stall();
    }

    pipe(direction: Direction, source: Socket) {
      source.on('data', (piece: Buffer) => {
        if (delayMs === 0) {
          this.forward(direction, piece);
          return;
        }
        const wait = delayMs;
        this.queue[direction] = this.queue[direction].then(() =>
          new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() =>
            this.forward(direction, piece),
          ),
        );
      });
    }
  }

  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: upstreamUrl.hostname, port: Number(upstreamUrl.port) });
    const connection = new Connection(client, upstream);
    connections.push(connection);
    connection.pipe('upstream', client);
    connection.pipe('downstream', upstream);
    // One side's end or error ends the other, as a real network path would (a stalled one stays).
    const finish = (other: Socket) => () => {
      if (connection.state !== 'open') return;
      connection.state = 'closed';
      other.end();
    };
    client.on('end', finish(upstream));
    upstream.on('end', finish(client));
    const fail = (other: Socket) => () => {
      if (connection.state === 'stalled') return;
      connection.state = 'closed';
      other.destroy();
    };
    client.on('error', fail(upstream));
    upstream.on('error', fail(client));
    // A stalled path tells neither side anything: the server learns of a client that gave up
    // only when the proxy closes.
    client.on('close', () => {
      if (connection.state === 'stalled') return;
      connection.state = 'closed';
      upstream.destroy();
    });
    upstream.on('close', () => {
      if (connection.state === 'stalled') return;
      connection.state = 'closed';
      client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the TCP proxy has no port');

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    connections,
    get fired() {
      return fired;
    },
    addRule(rule) {
      rules.push({ rule, left: rule.times ?? 1 });
    },
    setDelay(ms) {
      delayMs = ms;
    },
    close: () =>
      new Promise((resolve) => {
        for (const connection of connections) {
          connection.state = 'closed';
          connection.client.destroy();
          connection.server.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

// The fleet bench's simulated gateways: bare SSE clients on node:http (one socket each, no gateway
// agent), spread over several 127.0.0.x source addresses, recording when each command arrives.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request } from 'undici';

export interface FleetOptions {
  serverUrl: string;
  tokens: string[];
  /** Source addresses to bind, round-robin (each has its own ~28k ephemeral ports). */
  sourceAddresses: string[];
  /** Connections being opened at once (the server's accept backlog is finite). */
  connectConcurrency: number;
  /** Ack every command (POST …/ack), as a real gateway does. */
  ack: boolean;
  /**
   * Other servers of a cluster: a stream that ends is opened again on the next of these (in turn,
   * after a random pause of up to `reconnectJitterMs`), as a gateway behind a load balancer would.
   * Without them a stream that ends stays closed.
   */
  fallbackUrls?: string[];
  reconnectJitterMs?: number;
  /** Called on every command that arrives, `first` false for a redelivery of one already seen. */
  onCommand?: (id: string, delivery: Delivery, first: boolean) => void;
}

export interface Delivery {
  gateway: number;
  receivedNs: bigint;
}

export class Fleet {
  readonly connectedAt: (bigint | undefined)[];
  /** When each gateway last received a hello after losing its stream (undefined: never lost it). */
  readonly reconnectedAt: (bigint | undefined)[];
  /** Gateways whose stream ended and has not been opened again yet. */
  readonly down = new Set<number>();
  readonly deliveries = new Map<string, Delivery>();
  heartbeats = 0;
  commands = 0;
  disconnects = 0;
  readonly #waiters = new Map<string, (delivery: Delivery) => void>();
  readonly #requests: ReturnType<typeof httpRequest>[] = [];
  readonly #agent = new HttpAgent({ keepAlive: false });
  readonly #ackPool: Agent;
  #closed = false;
  /** The server each gateway streams from now (an index into #urls). */
  readonly #serverOf: Uint8Array;
  readonly #urls: URL[];

  constructor(readonly options: FleetOptions) {
    this.connectedAt = new Array(options.tokens.length);
    this.reconnectedAt = new Array(options.tokens.length);
    this.#serverOf = new Uint8Array(options.tokens.length);
    this.#urls = [options.serverUrl, ...(options.fallbackUrls ?? [])].map((url) => new URL(url));
    this.#ackPool = new Agent({ connections: 32, pipelining: 1 });
  }

  /** Opens every stream; resolves when each has received its hello. */
  async connectAll(onProgress?: (connected: number) => void): Promise<void> {
    let next = 0;
    let connected = 0;
    const worker = async () => {
      while (next < this.options.tokens.length) {
        const index = next++;
        await this.#connect(index);
        connected++;
        if (connected % 1000 === 0) onProgress?.(connected);
      }
    };
    await Promise.all(Array.from({ length: this.options.connectConcurrency }, worker));
  }

  #connect(index: number): Promise<void> {
    const url = this.#urls[this.#serverOf[index]!]!;
    return new Promise((resolve, reject) => {
      // This attempt's fate: before its hello a failure rejects it (the caller retries), after
      // the hello the stream is lost and reopened.
      let opened = false;
      const hello = () => {
        opened = true;
        resolve();
      };
      const failed = (error: Error) => (opened ? this.#lost(index) : reject(error));
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: '/v1/gateway/commands',
        localAddress: this.options.sourceAddresses[index % this.options.sourceAddresses.length],
        agent: this.#agent,
        headers: { accept: 'text/event-stream', authorization: `Bearer ${this.options.tokens[index]}` },
      });
      this.#requests.push(req);
      req.once('error', failed);
      req.once('response', (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`gateway ${index}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (text: string) => {
          buffer += text;
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            this.#event(index, buffer.slice(0, end), hello);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf('\n\n');
          }
        });
        res.once('end', () => failed(new Error(`gateway ${index}: stream ended before its hello`)));
        res.once('error', failed);
      });
      req.end();
    });
  }

  #event(index: number, block: string, onHello: () => void): void {
    if (block.startsWith(':')) {
      this.heartbeats++;
      return;
    }
    if (block.includes('event: hello')) {
      const at = process.hrtime.bigint();
      if (this.down.delete(index)) this.reconnectedAt[index] = at;
      else this.connectedAt[index] = at;
      onHello();
      return;
    }
    if (!block.includes('event: command')) return;
    const receivedNs = process.hrtime.bigint();
    const id = /^id: (.+)$/m.exec(block)?.[1];
    if (!id) return;
    this.commands++;
    const delivery = { gateway: index, receivedNs };
    const first = !this.deliveries.has(id);
    if (first) this.deliveries.set(id, delivery);
    this.options.onCommand?.(id, delivery, first);
    this.#waiters.get(id)?.(delivery);
    this.#waiters.delete(id);
    if (this.options.ack) void this.#ackCommand(index, id);
  }

  /** A stream ended (its server went away): open it again on the next server, if there is one. */
  #lost(index: number): void {
    if (this.down.has(index) || this.#closed) return;
    this.disconnects++;
    if (this.#urls.length < 2) return;
    this.down.add(index);
    this.#serverOf[index] = (this.#serverOf[index]! + 1) % this.#urls.length;
    const retry = () => {
      if (this.#closed) return;
      this.#connect(index).catch(() => {
        this.#serverOf[index] = (this.#serverOf[index]! + 1) % this.#urls.length;
        setTimeout(retry, 200 + Math.random() * (this.options.reconnectJitterMs ?? 1000));
      });
    };
    setTimeout(retry, Math.random() * (this.options.reconnectJitterMs ?? 1000));
  }

  async #ackCommand(index: number, id: string): Promise<void> {
    const url = this.#urls[this.#serverOf[index]!]!;
    try {
      const response = await request(`${url.origin}/v1/gateway/commands/${id}/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.tokens[index]}` },
        dispatcher: this.#ackPool,
      });
      await response.body.dump();
    } catch {
      // the server redelivers an unacked command; the bench only counts first arrivals
    }
  }

  /** Resolves when command `id` has reached its gateway (at once if it already has). */
  delivered(id: string): Promise<Delivery> {
    const known = this.deliveries.get(id);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => this.#waiters.set(id, resolve));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const req of this.#requests) req.destroy();
    this.#agent.destroy();
    await this.#ackPool.close();
  }
}

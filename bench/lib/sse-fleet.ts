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
}

export interface Delivery {
  gateway: number;
  receivedNs: bigint;
}

export class Fleet {
  readonly connectedAt: (bigint | undefined)[];
  readonly deliveries = new Map<string, Delivery>();
  heartbeats = 0;
  commands = 0;
  disconnects = 0;
  readonly #waiters = new Map<string, (delivery: Delivery) => void>();
  readonly #requests: ReturnType<typeof httpRequest>[] = [];
  readonly #agent = new HttpAgent({ keepAlive: false });
  readonly #ackPool: Agent;
  readonly #url: URL;

  constructor(readonly options: FleetOptions) {
    this.connectedAt = new Array(options.tokens.length);
    this.#url = new URL(options.serverUrl);
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
    return new Promise((resolve, reject) => {
      const req = httpRequest({
        host: this.#url.hostname,
        port: this.#url.port,
        path: '/v1/gateway/commands',
        localAddress: this.options.sourceAddresses[index % this.options.sourceAddresses.length],
        agent: this.#agent,
        headers: { accept: 'text/event-stream', authorization: `Bearer ${this.options.tokens[index]}` },
      });
      this.#requests.push(req);
      req.once('error', (error) => {
        if (this.connectedAt[index] === undefined) reject(error);
        else this.disconnects++;
      });
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
            this.#event(index, buffer.slice(0, end), resolve);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf('\n\n');
          }
        });
        res.once('end', () => this.disconnects++);
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
      this.connectedAt[index] = process.hrtime.bigint();
      onHello();
      return;
    }
    if (!block.includes('event: command')) return;
    const receivedNs = process.hrtime.bigint();
    const id = /^id: (.+)$/m.exec(block)?.[1];
    if (!id) return;
    this.commands++;
    const delivery = { gateway: index, receivedNs };
    this.deliveries.set(id, delivery);
    this.#waiters.get(id)?.(delivery);
    this.#waiters.delete(id);
    if (this.options.ack) void this.#ackCommand(index, id);
  }

  async #ackCommand(index: number, id: string): Promise<void> {
    try {
      const response = await request(`${this.options.serverUrl}/v1/gateway/commands/${id}/ack`, {
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
    for (const req of this.#requests) req.destroy();
    this.#agent.destroy();
    await this.#ackPool.close();
  }
}

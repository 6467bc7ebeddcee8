import type { Socket } from 'node:net';
import type pg from 'pg';
import { Backend, MessageFramer, readErrorResponse, readParameterStatus, SYNC } from './postgres-wire.js';

type Listener = (...args: unknown[]) => void;

/**
 * Borrows the socket of an idle pg client to speak the extended protocol directly, and gives it
 * back once PostgreSQL said ReadyForQuery, in the state pg left it: pg's own 'data' listeners are
 * set aside meanwhile, so neither side ever sees the other's messages. The client must be idle (no
 * query of pg's running) and stay unused until `end()` resolved.
 */
export class WireConversation {
  readonly #socket: Socket;
  readonly #pgListeners: Listener[];
  readonly #framer: MessageFramer;
  readonly #onData = (chunk: Buffer) => this.#receive(chunk);
  readonly #onClose = () => this.#fail(new Error('Connection terminated unexpectedly'));
  #handler: ((type: number, bytes: Buffer, start: number, end: number) => void) | undefined;
  #failure: Error | undefined;
  #reject: ((error: Error) => void) | undefined;
  #returned = false;
  #encodingChanged: Error | undefined;

  /**
   * Whether `client` has the socket this class borrows: pg's JS client does (`connection.stream`,
   * TLS or not); pg-native and other clients do not, and their queries take the row path.
   */
  static canBorrow(client: pg.PoolClient): boolean {
    return typeof socketOf(client)?.on === 'function';
  }

  constructor(client: pg.PoolClient) {
    this.#socket = socketOf(client)!;
    this.#pgListeners = this.#socket.listeners('data') as Listener[];
    this.#framer = new MessageFramer((type, bytes, start, end) => this.#dispatch(type, bytes, start, end));
    // Swapped in one synchronous step: no 'data' event can fall between the two.
    this.#socket.removeAllListeners('data');
    this.#socket.on('data', this.#onData);
    this.#socket.once('close', this.#onClose);
  }

  /** Set when the socket failed or closed: nothing more can be said on it. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Sends `request` and feeds each backend message to `onMessage` until it returns a result (not
   * undefined), which resolves the call. An ErrorResponse rejects it with pg's DatabaseError; after
   * one, PostgreSQL ignores everything until the Sync that `end()` sends.
   */
  exchange<T>(
    request: Buffer,
    onMessage: (type: number, bytes: Buffer, start: number, end: number) => T | undefined,
  ): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      this.#handler = (type, bytes, start, end) => {
        if (type === Backend.ErrorResponse) {
          this.#settle();
          reject(readErrorResponse(bytes, start, end));
          return;
        }
        const result = onMessage(type, bytes, start, end);
        if (result !== undefined) {
          this.#settle();
          resolve(result);
        }
      };
      this.#socket.write(request);
    });
  }

  /**
   * Sync, wait for ReadyForQuery, give the socket back to pg. Resolves once pg owns it again (or at
   * once when the socket already failed: pg reports that on its own). Throws if the query switched
   * the session's encoding: the text read may not be UTF-8.
   */
  async end(): Promise<void> {
    if (!this.#returned) {
      if (!this.#failure) {
        await this.exchange(SYNC, (type) => (type === Backend.ReadyForQuery ? true : undefined)).catch(
          () => undefined,
        );
      }
      this.#giveBack();
    }
    if (this.#encodingChanged) throw this.#encodingChanged;
  }

  #receive(chunk: Buffer): void {
    try {
      this.#framer.push(chunk);
    } catch (error) {
      this.#fail(error as Error);
      this.#socket.destroy(error as Error);
    }
  }

  #dispatch(type: number, bytes: Buffer, start: number, end: number): void {
    // NoticeResponse and NotificationResponse may come at any time: not ours.
    if (type === 0x4e || type === 0x41) return;
    if (type === 0x53) {
      // ParameterStatus: the text columns are copied as UTF-8 bytes, so a query that switches the
      // session to another encoding (set_config('client_encoding', …)) must fail, not write a file
      // of mislabelled bytes. pg itself keeps reading UTF-8 whatever the server says.
      // PostgreSQL reports the change at the next ReadyForQuery, so it may come after the rows:
      // `end()` throws it, and a consumer reading to the end never takes the file as whole.
      const [name, value] = readParameterStatus(bytes, start, end);
      if (name === 'client_encoding' && value.toUpperCase() !== 'UTF8') {
        this.#encodingChanged = new Error(`The query set client_encoding to ${value}; only UTF8 can be read`);
        this.#fail(this.#encodingChanged);
        this.#socket.destroy();
      }
      return;
    }
    if (!this.#handler) {
      // A FATAL sent on its own (the backend terminated, the server shutting down) between two
      // requests: its message is what the caller needs, not a protocol complaint.
      if (type === Backend.ErrorResponse) {
        this.#fail(readErrorResponse(bytes, start, end));
        return;
      }
      throw new Error(`PostgreSQL sent message '${String.fromCharCode(type)}' unasked`);
    }
    this.#handler(type, bytes, start, end);
  }

  #settle(): void {
    this.#handler = undefined;
    this.#reject = undefined;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const reject = this.#reject;
    this.#settle();
    reject?.(this.#failure);
  }

  #giveBack(): void {
    this.#returned = true;
    this.#socket.removeListener('data', this.#onData);
    this.#socket.removeListener('close', this.#onClose);
    for (const listener of this.#pgListeners) this.#socket.on('data', listener);
    if (this.#framer.heldBytes > 0 && !this.#failure) {
      this.#socket.destroy(new Error('PostgreSQL sent more after ReadyForQuery than the conversation read'));
    }
  }
}

/** pg keeps its connection, and the socket under it, on the client; @types/pg does not declare it. */
function socketOf(client: pg.PoolClient): Socket | undefined {
  return (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}

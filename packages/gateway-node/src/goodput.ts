/**
 * A goodput from fewer answers is one or two requests' times, not the link's: `auto` decides by
 * data alone until this many chunk PUTs (one sample stretch) are answered.
 */
const MIN_COMPLETIONS = 8;

/**
 * The link's recent goodput, from the uploader's own chunk PUTs: bytes acknowledged per second over
 * the last `window` answers. With `window` = the chunks in flight, those are about one answer per
 * connection, so they span about one request time even when answers come in bursts (on a long
 * link a whole round trip's chunks are answered within a few milliseconds, and the time between two
 * answers of one burst says nothing about the link). Until `window` PUTs are answered, the span
 * starts when the first PUT went out, so the first round trip counts.
 */
export class GoodputMeter {
  readonly #window: number;
  readonly #now: () => number;
  /** When the last `window` + 1 answers came (ms; the first is the start until there are enough). */
  readonly #times: number[];
  /** Bytes of the last `window` answers. */
  readonly #bytes: number[] = [];

  constructor(window: number, now: () => number = () => performance.now()) {
    this.#window = Math.max(1, window);
    this.#now = now;
    this.#times = [];
  }

  /**
   * A PUT is about to go out. The first one starts the span: the query and the file's first row
   * group come before it, and counted in they made a fast link look slow.
   */
  sending(): void {
    if (this.#times.length === 0) this.#times.push(this.#now());
  }

  /** A PUT carrying `bytes` was answered just now. */
  record(bytes: number): void {
    this.sending();
    this.#times.push(this.#now());
    this.#bytes.push(bytes);
    if (this.#bytes.length > this.#window) {
      this.#times.shift();
      this.#bytes.shift();
    }
  }

  /** Bytes per second, or undefined while too few PUTs are answered to tell. */
  estimate(): number | undefined {
    if (this.#bytes.length < Math.min(MIN_COMPLETIONS, this.#window)) return undefined;
    const seconds = (this.#times[this.#times.length - 1]! - this.#times[0]!) / 1000;
    if (seconds <= 0) return undefined;
    return this.#bytes.reduce((sum, b) => sum + b, 0) / seconds;
  }
}

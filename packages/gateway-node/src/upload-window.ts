/**
 * Which chunks of a file may be in flight: at most `size` at once, and none `reorder` or more
 * places past the oldest chunk still unanswered. The server stores chunks up to `hello.chunkWindow`
 * past the first one it is missing and refuses the rest (409 chunk-out-of-window, §6.2, with a 1 s
 * Retry-After). Counting alone let one slow chunk (a storage write held up, a retry) be overtaken by
 * everything behind it: about 30 refusals and a second or more per file on a busy machine. Waiting
 * here costs nothing the server would have accepted.
 *
 * One producer acquires, in index order; any number of uploads release.
 */
export class UploadWindow {
  readonly #unanswered = new Set<number>();
  #wake: (() => void) | undefined;

  constructor(
    private readonly size: number,
    private readonly reorder: number,
  ) {}

  /** Resolves once chunk `index` may be sent (the encoder waits here: backpressure). */
  async acquire(index: number): Promise<void> {
    while (!this.#fits(index)) {
      await new Promise<void>((wake) => {
        this.#wake = wake;
      });
    }
    this.#unanswered.add(index);
  }

  /** Chunk `index` was answered, or gave up. */
  release(index: number): void {
    this.#unanswered.delete(index);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #fits(index: number): boolean {
    if (this.#unanswered.size >= this.size) return false;
    // At most `size` entries: a scan is cheaper than keeping them ordered.
    for (const unanswered of this.#unanswered) if (index - unanswered >= this.reorder) return false;
    return true;
  }
}

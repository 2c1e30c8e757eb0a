/**
 * @module runtime/fifo
 * The batcher's queue: push at the back, take from the front, each O(1) per
 * entry. `Array#splice(0, k)` moves every entry behind the k it takes, so
 * with thousands of items queued each batch paid for the whole queue
 * (docs/performance.md, "The batching queue").
 */
export class Fifo<T> {
  // Entries before #head are taken (set to undefined so they can be collected).
  #items: Array<T | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest entry, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Removes and returns up to `count` entries from the front, oldest first. */
  take(count: number): T[] {
    const end = Math.min(this.#head + count, this.#items.length);
    const taken = this.#items.slice(this.#head, end) as T[];
    if (end === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
      return taken;
    }
    this.#items.fill(undefined, this.#head, end);
    this.#head = end;
    // Compact once the taken front is half the array: the copy costs no more than what was taken since the last one.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return taken;
  }

  clear(): void {
    this.#items.length = 0;
    this.#head = 0;
  }
}

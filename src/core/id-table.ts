/**
 * @module core/id-table
 * Values by integer id, for long-lived owners that add and remove an entry
 * per call: a connection's streams, a predict thread's tasks.
 *
 * Why not a Map: V8 rehashes a Map or Set that keeps adding and deleting
 * into a new table, and leaves the old table, entries and all, pointing at
 * the new one (for live iterators). Once the Map has lived long enough for
 * its table to be in the old generation, every scavenge finds the new table
 * through that dead old one and keeps it, with the calls it holds, until
 * the next full GC. Every call's objects were promoted, and the OMI server
 * spent about a fifth of its time in GC at 16x16 (docs/performance.md,
 * "Garbage collection"). This table lives in two flat arrays, and a retired
 * array points at nothing.
 */

const EMPTY = -1;
const MIN_CAPACITY = 16;
/**
 * Up to this many slots (16 KiB), a table keeps its size when it empties: a connection whose 64 calls come and
 * go in waves would otherwise grow and shrink it several times a wave.
 */
const KEEP_CAPACITY = 1024;
/** Fibonacci hashing: consecutive ids (stream ids go up by 2) land far apart. */
const GOLDEN = 0x9e3779b1;

export class IdTable<T extends NonNullable<unknown>> {
  // Open addressing with linear probing, at most half full; a delete shifts the entries after it back (no tombstones).
  #ids!: Float64Array;
  #values!: Array<T | undefined>;
  #shift!: number;
  #size = 0;

  constructor() {
    this.#empty(MIN_CAPACITY);
  }

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    const slot = this.#find(id);
    return slot < 0 ? undefined : this.#values[slot];
  }

  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  /** Adds or replaces the entry; `id` must be a non-negative safe integer. */
  set(id: number, value: T): void {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`an IdTable id must be a non-negative safe integer (got ${id})`);
    const ids = this.#ids;
    const mask = ids.length - 1;
    let slot = this.#home(id);
    while (ids[slot] !== EMPTY) {
      if (ids[slot] === id) {
        this.#values[slot] = value;
        return;
      }
      slot = (slot + 1) & mask;
    }
    ids[slot] = id;
    this.#values[slot] = value;
    if (++this.#size * 2 > ids.length) this.#resize(ids.length * 2);
  }

  /** Removes the entry; false when there was none. */
  delete(id: number): boolean {
    let hole = this.#find(id);
    if (hole < 0) return false;
    const ids = this.#ids;
    const values = this.#values;
    const mask = ids.length - 1;
    // Each entry after the hole, up to an empty slot, moves back into it unless that would put it before its home slot.
    for (let next = (hole + 1) & mask; ids[next] !== EMPTY; next = (next + 1) & mask) {
      const home = this.#home(ids[next] as number);
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        ids[hole] = ids[next] as number;
        values[hole] = values[next];
        hole = next;
      }
    }
    ids[hole] = EMPTY;
    values[hole] = undefined;
    if (--this.#size * 8 < ids.length && ids.length > KEEP_CAPACITY) this.#resize(ids.length / 2);
    return true;
  }

  /** The values, in no particular order: a copy, so the caller may delete while it goes through them. */
  values(): T[] {
    const out: T[] = [];
    for (const value of this.#values) if (value !== undefined) out.push(value);
    return out;
  }

  clear(): void {
    this.#empty(MIN_CAPACITY);
    this.#size = 0;
  }

  #home(id: number): number {
    return Math.imul(id | 0, GOLDEN) >>> this.#shift;
  }

  /** The slot holding `id`, or -1. */
  #find(id: number): number {
    const ids = this.#ids;
    const mask = ids.length - 1;
    for (let slot = this.#home(id); ids[slot] !== EMPTY; slot = (slot + 1) & mask) {
      if (ids[slot] === id) return slot;
    }
    return -1;
  }

  /** Fresh, empty arrays of `capacity` slots (a power of two); #size is the caller's to set. */
  #empty(capacity: number): void {
    this.#ids = new Float64Array(capacity).fill(EMPTY);
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#shift = 32 - Math.log2(capacity);
  }

  #resize(capacity: number): void {
    const ids = this.#ids;
    const values = this.#values;
    this.#empty(capacity);
    const mask = capacity - 1;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id === EMPTY) continue;
      let slot = this.#home(id);
      while (this.#ids[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.#ids[slot] = id;
      this.#values[slot] = values[i];
    }
  }
}

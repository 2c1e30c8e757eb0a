/**
 * @module server/threads/wire
 * The messages between the server's main thread and its predict threads
 * (pool.ts, thread.ts), and how tasks and their results cross.
 *
 * A postMessage costs microseconds of CPU on each side, more than a small
 * predict, so each side sends at most one message per turn of its event
 * loop, carrying every task (or result) of that turn. What structured clone
 * would walk object by object travels instead as one ArrayBuffer, which
 * postMessage transfers without copying: the bytes of every value, then an
 * index of 32-bit integers saying which task, item, key and bytes are where
 * (IndexWriter, IndexReader). Only the distinct keys and the rare errors and
 * explanations are cloned. Posting the items as they are would also copy
 * more than their bytes: structured clone copies a Uint8Array's whole
 * underlying buffer, and a request's input is usually a view into a larger
 * receive buffer.
 */
import type { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import type { ExplainOutcome, ItemOutcome, RawItem } from "../../runtime/outcome.js";

/** An error as it crosses: what callers see of it (its stack stays in the thread that threw it). */
export interface WireError {
  readonly code: Code;
  readonly message: string;
}

export type WireExplainOutcome = { readonly ok: true; readonly explanation: unknown } | { readonly ok: false; readonly error: WireError };

/** What a predict thread is asked to do with a task's items: the DirectExecutor method of the same name. */
export type TaskKind = "execute" | "predictChunk" | "explain";
const TASK_KINDS: readonly TaskKind[] = ["execute", "predictChunk", "explain"];

export interface Task {
  readonly id: number;
  readonly kind: TaskKind;
  readonly items: readonly RawItem[];
}

/** A finished task: outcomes of a prediction, or of an explain call (whose explanations must survive structuredClone). */
export type TaskResult =
  | { readonly id: number; readonly outcomes: readonly ItemOutcome[] }
  | { readonly id: number; readonly explained: readonly ExplainOutcome[] };

/** A packed message body: its ArrayBuffer goes in the transfer list. */
export interface Packed {
  readonly buffer: ArrayBuffer;
  /** Where the index starts in `buffer` (the values' bytes come first). */
  readonly indexAt: number;
  readonly keys: readonly string[];
}

export type ToThread =
  | ({ readonly type: "tasks" } & Packed)
  | { readonly type: "cancel"; readonly id: number }
  | { readonly type: "unload" };

export type FromThread =
  | { readonly type: "ready" }
  | { readonly type: "load-failed"; readonly error: WireError }
  | ({
      readonly type: "results";
      /** The failures' errors, by the number the index gives them. */
      readonly errors: readonly WireError[];
      /** The explain results, by the number the index gives them. */
      readonly explained: ReadonlyArray<readonly WireExplainOutcome[]>;
    } & Packed)
  | {
      readonly type: "log";
      readonly level: "debug" | "info" | "warn" | "error";
      readonly message: string;
      readonly fields?: Record<string, unknown>;
    }
  | { readonly type: "unloaded" };

/** What the thread's module is given (workerData.chassisPredictThread). */
export interface ThreadData {
  /** The model path as `chassis serve` was given it: the thread imports it as the main thread did. */
  readonly modelPath: string;
  /** This thread's number (1..N), for its log lines. */
  readonly index: number;
}

/** Index layout: [count, then per task: id, kind, items, then per item: values, then per value: key, offset, length]. */
export function packTasks(tasks: readonly Task[]): Packed {
  const writer = new IndexWriter();
  writer.int(tasks.length);
  for (const task of tasks) {
    writer.int(task.id);
    writer.int(TASK_KINDS.indexOf(task.kind));
    writer.items(task.items);
  }
  return writer.finish();
}

export function unpackTasks(packed: Packed): Task[] {
  const reader = new IndexReader(packed);
  const tasks: Task[] = new Array(reader.int());
  for (let t = 0; t < tasks.length; t++) {
    const id = reader.int();
    const kind = TASK_KINDS[reader.int()] as TaskKind;
    tasks[t] = { id, kind, items: reader.items() };
  }
  return tasks;
}

const EXPLAINED = -1;
const FAILED = -1;

/**
 * Index layout: [count, then per result: id, then either EXPLAINED and the
 * number of its explain results, or the outcome count and per outcome either
 * FAILED and an error's number, or an item of outputs (values, then per value:
 * key, offset, length)].
 */
export function packResults(results: readonly TaskResult[]): Packed & { errors: WireError[]; explained: WireExplainOutcome[][] } {
  const writer = new IndexWriter();
  const errors: WireError[] = [];
  const explained: WireExplainOutcome[][] = [];
  writer.int(results.length);
  for (const result of results) {
    writer.int(result.id);
    if ("explained" in result) {
      writer.int(EXPLAINED);
      writer.int(explained.length);
      explained.push(result.explained.map((outcome) => (outcome.ok ? outcome : { ok: false, error: toWireError(outcome.error) })));
      continue;
    }
    writer.int(result.outcomes.length);
    for (const outcome of result.outcomes) {
      if (outcome.ok) writer.item(outcome.outputs);
      else {
        writer.int(FAILED);
        writer.int(errors.length);
        errors.push(toWireError(outcome.error));
      }
    }
  }
  return { ...writer.finish(), errors, explained };
}

export function unpackResults(
  message: Extract<FromThread, { type: "results" }>,
): Array<{ id: number; outcomes: ItemOutcome[] | ExplainOutcome[] }> {
  const reader = new IndexReader(message);
  const results = new Array<{ id: number; outcomes: ItemOutcome[] | ExplainOutcome[] }>(reader.int());
  for (let r = 0; r < results.length; r++) {
    const id = reader.int();
    const count = reader.int();
    if (count === EXPLAINED) {
      const outcomes = (message.explained[reader.int()] ?? []).map(
        (outcome): ExplainOutcome => (outcome.ok ? outcome : { ok: false, error: fromWireError(outcome.error) }),
      );
      results[r] = { id, outcomes };
      continue;
    }
    const outcomes: ItemOutcome[] = new Array(count);
    for (let o = 0; o < count; o++) {
      const values = reader.int();
      outcomes[o] =
        values === FAILED
          ? { ok: false, error: fromWireError(message.errors[reader.int()] as WireError) }
          : { ok: true, outputs: reader.itemOf(values) };
    }
    results[r] = { id, outcomes };
  }
  return results;
}

export function toWireError(error: unknown): WireError {
  const reason = ChassisError.from(error);
  return { code: reason.code, message: reason.message };
}

function fromWireError(error: WireError): ChassisError {
  return new ChassisError(error.code, error.message);
}

/** Builds a Packed: values' bytes are gathered, then copied once into the buffer that is transferred. */
class IndexWriter {
  readonly #ints: number[] = [];
  readonly #keys: string[] = [];
  readonly #keyNumbers = new Map<string, number>();
  readonly #values: Uint8Array[] = [];
  #bytes = 0;

  int(value: number): void {
    this.#ints.push(value);
  }

  /** [count, then each item] */
  items(items: readonly RawItem[]): void {
    this.#ints.push(items.length);
    for (const item of items) this.item(item);
  }

  /** [values, then per value: key, offset, length] */
  item(item: RawItem): void {
    const at = this.#ints.length;
    this.#ints.push(0);
    let count = 0;
    for (const key in item) {
      const value = item[key] as Uint8Array;
      let number = this.#keyNumbers.get(key);
      if (number === undefined) {
        number = this.#keys.length;
        this.#keys.push(key);
        this.#keyNumbers.set(key, number);
      }
      this.#ints.push(number, this.#bytes, value.byteLength);
      this.#values.push(value);
      this.#bytes += value.byteLength;
      count++;
    }
    this.#ints[at] = count;
  }

  finish(): Packed {
    const indexAt = Math.ceil(this.#bytes / 4) * 4; // Int32Array views need 4-byte alignment
    const buffer = new ArrayBuffer(indexAt + this.#ints.length * 4);
    const bytes = new Uint8Array(buffer);
    let offset = 0;
    for (const value of this.#values) {
      bytes.set(value, offset);
      offset += value.byteLength;
    }
    new Int32Array(buffer, indexAt, this.#ints.length).set(this.#ints);
    return { buffer, indexAt, keys: this.#keys };
  }
}

/** Reads a Packed in the order IndexWriter wrote it; values become views into the (transferred) buffer. */
class IndexReader {
  readonly #buffer: ArrayBuffer;
  readonly #ints: Int32Array;
  readonly #keys: readonly string[];
  #at = 0;

  constructor({ buffer, indexAt, keys }: Packed) {
    this.#buffer = buffer;
    this.#ints = new Int32Array(buffer, indexAt);
    this.#keys = keys;
  }

  int(): number {
    return this.#ints[this.#at++] as number;
  }

  items(): RawItem[] {
    const items: RawItem[] = new Array(this.int());
    for (let i = 0; i < items.length; i++) items[i] = this.itemOf(this.int());
    return items;
  }

  /** An item of `count` values (its count already read). */
  itemOf(count: number): RawItem {
    const item: Record<string, Uint8Array> = {};
    for (let v = 0; v < count; v++) {
      const key = this.#keys[this.int()] as string;
      const offset = this.int();
      item[key] = new Uint8Array(this.#buffer, offset, this.int());
    }
    return item;
  }
}

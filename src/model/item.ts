/**
 * @module model/item
 * What predict sees (ModelItem: one Run item's inputs, keyed by input key)
 * and what it returns (ModelOutputs), with helpers for JSON and text.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { utf8Encode } from "../core/utf8.js";
import type { InputMetadata } from "./metadata.js";

/**
 * A predict function's result: output key -> bytes, a string (sent as UTF-8),
 * or, for an output whose media type is application/json, any JSON value.
 */
export type ModelOutputs = Record<string, OutputValue>;
export type OutputValue = Uint8Array | string | number | boolean | null | readonly unknown[] | { readonly [key: string]: unknown };

const decoder = new TextDecoder("utf-8");

/** Encodes a value as JSON bytes, for outputs such as `results.json`. */
export function json(value: unknown): Uint8Array {
  const text = JSON.stringify(value);
  if (text === undefined) throw new ChassisError(Code.INVALID_ARGUMENT, `json(): ${typeof value} cannot be encoded as JSON`);
  return utf8Encode(text);
}

/** Encodes a string as UTF-8 bytes. */
export function text(value: string): Uint8Array {
  return utf8Encode(value);
}

/** One item of a Run request, as the model sees it. */
export class ModelItem {
  readonly #values: Readonly<Record<string, Uint8Array>>;
  readonly #inputs: readonly InputMetadata[];

  constructor(values: Readonly<Record<string, Uint8Array>>, inputs: readonly InputMetadata[] = []) {
    this.#values = values;
    this.#inputs = inputs;
  }

  /** The bytes of an input; a missing input is a clear per-item error naming the declared inputs. */
  get(key: string): Uint8Array {
    const value = this.optional(key);
    if (value === undefined) {
      const declared = this.#inputs.map((input) => `"${input.key}"`).join(", ");
      throw new ChassisError(
        Code.INVALID_ARGUMENT,
        `missing input "${key}": this item has ${describeKeys(this.keys())}; the model's inputs are ${declared || "(none declared)"}`,
      );
    }
    return value;
  }

  /** The bytes of an input, or undefined when the item does not carry it. */
  optional(key: string): Uint8Array | undefined {
    return Object.hasOwn(this.#values, key) ? this.#values[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#values, key);
  }

  /** An input decoded as UTF-8 text. */
  text(key: string): string {
    return decoder.decode(this.get(key));
  }

  /** An input parsed as JSON; invalid JSON is a per-item error naming the input. */
  json<T = unknown>(key: string): T {
    const raw = this.text(key);
    try {
      return JSON.parse(raw) as T;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ChassisError(Code.INVALID_ARGUMENT, `input "${key}" is not valid JSON: ${reason}`);
    }
  }

  keys(): string[] {
    return Object.keys(this.#values);
  }

  /** All inputs as a plain object, e.g. to hand them to another library. */
  toObject(): Readonly<Record<string, Uint8Array>> {
    return this.#values;
  }
}

export function describeKeys(keys: string[]): string {
  return keys.length === 0 ? "no inputs" : `inputs ${keys.map((k) => `"${k}"`).join(", ")}`;
}

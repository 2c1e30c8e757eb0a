/**
 * @module runtime/validate
 * Checks items against the model's declared inputs before predict runs, and
 * predict's results against its declared outputs after. Problems become
 * per-item errors (INVALID_ARGUMENT / INTERNAL) that name the key and the limit.
 * Chassis does none of this: an unknown key reached predict as empty bytes.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { utf8Encode } from "../core/utf8.js";
import { describeKeys, json } from "../model/item.js";
import type { InputMetadata, ModelMetadata, OutputMetadata } from "../model/metadata.js";
import { formatBytes } from "../model/units.js";
import type { RawItem } from "./outcome.js";

/** Inputs and outputs by key, built once per model (metadata is frozen, so the index never goes stale). */
interface Index {
  readonly inputs: ReadonlyMap<string, InputMetadata>;
  readonly required: readonly InputMetadata[];
  readonly outputs: ReadonlyMap<string, OutputMetadata>;
}
const indexes = new WeakMap<ModelMetadata, Index>();

function indexOf(metadata: ModelMetadata): Index {
  let index = indexes.get(metadata);
  if (!index) {
    index = {
      inputs: new Map(metadata.inputs.map((input) => [input.key, input])),
      required: metadata.inputs.filter((input) => input.required),
      outputs: new Map(metadata.outputs.map((output) => [output.key, output])),
    };
    indexes.set(metadata, index);
  }
  return index;
}

/** Returns the reason an item cannot be predicted, or undefined when it is fine. */
export function checkItem(item: RawItem, metadata: ModelMetadata): ChassisError | undefined {
  const index = indexOf(metadata);
  // The common case, a valid item, allocates nothing but the key list.
  let problems: string[] | undefined;
  const problem = (text: string) => {
    problems ??= [];
    problems.push(text);
  };
  let keyCount = 0;
  // for...in rather than Object.keys: no array for the common, valid item (RawItems are plain objects).
  for (const key in item) {
    keyCount++;
    const input = index.inputs.get(key);
    if (!input) {
      problem(`unknown input "${key}"`);
      continue;
    }
    const size = item[key]?.byteLength ?? 0;
    if (size > input.maxBytes) {
      problem(`input "${key}" is ${formatBytes(size)} (${size} bytes), over its max_size of ${input.maxSize} (${input.maxBytes} bytes)`);
    }
  }
  for (const input of index.required) {
    if (!Object.hasOwn(item, input.key)) problem(`missing input "${input.key}"`);
  }
  if (keyCount === 0 && !problems) problems = ["the item has no inputs"];
  if (!problems) return undefined;
  const keys = Object.keys(item);
  const code = problems.some((p) => p.includes("over its max_size")) ? Code.RESOURCE_EXHAUSTED : Code.INVALID_ARGUMENT;
  return new ChassisError(
    code,
    `${problems.join("; ")} (item has ${describeKeys(keys)}; the model's inputs are ${describeInputs(metadata)})`,
  );
}

function describeInputs(metadata: ModelMetadata): string {
  return metadata.inputs.map((input) => `"${input.key}"${input.required ? "" : " (optional)"}`).join(", ");
}

/**
 * Turns what predict returned into output bytes. Strings become UTF-8; a
 * plain value for a JSON output is JSON-encoded; anything else is an error
 * that says what was expected.
 */
export function encodeOutputs(result: unknown, metadata: ModelMetadata): Record<string, Uint8Array> {
  if (typeof result !== "object" || result === null || Array.isArray(result) || result instanceof Uint8Array) {
    throw new ChassisError(
      Code.INTERNAL,
      `predict returned ${describeValue(result)}; expected an object keyed by output (${metadata.outputs.map((o) => `"${o.key}"`).join(", ")})`,
    );
  }
  const declared = indexOf(metadata).outputs;
  const outputs: Record<string, Uint8Array> = {};
  const values = result as Record<string, unknown>;
  for (const key in values) {
    if (!Object.hasOwn(values, key)) continue;
    const output = declared.get(key);
    if (!output) {
      throw new ChassisError(
        Code.INTERNAL,
        `predict returned output "${key}", which the model does not declare (declared: ${metadata.outputs.map((o) => `"${o.key}"`).join(", ")})`,
      );
    }
    const value = values[key];
    let bytes: Uint8Array;
    if (value instanceof Uint8Array) bytes = value;
    else if (typeof value === "string") bytes = utf8Encode(value);
    else if (output.mediaType === "application/json") bytes = encodeJson(value, key);
    else {
      throw new ChassisError(
        Code.INTERNAL,
        `predict returned ${describeValue(value)} for output "${key}" (${output.mediaType}); expected bytes (Uint8Array) or a string`,
      );
    }
    if (bytes.byteLength > output.maxBytes) {
      throw new ChassisError(
        Code.INTERNAL,
        `predict returned ${formatBytes(bytes.byteLength)} (${bytes.byteLength} bytes) for output "${key}", over its max_size of ${output.maxSize}; raise maxSize in the model's outputs if that is expected`,
      );
    }
    outputs[key] = bytes;
  }
  return outputs;
}

/** A JSON output that JSON cannot encode is the model's fault (INTERNAL), not the caller's. */
function encodeJson(value: unknown, key: string): Uint8Array {
  try {
    return json(value);
  } catch (error) {
    throw new ChassisError(
      Code.INTERNAL,
      `predict returned a value for output "${key}" that JSON cannot encode: ${ChassisError.from(error).message}`,
    );
  }
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "bytes";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

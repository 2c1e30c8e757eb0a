/**
 * @module kserve/v1-codec
 * KServe v1 bodies <-> chassis-ts items.
 *
 * Chassis convention (must work): each instance is a base64 string, decoded
 * into the model's first input; each prediction is the first output as UTF-8
 * text. Beyond it: an instance may be an object keyed by input names (values
 * base64 strings, `{"b64": ...}`, or, for JSON inputs, any JSON value), or,
 * for a model whose first input takes JSON, any other JSON value. A request
 * may ask for `"parameters": {"output_format": "json"}` (the first output
 * parsed) or `"all"` (every output, keyed by name).
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { utf8Encode } from "../core/utf8.js";
import { acceptsJson, type InputMetadata, type ModelMetadata } from "../model/metadata.js";
import type { RawItem } from "../runtime/outcome.js";
import { decodeBase64Strict } from "./base64.js";
import { parseJson, stringifyJson } from "./json-bigint.js";

export type OutputFormat = "text" | "json" | "all";
const OUTPUT_FORMATS: readonly OutputFormat[] = ["text", "json", "all"];

const utf8 = new TextDecoder("utf-8", { fatal: true });

function invalid(message: string): ChassisError {
  return new ChassisError(Code.INVALID_ARGUMENT, message);
}

function decodeBase64(text: string, where: string): Uint8Array {
  // Whitespace (line-wrapped base64) is allowed; most texts have none and decode in the first pass.
  const bytes = decodeBase64Strict(text) ?? decodeBase64Strict(text.replace(/\s+/g, ""));
  if (!bytes) throw invalid(`${where} is not valid base64 (the Chassis convention sends each input as a base64 string)`);
  return bytes;
}

function decodeValue(value: unknown, input: InputMetadata, where: string): Uint8Array {
  if (typeof value === "string") return decodeBase64(value, where);
  if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 && "b64" in value) {
    const { b64 } = value as { b64: unknown };
    if (typeof b64 === "string") return decodeBase64(b64, `${where}.b64`);
  }
  // stringifyJson: the body was read with parseJson, so integers above 2^53 are bigints and stay exact.
  if (acceptsJson(input)) return utf8Encode(stringifyJson(value));
  throw invalid(`${where} must be a base64 string or {"b64": ...} (input "${input.key}" takes ${input.mediaTypes.join(", ")}, not JSON)`);
}

/** One v1 instance -> one item. */
export function instanceToItem(instance: unknown, metadata: ModelMetadata, index: number): RawItem {
  const first = metadata.inputs[0] as InputMetadata;
  const where = `instance ${index}`;
  if (typeof instance === "object" && instance !== null && !Array.isArray(instance)) {
    const keys = Object.keys(instance);
    // An empty object is an item without inputs: the runtime's check names the model's inputs.
    if (keys.length === 0) return {};
    const byName = keys.length > 0 && keys.every((key) => metadata.inputs.some((input) => input.key === key));
    if (byName) {
      const item: Record<string, Uint8Array> = {};
      for (const input of metadata.inputs) {
        if (Object.hasOwn(instance, input.key))
          item[input.key] = decodeValue((instance as Record<string, unknown>)[input.key], input, `${where}.${input.key}`);
      }
      return item;
    }
    if (!acceptsJson(first) && !(keys.length === 1 && keys[0] === "b64")) {
      throw invalid(
        `${where} has keys ${keys.map((k) => `"${k}"`).join(", ")}, which are not this model's inputs (${metadata.inputs.map((i) => `"${i.key}"`).join(", ")})`,
      );
    }
  }
  return { [first.key]: decodeValue(instance, first, where) };
}

/** Reads `instances` (or TF-serving's `inputs`) from a parsed v1 body. */
export function requestInstances(body: unknown): unknown[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid('Expected a JSON object with "instances" (a list)');
  }
  const record = body as Record<string, unknown>;
  if ("instances" in record) {
    if (!Array.isArray(record.instances)) throw invalid('Expected "instances" to be a list');
    return record.instances;
  }
  if (Array.isArray(record.inputs)) return record.inputs;
  throw invalid('Expected "instances" (a list) in the request body');
}

export function requestOutputFormat(body: unknown): OutputFormat {
  const parameters = (body as { parameters?: unknown }).parameters;
  if (parameters === undefined || parameters === null) return "text";
  const format = (parameters as { output_format?: unknown }).output_format ?? "text";
  if (!OUTPUT_FORMATS.includes(format as OutputFormat)) {
    throw invalid(
      `parameters.output_format must be one of ${OUTPUT_FORMATS.map((f) => `"${f}"`).join(", ")}, got ${JSON.stringify(format)}`,
    );
  }
  return format as OutputFormat;
}

function asText(bytes: Uint8Array): string | { b64: string } {
  try {
    return utf8.decode(bytes);
  } catch {
    return { b64: Buffer.from(bytes).toString("base64") };
  }
}

function asJson(bytes: Uint8Array, key: string): unknown {
  const text = asText(bytes);
  if (typeof text !== "string") return text;
  try {
    // parseJson keeps integers above 2^53 exact (JSON.parse would round them).
    return parseJson(text);
  } catch {
    throw new ChassisError(Code.INTERNAL, `output "${key}" is not valid JSON, so output_format "json" cannot parse it`);
  }
}

/** One item's outputs -> one prediction. */
export function outputsToPrediction(outputs: Readonly<Record<string, Uint8Array>>, metadata: ModelMetadata, format: OutputFormat): unknown {
  if (format === "all") {
    const prediction: Record<string, unknown> = {};
    for (const output of metadata.outputs) {
      const bytes = outputs[output.key];
      if (bytes === undefined) continue;
      prediction[output.key] = output.mediaType === "application/json" ? asJson(bytes, output.key) : asText(bytes);
    }
    return prediction;
  }
  const key = metadata.outputs[0]?.key as string;
  const bytes = outputs[key] ?? new Uint8Array();
  return format === "json" ? asJson(bytes, key) : asText(bytes);
}

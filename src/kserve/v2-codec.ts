/**
 * @module kserve/v2-codec
 * Open Inference Protocol (KServe v2) bodies <-> chassis-ts items. Pure
 * functions, no HTTP: the v2 handler reads the body, calls these, and writes
 * what they return.
 *
 * Mapping (SPEC.md 3): the first dimension of every input tensor is the batch
 * size N, and item i gets, for each input, the bytes of row i. A BYTES tensor
 * carries one element per item (the input's raw bytes). A numeric tensor
 * (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64) is accepted only for an
 * input that takes JSON: row i becomes the JSON text of that row, shaped as
 * shape[1:]. Outputs come back as BYTES tensors of shape [N].
 *
 * Wire details follow reference kserve-rest.md 2.1-2.4 (KServe 0.20); where
 * we differ, the comment at the spot says so.
 */
import { cryptoModule } from "../core/builtins.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { utf8Encode } from "../core/utf8.js";
import { acceptsJson, type InputMetadata, type ModelMetadata, type OutputMetadata } from "../model/metadata.js";
import { JsonSyntaxError, parseJson, stringifyJson } from "./json-bigint.js";

// ---------------------------------------------------------------------------
// Types (reference 2.1, 2.2; KServe's v2_datamodels.py)

export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

export interface RequestInput {
  name: string;
  shape: number[];
  /** Upper-cased by validation (`fp32` is accepted as `FP32`, as in KServe). */
  datatype: string;
  parameters?: Parameters;
  /** Flat or nested. Absent when the tensor travels as binary data (parameters.binary_data_size). */
  data?: unknown[];
}

export interface RequestOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: RequestInput[];
  outputs?: RequestOutput[];
}

export interface ResponseOutput {
  name: string;
  shape: number[];
  datatype: string;
  parameters: Parameters | null;
  data: unknown[];
}

/** The JSON response, with KServe's key order and explicit nulls (reference 2.2). */
export interface InferenceResponse {
  model_name: string;
  model_version: string | null;
  id: string;
  parameters: Parameters | null;
  outputs: ResponseOutput[];
}

/** An output in a binary response's JSON header: `parameters` only when set, `data` only for JSON outputs. */
export interface BinaryResponseOutput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Parameters;
  data?: unknown[];
}

/** The JSON header of a binary response, in KServe's key order (reference 2.4). */
export interface BinaryResponseHeader {
  id: string;
  model_name: string;
  model_version: string | null;
  outputs: BinaryResponseOutput[];
}

export interface MetadataTensor {
  name: string;
  datatype: string;
  shape: number[];
}

/** `GET /v2/models/{name}` (reference 2, model metadata). */
export interface ModelMetadataResponse {
  name: string;
  versions: string[] | null;
  platform: string;
  inputs: MetadataTensor[];
  outputs: MetadataTensor[];
}

/** One schema problem, shaped like a pydantic error entry. `loc` is relative to the request body. */
export interface ValidationDetail {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
}

/** The HTTP header that gives the JSON part's byte length in binary bodies (reference 2.4). */
export const INFERENCE_HEADER_CONTENT_LENGTH = "inference-header-content-length";

/** Datatypes of the Open Inference Protocol; all but BF16 are supported, as in KServe. */
export const DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export type Datatype = (typeof DATATYPES)[number];
type NumericDatatype = Exclude<Datatype, "BYTES">;

// ---------------------------------------------------------------------------
// Validation (reference 2.1, 2.3 step 1)

/**
 * A request body that does not fit the InferenceRequest schema. A ChassisError
 * (INVALID_ARGUMENT), so generic handling gives 400; KServe answers 422 with
 * `{"detail": requestValidationDetail(error, body)}`.
 */
export class V2ValidationError extends ChassisError {
  readonly details: readonly ValidationDetail[];

  constructor(details: readonly ValidationDetail[]) {
    const count = `${details.length} validation error${details.length === 1 ? "" : "s"} for InferenceRequest`;
    super(Code.INVALID_ARGUMENT, `${count}: ${details.map((d) => `${d.loc.join(".") || "(body)"}: ${d.msg}`).join("; ")}`);
    this.details = details;
  }
}

/**
 * KServe's (FastAPI's) 422 `detail` list for an error: each entry located
 * under `["body", "InferenceRequest", ...]`, then the `bytes` alternative of
 * the `Union[InferenceRequest, bytes]` body type (reference 2.3).
 */
export function requestValidationDetail(error: V2ValidationError, body: unknown): ValidationDetail[] {
  return [
    ...error.details.map((detail) => ({ ...detail, loc: ["body", "InferenceRequest", ...detail.loc] })),
    { type: "bytes_type", loc: ["body", "bytes"], msg: "Input should be a valid bytes", input: body },
  ];
}

/**
 * Checks a parsed JSON body against the InferenceRequest schema and returns a
 * normalized copy (datatype upper-cased, shape items as integers, null
 * optional fields dropped; `data` arrays are not copied). Every problem is
 * reported at once in a V2ValidationError. `data` is required unless the input
 * has `parameters.binary_data_size`.
 */
export function validateInferenceRequest(body: unknown): InferenceRequest {
  return validate(body, true);
}

function validate(body: unknown, requireData: boolean): InferenceRequest {
  const details: ValidationDetail[] = [];
  const request = new Checker(details).request(body, requireData);
  if (details.length > 0 || request === undefined) throw new V2ValidationError(details);
  return request;
}

type Loc = (string | number)[];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

class Checker {
  readonly #details: ValidationDetail[];

  constructor(details: ValidationDetail[]) {
    this.#details = details;
  }

  #add(type: string, loc: Loc, msg: string, input: unknown): undefined {
    this.#details.push({ type, loc, msg, input });
    return undefined;
  }

  #model(value: unknown, loc: Loc, className: string): value is Record<string, unknown> {
    if (isRecord(value)) return true;
    this.#add("model_type", loc, `Input should be a valid dictionary or instance of ${className}`, value);
    return false;
  }

  #string(parent: Record<string, unknown>, key: string, loc: Loc, required: boolean): string | undefined {
    const value = own(parent, key);
    if (value === undefined || (value === null && !required)) {
      return required ? this.#add("missing", [...loc, key], "Field required", parent) : undefined;
    }
    if (typeof value !== "string") return this.#add("string_type", [...loc, key], "Input should be a valid string", value);
    return value;
  }

  #list(parent: Record<string, unknown>, key: string, loc: Loc, required: boolean): unknown[] | undefined {
    const value = own(parent, key);
    if (value === undefined || (value === null && !required)) {
      return required ? this.#add("missing", [...loc, key], "Field required", parent) : undefined;
    }
    if (!Array.isArray(value)) return this.#add("list_type", [...loc, key], "Input should be a valid list", value);
    return value;
  }

  /** `Dict[str, Union[StrictFloat, StrictInt, StrictBool, str]]`; null means absent. */
  #parameters(parent: Record<string, unknown>, loc: Loc): Parameters | undefined {
    const value = own(parent, "parameters");
    if (value === undefined || value === null) return undefined;
    const at = [...loc, "parameters"];
    if (!isRecord(value)) return this.#add("dict_type", at, "Input should be a valid dictionary", value);
    const out: Parameters = {};
    for (const [key, item] of Object.entries(value)) {
      if (typeof item === "string" || typeof item === "number" || typeof item === "boolean") {
        define(out, key, item);
      } else if (typeof item === "bigint") {
        // StrictInt takes any integer; ours are JS numbers.
        define(out, key, Number(item));
      } else {
        this.#add("float_type", [...at, key, "float"], "Input should be a valid number", item);
        this.#add("int_type", [...at, key, "int"], "Input should be a valid integer", item);
        this.#add("bool_type", [...at, key, "bool"], "Input should be a valid boolean", item);
        this.#add("string_type", [...at, key, "str"], "Input should be a valid string", item);
      }
    }
    return out;
  }

  /** `List[int]` in pydantic's lax mode: integral floats and integer strings are coerced. */
  #shape(parent: Record<string, unknown>, loc: Loc): number[] | undefined {
    const list = this.#list(parent, "shape", loc, true);
    if (list === undefined) return undefined;
    const out: number[] = [];
    const before = this.#details.length;
    list.forEach((item, i) => {
      const at = [...loc, "shape", i];
      if (typeof item === "number" && Number.isInteger(item)) out.push(item);
      else if (typeof item === "number")
        this.#add("int_from_float", at, "Input should be a valid integer, got a number with a fractional part", item);
      else if (typeof item === "bigint") out.push(Number(item));
      else if (typeof item === "string" && /^\s*[+-]?\d+\s*$/.test(item)) out.push(Number.parseInt(item, 10));
      else if (typeof item === "string")
        this.#add("int_parsing", at, "Input should be a valid integer, unable to parse string as an integer", item);
      else this.#add("int_type", at, "Input should be a valid integer", item);
    });
    return this.#details.length === before ? out : undefined;
  }

  #input(value: unknown, loc: Loc, requireData: boolean): RequestInput | undefined {
    if (!this.#model(value, loc, "RequestInput")) return undefined;
    const name = this.#string(value, "name", loc, true);
    const shape = this.#shape(value, loc);
    const datatype = this.#string(value, "datatype", loc, true);
    const parameters = this.#parameters(value, loc);
    const binary = parameters?.binary_data_size !== undefined;
    // `data: List` is required (even when empty) unless the tensor is binary.
    const data = this.#list(value, "data", loc, requireData && !binary);
    if (name === undefined || shape === undefined || datatype === undefined) return undefined;
    const input: RequestInput = { name, shape, datatype: datatype.toUpperCase() };
    if (parameters !== undefined) input.parameters = parameters;
    if (data !== undefined) input.data = data;
    return input;
  }

  #output(value: unknown, loc: Loc): RequestOutput | undefined {
    if (!this.#model(value, loc, "RequestOutput")) return undefined;
    const name = this.#string(value, "name", loc, true);
    const parameters = this.#parameters(value, loc);
    if (name === undefined) return undefined;
    return parameters === undefined ? { name } : { name, parameters };
  }

  request(body: unknown, requireData: boolean): InferenceRequest | undefined {
    if (!this.#model(body, [], "InferenceRequest")) return undefined;
    const id = this.#string(body, "id", [], false);
    const parameters = this.#parameters(body, []);
    const inputs = this.#list(body, "inputs", [], true)?.map((input, i) => this.#input(input, ["inputs", i], requireData));
    const outputs = this.#list(body, "outputs", [], false)?.map((output, i) => this.#output(output, ["outputs", i]));
    if (inputs === undefined || inputs.some((input) => input === undefined)) return undefined;
    if (outputs?.some((output) => output === undefined)) return undefined;
    const request: InferenceRequest = { inputs: inputs as RequestInput[] };
    if (id !== undefined) request.id = id;
    if (parameters !== undefined) request.parameters = parameters;
    if (outputs !== undefined) request.outputs = outputs as RequestOutput[];
    return request;
  }
}

// ---------------------------------------------------------------------------
// Binary request bodies (reference 2.4)

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function invalid(message: string, cause?: unknown): ChassisError {
  return new ChassisError(Code.INVALID_ARGUMENT, message, cause === undefined ? undefined : { cause });
}

/**
 * Splits a binary-extension body: the first `headerLength` bytes are the JSON
 * request (`Inference-Header-Content-Length`), then the raw tensors of the
 * inputs that have `parameters.binary_data_size`, in input order. The map
 * values are views into `body`, not copies. Inputs without binary data keep
 * their JSON `data`; one with neither is reported by requestToItems with
 * KServe's text. Throws ChassisError(INVALID_ARGUMENT): a header that is not
 * JSON (`Unrecognized request format: <parser message>`, KServe's prefix), a
 * schema problem (V2ValidationError), or sizes that do not add up to the body.
 */
export function decodeBinaryBody(body: Uint8Array, headerLength: number): { request: InferenceRequest; binary: Map<string, Uint8Array> } {
  if (!Number.isSafeInteger(headerLength) || headerLength < 0) {
    throw invalid(`${INFERENCE_HEADER_CONTENT_LENGTH} must be a whole number of bytes, 0 or more (got ${headerLength})`);
  }
  if (headerLength > body.length) {
    throw invalid(`${INFERENCE_HEADER_CONTENT_LENGTH} is ${headerLength}, but the body has only ${body.length} bytes`);
  }
  let text: string;
  try {
    text = utf8.decode(body.subarray(0, headerLength));
  } catch (error) {
    throw invalid(`Unrecognized request format: the JSON header (the first ${headerLength} bytes) is not valid UTF-8`, error);
  }
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw invalid(`Unrecognized request format: ${error.message}`, error);
    throw error;
  }
  const request = validate(parsed, false);
  const binary = new Map<string, Uint8Array>();
  let offset = headerLength;
  for (const input of request.inputs) {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) continue;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw invalid(
        `input '${input.name}' has parameters.binary_data_size ${JSON.stringify(size)}; it must be a whole number of bytes, 0 or more`,
      );
    }
    if (input.data !== undefined) {
      throw invalid(`input '${input.name}' has both 'data' and parameters.binary_data_size; send its values one way only`);
    }
    if (binary.has(input.name)) throw invalid(`input '${input.name}' appears more than once in the request`);
    const remaining = body.length - offset;
    if (size > remaining) {
      throw invalid(
        `input '${input.name}' has binary_data_size ${size}, but only ${remaining} bytes of binary data remain ` +
          `(body ${body.length} bytes, JSON header ${headerLength} bytes)`,
      );
    }
    binary.set(input.name, body.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== body.length) {
    throw invalid(
      `the body has ${body.length - offset} bytes after the JSON header and the binary inputs ` +
        `(header ${headerLength} bytes + binary_data_size total ${offset - headerLength} bytes = ${offset}, body ${body.length} bytes)`,
    );
  }
  return { request, binary };
}

// ---------------------------------------------------------------------------
// Request -> items

const WIDTH: Record<NumericDatatype, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

const INT_RANGE: Partial<Record<NumericDatatype, readonly [bigint, bigint]>> = {
  UINT8: [0n, 255n],
  UINT16: [0n, 65535n],
  UINT32: [0n, 4294967295n],
  UINT64: [0n, 18446744073709551615n],
  INT8: [-128n, 127n],
  INT16: [-32768n, 32767n],
  INT32: [-2147483648n, 2147483647n],
  INT64: [-9223372036854775808n, 9223372036854775807n],
};

function isDatatype(value: string): value is Datatype {
  return (DATATYPES as readonly string[]).includes(value);
}

function quoteList(names: readonly string[]): string {
  return names.length === 0 ? "(none declared)" : names.map((name) => `'${name}'`).join(", ");
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Sets an own property, also for the key `__proto__`. */
function define<T>(target: Record<string, T>, key: string, value: NoInfer<T>): void {
  if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/**
 * Turns a validated request into Run items, one per row of the batch
 * dimension. `binary` is decodeBinaryBody's map for the binary extension, or
 * undefined for a JSON body (this only changes KServe's FP16 wording, "Sending"
 * vs "Receiving"). Throws ChassisError(INVALID_ARGUMENT) naming the input for
 * an undeclared input, an unknown datatype, a numeric tensor for an input that
 * does not take JSON, values that do not fit the datatype, a count that does
 * not fit the shape, or inputs that disagree on the batch size.
 */
export function requestToItems(
  request: InferenceRequest,
  binary: ReadonlyMap<string, Uint8Array> | undefined,
  metadata: ModelMetadata,
  modelName: string,
): Array<Record<string, Uint8Array>> {
  const declared = new Map(metadata.inputs.map((input) => [input.key, input]));
  const seen = new Set<string>();
  for (const input of request.inputs) {
    if (!declared.has(input.name)) {
      throw invalid(
        `input '${input.name}' is not an input of model '${modelName}'; its inputs are ${quoteList(metadata.inputs.map((i) => i.key))}`,
      );
    }
    if (seen.has(input.name)) throw invalid(`input '${input.name}' appears more than once in the request`);
    seen.add(input.name);
  }
  const columns: { name: string; rows: Uint8Array[] }[] = [];
  for (const input of request.inputs) {
    columns.push({ name: input.name, rows: decodeInput(input, declared.get(input.name) as InputMetadata, binary, modelName) });
  }
  const first = columns[0];
  if (first === undefined) return [];
  const batch = first.rows.length;
  const disagreeing = columns.find((column) => column.rows.length !== batch);
  if (disagreeing !== undefined) {
    const sizes = columns.map((column) => `'${column.name}' has ${column.rows.length}`).join(", ");
    throw invalid(`inputs disagree on the batch size (the first dimension of shape): ${sizes}`);
  }
  const items: Array<Record<string, Uint8Array>> = [];
  for (let i = 0; i < batch; i++) {
    const item: Record<string, Uint8Array> = {};
    for (const column of columns) define(item, column.name, column.rows[i] as Uint8Array);
    items.push(item);
  }
  return items;
}

/** One input tensor -> its N rows as bytes. */
function decodeInput(
  input: RequestInput,
  declared: InputMetadata,
  binary: ReadonlyMap<string, Uint8Array> | undefined,
  modelName: string,
): Uint8Array[] {
  const { name, datatype } = input;
  if (!isDatatype(datatype)) {
    throw invalid(`input '${name}' has datatype '${datatype}', which is not supported; use one of ${DATATYPES.join(", ")}`);
  }
  let bytes: Uint8Array | undefined;
  if (input.parameters?.binary_data_size !== undefined) {
    bytes = binary?.get(name);
    if (bytes === undefined) {
      throw invalid(
        `input '${name}' has parameters.binary_data_size, but the request carries no binary data for it: ` +
          `send the body as application/octet-stream with an ${INFERENCE_HEADER_CONTENT_LENGTH} header`,
      );
    }
  } else if (input.data === undefined) {
    throw invalid(`'data' field is missing for input '${name}' for model '${modelName}'`);
  }
  if (datatype === "FP16" && bytes === undefined && (input.data?.length ?? 0) > 0) {
    throw invalid(
      `${binary === undefined ? "Sending" : "Receiving"} FP16 data via JSON is not supported. Please use the binary data format for input ${name}`,
    );
  }
  if (datatype === "BYTES") {
    const elements = bytes !== undefined ? splitBytes(bytes, name) : jsonBytes(input.data ?? [], name);
    const dims = resolveShape(name, input.shape, elements.length);
    const perRow = product(dims.slice(1));
    if (perRow !== 1) {
      throw invalid(
        `input '${name}' is BYTES with shape ${shapeText(input.shape)}, but each item takes exactly one element of a BYTES tensor: ` +
          "use shape [N] (or [N,1]) with one element per item",
      );
    }
    return elements;
  }
  if (!acceptsJson(declared)) {
    throw invalid(
      `input '${name}' is ${datatype}, but the model's input '${name}' takes ${declared.mediaTypes.join(", ")}, not JSON: ` +
        "send it as a BYTES tensor with one element per item (numeric tensors go only to inputs whose mediaTypes include application/json)",
    );
  }
  const tokens = bytes !== undefined ? binaryTokens(bytes, datatype, name) : jsonTokens(input.data ?? [], datatype, name);
  const dims = resolveShape(name, input.shape, tokens.length);
  return rowsAsJson(tokens, dims);
}

function product(dims: readonly number[]): number {
  let total = 1;
  for (const dim of dims) total *= dim;
  return total;
}

/** The shape with a `-1` dimension inferred (as KServe's reshape does); the count must fit it exactly. */
function resolveShape(name: string, shape: readonly number[], count: number): number[] {
  if (shape.length === 0) {
    throw invalid(`input '${name}' has shape []: its first dimension is the batch size, so one item is shape [1]`);
  }
  const bad = shape.find((dim) => !Number.isSafeInteger(dim) || dim < -1);
  if (bad !== undefined) throw invalid(`input '${name}' has shape ${shapeText(shape)}: dimension ${bad} is not allowed`);
  const unknown = shape.filter((dim) => dim === -1).length;
  if (unknown > 1) throw invalid(`input '${name}' has shape ${shapeText(shape)}: only one dimension can be -1`);
  if (unknown === 1) {
    const known = product(shape.filter((dim) => dim !== -1));
    if (known === 0 || count % known !== 0) {
      throw invalid(`input '${name}' has ${count} values, which do not fit shape ${shapeText(shape)}`);
    }
    return shape.map((dim) => (dim === -1 ? count / known : dim));
  }
  const needed = product(shape);
  if (needed !== count) throw invalid(`input '${name}' has ${count} values but shape ${shapeText(shape)} needs ${needed}`);
  return [...shape];
}

/** JSON `data`, flat or nested, as a flat list. */
function flatten(data: readonly unknown[]): readonly unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (list: readonly unknown[]): void => {
    for (const item of list) {
      if (Array.isArray(item)) walk(item);
      else out.push(item);
    }
  };
  walk(data);
  return out;
}

function jsonBytes(data: readonly unknown[], name: string): Uint8Array[] {
  return flatten(data).map((value, i) => {
    if (typeof value !== "string") {
      throw invalid(`input '${name}' is BYTES, so its data must be strings, but element ${i} is ${describe(value)}`);
    }
    return utf8Encode(value);
  });
}

/** BYTES binary data: each element a 4-byte little-endian length, then that many bytes. */
function splitBytes(bytes: Uint8Array, name: string): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 4) {
      throw invalid(
        `input '${name}' BYTES data is cut short: element ${out.length} needs a 4-byte length but ${bytes.length - offset} bytes remain`,
      );
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (length > bytes.length - offset) {
      throw invalid(
        `input '${name}' BYTES data is cut short: element ${out.length} declares ${length} bytes but ${bytes.length - offset} remain`,
      );
    }
    out.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return out;
}

function describe(value: unknown): string {
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  return String(value);
}

/** JSON values -> one JSON token per element, checked against the datatype. */
function jsonTokens(data: readonly unknown[], datatype: NumericDatatype, name: string): string[] {
  const values = flatten(data);
  const tokens = new Array<string>(values.length);
  const fail = (i: number, problem: string): never => {
    throw invalid(`input '${name}' is ${datatype}, but element ${i} ${problem}`);
  };
  const range = INT_RANGE[datatype];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (datatype === "BOOL") {
      // KServe (numpy) also takes 0 and 1 for BOOL.
      if (typeof value === "boolean") tokens[i] = value ? "true" : "false";
      else if (value === 0 || value === 1) tokens[i] = value === 1 ? "true" : "false";
      else fail(i, `is ${describe(value)}, not true, false, 0 or 1`);
    } else if (range !== undefined) {
      // Deliberately stricter than numpy, which truncates 1.7 to 1 for INT32.
      // Comparisons between numbers and bigints are exact in JS.
      if (typeof value === "number" && !Number.isInteger(value)) fail(i, `is ${value}, not an integer`);
      if (typeof value !== "number" && typeof value !== "bigint") fail(i, `is ${describe(value)}, not a number`);
      const int = value as number | bigint;
      if (int < range[0] || int > range[1]) fail(i, `is ${int}, outside ${datatype}'s range ${range[0]}..${range[1]}`);
      tokens[i] = stringifyJson(int);
    } else {
      if (typeof value !== "number" && typeof value !== "bigint") fail(i, `is ${describe(value)}, not a number`);
      const number = Number(value as number | bigint);
      if (datatype === "FP32") {
        const single = Math.fround(number);
        if (!Number.isFinite(single)) fail(i, `is ${String(value)}, outside FP32's range`);
        tokens[i] = shortestFloat(single, 9, Math.fround);
      } else {
        if (!Number.isFinite(number)) fail(i, `is ${String(value)}, outside FP64's range`);
        tokens[i] = stringifyJson(number);
      }
    }
  }
  return tokens;
}

/** Raw little-endian tensor bytes -> one JSON token per element. */
function binaryTokens(bytes: Uint8Array, datatype: NumericDatatype, name: string): string[] {
  const width = WIDTH[datatype];
  if (bytes.length % width !== 0) {
    throw invalid(`input '${name}' has binary_data_size ${bytes.length}, which is not a multiple of ${width} bytes per ${datatype} value`);
  }
  const count = bytes.length / width;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tokens = new Array<string>(count);
  const finite = (value: number, i: number): number => {
    if (!Number.isFinite(value)) throw invalid(`input '${name}' is ${datatype}, but element ${i} is ${value}, which JSON cannot carry`);
    return value;
  };
  for (let i = 0; i < count; i++) {
    const at = i * width;
    switch (datatype) {
      case "BOOL":
        tokens[i] = view.getUint8(at) !== 0 ? "true" : "false";
        break;
      case "UINT8":
        tokens[i] = String(view.getUint8(at));
        break;
      case "UINT16":
        tokens[i] = String(view.getUint16(at, true));
        break;
      case "UINT32":
        tokens[i] = String(view.getUint32(at, true));
        break;
      case "UINT64":
        tokens[i] = stringifyJson(view.getBigUint64(at, true));
        break;
      case "INT8":
        tokens[i] = String(view.getInt8(at));
        break;
      case "INT16":
        tokens[i] = String(view.getInt16(at, true));
        break;
      case "INT32":
        tokens[i] = String(view.getInt32(at, true));
        break;
      case "INT64":
        tokens[i] = stringifyJson(view.getBigInt64(at, true));
        break;
      case "FP16":
        tokens[i] = shortestFloat(finite(halfToNumber(view.getUint16(at, true)), i), 5, roundToHalf);
        break;
      case "FP32":
        tokens[i] = shortestFloat(finite(view.getFloat32(at, true), i), 9, Math.fround);
        break;
      case "FP64":
        tokens[i] = stringifyJson(finite(view.getFloat64(at, true), i));
        break;
    }
  }
  return tokens;
}

/** Rows of the batch dimension as JSON text, each nested as dims[1:]. */
function rowsAsJson(tokens: readonly string[], dims: readonly number[]): Uint8Array[] {
  const rowDims = dims.slice(1);
  const strides = rowDims.map((_, level) => product(rowDims.slice(level + 1)));
  const rowSize = product(rowDims);
  const nest = (offset: number, level: number): string => {
    if (level === rowDims.length) return tokens[offset] as string;
    const parts: string[] = [];
    const stride = strides[level] as number;
    for (let k = 0; k < (rowDims[level] as number); k++) parts.push(nest(offset + k * stride, level + 1));
    return `[${parts.join(",")}]`;
  };
  const rows: Uint8Array[] = [];
  for (let i = 0; i < (dims[0] as number); i++) rows.push(utf8Encode(nest(i * rowSize, 0)));
  return rows;
}

/**
 * The shortest decimal that reads back (through a JS number) to the same
 * FP32/FP16 value: FP32 1.1 prints as `1.1`, not `1.100000023841858`.
 * `maxDigits` always round-trips (9 for FP32, 5 for FP16); more digits never
 * round-trip worse, so a binary search finds the fewest.
 */
function shortestFloat(value: number, maxDigits: number, round: (x: number) => number): string {
  if (Number.isInteger(value) && Math.abs(value) < 2 ** 24) return String(value);
  let lo = 1;
  let hi = maxDigits;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (round(Number(value.toPrecision(mid))) === value) hi = mid;
    else lo = mid + 1;
  }
  return String(Number(value.toPrecision(lo)));
}

function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The nearest FP16 value (ties to even), as a number. */
function roundToHalf(x: number): number {
  const magnitude = Math.abs(x);
  if (!Number.isFinite(magnitude)) return x;
  if (magnitude >= 65520) return x > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  let quantum = 2 ** -24;
  if (magnitude >= 2 ** -14) {
    let exponent = Math.floor(Math.log2(magnitude));
    if (2 ** exponent > magnitude) exponent--;
    else if (2 ** (exponent + 1) <= magnitude) exponent++;
    quantum = 2 ** (exponent - 10);
  }
  const scaled = magnitude / quantum;
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return Math.sign(x) * rounded * quantum;
}

// ---------------------------------------------------------------------------
// Outputs -> response (reference 2.2, 2.4)

export interface PlannedOutput {
  readonly key: string;
  /** Whether this output travels as raw bytes after the JSON header. */
  readonly binary: boolean;
}

/** KServe reads any truthy value, including the string "true"; "false", "0" and "" are false here. */
function truthy(value: ParameterValue | undefined): boolean {
  if (typeof value === "string") return !["", "false", "0"].includes(value.trim().toLowerCase());
  return Boolean(value);
}

/**
 * Which outputs to return, in which order, and which as binary: the requested
 * outputs in request order (all declared outputs when none are listed), each
 * binary when its `parameters.binary_data` is truthy, or, without that
 * parameter, when the request's `parameters.binary_data_output` is (Triton's
 * rule: per-output overrides global; KServe 0.20 ignores the global flag once
 * outputs are listed). Call it before running the model to reject an unknown
 * output early: ChassisError(INVALID_ARGUMENT) with KServe's text
 * `Unexpected inference output 'zzz' for model 'echo'`.
 */
export function planOutputs(
  outputs: readonly OutputMetadata[],
  requested: readonly RequestOutput[] | undefined,
  parameters: Parameters | undefined,
  modelName: string,
): PlannedOutput[] {
  const global = truthy(parameters?.binary_data_output);
  if (requested === undefined || requested.length === 0) return outputs.map(({ key }) => ({ key, binary: global }));
  const seen = new Set<string>();
  return requested.map(({ name, parameters: outputParameters }) => {
    if (!outputs.some((output) => output.key === name)) throw invalid(`Unexpected inference output '${name}' for model '${modelName}'`);
    if (seen.has(name)) throw invalid(`output '${name}' is requested more than once`);
    seen.add(name);
    const flag = outputParameters?.binary_data;
    return { key: name, binary: flag === undefined ? global : truthy(flag) };
  });
}

export interface ResponseOptions {
  modelName: string;
  /** The request's id; a random UUID when absent (reference 2.2: an id is always returned). */
  id?: string | undefined;
  /** The model's declared outputs. */
  outputs: readonly OutputMetadata[];
  /** The request's `outputs`. */
  requested?: readonly RequestOutput[] | undefined;
  /** The request's `parameters` (`binary_data_output`). */
  parameters?: Parameters | undefined;
  /** Each item's outputs, in item order. */
  results: readonly Readonly<Record<string, Uint8Array>>[];
}

export type V2Response =
  | { readonly binary: false; readonly response: InferenceResponse; readonly body: string }
  | {
      readonly binary: true;
      readonly response: BinaryResponseHeader;
      /** The JSON header text. */
      readonly header: string;
      /** Its UTF-8 byte length: the `inference-header-content-length` response header. */
      readonly headerLength: number;
      /** The whole HTTP body: the header's bytes, then each binary output's bytes in output order. */
      readonly body: Uint8Array;
    };

/**
 * Builds the inference response: each selected output as a BYTES tensor of
 * shape [N] whose element i is item i's output. JSON elements are UTF-8
 * strings (an output that is not valid UTF-8 is refused with a hint to ask for
 * binary data); binary elements are a 4-byte little-endian length, then the
 * bytes. Binary when any selected output is binary (see planOutputs).
 */
export function outputsToResponse(options: ResponseOptions): V2Response {
  const { modelName, results } = options;
  // node:crypto is loaded here, on the first v2 answer without an id, not at start-up (~8 ms).
  const id = options.id ?? cryptoModule().randomUUID();
  const plan = planOutputs(options.outputs, options.requested, options.parameters, modelName);
  const column = (key: string): Uint8Array[] =>
    results.map((result, i) => {
      const value = Object.hasOwn(result, key) ? result[key] : undefined;
      if (!(value instanceof Uint8Array)) {
        const has = Object.keys(result);
        throw new ChassisError(
          Code.INTERNAL,
          `item ${i} has no output '${key}' (it has ${has.length === 0 ? "none" : quoteList(has)}), so the v2 response cannot be built`,
        );
      }
      return value;
    });
  const texts = (key: string): string[] =>
    column(key).map((bytes, i) => {
      try {
        return utf8.decode(bytes);
      } catch (error) {
        throw invalid(
          `output '${key}' of item ${i} is not UTF-8 text, so it cannot travel as a JSON string; ask for it as binary data ` +
            `(request parameters.binary_data_output: true, or outputs[].parameters.binary_data: true)`,
          error,
        );
      }
    });
  const shape = [results.length];

  if (!plan.some((output) => output.binary)) {
    const response: InferenceResponse = {
      model_name: modelName,
      model_version: null,
      id,
      parameters: null,
      outputs: plan.map(({ key }) => ({ name: key, shape, datatype: "BYTES", parameters: null, data: texts(key) })),
    };
    return { binary: false, response, body: JSON.stringify(response) };
  }

  const blocks: Uint8Array[][] = [];
  const outputs: BinaryResponseOutput[] = plan.map(({ key, binary }) => {
    if (!binary) return { name: key, shape, datatype: "BYTES", data: texts(key) };
    const elements = column(key);
    blocks.push(elements);
    const size = elements.reduce((total, bytes) => total + 4 + bytes.length, 0);
    return { name: key, shape, datatype: "BYTES", parameters: { binary_data_size: size } };
  });
  const response: BinaryResponseHeader = { id, model_name: modelName, model_version: null, outputs };
  const header = JSON.stringify(response);
  const headerBytes = encoder.encode(header);
  const total = blocks.reduce((sum, elements) => sum + elements.reduce((s, bytes) => s + 4 + bytes.length, 0), headerBytes.length);
  const body = new Uint8Array(total);
  const view = new DataView(body.buffer);
  body.set(headerBytes, 0);
  let offset = headerBytes.length;
  for (const elements of blocks) {
    for (const bytes of elements) {
      view.setUint32(offset, bytes.length, true);
      body.set(bytes, offset + 4);
      offset += 4 + bytes.length;
    }
  }
  return { binary: true, response, header, headerLength: headerBytes.length, body };
}

// ---------------------------------------------------------------------------
// Model metadata (reference 2, `GET /v2/models/{name}`)

/**
 * The v2 model metadata: every input and output as a BYTES tensor of shape
 * [-1] (one element per item). Numeric tensors are also accepted for JSON
 * inputs, but BYTES is what every input takes.
 */
export function modelMetadataV2(metadata: ModelMetadata, modelName: string): ModelMetadataResponse {
  return {
    name: modelName,
    versions: null,
    platform: "chassis-ts",
    inputs: metadata.inputs.map(({ key }) => ({ name: key, datatype: "BYTES", shape: [-1] })),
    outputs: metadata.outputs.map(({ key }) => ({ name: key, datatype: "BYTES", shape: [-1] })),
  };
}

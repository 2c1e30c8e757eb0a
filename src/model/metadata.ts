/**
 * @module model/metadata
 * The model's metadata as an author writes it (ModelSpec*), and the complete,
 * validated, frozen form (ModelMetadata) that every OMI StatusResponse field
 * comes from. Defaults are Chassis's (SPEC.md section 2).
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { parseDuration, parseSize } from "./units.js";

export interface InputSpec {
  /** The key of this input in a Run item (OMI `ModelInput.filename`). */
  key: string;
  /** @default ["application/octet-stream"] */
  mediaTypes?: string[];
  /** Largest accepted value, e.g. `512K`, `1M`, `1.5G`. @default "1M" */
  maxSize?: string;
  description?: string;
  /**
   * Whether every item must carry this input. Not on the OMI wire; the runtime
   * rejects an item that lacks a required input before calling predict.
   * @default true
   */
  required?: boolean;
}

export interface OutputSpec {
  /** The key of this output in a Run result (OMI `ModelOutput.filename`). */
  key: string;
  /** @default by extension: `.json` application/json, `.txt` text/plain, else application/octet-stream */
  mediaType?: string;
  /** @default "1M" */
  maxSize?: string;
  description?: string;
}

export interface MetadataSpec {
  name: string;
  version: string;
  author?: string;
  description?: { summary?: string; details?: string; technical?: string; performance?: string };
  inputs: InputSpec[];
  outputs: OutputSpec[];
  /** @default { ram: "512M", cpus: 1, gpus: 0 } */
  resources?: { ram?: string; cpus?: number; gpus?: number };
  /** How long a Status (first load) and a Run may take. @default { status: "60s", run: "60s" } */
  timeout?: { status?: string; run?: string };
  features?: {
    adversarialDefense?: boolean;
    retrainable?: boolean;
    resultsFormat?: string;
    driftFormat?: string;
    explanationFormat?: string;
  };
}

export interface InputMetadata {
  readonly key: string;
  readonly mediaTypes: readonly string[];
  readonly maxSize: string;
  readonly maxBytes: number;
  readonly description: string;
  readonly required: boolean;
}

export interface OutputMetadata {
  readonly key: string;
  readonly mediaType: string;
  readonly maxSize: string;
  readonly maxBytes: number;
  readonly description: string;
}

export interface ModelMetadata {
  readonly name: string;
  readonly version: string;
  readonly author: string;
  readonly modelType: string;
  readonly source: string;
  readonly description: {
    readonly summary: string;
    readonly details: string;
    readonly technical: string;
    readonly performance: string;
  };
  readonly inputs: readonly InputMetadata[];
  readonly outputs: readonly OutputMetadata[];
  readonly resources: { readonly ram: string; readonly cpus: number; readonly gpus: number };
  readonly timeout: { readonly status: string; readonly run: string; readonly statusMs: number; readonly runMs: number };
  readonly features: {
    readonly adversarialDefense: boolean;
    readonly batchSize: number;
    readonly retrainable: boolean;
    readonly resultsFormat: string;
    readonly driftFormat: string;
    readonly explanationFormat: string;
  };
}

export const DEFAULTS = Object.freeze({
  modelType: "grpc",
  source: "chassis-ts",
  inputMediaType: "application/octet-stream",
  maxSize: "1M",
  ram: "512M",
  cpus: 1,
  gpus: 0,
  timeout: "60s",
});

const SIZE_HINT = "a size such as 512K, 1M or 1.5G";
const DURATION_HINT = "a duration such as 500ms, 60s or 5m";

/**
 * Fills Chassis's defaults into a spec and checks it, reporting every problem
 * at once, with `otherProblems` (e.g. about the functions) first. Throws
 * ChassisError(INVALID_ARGUMENT) naming each bad field.
 */
export function normalizeMetadata(spec: MetadataSpec, batchSize: number, otherProblems: readonly string[] = []): ModelMetadata {
  const problems: string[] = [...otherProblems];
  const text = (value: unknown, field: string, required = false): string => {
    if (value === undefined || value === null) {
      if (required) problems.push(`${field} is required (a non-empty string)`);
      return "";
    }
    if (typeof value !== "string") {
      problems.push(`${field} must be a string, got ${typeof value}`);
      return "";
    }
    if (required && value.trim() === "") problems.push(`${field} must not be empty`);
    return value;
  };
  const size = (value: unknown, field: string): [string, number] => {
    const raw = text(value ?? DEFAULTS.maxSize, field);
    const bytes = parseSize(raw);
    if (bytes === undefined || bytes <= 0) {
      problems.push(`${field} "${raw}" is not ${SIZE_HINT}`);
      return [raw, 0];
    }
    return [raw, bytes];
  };
  const duration = (value: unknown, field: string): [string, number] => {
    const raw = text(value ?? DEFAULTS.timeout, field);
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) {
      problems.push(`${field} "${raw}" is not ${DURATION_HINT}`);
      return [raw, 0];
    }
    return [raw, ms];
  };

  if (typeof spec !== "object" || spec === null) {
    throw new ChassisError(Code.INVALID_ARGUMENT, "invalid model: defineModel() needs an object with metadata");
  }
  const name = text(spec.name, "name", true);
  const version = text(spec.version, "version", true);

  const inputs: InputMetadata[] = [];
  if (!Array.isArray(spec.inputs) || spec.inputs.length === 0) {
    problems.push('inputs must list at least one input, e.g. [{ key: "input" }]');
  } else {
    spec.inputs.forEach((input, i) => {
      const key = text(input?.key, `inputs[${i}].key`, true);
      const mediaTypes = input?.mediaTypes ?? [DEFAULTS.inputMediaType];
      if (!Array.isArray(mediaTypes) || mediaTypes.some((t) => typeof t !== "string")) {
        problems.push(`inputs[${i}].mediaTypes must be an array of strings`);
      }
      const [maxSize, maxBytes] = size(input?.maxSize, `inputs[${i}].maxSize`);
      inputs.push({
        key,
        mediaTypes: Object.freeze(Array.isArray(mediaTypes) ? [...mediaTypes] : []),
        maxSize,
        maxBytes,
        description: text(input?.description, `inputs[${i}].description`),
        required: input?.required ?? true,
      });
    });
  }
  const outputs: OutputMetadata[] = [];
  if (!Array.isArray(spec.outputs) || spec.outputs.length === 0) {
    problems.push('outputs must list at least one output, e.g. [{ key: "results.json" }]');
  } else {
    spec.outputs.forEach((output, i) => {
      const key = text(output?.key, `outputs[${i}].key`, true);
      const [maxSize, maxBytes] = size(output?.maxSize, `outputs[${i}].maxSize`);
      outputs.push({
        key,
        mediaType: text(output?.mediaType, `outputs[${i}].mediaType`) || mediaTypeFor(key),
        maxSize,
        maxBytes,
        description: text(output?.description, `outputs[${i}].description`),
      });
    });
  }
  for (const [list, what] of [
    [inputs, "inputs"],
    [outputs, "outputs"],
  ] as const) {
    const seen = new Set<string>();
    for (const { key } of list) {
      if (seen.has(key)) problems.push(`${what} declares key "${key}" twice`);
      seen.add(key);
    }
  }

  const resources = spec.resources ?? {};
  const ram = text(resources.ram ?? DEFAULTS.ram, "resources.ram");
  if (parseSize(ram) === undefined) problems.push(`resources.ram "${ram}" is not ${SIZE_HINT}`);
  const cpus = resources.cpus ?? DEFAULTS.cpus;
  if (typeof cpus !== "number" || !(cpus > 0)) problems.push("resources.cpus must be a number above 0");
  const gpus = resources.gpus ?? DEFAULTS.gpus;
  if (!Number.isInteger(gpus) || gpus < 0) problems.push("resources.gpus must be a whole number, 0 or more");

  const [status, statusMs] = duration(spec.timeout?.status, "timeout.status");
  const [run, runMs] = duration(spec.timeout?.run, "timeout.run");
  if (!Number.isInteger(batchSize) || batchSize < 1) problems.push(`batchSize must be a whole number, 1 or more (got ${batchSize})`);

  const features = spec.features ?? {};
  const description = spec.description ?? {};
  const metadata: ModelMetadata = {
    name,
    version,
    author: text(spec.author, "author"),
    modelType: DEFAULTS.modelType,
    source: DEFAULTS.source,
    description: {
      summary: text(description.summary, "description.summary"),
      details: text(description.details, "description.details"),
      technical: text(description.technical, "description.technical"),
      performance: text(description.performance, "description.performance"),
    },
    inputs,
    outputs,
    resources: { ram, cpus, gpus },
    timeout: { status, run, statusMs, runMs },
    features: {
      adversarialDefense: features.adversarialDefense ?? false,
      batchSize,
      retrainable: features.retrainable ?? false,
      resultsFormat: text(features.resultsFormat, "features.resultsFormat"),
      driftFormat: text(features.driftFormat, "features.driftFormat"),
      explanationFormat: text(features.explanationFormat, "features.explanationFormat"),
    },
  };
  if (problems.length > 0) {
    const where = name ? `model "${name}"` : "model";
    throw new ChassisError(Code.INVALID_ARGUMENT, `invalid ${where}: ${problems.join("; ")}`);
  }
  return deepFreeze(metadata);
}

/**
 * The URL-safe name a model is served under by default (KServe `MODEL_NAME`,
 * Kubernetes names): "Digits Classifier" -> "digits-classifier".
 */
export function modelSlug(name: string): string {
  const slug = name
    .normalize("NFKD")
    .replace(/\p{M}/gu, "") // accents split off by NFKD: "Crème" -> "creme", not "cre-me"
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return slug || "model";
}

/** `application/json` or any `+json` type (`application/vnd.x+json`), parameters (`; charset=utf-8`) ignored. */
export function isJsonMediaType(type: string): boolean {
  const base = (type.split(";")[0] ?? "").trim().toLowerCase();
  return base === "application/json" || base.endsWith("+json");
}

/** Whether an input takes JSON, so REST callers may send a JSON value for it rather than bytes. */
export function acceptsJson(input: InputMetadata): boolean {
  return input.mediaTypes.some(isJsonMediaType);
}

/** The media type an output key suggests: `results.json` is JSON, as in Chassis. */
export function mediaTypeFor(key: string): string {
  if (key.endsWith(".json")) return "application/json";
  if (key.endsWith(".txt")) return "text/plain";
  return "application/octet-stream";
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

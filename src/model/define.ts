/**
 * @module model/define
 * defineModel(): the one function a model author calls. It validates the
 * metadata once, fills Chassis's defaults, and returns a frozen Model that the
 * runtime (and so every protocol) serves, and that `model.test()` runs in-process.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { Logger } from "../core/log.js";
import { MAX_WAIT_MS } from "../runtime/batcher.js";
import type { ItemOutcome, RawItem } from "../runtime/outcome.js";
import { Runtime } from "../runtime/runtime.js";
import type { ModelItem, ModelOutputs } from "./item.js";
import { type MetadataSpec, type ModelMetadata, normalizeMetadata } from "./metadata.js";

export interface LoadContext {
  readonly metadata: ModelMetadata;
  readonly log: Logger;
}

export interface PredictContext<S> {
  /** What `load()` returned. */
  readonly state: S;
  /**
   * Aborted when the run timeout passes or the caller goes away; its reason is
   * the ChassisError. Pass it to APIs that take an AbortSignal; to check
   * whether to go on, `aborted` and `throwIfAborted()` are cheaper.
   */
  readonly signal: AbortSignal;
  /**
   * True once the run timeout passed or the caller went away: what
   * `signal.aborted` says, without making the AbortSignal (~5 µs on Node 20).
   * Read it as `ctx.aborted` when it matters: a value destructured at the
   * start of predict stays what it was then.
   */
  readonly aborted: boolean;
  /**
   * Throws the ChassisError (DEADLINE_EXCEEDED or CANCELLED) once `aborted`
   * is true: `signal.throwIfAborted()` without the signal. Safe to destructure.
   */
  readonly throwIfAborted: () => void;
  readonly metadata: ModelMetadata;
  readonly log: Logger;
}

interface DefinitionBase<S> extends MetadataSpec {
  /** Runs once before the first predict (at server start by default); may be async. Its result is `ctx.state`. */
  load?: (ctx: LoadContext) => S | Promise<S>;
  /** Runs once at shutdown, after the last predict. */
  unload?: (state: S) => void | Promise<void>;
  /**
   * Explains one item (KServe `:explain`); returns any JSON value. Without it,
   * `:explain` answers 501 as KServe does.
   */
  explain?: (item: ModelItem, ctx: PredictContext<S>) => unknown;
}

export interface SinglePredictDefinition<S> extends DefinitionBase<S> {
  /** Predicts one item. Throwing fails this item only (success=false, `error` = the message). */
  predict: (item: ModelItem, ctx: PredictContext<S>) => ModelOutputs | Promise<ModelOutputs>;
  predictBatch?: never;
  batchSize?: never;
  batching?: never;
}

export interface BatchPredictDefinition<S> extends DefinitionBase<S> {
  /**
   * Predicts up to `batchSize` items at once, returning one result per item in
   * order. An Error in the array fails that item only; throwing fails the batch.
   */
  predictBatch: (items: ModelItem[], ctx: PredictContext<S>) => Array<ModelOutputs | Error> | Promise<Array<ModelOutputs | Error>>;
  /** Most items per predictBatch call (OMI `features.batch_size`). @default 8 */
  batchSize?: number;
  /** Merging items of concurrent calls into one predictBatch call (docs/model-sdk.md#batching-across-calls). */
  batching?: BatchingSpec;
  predict?: never;
}

/** How the runtime merges the items of concurrent calls into predictBatch calls. */
export interface BatchingSpec {
  /** Whether to batch across calls; the server's `--batching on|off` overrides it. @default true */
  enabled?: boolean;
  /** Most items in one merged predictBatch call, 1 to batchSize. @default batchSize */
  maxBatchSize?: number;
  /**
   * How long the first queued item may wait for a fuller batch, in ms. 0 never
   * waits: a batch leaves as soon as a slot is free, so a lone call adds no delay.
   * @default 0
   */
  maxWaitMs?: number;
  /** predictBatch calls that may run at once; items queue while all are busy. @default 1 */
  maxConcurrentBatches?: number;
}

/** BatchingSpec with every default filled in (for a predict model: disabled, 1 item). */
export type BatchingConfig = Readonly<Required<BatchingSpec>>;

export type ModelDefinition<S> = SinglePredictDefinition<S> | BatchPredictDefinition<S>;

export const DEFAULT_BATCH_SIZE = 8;
export const DEFAULT_MAX_CONCURRENT_BATCHES = 1;

/** A validated model, ready to serve. */
export class Model<S = unknown> {
  readonly metadata: ModelMetadata;
  readonly definition: Readonly<ModelDefinition<S>>;
  /** Batching across calls, validated and complete; the runtime may override `enabled` and `maxWaitMs`. */
  readonly batching: BatchingConfig;

  constructor(definition: ModelDefinition<S>) {
    if (typeof definition !== "object" || definition === null) {
      throw new ChassisError(Code.INVALID_ARGUMENT, "invalid model: defineModel() needs an object");
    }
    const problems: string[] = [];
    const hasSingle = typeof definition.predict === "function";
    const hasBatch = typeof definition.predictBatch === "function";
    if (hasSingle === hasBatch) {
      const what = hasSingle ? "both predict and predictBatch" : "neither predict nor predictBatch";
      problems.push(`it has ${what}; give exactly one (predict(item, ctx) or predictBatch(items, ctx) with batchSize)`);
    }
    for (const hook of ["load", "unload", "explain"] as const) {
      if (definition[hook] !== undefined && typeof definition[hook] !== "function") problems.push(`${hook} must be a function`);
    }
    const batchSize = hasBatch ? (definition.batchSize ?? DEFAULT_BATCH_SIZE) : 1;
    this.batching = normalizeBatching(definition.batching, hasBatch, batchSize, problems);
    this.metadata = normalizeMetadata(definition, batchSize, problems);
    this.definition = Object.freeze({ ...definition });
    Object.freeze(this);
  }

  /**
   * Runs items through the model in-process, exactly as the server would
   * (validation, batching, timeouts, per-item errors), loading it first.
   * Strings are sent as UTF-8 bytes.
   */
  async test(items: Array<Record<string, Uint8Array | string>>, options: { log?: Logger } = {}): Promise<ItemOutcome[]> {
    const runtime = new Runtime(this, options);
    await runtime.load();
    try {
      return await runtime.run(items.map(toRawItem));
    } finally {
      await runtime.drain();
    }
  }
}

const BATCHING_FIELDS = ["enabled", "maxBatchSize", "maxWaitMs", "maxConcurrentBatches"];

/** Fills the defaults of `batching`, adding a problem for each bad field (reported with the metadata's). */
function normalizeBatching(spec: unknown, hasBatch: boolean, batchSize: number, problems: string[]): BatchingConfig {
  const off: BatchingConfig = Object.freeze({ enabled: false, maxBatchSize: 1, maxWaitMs: 0, maxConcurrentBatches: 1 });
  if (spec === undefined) {
    return hasBatch
      ? Object.freeze({ enabled: true, maxBatchSize: batchSize, maxWaitMs: 0, maxConcurrentBatches: DEFAULT_MAX_CONCURRENT_BATCHES })
      : off;
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    problems.push("batching must be an object such as { maxBatchSize: 16, maxWaitMs: 2 }");
    return off;
  }
  if (!hasBatch) {
    problems.push("batching applies to predictBatch only; remove it, or use predictBatch(items, ctx) with batchSize");
    return off;
  }
  const given = spec as BatchingSpec;
  for (const key of Object.keys(given)) {
    if (!BATCHING_FIELDS.includes(key)) problems.push(`batching.${key} is not a batching option (${BATCHING_FIELDS.join(", ")})`);
  }
  const enabled = given.enabled ?? true;
  if (typeof enabled !== "boolean") problems.push(`batching.enabled must be true or false (got ${JSON.stringify(enabled)})`);
  const maxBatchSize = given.maxBatchSize ?? batchSize;
  const batchSizeValid = Number.isInteger(batchSize) && batchSize >= 1; // else normalizeMetadata reports batchSize
  if (batchSizeValid && (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > batchSize)) {
    problems.push(`batching.maxBatchSize must be a whole number from 1 to batchSize (${batchSize}) (got ${JSON.stringify(maxBatchSize)})`);
  }
  const maxWaitMs = given.maxWaitMs ?? 0;
  if (typeof maxWaitMs !== "number" || !(maxWaitMs >= 0 && maxWaitMs <= MAX_WAIT_MS)) {
    problems.push(`batching.maxWaitMs must be a number of milliseconds from 0 to ${MAX_WAIT_MS} (got ${JSON.stringify(maxWaitMs)})`);
  }
  const maxConcurrentBatches = given.maxConcurrentBatches ?? DEFAULT_MAX_CONCURRENT_BATCHES;
  if (!Number.isInteger(maxConcurrentBatches) || maxConcurrentBatches < 1) {
    problems.push(`batching.maxConcurrentBatches must be a whole number, 1 or more (got ${JSON.stringify(maxConcurrentBatches)})`);
  }
  return Object.freeze({ enabled, maxBatchSize, maxWaitMs, maxConcurrentBatches });
}

export function defineModel<S = undefined>(definition: ModelDefinition<S>): Model<S> {
  return new Model(definition);
}

/** True for what a model module exports (also across copies of this package). */
export function isModel(value: unknown): value is Model {
  return (
    value instanceof Model ||
    (typeof value === "object" && value !== null && "metadata" in value && "definition" in value && "test" in value)
  );
}

const encoder = new TextEncoder();
function toRawItem(item: Record<string, Uint8Array | string>): RawItem {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, typeof v === "string" ? encoder.encode(v) : v]));
}

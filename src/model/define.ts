/**
 * @module model/define
 * defineModel(): the one function a model author calls. It validates the
 * metadata once, fills Chassis's defaults, and returns a frozen Model that the
 * runtime (and so every protocol) serves, and that `model.test()` runs in-process.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { Logger } from "../core/log.js";
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
  /** Aborted when the run timeout passes or the caller goes away; long predicts should watch it. */
  readonly signal: AbortSignal;
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
}

export interface BatchPredictDefinition<S> extends DefinitionBase<S> {
  /**
   * Predicts up to `batchSize` items at once, returning one result per item in
   * order. An Error in the array fails that item only; throwing fails the batch.
   */
  predictBatch: (items: ModelItem[], ctx: PredictContext<S>) => Array<ModelOutputs | Error> | Promise<Array<ModelOutputs | Error>>;
  /** Most items per predictBatch call (OMI `features.batch_size`). @default 8 */
  batchSize?: number;
  predict?: never;
}

export type ModelDefinition<S> = SinglePredictDefinition<S> | BatchPredictDefinition<S>;

export const DEFAULT_BATCH_SIZE = 8;

/** A validated model, ready to serve. */
export class Model<S = unknown> {
  readonly metadata: ModelMetadata;
  readonly definition: Readonly<ModelDefinition<S>>;

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

/**
 * @module runtime/executor
 * How validated items reach the model's code. DirectExecutor calls predict
 * per item (concurrently, so async predicts overlap) or predictBatch per chunk
 * of batchSize, each call's items apart. BatchingExecutor (batcher.ts) wraps a
 * ChunkExecutor and merges the items of many calls into its chunks.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { LazyAbortSource } from "../core/lazy-abort.js";
import type { Logger } from "../core/log.js";
import type { BatchPredictDefinition, Model, PredictContext, SinglePredictDefinition } from "../model/define.js";
import { ModelItem } from "../model/item.js";
import type { ModelMetadata } from "../model/metadata.js";
import { type Cancellation, isPromiseLike, withDeadline } from "./deadline.js";
import { type ExplainOutcome, failure, type ItemOutcome, type RawItem } from "./outcome.js";
import { encodeOutputs } from "./validate.js";

export interface Executor {
  /**
   * Predicts valid items; returns exactly one outcome per item, in order
   * (directly when every predict was synchronous). Never throws.
   */
  execute(items: readonly RawItem[], signal?: Cancellation): ItemOutcome[] | Promise<ItemOutcome[]>;
  /** Explains valid items with the model's explain function (which must exist). Never throws. */
  explain(items: readonly RawItem[], signal?: Cancellation): Promise<ExplainOutcome[]>;
}

/** An Executor that can also run one predictBatch call for a chunk it is handed. */
export interface ChunkExecutor extends Executor {
  /**
   * One predictBatch call for up to batchSize valid items, under the run
   * timeout and `signal`; one outcome per item, in order. Never throws.
   */
  predictChunk(chunk: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]>;
}

/**
 * Where the model runs when not on this thread (server/threads: worker
 * threads). The Runtime asks it to load the model instead of calling the
 * model's load() itself, and sends its predicts to the executor it gives.
 */
export interface PredictHost {
  /** Predicts that can run at once: batching lets this many batches run together. */
  readonly concurrency: number;
  /** Loads the model wherever it runs (again, after a failed load); resolves with the executor that reaches it. */
  load(): Promise<ChunkExecutor>;
  /** Unloads the model and stops what runs it, whatever its state. */
  unload(): Promise<void>;
}

/**
 * One predictChunk per run of up to `size` items, in order, all started at
 * once; the outcomes of every chunk, in the items' order. A call's items are
 * never mixed with another call's here (that is the BatchingExecutor's job).
 */
export async function inChunks(
  items: readonly RawItem[],
  size: number,
  predictChunk: (chunk: readonly RawItem[]) => Promise<ItemOutcome[]>,
): Promise<ItemOutcome[]> {
  const chunks: Promise<ItemOutcome[]>[] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(predictChunk(items.slice(start, start + size)));
  return (await Promise.all(chunks)).flat();
}

export class DirectExecutor<S> implements ChunkExecutor {
  readonly #model: Model<S>;
  readonly #state: S;
  readonly #log: Logger;

  constructor(model: Model<S>, state: S, log: Logger) {
    this.#model = model;
    this.#state = state;
    this.#log = log;
  }

  execute(items: readonly RawItem[], signal?: Cancellation): ItemOutcome[] | Promise<ItemOutcome[]> {
    const definition = this.#model.definition;
    if (typeof definition.predictBatch === "function") {
      return this.#executeBatches(definition as BatchPredictDefinition<S>, items, signal);
    }
    const single = definition as SinglePredictDefinition<S>;
    if (items.length === 1) {
      // The common call: one item, often a synchronous predict; no Promise.all, no extra promises.
      const one = this.#executeOne(single, items[0] as RawItem, signal);
      return isPromiseLike(one) ? one.then((outcome) => [outcome]) : [one];
    }
    return Promise.all(items.map((item) => this.#executeOne(single, item, signal)));
  }

  explain(items: readonly RawItem[], signal?: Cancellation): Promise<ExplainOutcome[]> {
    const { metadata, definition } = this.#model;
    const explain = definition.explain as NonNullable<typeof definition.explain>;
    return Promise.all(
      items.map(async (raw): Promise<ExplainOutcome> => {
        try {
          const item = new ModelItem(raw, metadata.inputs);
          const explanation = await withDeadline(
            (stop) => explain(item, this.#context(stop)),
            metadata.timeout.runMs,
            metadata.timeout.run,
            signal,
          );
          return { ok: true, explanation };
        } catch (error) {
          return { ok: false, error: ChassisError.from(error) };
        }
      }),
    );
  }

  #context(stop: LazyAbortSource): PredictContext<S> {
    return new Context(this.#state, stop, this.#model.metadata, this.#log);
  }

  /** One predict; synchronous when the predict is. Never throws. */
  #executeOne(definition: SinglePredictDefinition<S>, raw: RawItem, signal?: Cancellation): ItemOutcome | Promise<ItemOutcome> {
    const { metadata } = this.#model;
    try {
      const item = new ModelItem(raw, metadata.inputs);
      const result = withDeadline(
        (stop) => definition.predict(item, this.#context(stop)),
        metadata.timeout.runMs,
        metadata.timeout.run,
        signal,
      );
      if (isPromiseLike(result)) {
        return result.then(
          (value) => this.#encoded(value),
          (error: unknown) => failure(ChassisError.from(error)),
        );
      }
      return this.#encoded(result);
    } catch (error) {
      return failure(ChassisError.from(error));
    }
  }

  #encoded(result: unknown): ItemOutcome {
    try {
      return { ok: true, outputs: encodeOutputs(result, this.#model.metadata) };
    } catch (error) {
      return failure(ChassisError.from(error));
    }
  }

  #executeBatches(definition: BatchPredictDefinition<S>, items: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]> {
    return inChunks(items, this.#model.metadata.features.batchSize, (chunk) => this.#predictChunk(definition, chunk, signal));
  }

  predictChunk(chunk: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]> {
    return this.#predictChunk(this.#model.definition as BatchPredictDefinition<S>, chunk, signal);
  }

  async #predictChunk(definition: BatchPredictDefinition<S>, chunk: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]> {
    const { metadata } = this.#model;
    let results: unknown;
    try {
      const modelItems = chunk.map((raw) => new ModelItem(raw, metadata.inputs));
      results = await withDeadline(
        (stop) => definition.predictBatch(modelItems, this.#context(stop)),
        metadata.timeout.runMs,
        metadata.timeout.run,
        signal,
      );
    } catch (error) {
      // Chassis answers 0 outputs here; we fail every item of this batch only.
      const reason = ChassisError.from(error);
      return chunk.map(() => failure(reason));
    }
    if (!Array.isArray(results) || results.length !== chunk.length) {
      const got = Array.isArray(results) ? `${results.length} results` : "no array";
      const reason = new ChassisError(
        Code.INTERNAL,
        `predictBatch returned ${got} for ${chunk.length} items; it must return one result per item, in order`,
      );
      return chunk.map(() => failure(reason));
    }
    return results.map((result): ItemOutcome => {
      if (result instanceof Error) return failure(ChassisError.from(result));
      try {
        return { ok: true, outputs: encodeOutputs(result, metadata) };
      } catch (error) {
        return failure(ChassisError.from(error));
      }
    });
  }
}

/**
 * ctx for predict, predictBatch and explain. `signal` is a getter: most
 * predicts never read it, and an AbortSignal takes microseconds to make;
 * `aborted` and throwIfAborted() answer without making one (a class, because
 * an object literal with a getter was itself a cost in the profile).
 */
class Context<S> implements PredictContext<S> {
  /** Aborted with the ChassisError when the run timeout passes or the caller goes away (deadline.ts). */
  readonly #stop: LazyAbortSource;
  constructor(
    readonly state: S,
    stop: LazyAbortSource,
    readonly metadata: ModelMetadata,
    readonly log: Logger,
  ) {
    this.#stop = stop;
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  get aborted(): boolean {
    return this.#stop.aborted;
  }

  /**
   * A getter of a function that needs no `this`: models destructure ctx (`{ state, throwIfAborted }`), which
   * a method would not survive. Made when read: most predicts never ask.
   */
  get throwIfAborted(): () => void {
    const stop = this.#stop;
    return () => {
      if (stop.aborted) throw stop.reason;
    };
  }
}

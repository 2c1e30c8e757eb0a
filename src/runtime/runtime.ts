/**
 * @module runtime/runtime
 * The Runtime owns one model's lifecycle and is the protocol-free core that
 * the OMI and KServe servers adapt: load (once, retried after a failure),
 * run a batch of items (validation, batching, timeouts, per-item errors),
 * and drain (refuse new work, let in-flight calls finish, unload).
 *
 *   idle -> loading -> ready -> draining -> stopped
 *              |   ^
 *              v   | (load() again retries)
 *             failed
 */
import { setMaxListeners } from "node:events";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { type Logger, silentLogger } from "../core/log.js";
import type { Model } from "../model/define.js";
import type { ModelMetadata } from "../model/metadata.js";
import { BatchingExecutor, MAX_WAIT_MS } from "./batcher.js";
import { type Cancellation, isPromiseLike, withDeadline } from "./deadline.js";
import { type ChunkExecutor, DirectExecutor, type Executor, type PredictHost } from "./executor.js";
import { type ExplainOutcome, type Failure, failure, type ItemOutcome, type RawItem } from "./outcome.js";
import { checkItem } from "./validate.js";

export type RuntimeState = "idle" | "loading" | "ready" | "failed" | "draining" | "stopped";

export interface RuntimeOptions {
  log?: Logger;
  /**
   * Overrides the model's `batching.enabled`: "on" merges the items of
   * concurrent calls into predictBatch calls, "off" keeps each call's items
   * apart. A predict model is never batched.
   * @default the model's choice (on for predictBatch models)
   */
  batching?: "on" | "off";
  /** Overrides the model's `batching.maxWaitMs` (0 to 60000 ms). @default the model's choice (0) */
  batchMaxWaitMs?: number;
  /**
   * Runs the model somewhere else (server/threads: worker threads): the host
   * loads and unloads it, and predicts go to the executor it gives.
   * @default none: the model loads and predicts on this thread
   */
  host?: PredictHost;
  /** Told the number of items of each predictBatch call that batching across calls makes (the server records them). */
  onBatch?: (items: number) => void;
}

export interface RunOptions {
  /**
   * Aborted when the caller goes away; in-progress predicts see it through
   * ctx.signal. May be a getter (core/lazy-abort): it is read only when a
   * predict runs asynchronously.
   */
  readonly signal?: AbortSignal | undefined;
  /** When given, tells whether the caller is already gone without reading `signal`. */
  readonly aborted?: boolean;
}

type StateListener = (state: RuntimeState) => void;

export class Runtime<S = unknown> {
  readonly model: Model<S>;
  readonly #log: Logger;
  readonly #batching: Pick<RuntimeOptions, "batching" | "batchMaxWaitMs">;
  readonly #host: PredictHost | undefined;
  readonly #onBatch: ((items: number) => void) | undefined;
  #state: RuntimeState = "idle";
  #loading: Promise<void> | undefined;
  #loadError: ChassisError | undefined;
  #modelState: S | undefined;
  #executor: Executor | undefined;
  #inFlight = 0;
  #whenIdle: (() => void) | undefined;
  #draining: Promise<void> | undefined;
  readonly #listeners = new Set<StateListener>();

  constructor(model: Model<S>, options: RuntimeOptions = {}) {
    this.model = model;
    this.#log = options.log ?? silentLogger;
    const { batching, batchMaxWaitMs } = options;
    if (batching !== undefined && batching !== "on" && batching !== "off") {
      throw new ChassisError(
        Code.INVALID_ARGUMENT,
        `invalid runtime options: batching must be "on" or "off" (got ${JSON.stringify(batching)})`,
      );
    }
    if (batchMaxWaitMs !== undefined && !(typeof batchMaxWaitMs === "number" && batchMaxWaitMs >= 0 && batchMaxWaitMs <= MAX_WAIT_MS)) {
      throw new ChassisError(
        Code.INVALID_ARGUMENT,
        `invalid runtime options: batchMaxWaitMs must be a number of milliseconds from 0 to ${MAX_WAIT_MS} (got ${JSON.stringify(batchMaxWaitMs)})`,
      );
    }
    this.#batching = { batching, batchMaxWaitMs };
    this.#host = options.host;
    this.#onBatch = options.onBatch;
  }

  get state(): RuntimeState {
    return this.#state;
  }

  get metadata(): ModelMetadata {
    return this.model.metadata;
  }

  /** Why the last load failed, while the state is "failed". */
  get loadError(): ChassisError | undefined {
    return this.#loadError;
  }

  /** Calls of run() that have not finished yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Loads the model unless it is loaded: concurrent callers share one load, and
   * a call after a failed load tries again (as Chassis's Status does). Rejects
   * with the load's error, which is also logged.
   */
  load(): Promise<void> {
    if (this.#state === "ready") return Promise.resolve();
    if (this.#state === "draining" || this.#state === "stopped") {
      return Promise.reject(new ChassisError(Code.UNAVAILABLE, "the model is shutting down"));
    }
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    const { definition, metadata } = this.model;
    const host = this.#host;
    this.#setState("loading");
    // Date.now, not performance.now: the first use of the `performance` global loads perf_hooks (~2 ms of a start),
    // and milliseconds are all this log line needs.
    const started = Date.now();
    try {
      // With a host, the model loads where it will run (its threads) and the host gives the executor that reaches it.
      const loaded = await Promise.resolve()
        .then(() =>
          withDeadline(
            () => (host ? host.load() : definition.load ? definition.load({ metadata, log: this.#log }) : undefined) as S | ChunkExecutor,
            metadata.timeout.statusMs,
            metadata.timeout.status,
          ),
        )
        .catch((error: unknown) => {
          const reason = ChassisError.from(error, Code.INTERNAL);
          throw reason.code === Code.DEADLINE_EXCEEDED
            ? new ChassisError(Code.DEADLINE_EXCEEDED, `load() did not finish within timeout.status (${metadata.timeout.status})`)
            : reason;
        });
      const state = (host ? undefined : loaded) as S;
      if (this.#state !== "loading") {
        // Drained while loading: release what the load made, and say the model is not serving.
        await (host ? host.unload() : this.model.definition.unload?.(state));
        throw new ChassisError(Code.UNAVAILABLE, "the model is shutting down; the load that finished during the drain was undone");
      }
      this.#modelState = state;
      this.#executor = this.#executorFor(host ? (loaded as ChunkExecutor) : new DirectExecutor(this.model, state, this.#log));
      this.#loadError = undefined;
      this.#setState("ready");
      this.#log.info(`model ${metadata.name} ${metadata.version} loaded`, { ms: Date.now() - started });
    } catch (error) {
      const reason = ChassisError.from(error, Code.INTERNAL);
      this.#loadError = reason;
      if (this.#state === "loading") this.#setState("failed");
      this.#log.error(`model ${metadata.name} failed to load: ${reason.message}`, stackOf(reason));
      throw reason;
    }
  }

  /** BatchingExecutor around `direct` (a DirectExecutor, or the host's) when batching is on and the model has predictBatch. */
  #executorFor(direct: ChunkExecutor): Executor {
    const { batching, batchMaxWaitMs } = this.#batching;
    // A Model from another copy of chassis-ts may predate batching: no batching then.
    const config = this.model.batching as Model["batching"] | undefined;
    const enabled = batching === undefined ? config?.enabled === true : batching === "on";
    if (!enabled || !config || typeof this.model.definition.predictBatch !== "function") return direct;
    const policy = {
      ...config,
      maxWaitMs: batchMaxWaitMs ?? config.maxWaitMs,
      // A host runs its own number of batches at once (server/threads: two per thread); fewer would leave threads idle.
      maxConcurrentBatches: Math.max(config.maxConcurrentBatches, this.#host?.concurrency ?? 1),
    };
    this.#log.debug(
      `batching across calls: up to ${policy.maxBatchSize} items per predictBatch, ${policy.maxConcurrentBatches} at a time, waiting up to ${policy.maxWaitMs} ms`,
    );
    return new BatchingExecutor(direct, policy, this.#onBatch);
  }

  /**
   * Predicts items; always resolves with exactly one outcome per item, in
   * order. Invalid items and a model that is not ready give per-item errors.
   */
  run(items: readonly RawItem[], options: RunOptions = {}): Promise<ItemOutcome[]> {
    return this.#admit(items, (executor, valid) => executor.execute(valid, perItemCancellation(options, valid.length)));
  }

  /**
   * Explains items with the model's explain function, with the same checks
   * as run(). Rejects with UNIMPLEMENTED when the model has none.
   */
  explain(items: readonly RawItem[], options: RunOptions = {}): Promise<ExplainOutcome[]> {
    if (typeof this.model.definition.explain !== "function") {
      return Promise.reject(new ChassisError(Code.UNIMPLEMENTED, `model ${this.model.metadata.name} has no explain function`));
    }
    return this.#admit(items, (executor, valid) => executor.explain(valid, perItemCancellation(options, valid.length)));
  }

  /**
   * Shared by run() and explain(): readiness, in-flight accounting, per-item
   * validation. Written without async/await: a call whose predicts all
   * finished synchronously settles through a single promise.
   */
  #admit<T extends { readonly ok: boolean }>(
    items: readonly RawItem[],
    work: (executor: Executor, valid: RawItem[]) => T[] | Promise<T[]>,
  ): Promise<Array<T | Failure>> {
    const executor = this.#executor;
    if (this.#state !== "ready" || !executor) {
      const reason = this.#notReadyError();
      return Promise.resolve(items.map(() => failure(reason)));
    }
    this.#inFlight++;
    if (items.length === 1) return this.#admitOne(items[0] as RawItem, executor, work);
    const outcomes: Array<T | Failure> = new Array(items.length);
    const valid: RawItem[] = [];
    const validAt: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as RawItem;
      const problem = checkItem(item, this.model.metadata);
      if (problem) outcomes[i] = failure(problem);
      else {
        valid.push(item);
        validAt.push(i);
      }
    }
    const finish = (done: readonly T[] | undefined): Array<T | Failure> => {
      this.#release();
      if (done) for (let j = 0; j < done.length; j++) outcomes[validAt[j] as number] = done[j] as T;
      for (const outcome of outcomes) this.#warnIfLate(outcome);
      return outcomes;
    };
    if (valid.length === 0) return Promise.resolve(finish(undefined));
    return this.#settle(() => work(executor, valid), finish);
  }

  /** #admit for the common call of one item, without the bookkeeping arrays. */
  #admitOne<T extends { readonly ok: boolean }>(
    item: RawItem,
    executor: Executor,
    work: (executor: Executor, valid: RawItem[]) => T[] | Promise<T[]>,
  ): Promise<Array<T | Failure>> {
    const problem = checkItem(item, this.model.metadata);
    if (problem) {
      this.#release();
      return Promise.resolve([failure(problem)]);
    }
    const finish = (done: T[]): T[] => {
      this.#release();
      this.#warnIfLate(done[0] as T);
      return done;
    };
    return this.#settle(() => work(executor, [item]), finish);
  }

  /** Runs the work; `finish` (which releases the call) gets its result, synchronously when it was; a failure releases too. */
  #settle<T, R>(run: () => T | Promise<T>, finish: (done: T) => R): Promise<R> {
    let done: T | Promise<T>;
    try {
      done = run();
    } catch (error) {
      this.#release();
      return Promise.reject(error);
    }
    if (isPromiseLike(done)) {
      return done.then(finish, (error: unknown) => {
        this.#release();
        throw error;
      });
    }
    return Promise.resolve(finish(done));
  }

  /** A predict that ran past timeout.run is logged: the caller only sees its item fail. */
  #warnIfLate(outcome: { readonly ok: boolean }): void {
    const error = outcome.ok ? undefined : (outcome as Failure).error;
    if (error?.code === Code.DEADLINE_EXCEEDED) this.#log.warn(error.message);
  }

  #release(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#whenIdle?.();
  }

  #notReadyError(): ChassisError {
    switch (this.#state) {
      case "draining":
      case "stopped":
        return new ChassisError(Code.UNAVAILABLE, "the model is shutting down and takes no new work");
      case "failed":
        return new ChassisError(
          Code.FAILED_PRECONDITION,
          `Model has not been initialized: its load failed (${this.#loadError?.message ?? "unknown error"}); a Status call retries it`,
        );
      default:
        return new ChassisError(Code.FAILED_PRECONDITION, "Model has not been initialized: call Status first to load it");
    }
  }

  /**
   * Stops taking work, waits for in-flight runs (up to timeoutMs), then
   * unloads. Safe to call more than once; later calls share the first drain.
   */
  drain(timeoutMs = 30_000): Promise<void> {
    this.#draining ??= this.#drain(timeoutMs);
    return this.#draining;
  }

  async #drain(timeoutMs: number): Promise<void> {
    this.#setState("draining");
    if (this.#inFlight > 0) {
      const idle = new Promise<void>((resolve) => {
        this.#whenIdle = resolve;
      });
      const gaveUp = await Promise.race([idle.then(() => false), sleep(timeoutMs).then(() => true)]);
      if (gaveUp) this.#log.warn(`drain: ${this.#inFlight} calls still running after ${timeoutMs} ms; stopping anyway`);
    }
    const unload = this.model.definition.unload;
    const host = this.#host;
    if (host || (unload && this.#executor)) {
      try {
        // A host unloads in every state: threads still loading after a timed-out load are stopped too.
        await (host ? host.unload() : unload?.(this.#modelState as S));
      } catch (error) {
        this.#log.error(`unload() failed: ${ChassisError.from(error).message}`);
      }
    }
    this.#executor = undefined;
    this.#setState("stopped");
  }

  #setState(state: RuntimeState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }
}

/**
 * A signal that follows the caller's and may carry one listener per item
 * (each predict's deadline watches it): without this, a run of more than 10
 * items prints MaxListenersExceededWarning on the caller's signal. A source
 * with onAbort (the protocol adapters' LazyAbortSource) takes any number of
 * listeners without making a signal, so it is passed as it is.
 */
function perItemCancellation(parent: Cancellation, items: number): Cancellation {
  // One item adds at most one listener: the caller's own (lazy) source does, unread until needed (the hot path).
  const parentSignal = items <= 1 || parent.onAbort ? undefined : parent.signal;
  if (!parentSignal) return parent;
  const child = new AbortController();
  setMaxListeners(0, child.signal);
  if (parentSignal.aborted) child.abort(parentSignal.reason);
  else parentSignal.addEventListener("abort", () => child.abort(parentSignal.reason), { once: true });
  return { signal: child.signal };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function stackOf(error: ChassisError): Record<string, unknown> | undefined {
  const cause = error.cause instanceof Error ? error.cause : undefined;
  return cause?.stack ? { stack: cause.stack } : undefined;
}

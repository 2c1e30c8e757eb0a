/**
 * @module server/threads/pool
 * `--predict-threads N`: the model's predicts run on N worker threads, each
 * with its own copy of the model, while the main thread keeps the sockets,
 * health checks, metrics and batching. A predict that computes for seconds
 * then delays nobody else's answer, and N threads use N cores in one process.
 *
 * PredictThreads is the Runtime's PredictHost: load() starts the threads and
 * resolves once every one has loaded the model; the executor it gives posts
 * each task (one item of a predict model, one chunk of a predictBatch model,
 * one explain call) to the thread with the fewest tasks, and cancellations
 * after it.
 *
 * A thread whose event loop is held past timeout.run (a synchronous predict
 * that does not end) cannot be interrupted, but it can be stopped: when a busy
 * thread has answered nothing for timeout.run + HANG_GRACE_MS, its tasks fail
 * with DEADLINE_EXCEEDED and a new thread replaces it. A thread that dies
 * (an uncaught error, process.exit in the model) is replaced the same way.
 */
import { Worker } from "node:worker_threads";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import { IdTable } from "../../core/id-table.js";
import type { Logger } from "../../core/log.js";
import type { Model } from "../../model/define.js";
import { type Cancellation, cancelledError, isCancelled, MAX_TIMER_MS, onCancel } from "../../runtime/deadline.js";
import { type ChunkExecutor, inChunks, type PredictHost } from "../../runtime/executor.js";
import { type ExplainOutcome, failure, type ItemOutcome, type RawItem } from "../../runtime/outcome.js";
import { RestartBudget } from "../restart-budget.js";
import {
  type FromThread,
  packTasks,
  type Task,
  type TaskKind,
  type ThreadData,
  type ToThread,
  unpackResults,
  type WireError,
} from "./wire.js";

/** How long past timeout.run a busy thread may stay silent before it is taken as stuck and replaced. */
export const HANG_GRACE_MS = 1_000;
/** How long unload waits for a thread to unload the model and end before it is terminated. */
const UNLOAD_WAIT_MS = 10_000;

export interface PredictThreadsOptions {
  /** How many threads: each loads its own copy of the model. */
  readonly count: number;
  /** The model path as `chassis serve` was given it; each thread imports it. */
  readonly modelPath: string;
  /** The main thread's import of the same model: its metadata and which functions it has. */
  readonly model: Model;
  readonly log: Logger;
}

/** A task posted to a thread, waiting for its outcomes. */
interface Pending {
  readonly count: number;
  readonly resolve: (outcomes: ItemOutcome[] | ExplainOutcome[]) => void;
  readonly unsubscribe: (() => void) | undefined;
}

interface Thread {
  readonly index: number;
  readonly worker: Worker;
  /** By task id; not a Map: core/id-table says why. */
  readonly tasks: IdTable<Pending>;
  /**
   * When the thread last answered a task, or went from idle to busy. Log
   * lines do not count: a synchronous loop that logs is stuck all the same.
   */
  lastHeard: number;
  /** Tasks posted this turn of the event loop, sent to the thread together (wire.ts). */
  outbox: Task[];
  /** Settles when the thread has loaded the model (or failed to). */
  readonly ready: Promise<void>;
  loaded: boolean;
  dead: boolean;
}

export class PredictThreads implements PredictHost, ChunkExecutor {
  readonly #options: PredictThreadsOptions;
  readonly #threads: Thread[] = [];
  readonly #restarts = new RestartBudget();
  #nextId = 0;
  #serving = false;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: PredictThreadsOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) {
      throw new ChassisError(Code.INVALID_ARGUMENT, `predict threads: count must be a whole number, 1 or more (got ${options.count})`);
    }
    this.#options = options;
  }

  /**
   * Two tasks per thread: while one computes, the next already waits in the
   * thread's queue, so a thread never idles for the round trip to the main thread.
   */
  get concurrency(): number {
    return 2 * this.#options.count;
  }

  async load(): Promise<ChunkExecutor> {
    await this.#stopAll(); // a load retried after a failure (or a timeout) starts afresh
    for (let index = 1; index <= this.#options.count; index++) this.#threads.push(this.#start(index));
    try {
      await Promise.all(this.#threads.map((thread) => thread.ready));
    } catch (error) {
      await this.#stopAll();
      throw error;
    }
    this.#serving = true;
    const { count, log } = this.#options;
    // The threads share the process: its RSS now holds every copy of the model.
    log.info(`${count} predict threads loaded the model (RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(1)} MiB for the process)`);
    const runMs = this.#options.model.metadata.timeout.runMs;
    if (runMs <= MAX_TIMER_MS) {
      this.#watchdog = setInterval(() => this.#replaceStuck(runMs + HANG_GRACE_MS), Math.min(500, HANG_GRACE_MS)).unref();
    }
    return this;
  }

  async unload(): Promise<void> {
    this.#serving = false;
    clearInterval(this.#watchdog);
    await Promise.all(
      this.#threads.map(async (thread) => {
        if (thread.dead) return;
        const exited = new Promise<void>((resolve) => thread.worker.once("exit", () => resolve()));
        thread.worker.postMessage({ type: "unload" } satisfies ToThread);
        const timer = setTimeout(() => void thread.worker.terminate(), UNLOAD_WAIT_MS).unref();
        await exited;
        clearTimeout(timer);
      }),
    );
    this.#threads.length = 0;
  }

  execute(items: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]> {
    const { model } = this.#options;
    if (typeof model.definition.predictBatch !== "function") {
      // One task per item: the items of one call spread over the threads.
      if (items.length === 1) return this.#post("execute", items, signal) as Promise<ItemOutcome[]>;
      return Promise.all(items.map((item) => this.#post("execute", [item], signal) as Promise<ItemOutcome[]>)).then((all) => all.flat());
    }
    return inChunks(items, model.metadata.features.batchSize, (chunk) => this.predictChunk(chunk, signal));
  }

  predictChunk(chunk: readonly RawItem[], signal?: Cancellation): Promise<ItemOutcome[]> {
    return this.#post("predictChunk", chunk, signal) as Promise<ItemOutcome[]>;
  }

  explain(items: readonly RawItem[], signal?: Cancellation): Promise<ExplainOutcome[]> {
    return this.#post("explain", items, signal) as Promise<ExplainOutcome[]>;
  }

  /** Posts a task to the least busy live thread; resolves with one outcome per item. */
  #post(kind: TaskKind, items: readonly RawItem[], signal: Cancellation | undefined): Promise<ItemOutcome[] | ExplainOutcome[]> {
    if (isCancelled(signal)) return Promise.resolve(failAll(items.length, cancelledError()));
    // The least busy thread, one with the model loaded before one still loading it (a replacement).
    let thread: Thread | undefined;
    for (const candidate of this.#threads) {
      if (candidate.dead) continue;
      if (
        !thread ||
        (candidate.loaded && !thread.loaded) ||
        (candidate.loaded === thread.loaded && candidate.tasks.size < thread.tasks.size)
      ) {
        thread = candidate;
      }
    }
    if (!thread) {
      return Promise.resolve(
        failAll(items.length, new ChassisError(Code.UNAVAILABLE, "no predict thread is running: they kept failing (see the server's log)")),
      );
    }
    const id = ++this.#nextId;
    const target = thread;
    return new Promise((resolve) => {
      // Queued as a microtask, the cancel goes after the flush that sends the task (queued first), never before it.
      const cancel = () => queueMicrotask(() => target.worker.postMessage({ type: "cancel", id } satisfies ToThread));
      const unsubscribe = onCancel(signal, cancel);
      if (target.tasks.size === 0) target.lastHeard = Date.now();
      target.tasks.set(id, { count: items.length, resolve, unsubscribe });
      if (target.outbox.length === 0) queueMicrotask(() => this.#flush(target));
      target.outbox.push({ id, kind, items });
    });
  }

  /**
   * Sends the thread, in one message, the tasks posted since the last flush:
   * it runs as a microtask after the first, so the calls of one socket read go together.
   */
  #flush(thread: Thread): void {
    const sending = thread.outbox;
    thread.outbox = [];
    if (thread.dead) return; // its tasks have failed already
    const packed = packTasks(sending);
    thread.worker.postMessage({ type: "tasks", ...packed } satisfies ToThread, [packed.buffer]);
  }

  #start(index: number): Thread {
    const data: ThreadData = { modelPath: this.#options.modelPath, index };
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { chassisPredictThread: data, chassisBoot: threadEntry() } });
    let loaded: (() => void) | undefined;
    let loadFailed: ((error: ChassisError) => void) | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      loaded = resolve;
      loadFailed = reject;
    });
    const thread: Thread = {
      index,
      worker,
      tasks: new IdTable<Pending>(),
      outbox: [],
      lastHeard: Date.now(),
      ready,
      loaded: false,
      dead: false,
    };
    const { log } = this.#options;
    worker.on("message", (message: FromThread) => {
      switch (message.type) {
        case "ready":
          thread.loaded = true;
          loaded?.();
          break;
        case "load-failed":
          loadFailed?.(loadError(index, message.error));
          break;
        case "results":
          thread.lastHeard = Date.now();
          for (const result of unpackResults(message)) this.#settle(thread, result.id, result.outcomes);
          break;
        case "log":
          log[message.level](message.message, message.fields);
          break;
        case "unloaded":
          // Whatever the model left open (a timer, a socket) would keep the thread alive: it is done.
          void worker.terminate();
          break;
      }
    });
    worker.on("error", (error) => {
      const reason = `predict thread ${index} failed: ${error instanceof Error ? error.message : String(error)}`;
      loadFailed?.(new ChassisError(Code.INTERNAL, reason));
      this.#lost(thread, new ChassisError(Code.INTERNAL, reason));
    });
    worker.on("exit", (code) => {
      const reason = `predict thread ${index} exited (status ${code})`;
      loadFailed?.(new ChassisError(Code.INTERNAL, `${reason} before the model was loaded`));
      this.#lost(thread, new ChassisError(Code.INTERNAL, `${reason} while predicting`));
    });
    return thread;
  }

  #settle(thread: Thread, id: number, outcomes: ItemOutcome[] | ExplainOutcome[]): void {
    const task = thread.tasks.get(id);
    if (!task) return;
    thread.tasks.delete(id);
    task.unsubscribe?.();
    task.resolve(outcomes);
  }

  /** A thread is gone (died, or stopped as stuck): its tasks fail with `reason`; a new thread takes its place while serving. */
  #lost(thread: Thread, reason: ChassisError): void {
    if (thread.dead) return;
    thread.dead = true;
    const tasks = thread.tasks.values();
    thread.tasks.clear();
    for (const task of tasks) {
      task.unsubscribe?.();
      task.resolve(failAll(task.count, reason));
    }
    if (!this.#serving) return;
    this.#options.log.error(`${reason.message}${tasks.length ? `; ${tasks.length} tasks failed` : ""}`);
    if (!this.#restarts.take()) {
      const { max, windowMs } = this.#restarts;
      this.#options.log.error(`not replacing predict thread ${thread.index}: ${max} were replaced within ${windowMs / 1000} s`);
      return;
    }
    const next = this.#start(thread.index);
    this.#threads[this.#threads.indexOf(thread)] = next;
    next.ready.then(
      () => this.#options.log.info(`predict thread ${thread.index} replaced: the model is loaded again`),
      (error: unknown) =>
        this.#options.log.error(`predict thread ${thread.index} could not load the model again: ${ChassisError.from(error).message}`),
    );
  }

  #replaceStuck(silentMs: number): void {
    const now = Date.now();
    for (const thread of this.#threads) {
      if (thread.dead || thread.tasks.size === 0 || now - thread.lastHeard <= silentMs) continue;
      const { timeout } = this.#options.model.metadata;
      const reason = new ChassisError(
        Code.DEADLINE_EXCEEDED,
        `predict did not finish within the run timeout of ${timeout.run} (timeout.run): predict thread ${thread.index} answered nothing for ${Math.round((now - thread.lastHeard) / 1000)} s and was replaced`,
      );
      this.#lost(thread, reason);
      void thread.worker.terminate();
    }
  }

  async #stopAll(): Promise<void> {
    this.#serving = false;
    clearInterval(this.#watchdog);
    const threads = this.#threads.splice(0);
    for (const thread of threads) thread.dead = true;
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }
}

/** A thread's failed load, saying where it happened, and what to do when the cause is the thread itself. */
function loadError(index: number, error: WireError): ChassisError {
  // Node's words for a native addon that cannot be loaded more than once per process (not context-aware).
  const notThreadSafe = /did not self-register|not context.aware|could not be loaded in a worker/i.test(error.message);
  const hint = notThreadSafe ? " (a native addon of the model cannot run on worker threads: serve it without --predict-threads)" : "";
  return new ChassisError(error.code, `predict thread ${index} could not load the model: ${error.message}${hint}`);
}

function failAll(count: number, reason: ChassisError): ItemOutcome[] {
  return Array.from({ length: count }, () => failure(reason));
}

/**
 * The thread's first code. It imports the thread module the way this process
 * runs chassis-ts: the bundle through its loader (which gives it the code cache
 * and the model's import()), dist/ or src/ (under tsx) directly.
 */
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
const boot = workerData.chassisBoot;
const ready = boot.tsx ? import(boot.tsx).then((tsx) => tsx.register()) : Promise.resolve();
const loaded = ready.then(() => (boot.loader ? import(boot.loader).then((m) => m.loadRuntime().exports) : import(boot.module)));
loaded.then((m) => m.runPredictThread());
`;

function threadEntry(): { loader: string } | { module: string; tsx?: string } {
  const here = import.meta.url;
  // In the bundle, import.meta.url is lib/chassis.cjs (build/image/runtime-package.ts); its loader is one folder up.
  if (here.endsWith(".cjs")) return { loader: new URL("../load.mjs", here).href };
  if (!here.endsWith(".ts")) return { module: new URL("./thread.js", here).href };
  // src/ under tsx (the tests): a thread does not inherit the loader hooks that tsx registered here.
  return { module: new URL("./thread.ts", here).href, tsx: import.meta.resolve("tsx/esm/api") };
}

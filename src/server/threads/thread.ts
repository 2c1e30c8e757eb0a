/**
 * @module server/threads/thread
 * A predict thread (`--predict-threads N`): imports the model as the main
 * thread did, loads it, and runs the tasks the pool (pool.ts) posts through
 * a DirectExecutor, as the main thread would without threads. Its log lines
 * go to the main thread's logger.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import { IdTable } from "../../core/id-table.js";
import { LazyAbortSource } from "../../core/lazy-abort.js";
import type { Logger } from "../../core/log.js";
import { cancelledError } from "../../runtime/deadline.js";
import { DirectExecutor } from "../../runtime/executor.js";
import { type ExplainOutcome, failure, type ItemOutcome } from "../../runtime/outcome.js";
import { loadModelModule } from "../load-module.js";
import {
  type FromThread,
  packResults,
  type Task,
  type TaskResult,
  type ThreadData,
  type ToThread,
  toWireError,
  unpackTasks,
} from "./wire.js";

/** The thread's main: exported by the package (bundle/index) so that the bundled server can start it. */
export async function runPredictThread(): Promise<void> {
  const port = parentPort;
  const data = (workerData as { chassisPredictThread?: ThreadData } | undefined)?.chassisPredictThread;
  if (!port || !data) throw new Error("runPredictThread() runs in a predict thread that server/threads/pool started");
  const post = (message: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  const log = threadLogger(data.index, post);

  let executor: DirectExecutor<unknown>;
  let unload: (() => unknown) | undefined;
  try {
    const { model } = await loadModelModule(data.modelPath, { log });
    const { definition, metadata } = model;
    const state = definition.load ? await definition.load({ metadata, log }) : undefined;
    executor = new DirectExecutor(model, state, log);
    unload = definition.unload ? () => definition.unload?.(state) : undefined;
  } catch (error) {
    post({ type: "load-failed", error: toWireError(ChassisError.from(error, Code.INTERNAL)) });
    return;
  }

  /** The tasks running, by id: a cancel message aborts the task's source (ctx.signal). */
  const running = new IdTable<LazyAbortSource>(); // not a Map: core/id-table says why
  /** Results finished this turn of the event loop, sent together (wire.ts). */
  let finished: TaskResult[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    const packed = packResults(finished);
    finished = [];
    post({ type: "results", ...packed }, [packed.buffer]);
  };
  const finish = (result: TaskResult) => {
    running.delete(result.id);
    finished.push(result);
    if (flushScheduled) return;
    flushScheduled = true;
    // With nothing else running, at once (after this turn's synchronous work); otherwise with what finishes by the next turn.
    if (running.size === 0) queueMicrotask(flush);
    else setImmediate(flush);
  };
  const start = ({ id, kind, items }: Task) => {
    const source = new LazyAbortSource();
    running.set(id, source);
    const done = (outcomes: ItemOutcome[]) => finish({ id, outcomes });
    // Executors never throw or reject: every failure is an outcome.
    if (kind === "explain") void executor.explain(items, source).then((outcomes) => finish(explained(id, outcomes)));
    else {
      const result = kind === "execute" ? executor.execute(items, source) : executor.predictChunk(items, source);
      if (Array.isArray(result)) done(result);
      else void result.then(done);
    }
  };

  port.on("message", (message: ToThread) => {
    switch (message.type) {
      case "tasks":
        for (const task of unpackTasks(message)) start(task);
        break;
      case "cancel":
        running.get(message.id)?.abort(cancelledError());
        break;
      case "unload":
        void Promise.resolve()
          .then(() => unload?.())
          .catch((error: unknown) => log.error(`unload() failed: ${ChassisError.from(error).message}`))
          .then(() => {
            post({ type: "unloaded" }); // the pool terminates the thread then
          });
        break;
    }
  });
  post({ type: "ready" });
}

/**
 * Explanations are structured-cloned with the turn's other results: one that
 * cannot be (a function, a class with private state) fails its own items here,
 * not the whole message.
 */
function explained(id: number, outcomes: ExplainOutcome[]): TaskResult {
  try {
    structuredClone(outcomes.map((outcome) => (outcome.ok ? outcome.explanation : undefined)));
    return { id, explained: outcomes };
  } catch (error) {
    const message = `explain returned a value that cannot leave its predict thread: ${error instanceof Error ? error.message : String(error)}`;
    return { id, explained: outcomes.map(() => failure(new ChassisError(Code.INTERNAL, message))) };
  }
}

function threadLogger(index: number, post: (message: FromThread) => void): Logger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (message: string, fields?: Record<string, unknown>): void => {
      try {
        post({ type: "log", level, message: `[predict thread ${index}] ${message}`, ...(fields ? { fields } : {}) });
      } catch {
        post({ type: "log", level, message: `[predict thread ${index}] ${message} (fields could not be sent)` });
      }
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

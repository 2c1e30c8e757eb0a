/**
 * @module server/workers
 * `--workers N`: N processes share the OMI and KServe ports (node:cluster;
 * the primary accepts connections and hands them out round-robin). Each
 * worker imports and loads the model once and serves both interfaces; the
 * primary loads nothing. A Shutdown call or a signal drains every worker; a
 * worker that dies after start-up is replaced; one that fails to start stops
 * the whole server with its exit status. GET /metrics, which any worker may
 * answer, gives every worker's counters summed: that worker asks the primary,
 * which gathers the others' (METRICS_WAIT_MS at most) and merges them.
 */
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../core/log.js";
import { processSnapshot, type RegistrySnapshot, renderMerged } from "../metrics/registry.js";
import type { ServerConfig } from "./config.js";
import { RestartBudget } from "./restart-budget.js";
import { type RunningServer, type StartOptions, startServer } from "./serve.js";

/** Messages between primary and workers, over the cluster's IPC channel. */
type FromWorker =
  | { type: "chassis:ready"; omiPort: number; httpPort: number; rssBytes: number }
  | { type: "chassis:drain"; reason: string }
  /** A scrape reached this worker: it asks for everyone's metrics, merged. */
  | { type: "chassis:metrics-ask"; id: number }
  | { type: "chassis:metrics-snapshot"; id: number; snapshot: RegistrySnapshot };
type ToWorker =
  | { type: "chassis:stop"; reason: string }
  | { type: "chassis:metrics-snapshot-ask"; id: number }
  | { type: "chassis:metrics-merged"; id: number; text?: string; error?: string };

/** How long the primary waits for the workers' metrics before a scrape fails (503). */
const METRICS_WAIT_MS = 5_000;

/**
 * Sends to a worker without throwing: a worker that has just exited may still
 * look connected, and a send to it fails (EPIPE) with an 'error' event that
 * would end the primary. The worker's 'exit' event deals with its end.
 */
function tell(worker: Worker, message: ToWorker, onFailure?: () => void): void {
  if (!worker.isConnected()) {
    onFailure?.();
    return;
  }
  worker.send(message, (error: Error | null) => {
    if (error) onFailure?.();
  });
}

/** True in a process that cluster.fork() started. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** The primary: forks the workers and waits until all of them have exited. Resolves with the exit status. */
export function runPrimary(config: ServerConfig, log: Logger): Promise<number> {
  const count = config.workers;
  const ready = new Map<number, FromWorker & { type: "chassis:ready" }>();
  /** The workers that have said they are ready and have not exited: those whose metrics a scrape sums. */
  const serving = new Set<Worker>();
  /**
   * Every worker forked and not yet exited. Not cluster.workers: cluster
   * removes a worker at its 'exit' only if its IPC channel has already closed,
   * else later, at 'disconnect'; counted from there, a last 'exit' that came
   * before its 'disconnect' would leave the primary waiting on nothing.
   */
  const live = new Set<Worker>();
  const restarts = new RestartBudget();
  let stopping = false;
  let status = 0;
  let signals = 0;

  return new Promise<number>((resolve) => {
    const stopAll = (reason: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`stopping ${live.size} workers (${reason})`);
      for (const worker of live) tell(worker, { type: "chassis:stop", reason });
    };
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        stopAll(signal);
        return;
      }
      log.warn(`${signal} again: killing the workers`);
      for (const worker of live) worker.process.kill("SIGKILL");
      status = 1;
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    const fork = (index: number) => {
      const worker: Worker = cluster.fork({ CHASSIS_WORKER_INDEX: String(index) });
      live.add(worker);
      worker.on("message", (message: FromWorker) => {
        if (message?.type === "chassis:ready") {
          ready.set(index, message);
          serving.add(worker);
          log.info(
            `worker ${index} (pid ${worker.process.pid}) ready: RSS ${(message.rssBytes / 2 ** 20).toFixed(1)} MiB after loading the model`,
          );
          if (ready.size === count && !stopping) {
            const total = [...ready.values()].reduce((sum, w) => sum + w.rssBytes, 0);
            log.info(`${count} workers serving (RSS ${(total / 2 ** 20).toFixed(1)} MiB in all)`);
          }
        } else if (message?.type === "chassis:drain") stopAll(`worker ${index}: ${message.reason}`);
        else if (message?.type === "chassis:metrics-ask") {
          void gatherMetrics([...serving]).then((merged) => {
            tell(worker, { type: "chassis:metrics-merged", id: message.id, ...merged });
          });
        }
      });
      worker.on("exit", (code, signal) => {
        live.delete(worker);
        const wasReady = ready.delete(index);
        serving.delete(worker);
        if (stopping) {
          if (code !== 0) status = Math.max(status, code ?? 1);
        } else if (!wasReady) {
          // It never served: the same would happen to every worker (bad model, port in use).
          log.error(`worker ${index} failed to start (${signal ?? `exit status ${code}`}); stopping`);
          status = code || 1;
          stopAll("a worker failed to start");
        } else {
          if (!restarts.take()) {
            log.error(`worker ${index} died (${signal ?? `exit status ${code}`}); ${restarts.max + 1} restarts in a minute, giving up`);
            status = 1;
            stopAll("workers keep dying");
          } else {
            log.error(`worker ${index} (pid ${worker.process.pid}) died (${signal ?? `exit status ${code}`}); starting another`);
            fork(index);
          }
        }
        if (live.size === 0 && stopping) finish();
      });
    };
    const finish = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.off("beforeExit", finish);
      resolve(status);
    };
    // The event loop is empty: no worker is left to wait for, whatever was counted. Without this, a missed 'exit'
    // would end the primary with Node's status 13 (a top-level await that never settled) instead of the workers'.
    process.on("beforeExit", finish);
    log.info(`starting ${count} workers; each loads the model`);
    for (let index = 1; index <= count; index++) fork(index);
  });
}

let nextMetricsId = 0;

/**
 * Every serving worker's metrics and the primary's own process figures,
 * merged; or the error a scrape gets when a worker did not send its metrics
 * in time (a worker that exits meanwhile is left out: its counters are gone).
 */
function gatherMetrics(serving: readonly Worker[]): Promise<{ text: string } | { error: string }> {
  const id = ++nextMetricsId;
  const workers = serving.filter((w) => w.isConnected());
  const snapshots: RegistrySnapshot[] = [{ metrics: [], process: processSnapshot() }];
  const waiting = new Set(workers);
  return new Promise((resolve) => {
    const cleanups: Array<() => void> = [];
    let done = false;
    const finish = (result: { text: string } | { error: string }) => {
      if (done) return; // a failed send's callback may come after the answer
      done = true;
      clearTimeout(timer);
      for (const cleanup of cleanups) cleanup();
      resolve(result);
    };
    const settleIfDone = () => {
      if (waiting.size === 0) finish({ text: renderMerged(snapshots) });
    };
    const timer = setTimeout(() => {
      const late = [...waiting].map((w) => `pid ${w.process.pid}`).join(", ");
      finish({ error: `worker ${late} sent no metrics within ${METRICS_WAIT_MS} ms` });
    }, METRICS_WAIT_MS);
    for (const worker of workers) {
      const onMessage = (message: FromWorker) => {
        if (message?.type !== "chassis:metrics-snapshot" || message.id !== id || !waiting.delete(worker)) return;
        snapshots.push(message.snapshot);
        settleIfDone();
      };
      const onExit = () => {
        waiting.delete(worker);
        settleIfDone();
      };
      worker.on("message", onMessage);
      worker.once("exit", onExit);
      cleanups.push(() => {
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      });
      tell(worker, { type: "chassis:metrics-snapshot-ask", id }, onExit);
    }
    settleIfDone();
  });
}

/**
 * A worker: serves like a single process, tells the primary when it is
 * ready and when a Shutdown call starts a drain, and drains when told to.
 */
export async function runWorker(config: ServerConfig, options: StartOptions): Promise<RunningServer> {
  const send = (message: FromWorker) => {
    // The callback takes a failed send (the primary just died) instead of an 'error' event; 'disconnect' follows.
    if (process.connected) process.send?.(message, () => {});
  };
  // A scrape's answers from the primary, by the id of its question.
  const scrapes = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextScrape = 0;
  const renderMetrics = () =>
    new Promise<string>((resolve, reject) => {
      if (!process.connected) return reject(new Error("the primary process is gone"));
      const id = ++nextScrape;
      scrapes.set(id, { resolve, reject });
      send({ type: "chassis:metrics-ask", id });
    });
  const server = await startServer(config, {
    ...options,
    onDrainStart: (reason) => send({ type: "chassis:drain", reason }),
    renderMetrics,
  });
  process.on("message", (message: ToWorker) => {
    if (message?.type === "chassis:stop") void server.shutdown(message.reason);
    else if (message?.type === "chassis:metrics-snapshot-ask") {
      send({ type: "chassis:metrics-snapshot", id: message.id, snapshot: server.metrics.registry.snapshot() });
    } else if (message?.type === "chassis:metrics-merged") {
      const scrape = scrapes.get(message.id);
      scrapes.delete(message.id);
      if (message.text !== undefined) scrape?.resolve(message.text);
      else scrape?.reject(new Error(message.error ?? "no metrics"));
    }
  });
  // The primary is gone (killed): nobody hands us connections any more, nor answers a scrape.
  process.once("disconnect", () => {
    for (const scrape of scrapes.values()) scrape.reject(new Error("the primary process is gone"));
    scrapes.clear();
    void server.shutdown("the primary process exited");
  });
  send({ type: "chassis:ready", omiPort: server.omiPort, httpPort: server.httpPort, rssBytes: process.memoryUsage().rss });
  return server;
}

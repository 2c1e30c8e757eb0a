/**
 * @module server/workers
 * `--workers N`: N processes share the OMI and KServe ports (node:cluster;
 * the primary accepts connections and hands them out round-robin). Each
 * worker imports and loads the model once and serves both interfaces; the
 * primary loads nothing. A Shutdown call or a signal drains every worker; a
 * worker that dies after start-up is replaced; one that fails to start stops
 * the whole server with its exit status.
 */
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../core/log.js";
import type { ServerConfig } from "./config.js";
import { type RunningServer, type StartOptions, startServer } from "./serve.js";

/** Messages between primary and workers, over the cluster's IPC channel. */
type FromWorker =
  | { type: "chassis:ready"; omiPort: number; httpPort: number; rssBytes: number }
  | { type: "chassis:drain"; reason: string };
type ToWorker = { type: "chassis:stop"; reason: string };

/** More restarts than this within RESTART_WINDOW_MS means something is wrong with the model, not bad luck. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/** True in a process that cluster.fork() started. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** The primary: forks the workers and waits until all of them have exited. Resolves with the exit status. */
export function runPrimary(config: ServerConfig, log: Logger): Promise<number> {
  const count = config.workers;
  const ready = new Map<number, FromWorker & { type: "chassis:ready" }>();
  const restarts: number[] = [];
  let stopping = false;
  let status = 0;
  let signals = 0;

  return new Promise<number>((resolve) => {
    const stopAll = (reason: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`stopping ${Object.keys(cluster.workers ?? {}).length} workers (${reason})`);
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker?.isConnected()) worker.send({ type: "chassis:stop", reason } satisfies ToWorker);
      }
    };
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        stopAll(signal);
        return;
      }
      log.warn(`${signal} again: killing the workers`);
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
      status = 1;
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    const fork = (index: number) => {
      const worker: Worker = cluster.fork({ CHASSIS_WORKER_INDEX: String(index) });
      worker.on("message", (message: FromWorker) => {
        if (message?.type === "chassis:ready") {
          ready.set(index, message);
          log.info(
            `worker ${index} (pid ${worker.process.pid}) ready: RSS ${(message.rssBytes / 2 ** 20).toFixed(1)} MiB after loading the model`,
          );
          if (ready.size === count && !stopping) {
            const total = [...ready.values()].reduce((sum, w) => sum + w.rssBytes, 0);
            log.info(`${count} workers serving (RSS ${(total / 2 ** 20).toFixed(1)} MiB in all)`);
          }
        } else if (message?.type === "chassis:drain") stopAll(`worker ${index}: ${message.reason}`);
      });
      worker.on("exit", (code, signal) => {
        const wasReady = ready.delete(index);
        if (stopping) {
          if (code !== 0) status = Math.max(status, code ?? 1);
        } else if (!wasReady) {
          // It never served: the same would happen to every worker (bad model, port in use).
          log.error(`worker ${index} failed to start (${signal ?? `exit status ${code}`}); stopping`);
          status = code || 1;
          stopAll("a worker failed to start");
        } else {
          const now = Date.now();
          restarts.push(now);
          while ((restarts[0] as number) < now - RESTART_WINDOW_MS) restarts.shift();
          if (restarts.length > MAX_RESTARTS) {
            log.error(`worker ${index} died (${signal ?? `exit status ${code}`}); ${restarts.length} restarts in a minute, giving up`);
            status = 1;
            stopAll("workers keep dying");
          } else {
            log.error(`worker ${index} (pid ${worker.process.pid}) died (${signal ?? `exit status ${code}`}); starting another`);
            fork(index);
          }
        }
        if (Object.keys(cluster.workers ?? {}).length === 0 && stopping) {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve(status);
        }
      });
    };
    log.info(`starting ${count} workers; each loads the model`);
    for (let index = 1; index <= count; index++) fork(index);
  });
}

/**
 * A worker: serves like a single process, tells the primary when it is
 * ready and when a Shutdown call starts a drain, and drains when told to.
 */
export async function runWorker(config: ServerConfig, options: StartOptions): Promise<RunningServer> {
  const send = (message: FromWorker) => {
    if (process.connected) process.send?.(message);
  };
  const server = await startServer(config, { ...options, onDrainStart: (reason) => send({ type: "chassis:drain", reason }) });
  process.on("message", (message: ToWorker) => {
    if (message?.type === "chassis:stop") void server.shutdown(message.reason);
  });
  // The primary is gone (killed): nobody hands us connections any more.
  process.once("disconnect", () => void server.shutdown("the primary process exited"));
  send({ type: "chassis:ready", omiPort: server.omiPort, httpPort: server.httpPort, rssBytes: process.memoryUsage().rss });
  return server;
}

/**
 * @module server/serve
 * Wires a model to its servers: import the module, load the model once, open
 * the OMI and/or KServe ports only after the load (KServe's TCP readiness
 * probe relies on that), and drain gracefully on a Shutdown call or
 * SIGTERM/SIGINT: stop accepting, let accepted calls finish, unload.
 */
import { createLogger, type Logger } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { VERSION } from "../core/version.js";
import { KServeServer } from "../kserve/server.js";
import { ServingMetrics } from "../metrics/serving.js";
import { modelSlug } from "../model/metadata.js";
import { OmiServer, PortError } from "../omi/server.js";
import { Runtime } from "../runtime/runtime.js";
import type { ServerConfig } from "./config.js";
import { loadModelModule } from "./load-module.js";
import { PredictThreads } from "./threads/pool.js";

export interface RunningServer {
  readonly runtime: Runtime;
  readonly omi: OmiServer | undefined;
  readonly kserve: KServeServer | undefined;
  readonly metrics: ServingMetrics;
  /** The OMI port bound (0 when OMI is off); differs from the config with port 0. */
  readonly omiPort: number;
  /** The KServe REST port bound (0 when KServe is off). */
  readonly httpPort: number;
  /** The name the REST API serves the model under. */
  readonly modelName: string;
  /** Starts a graceful drain (idempotent); resolves when everything is closed. */
  shutdown(reason: string): Promise<void>;
  /** Closes everything at once, cancelling calls in flight. */
  forceClose(): void;
  /** Resolves once the server has drained and closed, whatever started it. */
  readonly closed: Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain (a second signal forces exit). @default false */
  handleSignals?: boolean;
  /** Called once when a drain starts, whatever started it (a worker tells its primary). */
  onDrainStart?: (reason: string) => void;
  /** What GET /metrics answers, when not this process's registry alone (KServeServerOptions.renderMetrics). */
  renderMetrics?: () => Promise<string>;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);

  let finish: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let draining: Promise<void> | undefined;
  // Until the servers exist, a stop request only ends start-up.
  let stopServers = async () => {};
  const shutdown = (reason: string): Promise<void> => {
    draining ??= (async () => {
      options.onDrainStart?.(reason);
      log.info(`shutting down (${reason}): draining calls in flight`);
      await stopServers();
      log.info("shut down cleanly");
      finish();
    })();
    return draining;
  };
  // Signals are handled from the start, so a SIGTERM during a long import or load also exits 0.
  let forceClose = () => {};
  if (options.handleSignals) handleSignals(shutdown, closed, () => forceClose(), log);

  const { model, file } = await loadModelModule(config.modelPath, { log });
  const host =
    config.predictThreads > 0 ? new PredictThreads({ count: config.predictThreads, modelPath: config.modelPath, model, log }) : undefined;
  const modelName = config.modelName ?? modelSlug(model.metadata.name);
  const metrics = new ServingMetrics(modelName);
  const runtime = new Runtime(model, {
    log,
    batching: config.batching,
    batchMaxWaitMs: config.batchMaxWaitMs,
    host,
    onBatch: (items) => metrics.recordBatch(items),
  });
  log.info(`model ${model.metadata.name} ${model.metadata.version} from ${file}`);
  const omi =
    config.interface === "kserve"
      ? undefined
      : new OmiServer(runtime, {
          host: config.host,
          port: config.omiPort,
          maxMessageBytes: config.maxMessageBytes,
          log,
          metrics,
          onShutdown: () => void shutdown("Shutdown call"),
        });
  const kserve =
    config.interface === "omi"
      ? undefined
      : new KServeServer(runtime, {
          modelName,
          host: config.host,
          port: config.httpPort,
          maxBodyBytes: config.maxBodyBytes,
          protocol: config.protocol,
          metrics,
          renderMetrics: options.renderMetrics,
          log,
          version: VERSION,
        });
  forceClose = () => {
    omi?.forceClose();
    kserve?.forceClose();
  };
  stopServers = async () => {
    // One drain budget: the servers' grace period, then whatever is left for the runtime.
    const deadline = Date.now() + config.drainTimeoutMs;
    await Promise.all([omi?.close(config.drainTimeoutMs), kserve?.close(config.drainTimeoutMs)]);
    await runtime.drain(Math.max(0, deadline - Date.now()));
  };
  if (draining) void stopServers(); // stopped during the import: release what was made

  if (config.load === "start" && !draining) {
    const loading = runtime.load().then(
      () => true,
      () => false,
    );
    const loaded = await Promise.race([loading, closed.then(() => true)]);
    if (!loaded && !draining) {
      if (!omi) {
        // KServe exits when no model is ready (NoModelReady); without OMI nothing would retry the load.
        forceClose();
        throw new ToolError(
          "CHASSIS_LOAD_FAILED",
          `model ${model.metadata.name} failed to load: ${runtime.loadError?.message ?? "unknown error"}`,
        );
      }
      // With OMI, as in Chassis: Status answers 500 and retries the load.
      log.warn("serving anyway: OMI Status will report the failure and retry the load");
    }
  }

  let omiPort = 0;
  let httpPort = 0;
  if (!draining) {
    try {
      if (omi) omiPort = await omi.listen().catch((error: unknown) => Promise.reject(portError("OMI", "--port or PSC_MODEL_PORT", error)));
      if (kserve)
        httpPort = await kserve
          .listen()
          .catch((error: unknown) => Promise.reject(portError("KServe REST", "--http-port or HTTP_PORT", error)));
    } catch (error) {
      forceClose();
      throw error;
    }
  }
  return { runtime, omi, kserve, metrics, omiPort, httpPort, modelName, shutdown, forceClose: () => forceClose(), closed };
}

function portError(what: string, setting: string, error: unknown): unknown {
  const cause = error instanceof PortError ? error : error instanceof Error && "code" in error ? error : undefined;
  if (!cause) return error;
  const code = (cause as NodeJS.ErrnoException).code;
  const message =
    cause instanceof PortError
      ? cause.message
      : code === "EADDRINUSE"
        ? `port ${(cause as { port?: number }).port ?? ""} is already in use by another process`
        : cause.message;
  return new ToolError("CHASSIS_PORT_IN_USE", `${what}: ${message}`, {
    hint: `choose another port with ${setting}, or stop the other process`,
    cause,
  });
}

/** SIGTERM/SIGINT drain; a second signal closes at once and exits 1. */
function handleSignals(shutdown: (reason: string) => Promise<void>, closed: Promise<void>, forceClose: () => void, log: Logger): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn(`second ${signal}: closing at once`);
      forceClose();
      process.exit(1);
    }
    void shutdown(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  void closed.then(() => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  });
}

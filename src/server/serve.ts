/**
 * @module server/serve
 * Wires a model to its servers: import the module, load the model (before
 * the port opens, by default), listen, and drain gracefully on a Shutdown
 * call or SIGTERM/SIGINT: stop accepting, let accepted calls finish, unload.
 */
import { logVerbosity, setLogger, setLogVerbosity } from "@grpc/grpc-js";
import { createLogger, type Logger } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { OmiServer, PortError } from "../omi/server.js";
import { Runtime } from "../runtime/runtime.js";
import type { ServerConfig } from "./config.js";
import { loadModelModule } from "./load-module.js";

export interface RunningServer {
  readonly runtime: Runtime;
  readonly omi: OmiServer;
  /** The OMI port actually bound (differs from the config with port 0). */
  readonly omiPort: number;
  /** Starts a graceful drain (idempotent); resolves when everything is closed. */
  shutdown(reason: string): Promise<void>;
  /** Resolves once the server has drained and closed, whatever started it. */
  readonly closed: Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Install SIGTERM/SIGINT handlers that drain (a second signal forces exit). @default false */
  handleSignals?: boolean;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel);
  routeGrpcLogs(log);

  let finish: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let draining: Promise<void> | undefined;
  // Until the servers exist, a stop request only ends start-up.
  let stopServers = async () => {};
  const shutdown = (reason: string): Promise<void> => {
    draining ??= (async () => {
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

  const { model, file } = await loadModelModule(config.modelPath);
  const runtime = new Runtime(model, { log });
  log.info(`model ${model.metadata.name} ${model.metadata.version} from ${file}`);
  const omi = new OmiServer(runtime, {
    host: config.host,
    port: config.omiPort,
    maxMessageBytes: config.maxMessageBytes,
    log,
    onShutdown: () => void shutdown("Shutdown call"),
  });
  forceClose = () => omi.forceClose();
  stopServers = async () => {
    await omi.close(config.drainTimeoutMs);
    await runtime.drain(config.drainTimeoutMs);
  };
  if (draining) void stopServers(); // stopped during the import: release what was made

  if (config.load === "start" && !draining) {
    // A failed load does not stop the server: Status answers 500 and retries it, as in Chassis.
    const loading = runtime.load().catch(() => {
      if (!draining) log.warn("serving anyway: Status will report the failure and retry the load");
    });
    await Promise.race([loading, closed]);
  }

  let omiPort = 0;
  if (!draining) {
    try {
      omiPort = await omi.listen();
    } catch (error) {
      omi.forceClose();
      if (error instanceof PortError) {
        throw new ToolError("CHASSIS_PORT_IN_USE", `OMI: ${error.message}`, {
          hint: "choose another port with --port or PSC_MODEL_PORT, or stop the other process",
          cause: error,
        });
      }
      throw error;
    }
  }
  return { runtime, omi, omiPort, shutdown, closed };
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

/** grpc-js logs to the console on its own (e.g. a failed bind); send that to our logger at debug level. */
function routeGrpcLogs(log: Logger): void {
  const write = (...args: unknown[]) => log.debug(`grpc-js: ${args.map(String).join(" ")}`);
  setLogger({ error: write, info: write, debug: write });
  setLogVerbosity(logVerbosity.ERROR);
}

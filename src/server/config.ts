/**
 * @module server/config
 * The server's configuration, in one place and flowing one way:
 * argv + env -> parse -> validate -> defaults -> frozen ServerConfig.
 * Nothing else in chassis-ts reads process.env; library code takes options.
 */
import { LOG_LEVELS, type LogLevel } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { DEFAULT_HTTP_PORT, DEFAULT_MAX_BODY_BYTES } from "../kserve/server.js";
import { parseDuration, parseSize } from "../model/units.js";
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_OMI_PORT } from "../omi/server.js";
import { MAX_WAIT_MS } from "../runtime/batcher.js";

export type InterfaceName = "omi" | "kserve" | "both";
export type LoadPolicy = "start" | "status";
export type RestProtocol = "v1" | "v2";

export interface ServerConfig {
  readonly modelPath: string;
  /** Which servers to start (`INTERFACE`, `--interface`): one process, one model load. @default "both" */
  readonly interface: InterfaceName;
  /** Address both servers listen on (`HOST`, `--host`). @default "0.0.0.0" (all interfaces, as Chassis and KServe) */
  readonly host: string;
  /** OMI gRPC port (`PSC_MODEL_PORT`, `--port`). @default 45000 */
  readonly omiPort: number;
  /** KServe REST port (`HTTP_PORT`, `--http-port`, KServe's `--http_port`). @default 8080 */
  readonly httpPort: number;
  /** Name the REST API serves the model under (`MODEL_NAME`, `--model-name`, `--model_name`). @default the slug of the model's name */
  readonly modelName: string | undefined;
  /** Which KServe protocol the docs present first (`PROTOCOL`, `--protocol`); both are served. @default "v1" */
  readonly protocol: RestProtocol;
  /** Largest gRPC message, e.g. `64M` (`MAX_MESSAGE_SIZE`, `--max-message-size`). @default 64 MiB */
  readonly maxMessageBytes: number;
  /** Largest REST request body (`MAX_BODY_SIZE`, `--max-body-size`); larger ones get 413. @default 64 MiB */
  readonly maxBodyBytes: number;
  /**
   * `start`: load before the ports open, so a port is ready when the model is.
   * `status`: load on the first OMI Status call, as Chassis does. (`MODEL_LOAD`, `--load`)
   * @default "start"
   */
  readonly load: LoadPolicy;
  /** How long a graceful drain waits for calls in flight (`DRAIN_TIMEOUT`, `--drain-timeout`). @default 30 s */
  readonly drainTimeoutMs: number;
  /** (`LOG_LEVEL`, `--log-level`) @default "info" */
  readonly logLevel: LogLevel;
  /**
   * Processes serving the same ports, each with its own copy of the model
   * (`WORKERS`, `--workers N|auto`; `auto` is one per usable CPU, counting a
   * container's CPU quota). Images set `WORKERS=auto`. @default 1
   */
  readonly workers: number;
  /**
   * Batching across calls for predictBatch models (`BATCHING`,
   * `--batching on|off`). @default undefined: the model's `batching.enabled` (on)
   */
  readonly batching: "on" | "off" | undefined;
  /** Overrides the model's `batching.maxWaitMs` (`BATCH_MAX_WAIT`, `--batch-max-wait MS`). @default the model's (0) */
  readonly batchMaxWaitMs: number | undefined;
  /**
   * Worker threads that run the model's predicts, each with its own copy of
   * the model, so that the main thread (sockets, health, metrics) never waits
   * for a predict (`PREDICT_THREADS`, `--predict-threads N|auto`). 0 runs
   * predicts on the main thread. @default 0
   */
  readonly predictThreads: number;
}

/** Flag values as typed on the command line. */
export interface ServerFlags {
  interface?: string | undefined;
  host?: string | undefined;
  port?: string | undefined;
  "http-port"?: string | undefined;
  "model-name"?: string | undefined;
  protocol?: string | undefined;
  "max-message-size"?: string | undefined;
  "max-body-size"?: string | undefined;
  load?: string | undefined;
  "drain-timeout"?: string | undefined;
  "log-level"?: string | undefined;
  workers?: string | undefined;
  batching?: string | undefined;
  "batch-max-wait"?: string | undefined;
  "predict-threads"?: string | undefined;
}

export const SERVER_FLAGS: ReadonlyArray<keyof ServerFlags> = [
  "interface",
  "host",
  "port",
  "http-port",
  "model-name",
  "protocol",
  "max-message-size",
  "max-body-size",
  "load",
  "drain-timeout",
  "log-level",
  "workers",
  "batching",
  "batch-max-wait",
  "predict-threads",
];

/** KServe's spellings of our flags (it passes them to custom containers). */
const KSERVE_ALIASES: Readonly<Record<string, keyof ServerFlags>> = {
  http_port: "http-port",
  model_name: "model-name",
  predictor_protocol: "protocol",
};

export interface ParsedServeArgs {
  readonly positionals: string[];
  readonly flags: ServerFlags;
  /** Unknown flags, ignored as KServe's ModelServer ignores them (`parse_known_args`). */
  readonly ignored: string[];
}

/**
 * Parses `serve` arguments: our flags and KServe's (`--http_port 8080`,
 * `--model_name=m`), in `--k v` and `--k=v` forms. Unknown flags are
 * ignored, taking the next word as their value once the model path is known.
 */
export function parseServeArgs(args: readonly string[]): ParsedServeArgs {
  const positionals: string[] = [];
  const flags: ServerFlags = {};
  const ignored: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith("--") || arg === "--") {
      if (arg !== "--") positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const rawName = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const name =
      KSERVE_ALIASES[rawName] ?? (SERVER_FLAGS.includes(rawName as keyof ServerFlags) ? (rawName as keyof ServerFlags) : undefined);
    const next = args[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith("--");
    if (!name) {
      if (eq === -1 && nextIsValue && positionals.length > 0) i++;
      ignored.push(rawName);
      continue;
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (nextIsValue) {
      value = next;
      i++;
    } else throw new ToolError("CHASSIS_USAGE", `--${rawName} needs a value`);
    flags[name] = value;
  }
  return { positionals, flags, ignored };
}

type Env = Readonly<Record<string, string | undefined>>;

export function resolveServerConfig(
  modelPath: string | undefined,
  flags: ServerFlags,
  env: Env,
  cpus: () => number = () => 1,
): ServerConfig {
  if (!modelPath) {
    throw new ToolError("CHASSIS_USAGE", "serve needs a model: chassis serve <model file or folder>", {
      hint: "for example: chassis serve examples/echo",
    });
  }
  const pick = (flag: keyof ServerFlags, envName: string): [string | undefined, string] => {
    const fromFlag = flags[flag];
    if (fromFlag !== undefined) return [fromFlag, `--${flag}`];
    const fromEnv = env[envName];
    return [fromEnv === "" ? undefined : fromEnv, envName];
  };
  const oneOf = <T extends string>(value: string, from: string, allowed: readonly T[]): T => {
    if (!allowed.includes(value as T)) {
      throw new ToolError("CHASSIS_USAGE", `${from}="${value}" is not valid (expected ${allowed.map((a) => `"${a}"`).join(" or ")})`);
    }
    return value as T;
  };
  const size = (flag: keyof ServerFlags, envName: string, fallback: number, what: string): number => {
    const [text, from] = pick(flag, envName);
    if (text === undefined) return fallback;
    const parsed = parseSize(text);
    if (parsed === undefined || parsed < 1024)
      throw new ToolError("CHASSIS_USAGE", `${from}="${text}" is not ${what} (expected e.g. 4M, 64M, 1G; at least 1K)`);
    return Math.min(parsed, 2 ** 31 - 1);
  };
  /** `--workers` and `--predict-threads`: a whole number from `min` to 256, or `auto`, one per usable CPU. */
  const count = (text: string | undefined, from: string, min: number, what: string, note = ""): number => {
    if (text === undefined) return min;
    if (text === "auto") return cpus();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > 256) {
      throw new ToolError("CHASSIS_USAGE", `${from}="${text}" is not a number of ${what} (expected ${min} to 256, or auto${note})`);
    }
    return value;
  };
  const port = (flag: keyof ServerFlags, envName: string, fallback: number): number => {
    const [text, from] = pick(flag, envName);
    return text === undefined ? fallback : parsePort(text, from);
  };

  const [iface = "both", ifaceFrom] = pick("interface", "INTERFACE");
  const [host = "0.0.0.0"] = pick("host", "HOST");
  const [modelName, modelNameFrom] = pick("model-name", "MODEL_NAME");
  if (modelName !== undefined && !/^[^/\s]+$/.test(modelName)) {
    throw new ToolError("CHASSIS_USAGE", `${modelNameFrom}="${modelName}" is not a model name (one URL path segment: no "/" or spaces)`);
  }
  const [protocol = "v1", protocolFrom] = pick("protocol", "PROTOCOL");
  const [load = "start", loadFrom] = pick("load", "MODEL_LOAD");

  const [drainText, drainFrom] = pick("drain-timeout", "DRAIN_TIMEOUT");
  let drainTimeoutMs = 30_000;
  if (drainText !== undefined) {
    const parsed = parseDuration(drainText);
    if (parsed === undefined)
      throw new ToolError("CHASSIS_USAGE", `${drainFrom}="${drainText}" is not a duration (expected e.g. 500ms, 30s, 2m)`);
    drainTimeoutMs = parsed;
  }
  const [logLevel = "info", logFrom] = pick("log-level", "LOG_LEVEL");

  const [workersText, workersFrom] = pick("workers", "WORKERS");
  const workers = count(workersText, workersFrom, 1, "workers");
  if (workers > 1 && load === "status") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `${loadFrom}="status" loads the model on the first OMI Status call, which reaches only one of ${workers} workers (${workersFrom}); use --load start with workers`,
    );
  }

  const [threadsText, threadsFrom] = pick("predict-threads", "PREDICT_THREADS");
  const predictThreads = count(threadsText, threadsFrom, 0, "predict threads", "; 0 predicts on the main thread");

  const [batching, batchingFrom] = pick("batching", "BATCHING");
  const [waitText, waitFrom] = pick("batch-max-wait", "BATCH_MAX_WAIT");
  let batchMaxWaitMs: number | undefined;
  if (waitText !== undefined) {
    batchMaxWaitMs = Number(waitText);
    if (!/^\d+(\.\d+)?$/.test(waitText) || batchMaxWaitMs > MAX_WAIT_MS) {
      throw new ToolError(
        "CHASSIS_USAGE",
        `${waitFrom}="${waitText}" is not a wait in milliseconds (expected 0 to ${MAX_WAIT_MS}, e.g. 2)`,
      );
    }
  }

  if (load === "status" && iface === "kserve") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `${loadFrom}="status" loads the model on the first OMI Status call, but ${ifaceFrom}="kserve" serves no OMI: use --load start, or --interface both`,
    );
  }
  return Object.freeze({
    modelPath,
    interface: oneOf(iface, ifaceFrom, ["omi", "kserve", "both"] as const),
    host,
    omiPort: port("port", "PSC_MODEL_PORT", DEFAULT_OMI_PORT),
    httpPort: port("http-port", "HTTP_PORT", DEFAULT_HTTP_PORT),
    modelName,
    protocol: oneOf(protocol, protocolFrom, ["v1", "v2"] as const),
    maxMessageBytes: size("max-message-size", "MAX_MESSAGE_SIZE", DEFAULT_MAX_MESSAGE_BYTES, "a message size"),
    maxBodyBytes: size("max-body-size", "MAX_BODY_SIZE", DEFAULT_MAX_BODY_BYTES, "a body size"),
    load: oneOf(load, loadFrom, ["start", "status"] as const),
    drainTimeoutMs,
    logLevel: oneOf(logLevel, logFrom, LOG_LEVELS),
    workers,
    batching: batching === undefined ? undefined : oneOf(batching, batchingFrom, ["on", "off"] as const),
    batchMaxWaitMs,
    predictThreads,
  });
}

export function parsePort(text: string, from: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ToolError("CHASSIS_USAGE", `${from}="${text}" is not a port (expected a whole number from 0 to 65535)`);
  }
  return port;
}

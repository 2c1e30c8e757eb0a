/**
 * @module server/config
 * The server's configuration, in one place and flowing one way:
 * flags + env -> parse -> validate -> defaults -> frozen ServerConfig.
 * Nothing else in chassis-ts reads process.env; library code takes options.
 */
import { LOG_LEVELS, type LogLevel } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { parseDuration, parseSize } from "../model/units.js";
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_OMI_PORT } from "../omi/server.js";

export type InterfaceName = "omi";
export type LoadPolicy = "start" | "status";

export interface ServerConfig {
  readonly modelPath: string;
  /** Which protocol servers to start (`INTERFACE`). KServe REST arrives with its own server. @default "omi" */
  readonly interface: InterfaceName;
  /** Address to listen on. @default "0.0.0.0" (all interfaces, as Chassis) */
  readonly host: string;
  /** OMI gRPC port (`PSC_MODEL_PORT`, `--port`). @default 45000 */
  readonly omiPort: number;
  /** Largest gRPC message, e.g. `64M` (`MAX_MESSAGE_SIZE`, `--max-message-size`). @default 64 MiB */
  readonly maxMessageBytes: number;
  /**
   * `start`: load before the port opens, so the port is ready when the model is.
   * `status`: load on the first Status call, as Chassis does. (`MODEL_LOAD`, `--load`)
   * @default "start"
   */
  readonly load: LoadPolicy;
  /** How long a graceful drain waits for calls in flight (`DRAIN_TIMEOUT`, `--drain-timeout`). @default 30 s */
  readonly drainTimeoutMs: number;
  /** (`LOG_LEVEL`, `--log-level`) @default "info" */
  readonly logLevel: LogLevel;
}

/** Flag values as parsed from the command line (strings, as typed). */
export interface ServerFlags {
  interface?: string | undefined;
  host?: string | undefined;
  port?: string | undefined;
  "max-message-size"?: string | undefined;
  load?: string | undefined;
  "drain-timeout"?: string | undefined;
  "log-level"?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

export function resolveServerConfig(modelPath: string | undefined, flags: ServerFlags, env: Env): ServerConfig {
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

  const [iface = "omi", ifaceFrom] = pick("interface", "INTERFACE");
  if (iface !== "omi") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `${ifaceFrom}=${iface} is not available: this version serves the OMI interface only (expected "omi")`,
    );
  }
  const [host = "0.0.0.0"] = pick("host", "HOST");
  const [portText, portFrom] = pick("port", "PSC_MODEL_PORT");
  const omiPort = portText === undefined ? DEFAULT_OMI_PORT : parsePort(portText, portFrom);

  const [maxText, maxFrom] = pick("max-message-size", "MAX_MESSAGE_SIZE");
  let maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;
  if (maxText !== undefined) {
    const parsed = parseSize(maxText);
    if (parsed === undefined || parsed < 1024) {
      throw new ToolError("CHASSIS_USAGE", `${maxFrom}="${maxText}" is not a message size (expected e.g. 4M, 64M, 1G; at least 1K)`);
    }
    maxMessageBytes = Math.min(parsed, 2 ** 31 - 1);
  }

  const [load = "start", loadFrom] = pick("load", "MODEL_LOAD");
  if (load !== "start" && load !== "status") {
    throw new ToolError("CHASSIS_USAGE", `${loadFrom}="${load}" is not a load policy (expected "start" or "status")`);
  }

  const [drainText, drainFrom] = pick("drain-timeout", "DRAIN_TIMEOUT");
  let drainTimeoutMs = 30_000;
  if (drainText !== undefined) {
    const parsed = parseDuration(drainText);
    if (parsed === undefined)
      throw new ToolError("CHASSIS_USAGE", `${drainFrom}="${drainText}" is not a duration (expected e.g. 500ms, 30s, 2m)`);
    drainTimeoutMs = parsed;
  }

  const [logLevel = "info", logFrom] = pick("log-level", "LOG_LEVEL");
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ToolError("CHASSIS_USAGE", `${logFrom}="${logLevel}" is not a log level (expected one of ${LOG_LEVELS.join(", ")})`);
  }

  return Object.freeze({
    modelPath,
    interface: "omi",
    host,
    omiPort,
    maxMessageBytes,
    load,
    drainTimeoutMs,
    logLevel: logLevel as LogLevel,
  });
}

export function parsePort(text: string, from: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ToolError("CHASSIS_USAGE", `${from}="${text}" is not a port (expected a whole number from 0 to 65535)`);
  }
  return port;
}

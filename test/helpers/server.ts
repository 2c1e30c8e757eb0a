/**
 * Test helpers: start a real chassis-ts server, in this process (fast, for
 * behaviour) or as a child `chassis serve` process (for exit codes, signals
 * and clients in other languages). Every server listens on a free port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLogger } from "../../src/core/log.js";
import { parseServeArgs, resolveServerConfig, type ServerFlags } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/serve.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CHASSIS_BIN = fileURLToPath(new URL("../../bin/chassis.js", import.meta.url));

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** Starts a server in this process on a free loopback port. */
export async function startInProcess(modelPath: string, flags: ServerFlags = {}): Promise<RunningServer> {
  const config = resolveServerConfig(modelPath, { host: "127.0.0.1", port: "0", "http-port": "0", ...flags }, {});
  return startServer(config, { log: createLogger(process.env.TEST_LOG === "1" ? "debug" : "silent") });
}

export interface ChildServer {
  readonly process: ChildProcess;
  /** The OMI port (0 when OMI is off). */
  readonly port: number;
  /** The KServe REST port (0 when KServe is off). */
  readonly httpPort: number;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process ends. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Spawns `chassis serve` (bin/chassis.js, or another `entry` such as a runtime
 * package's cli.mjs) and waits until its ports are listening (the last one opened is logged last).
 */
export async function spawnServer(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
  entry = CHASSIS_BIN,
): Promise<ChildServer> {
  const child = spawn(process.execPath, [entry, "serve", ...args], {
    cwd: ROOT,
    env: { ...process.env, PSC_MODEL_PORT: "0", HTTP_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.resume();
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  const ports = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    const iface = parseServeArgs(args).flags.interface ?? env.INTERFACE ?? "both";
    const wantOmi = iface !== "kserve";
    const wantHttp = iface !== "omi";
    const check = () => {
      const omi = /OMI gRPC server listening on .*:(\d+)/.exec(stderr);
      const http = /KServe REST server listening on .*:(\d+)/.exec(stderr);
      if ((omi || !wantOmi) && (http || !wantHttp)) {
        clearTimeout(timer);
        resolve([Number(omi?.[1] ?? 0), Number(http?.[1] ?? 0)]);
      }
    };
    child.stderr.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${stderr}`));
    });
  });
  return {
    process: child,
    port: ports[0],
    httpPort: ports[1],
    stderr: () => stderr,
    exited,
    kill: (signal = "SIGTERM") => {
      child.kill(signal);
    },
  };
}

export interface ProcessResult {
  /** The exit code, or the signal's name. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, collecting its output; rejects (and kills it) after timeoutMs. */
export function runProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

/** Rejects with "<what> within <ms> ms" when the promise takes longer. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs the chassis CLI to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runProcess(process.execPath, [CHASSIS_BIN, ...args], { env: { ...process.env, ...env }, timeoutMs });
  return { ...result, code: typeof result.code === "number" ? result.code : -1 };
}

/** The value of one Prometheus series in a /metrics text (0 when absent). */
export function seriesValue(metrics: string, series: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

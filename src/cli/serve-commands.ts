/**
 * @module cli/serve-commands
 * `chassis serve` and `chassis test`: a model in this process. Loaded on
 * demand by cli/main, like every command, so a command loads only its own code.
 */
import { ChassisError } from "../core/error.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { parseServeArgs, resolveServerConfig } from "../server/config.js";
import { usableCpus } from "../server/cpus.js";
import { loadModelModule } from "../server/load-module.js";
import { startServer } from "../server/serve.js";
import { parse, reportItems } from "./common.js";
import { parseInputs } from "./inputs.js";

export async function serve(args: string[], onServing?: () => void): Promise<number> {
  const { positionals, flags, ignored } = parseServeArgs(args);
  if (positionals.length > 1) throw new ToolError("CHASSIS_USAGE", `serve takes one model, got ${positionals.join(" ")}`);
  const config = resolveServerConfig(positionals[0], flags, process.env, usableCpus);
  const log = createLogger(config.logLevel);
  // node:cluster and the workers' code load only when there are workers.
  const workers = config.workers > 1 ? await import("../server/workers.js") : undefined;
  const inWorker = workers?.isWorkerProcess() ?? false;
  if (workers && !inWorker) return workers.runPrimary(config, log);
  // KServe passes its own flags to custom containers; like its ModelServer, we ignore the ones we do not use.
  if (ignored.length > 0 && !inWorker) log.warn(`ignoring unknown flags: ${ignored.map((f) => `--${f}`).join(", ")}`);
  const server =
    workers && inWorker
      ? await workers.runWorker(config, { log, handleSignals: true })
      : await startServer(config, { log, handleSignals: true });
  onServing?.();
  await server.closed;
  return 0;
}

export async function test(args: string[]): Promise<number> {
  const { values, positionals } = parse("test", args, {
    input: { type: "string", multiple: true, default: [] },
    json: { type: "boolean", default: false },
    "log-level": { type: "string", default: "warn" },
  });
  if (positionals.length !== 1) throw new ToolError("CHASSIS_USAGE", "test needs one model: chassis test <model> --input key=...");
  if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "test needs at least one --input key=@file or key=text");
  const item = parseInputs(values.input);
  const level = values["log-level"] as LogLevel;
  if (!LOG_LEVELS.includes(level))
    throw new ToolError("CHASSIS_USAGE", `--log-level "${level}" is not a log level (expected one of ${LOG_LEVELS.join(", ")})`);
  const log = createLogger(level);
  const { model } = await loadModelModule(positionals[0] as string, { log });
  let outcomes: Awaited<ReturnType<typeof model.test>>;
  try {
    outcomes = await model.test([item], { log });
  } catch (error) {
    throw new ToolError("CHASSIS_LOAD_FAILED", `model ${model.metadata.name} failed to load: ${ChassisError.from(error).message}`);
  }
  const items = outcomes.map((o) =>
    o.ok ? { success: true, outputs: o.outputs } : { success: false, outputs: { error: new TextEncoder().encode(o.error.message) } },
  );
  return reportItems(items, values.json);
}

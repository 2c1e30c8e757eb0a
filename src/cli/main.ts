/**
 * @module cli/main
 * The `chassis` command: parses argv, wires the libraries, prints, and turns
 * every failure into a one-line message with a stable exit status
 * (core/tool-error.ts). Nothing imports this module.
 */
import { readFileSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { OmiClient } from "../client/omi-client.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { createLogger } from "../core/log.js";
import { TOOL_ERRORS, ToolError } from "../core/tool-error.js";
import { parseDuration } from "../model/units.js";
import { RunResponseSchema, ShutdownResponseSchema, StatusResponseSchema } from "../omi/gen/model_pb.js";
import { parsePort, resolveServerConfig } from "../server/config.js";
import { loadModelModule } from "../server/load-module.js";
import { startServer } from "../server/serve.js";
import { parseInputs, printItems } from "./inputs.js";

const out = (text: string) => process.stdout.write(text);

const USAGE = `chassis: serve machine-learning models over OMI (gRPC)

Usage:
  chassis serve <model> [--port N] [--host ADDR] [--load start|status]
                        [--max-message-size SIZE] [--drain-timeout DUR] [--log-level LEVEL]
  chassis test <model> --input key=@file|key=text [--input ...] [--json]
  chassis client status   [--host H] [--port P] [--timeout DUR] [--wait DUR]
  chassis client run      --input key=@file|key=text [...] [--host H] [--port P] [--json]
  chassis client shutdown [--host H] [--port P]
  chassis help | --help | --version

<model> is a model file (model.ts / model.js) or a folder holding one.
Environment: PSC_MODEL_PORT, INTERFACE, MAX_MESSAGE_SIZE, MODEL_LOAD,
DRAIN_TIMEOUT, LOG_LEVEL (flags win). Docs: docs/cli.md.
`;

const SERVE_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  interface: { type: "string" },
  "max-message-size": { type: "string" },
  load: { type: "string" },
  "drain-timeout": { type: "string" },
  "log-level": { type: "string" },
} as const;

const CLIENT_OPTIONS = {
  host: { type: "string", default: "localhost" },
  port: { type: "string" },
  timeout: { type: "string", default: "60s" },
  wait: { type: "string" },
  input: { type: "string", multiple: true, default: [] as string[] },
  json: { type: "boolean", default: false },
} as const;

function parse<const O extends NonNullable<ParseArgsConfig["options"]>>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ToolError("CHASSIS_USAGE", `${command}: ${(error as Error).message}`, { hint: `see: chassis help` });
  }
}

function duration(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new ToolError("CHASSIS_USAGE", `--${flag} "${text}" is not a duration (expected e.g. 500ms, 10s, 2m)`);
  return ms;
}

async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parse("serve", args, SERVE_OPTIONS);
  if (positionals.length > 1) throw new ToolError("CHASSIS_USAGE", `serve takes one model, got ${positionals.join(" ")}`);
  const config = resolveServerConfig(positionals[0], values, process.env);
  const server = await startServer(config, { log: createLogger(config.logLevel), handleSignals: true });
  await server.closed;
  return 0;
}

async function test(args: string[]): Promise<number> {
  const { values, positionals } = parse("test", args, {
    input: { type: "string", multiple: true, default: [] },
    json: { type: "boolean", default: false },
    "log-level": { type: "string", default: "warn" },
  });
  if (positionals.length !== 1) throw new ToolError("CHASSIS_USAGE", "test needs one model: chassis test <model> --input key=...");
  if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "test needs at least one --input key=@file or key=text");
  const item = parseInputs(values.input);
  const { model } = await loadModelModule(positionals[0] as string);
  const log = createLogger((values["log-level"] as "warn") ?? "warn");
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

function reportItems(items: Array<{ success: boolean; outputs: Record<string, Uint8Array> }>, asJson: boolean): number {
  let failed: number;
  if (asJson) {
    const decoder = new TextDecoder();
    out(
      `${JSON.stringify(
        items.map((item) => ({
          success: item.success,
          outputs: Object.fromEntries(Object.entries(item.outputs).map(([k, v]) => [k, decoder.decode(v)])),
        })),
        null,
        2,
      )}\n`,
    );
    failed = items.filter((item) => !item.success).length;
  } else {
    failed = printItems(items, out);
  }
  return failed > 0 ? TOOL_ERRORS.CHASSIS_ITEM_FAILED.exit : 0;
}

async function client(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "status" && action !== "run" && action !== "shutdown") {
    throw new ToolError("CHASSIS_USAGE", `client needs an action: status, run or shutdown (got ${action ?? "nothing"})`);
  }
  const { values, positionals } = parse(`client ${action}`, rest, CLIENT_OPTIONS);
  if (positionals.length > 0) throw new ToolError("CHASSIS_USAGE", `client ${action}: unexpected argument ${positionals[0]}`);
  const port = values.port === undefined ? Number(process.env.PSC_MODEL_PORT || 45000) : parsePort(values.port, "--port");
  const host = values.host.includes(":") && !values.host.startsWith("[") ? `[${values.host}]` : values.host;
  const timeoutMs = duration(values.timeout, "timeout");
  const omi = new OmiClient({ address: `${host}:${port}`, timeoutMs });
  try {
    if (values.wait !== undefined) await omi.waitUntilReady({ timeoutMs: duration(values.wait, "wait") });
    switch (action) {
      case "status": {
        const response = await omi.status();
        out(`${JSON.stringify(toJson(StatusResponseSchema, response, { alwaysEmitImplicit: true }), null, 2)}\n`);
        return response.statusCode === 200 ? 0 : TOOL_ERRORS.CHASSIS_CALL_FAILED.exit;
      }
      case "run": {
        if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "client run needs at least one --input key=@file or key=text");
        const response = await omi.run([parseInputs(values.input)]);
        if (values.json) {
          out(`${JSON.stringify(toJson(RunResponseSchema, response, { alwaysEmitImplicit: true }), null, 2)}\n`);
          return response.outputs.every((o) => o.success) ? 0 : TOOL_ERRORS.CHASSIS_ITEM_FAILED.exit;
        }
        out(`${response.statusCode} ${response.status}: ${response.message}\n`);
        return reportItems(
          response.outputs.map((o) => ({ success: o.success, outputs: o.output })),
          false,
        );
      }
      case "shutdown": {
        const response = await omi.shutdown();
        out(`${JSON.stringify(toJson(ShutdownResponseSchema, response, { alwaysEmitImplicit: true }))}\n`);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const reason = ChassisError.from(error);
    const id = reason.code === Code.UNAVAILABLE || reason.code === Code.DEADLINE_EXCEEDED ? "CHASSIS_UNREACHABLE" : "CHASSIS_CALL_FAILED";
    throw new ToolError(id, reason.message);
  } finally {
    omi.close();
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(args);
      case "test":
        return await test(args);
      case "client":
        return await client(args);
      case "--version":
      case "version":
        out(`${version()}\n`);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(USAGE);
        return command === undefined ? TOOL_ERRORS.CHASSIS_USAGE.exit : 0;
      default:
        throw new ToolError("CHASSIS_USAGE", `unknown command "${command}" (expected serve, test, client or help)`);
    }
  } catch (error) {
    const failure =
      error instanceof ToolError ? error : new ToolError("CHASSIS_MODULE_FAILED", ChassisError.from(error).message, { cause: error });
    process.stderr.write(`chassis: error [${failure.id}]: ${failure.message}\n`);
    if (failure.hint) process.stderr.write(`  hint: ${failure.hint}\n`);
    return failure.exitCode;
  }
}

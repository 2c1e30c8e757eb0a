/**
 * @module cli/main
 * The `chassis` command: parses argv, wires the libraries, prints, and turns
 * every failure into a one-line message with a stable exit status
 * (core/tool-error.ts). Nothing imports this module.
 */
import { toJson } from "@bufbuild/protobuf";
import { KServeClient } from "../client/kserve-client.js";
import { OmiClient } from "../client/omi-client.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "../core/log.js";
import { TOOL_ERRORS, ToolError } from "../core/tool-error.js";
import { VERSION } from "../core/version.js";
import { kserveInferenceService, nameFromImage } from "../deploy/kserve.js";
import { toYaml } from "../deploy/yaml.js";
import { RunResponseSchema, ShutdownResponseSchema, StatusResponseSchema } from "../omi/gen/model_pb.js";
import { parsePort, parseServeArgs, resolveServerConfig } from "../server/config.js";
import { loadModelModule } from "../server/load-module.js";
import { startServer } from "../server/serve.js";
import { isWorkerProcess, runPrimary, runWorker, usableCpus } from "../server/workers.js";
import { duration, out, parse, reportItems } from "./common.js";
import { parseInputs } from "./inputs.js";

const USAGE = `chassis: serve machine-learning models over OMI (gRPC) and KServe (REST)

Usage:
  chassis serve <model> [--interface omi|kserve|both] [--host ADDR] [--port N] [--http-port N]
                        [--model-name NAME] [--protocol v1|v2] [--load start|status]
                        [--max-message-size SIZE] [--max-body-size SIZE] [--drain-timeout DUR]
                        [--log-level LEVEL] [--workers N|auto]   (KServe's --http_port/--model_name too; unknown flags ignored)
  chassis test <model> --input key=@file|key=text [--input ...] [--json]
  chassis client status   [--host H] [--port P] [--timeout DUR] [--wait DUR]
  chassis client run      --input key=@file|key=text [...] [--host H] [--port P] [--json]
  chassis client shutdown [--host H] [--port P]
  chassis client predict  --url http://H:8080 [--model NAME] [--protocol v1|v2]
                          --input key=@file|key=text [...] [--json]
  chassis build <model> [--tag NAME:TAG] [--output oci-archive:PATH|oci-layout:DIR|docker-archive:PATH|registry]
                        [--base host|REF|oci-layout:DIR|oci-archive:PATH|docker-archive:PATH]
                        [--interface omi|kserve|both] [--gzip 0-9] [--cache DIR] [--creds USER:PASS]
                        [--authfile PATH] [--source URL] [--revision SHA] [--context DIR] [--quiet]
  chassis run IMAGE|ARCHIVE [--port N] [--http-port N] [--env K=V ...] [--engine-socket PATH]
  chassis test-container IMAGE|ARCHIVE --input key=@file|key=text [...] [--json] [--wait DUR]
  chassis deploy kserve   --image REF [--name N] [--protocol v1|v2] [--interface kserve|both]
                          [--http-port N] [--omi-port N] [--namespace NS] [--cpu Q] [--memory Q]
                          [--env K=V ...] [--json]
  chassis help | --help | --version

<model> is a model file (model.ts / model.js) or a folder holding one.
Environment: INTERFACE, HOST, PSC_MODEL_PORT, HTTP_PORT, MODEL_NAME, PROTOCOL,
MAX_MESSAGE_SIZE, MAX_BODY_SIZE, MODEL_LOAD, DRAIN_TIMEOUT, LOG_LEVEL (flags win).
Docs: docs/cli.md.
`;

const CLIENT_OPTIONS = {
  url: { type: "string" },
  model: { type: "string" },
  protocol: { type: "string", default: "v1" },
  host: { type: "string", default: "localhost" },
  port: { type: "string" },
  timeout: { type: "string", default: "60s" },
  wait: { type: "string" },
  input: { type: "string", multiple: true, default: [] as string[] },
  json: { type: "boolean", default: false },
} as const;

async function serve(args: string[]): Promise<number> {
  const { positionals, flags, ignored } = parseServeArgs(args);
  if (positionals.length > 1) throw new ToolError("CHASSIS_USAGE", `serve takes one model, got ${positionals.join(" ")}`);
  const config = resolveServerConfig(positionals[0], flags, process.env, usableCpus);
  const log = createLogger(config.logLevel);
  if (config.workers > 1 && !isWorkerProcess()) return runPrimary(config, log);
  // KServe passes its own flags to custom containers; like its ModelServer, we ignore the ones we do not use.
  if (ignored.length > 0 && !isWorkerProcess()) log.warn(`ignoring unknown flags: ${ignored.map((f) => `--${f}`).join(", ")}`);
  const server = isWorkerProcess()
    ? await runWorker(config, { log, handleSignals: true })
    : await startServer(config, { log, handleSignals: true });
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
  const level = values["log-level"] as LogLevel;
  if (!LOG_LEVELS.includes(level))
    throw new ToolError("CHASSIS_USAGE", `--log-level "${level}" is not a log level (expected one of ${LOG_LEVELS.join(", ")})`);
  const log = createLogger(level);
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

async function client(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "status" && action !== "run" && action !== "shutdown" && action !== "predict") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `client needs an action: status, run, shutdown (OMI) or predict (KServe) (got ${action ?? "nothing"})`,
    );
  }
  const { values, positionals } = parse(`client ${action}`, rest, CLIENT_OPTIONS);
  if (positionals.length > 0) throw new ToolError("CHASSIS_USAGE", `client ${action}: unexpected argument ${positionals[0]}`);
  if (action === "predict") return predict(values);
  const envPort = process.env.PSC_MODEL_PORT;
  const port = values.port !== undefined ? parsePort(values.port, "--port") : envPort ? parsePort(envPort, "PSC_MODEL_PORT") : 45000;
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

/** `chassis client predict`: one item over KServe v1 (an instance keyed by input name, base64) or v2 (BYTES tensors). */
async function predict(values: {
  url?: string | undefined;
  model?: string | undefined;
  protocol: string;
  input: string[];
  json: boolean;
  timeout: string;
  wait?: string | undefined;
}): Promise<number> {
  if (!values.url) throw new ToolError("CHASSIS_USAGE", "client predict needs --url, e.g. --url http://localhost:8080");
  if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "client predict needs at least one --input key=@file or key=text");
  if (values.protocol !== "v1" && values.protocol !== "v2")
    throw new ToolError("CHASSIS_USAGE", `--protocol "${values.protocol}" is not v1 or v2`);
  const item = parseInputs(values.input);
  const client = new KServeClient({ url: values.url, timeoutMs: duration(values.timeout, "timeout") });
  try {
    const model = values.model ?? (await client.models())[0];
    if (!model) throw new ToolError("CHASSIS_CALL_FAILED", `${values.url} serves no models`);
    if (values.wait !== undefined) await client.waitUntilReady(model, { timeoutMs: duration(values.wait, "wait") });
    let outputs: Record<string, Uint8Array>;
    if (values.protocol === "v1") {
      const instance = Object.fromEntries(
        Object.entries(item).map(([key, bytes]) => [key, { b64: Buffer.from(bytes).toString("base64") }]),
      );
      const [prediction] = (await client.predict(model, [instance], { output_format: "all" })) as Array<Record<string, unknown>>;
      outputs = Object.fromEntries(
        Object.entries(prediction ?? {}).map(([key, value]) => [
          key,
          new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value)),
        ]),
      );
    } else {
      // v2 BYTES travel as JSON strings here, so inputs must be UTF-8 text.
      const text = new TextDecoder("utf-8", { fatal: true });
      for (const [key, bytes] of Object.entries(item)) {
        try {
          text.decode(bytes);
        } catch {
          throw new ToolError(
            "CHASSIS_BAD_INPUT",
            `--input ${key} is not UTF-8 text, which v2 JSON tensors carry; use --protocol v1 (base64) for binary inputs`,
          );
        }
      }
      const [result] = await client.inferItems(model, [Object.fromEntries(Object.entries(item).map(([k, v]) => [k, text.decode(v)]))]);
      outputs = Object.fromEntries(Object.entries(result ?? {}).map(([key, value]) => [key, new TextEncoder().encode(value)]));
    }
    return reportItems([{ success: true, outputs }], values.json);
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const reason = ChassisError.from(error);
    const unreachable = reason.code === Code.UNAVAILABLE || reason.code === Code.DEADLINE_EXCEEDED;
    throw new ToolError(unreachable ? "CHASSIS_UNREACHABLE" : "CHASSIS_CALL_FAILED", reason.message);
  }
}

/** `chassis deploy kserve`: prints an InferenceService for an image (docs/deploy-kserve.md). */
function deploy(args: string[]): number {
  const [target, ...rest] = args;
  if (target !== "kserve") throw new ToolError("CHASSIS_USAGE", `deploy needs a target: kserve (got ${target ?? "nothing"})`);
  const { values, positionals } = parse("deploy kserve", rest, {
    image: { type: "string" },
    name: { type: "string" },
    protocol: { type: "string" },
    interface: { type: "string" },
    "http-port": { type: "string" },
    "omi-port": { type: "string" },
    namespace: { type: "string" },
    cpu: { type: "string" },
    memory: { type: "string" },
    env: { type: "string", multiple: true, default: [] as string[] },
    json: { type: "boolean", default: false },
  });
  if (positionals.length > 0) throw new ToolError("CHASSIS_USAGE", `deploy kserve: unexpected argument ${positionals[0]}`);
  if (!values.image)
    throw new ToolError("CHASSIS_USAGE", "deploy kserve needs --image REF, e.g. --image registry.example.com/digits:1.0.0");
  if (values.protocol !== undefined && values.protocol !== "v1" && values.protocol !== "v2") {
    throw new ToolError("CHASSIS_USAGE", `--protocol "${values.protocol}" is not v1 or v2`);
  }
  if (values.interface !== undefined && values.interface !== "kserve" && values.interface !== "both") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `--interface "${values.interface}" is not kserve or both (KServe routes REST, so omi alone cannot be deployed there)`,
    );
  }
  const env: Record<string, string> = {};
  for (const pair of values.env) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ToolError("CHASSIS_USAGE", `--env "${pair}" is not KEY=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const resources = { ...(values.cpu ? { cpu: values.cpu } : {}), ...(values.memory ? { memory: values.memory } : {}) };
  const manifest = kserveInferenceService({
    image: values.image,
    name: values.name ?? nameFromImage(values.image),
    ...(values.protocol ? { protocol: values.protocol } : {}),
    ...(values.interface ? { interface: values.interface } : {}),
    ...(values["http-port"] ? { httpPort: parsePort(values["http-port"], "--http-port") } : {}),
    ...(values["omi-port"] ? { omiPort: parsePort(values["omi-port"], "--omi-port") } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
  });
  out(values.json ? `${JSON.stringify(manifest, null, 2)}\n` : toYaml(manifest));
  return 0;
}

function version(): string {
  return VERSION;
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
      case "deploy":
        return deploy(args);
      // Loaded on demand: the builder pulls in esbuild, which built images (whose entry is this CLI) do not ship.
      case "build":
        return await (await import("./image-commands.js")).build(args);
      case "run":
        return await (await import("./image-commands.js")).run(args);
      case "test-container":
        return await (await import("./image-commands.js")).testContainer(args);
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
        throw new ToolError(
          "CHASSIS_USAGE",
          `unknown command "${command}" (expected serve, test, client, build, run, test-container, deploy or help)`,
        );
    }
  } catch (error) {
    const failure =
      error instanceof ToolError ? error : new ToolError("CHASSIS_INTERNAL", ChassisError.from(error).message, { cause: error });
    process.stderr.write(`chassis: error [${failure.id}]: ${failure.message}\n`);
    if (failure.hint) process.stderr.write(`  hint: ${failure.hint}\n`);
    return failure.exitCode;
  }
}

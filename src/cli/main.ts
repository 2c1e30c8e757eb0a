/**
 * @module cli/main
 * The `chassis` command: parses argv, loads the module of the command asked
 * for (and only that one: `serve` must start fast, see docs/performance.md),
 * and turns every failure into a one-line message with a stable exit status
 * (core/tool-error.ts). Only the CLI's entries import this module: cli/run.ts
 * and the bundled runtime's cli.mjs (build/image/runtime-package.ts).
 */
import { ChassisError } from "../core/error.js";
import { TOOL_ERRORS, ToolError } from "../core/tool-error.js";
import { VERSION } from "../core/version.js";
import { out } from "./common.js";

const USAGE = `chassis: serve machine-learning models over OMI (gRPC) and KServe (REST)

Usage:
  chassis serve <model> [--interface omi|kserve|both] [--host ADDR] [--port N] [--http-port N]
                        [--model-name NAME] [--protocol v1|v2] [--load start|status]
                        [--max-message-size SIZE] [--max-body-size SIZE] [--drain-timeout DUR]
                        [--log-level LEVEL] [--workers N|auto] [--predict-threads N|auto]
                        [--batching on|off] [--batch-max-wait MS]   (KServe's --http_port/--model_name too; unknown flags ignored)
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

function version(): string {
  return VERSION;
}

/** What the program running the command wants to know. */
export interface CommandHooks {
  /** `serve` calls it once the server is up (the bundled CLI then writes its code cache, core/code-cache.ts). */
  readonly onServing?: () => void;
}

export async function main(argv: string[], hooks: CommandHooks = {}): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case "serve":
        return await (await import("./serve-commands.js")).serve(args, hooks.onServing);
      case "test":
        return await (await import("./serve-commands.js")).test(args);
      case "client":
        return await (await import("./client-commands.js")).client(args);
      case "deploy":
        return (await import("./deploy-command.js")).deploy(args);
      // The builder also pulls in esbuild, which built images (whose entry is this CLI) do not ship.
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

/**
 * Runs the command in `argv` as this process's program and exits with its
 * status once stdout and stderr have flushed (servers have closed by then).
 */
export async function runCommand(argv: string[], hooks: CommandHooks = {}): Promise<void> {
  // `chassis ... | head` closes the pipe early: that is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
  const status = await main(argv, hooks);
  process.exitCode = status;
  setImmediate(() => process.exit(status));
}

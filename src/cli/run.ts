/**
 * @module cli/run
 * Runs the `chassis` command with this process's arguments and exits with its
 * status: the entry point of built images (`node .../chassis-ts/cli.mjs serve /app/model`).
 */
import { main } from "./main.js";

const status = await main(process.argv.slice(2));
process.exitCode = status;
// Let stdout/stderr flush, then leave (servers have closed by now).
setImmediate(() => process.exit(status));

/**
 * @module cli/run
 * Runs the `chassis` command with this process's arguments and exits with its
 * status: the entry point of built images (`node .../chassis-ts/cli.mjs serve /app/model`)
 * and of bin/chassis.js (bundled as dist/bundle/cli.mjs, or dist/cli/run.js).
 */
import { main } from "./main.js";

// `chassis ... | head` closes the pipe early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const status = await main(process.argv.slice(2));
process.exitCode = status;
// Let stdout/stderr flush, then leave (servers have closed by now).
setImmediate(() => process.exit(status));

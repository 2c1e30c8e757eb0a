#!/usr/bin/env node
// The `chassis` command. The CLI lives in dist/ (built by `npm install` via the prepare script).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("chassis: dist/ is missing; run `npm run build` in the chassis-ts folder first\n");
  process.exit(1);
}
// `chassis ... | head` closes the pipe early: that is not an error.
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
const { main } = await import(entry.href);
const status = await main(process.argv.slice(2));
// Let stdout/stderr flush, then leave with the command's status (servers have closed by now).
process.exitCode = status;
setImmediate(() => process.exit(status));

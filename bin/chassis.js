#!/usr/bin/env node
// The `chassis` command. The CLI lives in dist/ (built by `npm install` via the prepare script):
// dist/bundle/cli.mjs, dist/ bundled into one CommonJS file that runs from V8's code cache and
// loads faster than dist/'s ~200 modules (docs/performance.md), unless a file of dist/ is newer
// than it (rebuilt by a bare `tsc`); then dist/cli/run.js.
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dist = new URL("../dist/", import.meta.url);
// Plain path strings for the ~100 stats below: a URL object each cost ~2 ms of start-up.
const distPath = fileURLToPath(dist);
if (!existsSync(`${distPath}cli/run.js`)) {
  process.stderr.write("chassis: dist/ is missing; run `npm run build` in the chassis-ts folder first\n");
  process.exit(1);
}

function bundleIsFresh() {
  try {
    const { builtAt, sources } = JSON.parse(readFileSync(`${distPath}bundle/sources.json`, "utf8"));
    return sources.length > 0 && sources.every((source) => statSync(`${distPath}${source}`).mtimeMs <= builtAt);
  } catch {
    return false; // no bundle, or a source is gone
  }
}

// Either entry runs the command with process.argv and exits with its status (src/cli/run.ts).
await import(new URL(bundleIsFresh() ? "bundle/cli.mjs" : "cli/run.js", dist).href);

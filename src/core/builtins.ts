/**
 * @module core/builtins
 * Node built-in modules that only some calls need, loaded on their first use
 * instead of at start-up (node:zlib ~4 ms, node:crypto ~8 ms of a cold start;
 * docs/performance.md). Through `require`, because `process.getBuiltinModule`
 * needs Node 20.16 and chassis-ts supports 20.10 (package.json `engines`).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export function zlibModule(): typeof import("node:zlib") {
  return require("node:zlib") as typeof import("node:zlib");
}

export function cryptoModule(): typeof import("node:crypto") {
  return require("node:crypto") as typeof import("node:crypto");
}

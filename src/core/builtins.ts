/**
 * @module core/builtins
 * Node built-in modules that only some calls need, loaded on their first use
 * instead of at start-up (node:zlib ~4 ms, node:crypto ~8 ms of a cold start;
 * docs/performance.md). Through `require`, because `process.getBuiltinModule`
 * needs Node 20.16 and chassis-ts supports 20.10 (package.json `engines`).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

// Kept once loaded: require() looks a built-in up again on every call (~0.2 µs), and cryptoModule() is called
// for every v2 answer without an id.
let zlib: typeof import("node:zlib") | undefined;
let crypto: typeof import("node:crypto") | undefined;

export function zlibModule(): typeof import("node:zlib") {
  zlib ??= require("node:zlib") as typeof import("node:zlib");
  return zlib;
}

export function cryptoModule(): typeof import("node:crypto") {
  crypto ??= require("node:crypto") as typeof import("node:crypto");
  return crypto;
}

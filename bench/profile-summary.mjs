#!/usr/bin/env node
/**
 * Summarises the .cpuprofile files that `node bench/serve.mjs --cpu-prof DIR`
 * leaves (V8's sampling profiler): self time by area (grpc-js, node internals
 * for http2/http/net, chassis-ts's dist/, protobuf-es, GC, idle) and the top
 * functions by self time. The profile covers the whole process life (start-up
 * included); files from worker threads (e.g. tsx's loader thread) are listed too.
 *
 *   node bench/profile-summary.mjs DIR [--top 25]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { count, readArgs, usageError } from "./lib-args.mjs";

const [dir, ...rest] = process.argv.slice(2);
const { top } = readArgs(
  { top: count(25) },
  dir === "--help" || dir === "-h" ? [dir] : rest,
  "DIR (the folder serve.mjs --cpu-prof wrote)",
);
if (!dir || dir.startsWith("--")) usageError("the first argument is the folder of .cpuprofile files: profile-summary.mjs DIR [--top 25]");
const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);

function area(url, name) {
  if (!url) {
    if (name === "(idle)") return "idle";
    if (name === "(garbage collector)") return "GC";
    if (name === "(program)") return "(program: native, not attributed)";
    return `native ${name}`;
  }
  if (url.includes("@grpc/grpc-js")) return "@grpc/grpc-js";
  if (url.includes("@bufbuild/protobuf")) return "@bufbuild/protobuf";
  if (url.includes("onnxruntime")) return "onnxruntime-node";
  if (url.includes("/node_modules/")) return `node_modules/${url.split("/node_modules/").pop().split("/")[0]}`;
  if (url.startsWith("node:internal/http2") || url.startsWith("node:http2")) return "node http2";
  if (url.startsWith("node:internal/http") || url.startsWith("node:_http") || url.startsWith("node:http")) return "node http (1.1)";
  if (url.startsWith("node:internal/streams") || url.startsWith("node:stream")) return "node streams";
  if (url.startsWith("node:net") || url.startsWith("node:internal/stream_base") || url.startsWith("node:internal/net"))
    return "node net/sockets";
  if (url.startsWith("node:internal/timers") || url.startsWith("node:timers")) return "node timers";
  if (url.startsWith("node:internal/abort_controller") || url.startsWith("node:internal/event_target") || url.includes("domexception")) {
    return "node AbortController/EventTarget/DOMException";
  }
  if (url === "node:events") return "node events (EventEmitter)";
  if (url.startsWith("node:internal/modules")) return "node module loading";
  if (url.startsWith("node:internal/process/task_queues")) return "node task queues";
  if (url.startsWith("node:")) return "node other";
  if (url.includes("/dist/")) return `chassis-ts dist/${url.split("/dist/").pop().split("/")[0]}`;
  if (url.includes("/examples/")) return "model (examples/)";
  return url;
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length); // microseconds per sample
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const hits = new Map();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byArea = new Map();
  const byFn = new Map();
  let busy = 0;
  for (const [id, count] of hits) {
    const { callFrame } = byId.get(id);
    const a = area(callFrame.url, callFrame.functionName);
    const ms = (count * interval) / 1000;
    byArea.set(a, (byArea.get(a) ?? 0) + ms);
    if (a !== "idle") {
      busy += ms;
      const key = `${callFrame.functionName || "(anonymous)"}  ${callFrame.url.replace(/^.*\/node_modules\//, "").replace(/^file:\/\/.*\/dist\//, "dist/")}:${callFrame.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + ms);
    }
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  console.log(`\n## ${file}: ${(total / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy on the main thread`);
  console.log("\nself time by area (% of busy):");
  let small = 0;
  for (const [a, ms] of [...byArea].filter(([a]) => a !== "idle").sort((x, y) => y[1] - x[1])) {
    if (ms / busy < 0.005) small += ms;
    else console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${a}`);
  }
  if (small > 0) console.log(`  ${((small / busy) * 100).toFixed(1).padStart(5)}%  (areas under 0.5% each)`);
  console.log(`\ntop ${top} functions by self time (% of busy):`);
  for (const [key, ms] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, top)) {
    console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${key}`);
  }
}

/**
 * What reading ctx.signal costs a predict, in-process: the digits model as it
 * is (it checks with ctx.throwIfAborted()) against the same model reading
 * ctx.signal.throwIfAborted() first, as it did before, which makes one
 * AbortSignal per predictBatch call. Batching off (one call per item) and on,
 * C concurrent callers of one item each, runs alternating.
 *
 *   npm run build && node bench/ctx-signal.mjs [--n 40000] [--concurrency 64] [--runs 5]
 *
 * Prints, per configuration, calls/s, the process's CPU per call and the
 * garbage collector's time per call (PerformanceObserver "gc" entries, young
 * generation and full), medians of the runs, then the ratios. Every answer
 * is checked against the first.
 */
import { join } from "node:path";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { inProcessLoad, median, modelCase, ROOT } from "./lib.mjs";
import { count, readArgs } from "./lib-args.mjs";

const { n, concurrency, runs } = readArgs({ n: count(40000), concurrency: count(64), runs: count(5) });

const dist = (file) => import(pathToFileURL(join(ROOT, "dist", file)).href);
const [{ Runtime }, { defineModel }, { loadModelModule }] = await Promise.all([
  dist("runtime/runtime.js"),
  dist("model/define.js"),
  dist("server/load-module.js"),
]);
const { dir, input } = modelCase("digits");
const { model: digits } = await loadModelModule(dir);
const key = digits.metadata.inputs[0].key;
const { predictBatch } = digits.definition;
const variants = {
  "ctx.throwIfAborted()": digits,
  "ctx.signal.throwIfAborted()": defineModel({
    ...digits.definition,
    predictBatch(items, ctx) {
      ctx.signal.throwIfAborted();
      return predictBatch(items, ctx);
    },
  }),
};

const gc = { minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor += entry.duration;
    else gc.major += entry.duration;
  }
}).observe({ entryTypes: ["gc"] });

/** A run of `calls` calls, with the garbage collector's time per call. */
async function measureWithGc(measure, calls) {
  gc.minor = 0;
  gc.major = 0;
  const result = await measure(calls);
  await new Promise((resolve) => setImmediate(resolve)); // the last gc entries
  return { ...result, minorUs: (gc.minor * 1000) / calls, majorUs: (gc.major * 1000) / calls };
}

console.log(`# digits in-process, ${n} calls of 1 item per run, ${concurrency} callers, ${runs} runs, node ${process.version}`);
const results = new Map();
let failures = 0;
for (let r = 0; r < runs; r++) {
  for (const batching of ["off", "on"]) {
    for (const [name, model] of Object.entries(variants)) {
      const runtime = new Runtime(model, { batching });
      const { measure } = await inProcessLoad(runtime, { [key]: input }, concurrency);
      await measure(Math.min(3000, n)); // warm-up
      const result = await measureWithGc(measure, n);
      await runtime.drain();
      failures += result.failed;
      const label = `batching ${batching.padEnd(3)} ${name}`;
      if (!results.has(label)) results.set(label, []);
      results.get(label).push(result);
    }
  }
}
const medians = new Map();
for (const [label, list] of results) {
  const m = Object.fromEntries(["perS", "cpuUs", "minorUs", "majorUs"].map((k) => [k, median(list.map((x) => x[k]))]));
  medians.set(label, m);
  const range = list.map((x) => Math.round(x.perS));
  console.log(
    `${label.padEnd(42)} ${Math.round(m.perS).toString().padStart(7)} calls/s (${Math.min(...range)}-${Math.max(...range)}), ` +
      `CPU ${m.cpuUs.toFixed(2)} µs/call, GC young ${m.minorUs.toFixed(2)} + full ${m.majorUs.toFixed(2)} µs/call`,
  );
}
for (const batching of ["off", "on"]) {
  const a = medians.get(`batching ${batching.padEnd(3)} ctx.throwIfAborted()`);
  const b = medians.get(`batching ${batching.padEnd(3)} ctx.signal.throwIfAborted()`);
  console.log(
    `batching ${batching}: throwIfAborted / signal: calls/s x${(a.perS / b.perS).toFixed(2)}, CPU per call x${(a.cpuUs / b.cpuUs).toFixed(2)}`,
  );
}
console.log(failures ? `# ${failures} wrong answers: FAILED` : "# all answers checked");
process.exitCode = failures ? 1 : 0;

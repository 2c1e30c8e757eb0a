#!/usr/bin/env node
/**
 * A storm of cancellations under batching: N single-item calls queue behind
 * a held batch, then every caller goes away at once (as when clients' deadlines
 * expire together under overload). Prints the time to answer them all
 * CANCELLED, per call, for each N, and the per-call cost at the largest N as
 * a ratio of the smallest's, measured in the same run: about 1 when a
 * cancellation costs the same whatever the queue's length, about
 * largest/smallest when each one scans the queue.
 *
 *   npm run build && node bench/cancel-storm.mjs [--sizes 10000,50000] [--runs 3]
 *
 * Most of what is left per call is the callers' own AbortController (its
 * DOMException and event dispatch), not the batcher's.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { machine, median, ROOT } from "./lib.mjs";
import { count, counts, readArgs } from "./lib-args.mjs";

const { sizes, runs } = readArgs({ sizes: counts([10000, 50000]), runs: count(3) });
const { Code, defineModel, Runtime } = await import(pathToFileURL(join(ROOT, "dist/index.js")).href).catch(() => {
  throw new Error(`${ROOT}/dist is missing: run \`npm run build\` first`);
});
const info = machine();
console.log(`# machine: nproc ${info.nproc}, ${info.cpu}, node ${info.node}`);

const turn = () => new Promise((resolve) => setImmediate(resolve));
const input = new TextEncoder().encode("a");

/** Milliseconds from the first abort to the last caller answered, for n queued calls. */
async function storm(n) {
  let release;
  const gate = new Promise((resolve) => {
    release = resolve;
  });
  const seen = [];
  const model = defineModel({
    name: "Hold",
    version: "1",
    inputs: [{ key: "input", maxSize: "1K" }],
    outputs: [{ key: "out.txt" }],
    batchSize: 16,
    async predictBatch(items) {
      seen.push(items.length);
      if (seen.length === 1) await gate;
      return items.map(() => ({ "out.txt": "x" }));
    },
  });
  const runtime = new Runtime(model, {});
  await runtime.load();
  const first = runtime.run([{ input }]);
  await turn();
  const callers = Array.from({ length: n }, () => new AbortController());
  const calls = callers.map((caller) => runtime.run([{ input }], { signal: caller.signal }));
  await turn();
  const t0 = performance.now();
  for (const caller of callers) caller.abort();
  const outcomes = await Promise.all(calls);
  const ms = performance.now() - t0;
  release();
  await first;
  const cancelled = outcomes.filter(([o]) => !o.ok && o.error.code === Code.CANCELLED).length;
  if (cancelled !== n || seen.length !== 1)
    throw new Error(`${cancelled} of ${n} calls CANCELLED, ${seen.length} predictBatch calls (expected 1)`);
  await runtime.drain();
  return ms;
}

const perCall = new Map();
for (let r = 0; r < runs; r++) {
  for (const n of sizes) {
    const ms = await storm(n);
    perCall.set(n, [...(perCall.get(n) ?? []), (ms * 1000) / n]);
  }
}
for (const n of sizes) {
  const values = perCall.get(n);
  console.log(
    `${String(n).padStart(7)} queued calls cancelled: median ${median(values).toFixed(1)} µs per call (${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)}), ${runs} runs`,
  );
}
const [small, large] = [Math.min(...sizes), Math.max(...sizes)];
const ratio = median(perCall.get(large)) / median(perCall.get(small));
console.log(
  `# per-call cost at ${large} / at ${small}: ${ratio.toFixed(2)} (1 = linear; ${(large / small).toFixed(0)} = a scan of the queue per cancellation)`,
);

#!/usr/bin/env node
/**
 * What one onnxruntime `session.run` of the digits model costs, by the number
 * of rows in the batch: the fixed part a batch of one pays in full and a
 * batch of 16 shares, which decides how much batching can gain
 * (docs/performance.md, "Batching over the wire"). In-process, no server.
 *
 *   node bench/onnx-run.mjs [--rows 1,16,64] [--runs 3] [--calls 20000]
 *
 * Each run times --calls runs of one size (wall and process CPU); sizes
 * alternate run by run, and the line per size gives the median of the runs.
 */
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { ROOT } from "./lib.mjs";
import { parseArgs } from "./lib-args.mjs";

const args = parseArgs(process.argv.slice(2));
const sizes = (args.rows ?? "1,16,64").split(",").map(Number);
const runs = Number(args.runs ?? 3);
const calls = Number(args.calls ?? 20000);
for (const [flag, values] of [
  ["--rows", sizes],
  ["--runs", [runs]],
  ["--calls", [calls]],
]) {
  if (!values.every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`${flag} must be whole numbers, 1 or more`);
}

// The options examples/digits/model.ts loads it with.
const session = await InferenceSession.create(join(ROOT, "examples/digits/model.onnx"), {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
});
const samples = new Map(sizes.map((rows) => [rows, []]));
for (let r = 0; r <= runs; r++) {
  for (const rows of sizes) {
    const data = new Float32Array(rows * 64).fill(3);
    const n = r === 0 ? Math.ceil(calls / 10) : calls; // round 0 warms up
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const output = await session.run({ input: new Tensor("float32", data, [rows, 64]) });
      if (output.probabilities?.data.length !== rows * 10)
        throw new Error(`${rows} rows gave ${output.probabilities?.data.length} probabilities`);
    }
    const wallUs = ((performance.now() - t0) * 1000) / n;
    const cpu = process.cpuUsage(cpu0);
    if (r > 0) samples.get(rows).push({ wallUs, cpuUs: (cpu.user + cpu.system) / n });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`# onnxruntime-node, examples/digits/model.onnx, ${calls} runs per size, median of ${runs}`);
for (const [rows, list] of samples) {
  const wall = median(list.map((s) => s.wallUs));
  const cpu = median(list.map((s) => s.cpuUs));
  console.log(
    `rows ${String(rows).padStart(3)}: ${wall.toFixed(1)} µs a run (CPU ${cpu.toFixed(1)} µs), ${(cpu / rows).toFixed(2)} µs of CPU per row`,
  );
}
await session.release();

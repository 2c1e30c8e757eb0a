#!/usr/bin/env node
/**
 * What one onnxruntime `session.run` of the digits model costs, by the number
 * of rows in the batch: the fixed part a batch of one pays in full and a
 * batch of 16 shares, which decides how much batching can gain
 * (docs/performance.md, "Batching over the wire"). In-process, no server.
 *
 *   node bench/onnx-run.mjs [--rows 1,16,64] [--runs 3] [--calls 20000] [--in-flight 1,64]
 *
 * Each run times --calls runs of one size (wall and process CPU), with
 * --in-flight of them started at once: onnxruntime-node runs each on a later
 * turn of the event loop (setImmediate), so one at a time also pays a turn
 * per run, while 64 in flight share turns, as the calls of a busy server do.
 * Sizes and in-flight counts alternate run by run; the line per pair gives
 * the median of the runs.
 */
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { median, ROOT } from "./lib.mjs";
import { count, counts, readArgs } from "./lib-args.mjs";

const args = readArgs({ rows: counts([1, 16, 64]), runs: count(3), calls: count(20000), "in-flight": counts([1, 64]) });
const { rows: sizes, runs, calls } = args;
const inFlight = args["in-flight"];

// The options examples/digits/model.ts loads it with.
const session = await InferenceSession.create(join(ROOT, "examples/digits/model.onnx"), {
  executionProviders: ["cpu"],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
});
const pairs = sizes.flatMap((rows) => inFlight.map((flight) => ({ rows, flight, samples: [] })));
for (let r = 0; r <= runs; r++) {
  for (const pair of pairs) {
    const { rows, flight } = pair;
    const data = new Float32Array(rows * 64).fill(3);
    const n = r === 0 ? Math.ceil(calls / 10) : calls; // round 0 warms up
    const one = async () => {
      const output = await session.run({ input: new Tensor("float32", data, [rows, 64]) });
      if (output.probabilities?.data.length !== rows * 10)
        throw new Error(`${rows} rows gave ${output.probabilities?.data.length} probabilities`);
    };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let done = 0; done < n; done += flight) {
      await Promise.all(Array.from({ length: Math.min(flight, n - done) }, one));
    }
    const wallUs = ((performance.now() - t0) * 1000) / n;
    const cpu = process.cpuUsage(cpu0);
    if (r > 0) pair.samples.push({ wallUs, cpuUs: (cpu.user + cpu.system) / n });
  }
}
console.log(`# onnxruntime-node, examples/digits/model.onnx, ${calls} runs per size, median of ${runs}`);
for (const { rows, flight, samples } of pairs) {
  const wall = median(samples.map((s) => s.wallUs));
  const cpu = median(samples.map((s) => s.cpuUs));
  console.log(
    `rows ${String(rows).padStart(3)}, ${String(flight).padStart(2)} in flight: ${wall.toFixed(1)} µs a run (CPU ${cpu.toFixed(1)} µs), ` +
      `${(cpu / rows).toFixed(2)} µs of CPU per row`,
  );
}
await session.release();

/**
 * What a call pays to reach a predict thread and come back, in-process: the
 * Runtime of dist/ over a model, predicting on its own thread and through
 * `PredictThreads` (what `--predict-threads N` uses), driven by C concurrent
 * callers of one item each. No network: serve.mjs --predict-threads measures
 * the same over OMI. Runs alternate between the two.
 *
 *   npm run build && node bench/thread-hop.mjs [--model echo|digits] [--threads 1]
 *       [--n 100000] [--concurrency 64] [--runs 3]
 *
 * Prints, per configuration, calls/s and the process's CPU per call (both
 * threads counted) as medians of the runs, then the ratios. Every answer is
 * checked against the first.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inProcessLoad, median, modelCase, ROOT } from "./lib.mjs";
import { count, oneOf, readArgs } from "./lib-args.mjs";

const {
  model: modelName,
  threads,
  n,
  concurrency,
  runs,
} = readArgs({ model: oneOf(["echo", "digits"], "digits"), threads: count(1), n: count(100000), concurrency: count(64), runs: count(3) });

const dist = (file) => import(pathToFileURL(join(ROOT, "dist", file)).href);
const [{ Runtime }, { PredictThreads }, { loadModelModule }, { silentLogger }] = await Promise.all([
  dist("runtime/runtime.js"),
  dist("server/threads/pool.js"),
  dist("server/load-module.js"),
  dist("core/log.js"),
]);
const { dir, input } = modelCase(modelName);
const { model } = await loadModelModule(dir);
const key = model.metadata.inputs[0].key;

const configs = [
  { label: "main thread", host: () => undefined },
  {
    label: `${threads} predict thread${threads > 1 ? "s" : ""}`,
    host: () => new PredictThreads({ count: threads, modelPath: dir, model, log: silentLogger }),
  },
];
const results = new Map(configs.map((c) => [c.label, []]));
let failures = 0;
console.log(`# ${modelName}, ${n} calls of 1 item from ${concurrency} callers, ${runs} runs each, alternating`);
for (let run = 0; run < runs; run++) {
  for (const config of run % 2 ? [...configs].reverse() : configs) {
    const runtime = new Runtime(model, { host: config.host() });
    const { measure } = await inProcessLoad(runtime, { [key]: input }, concurrency);
    await measure(Math.min(5000, n)); // warm-up: JIT, ONNX arenas
    const result = await measure(n);
    await runtime.drain();
    failures += result.failed;
    results.get(config.label).push(result);
    console.log(
      `${config.label.padEnd(18)} run ${run + 1}: ${result.perS.toFixed(0)} calls/s, ${result.cpuUs.toFixed(1)} µs of CPU a call`,
    );
  }
}
const summary = configs.map((c) => ({
  label: c.label,
  perS: median(results.get(c.label).map((r) => r.perS)),
  cpuUs: median(results.get(c.label).map((r) => r.cpuUs)),
}));
for (const s of summary) console.log(`${s.label}: median ${s.perS.toFixed(0)} calls/s, ${s.cpuUs.toFixed(1)} µs of CPU a call`);
const [main, threaded] = summary;
console.log(
  `# ${threaded.label} / main thread: calls/s ${(threaded.perS / main.perS).toFixed(2)}; ` +
    `CPU a call +${(threaded.cpuUs - main.cpuUs).toFixed(1)} µs`,
);
console.log(failures ? `# ${failures} wrong answers: FAILED` : "# all answers checked");
process.exitCode = failures ? 1 : 0;

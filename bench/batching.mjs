/**
 * Adaptive batching across calls (issue 5 item 4), measured in-process: the
 * digits model (ONNX, predictBatch, batchSize 16) loaded through the Runtime
 * of dist/, driven by C concurrent callers that each send one item per
 * Runtime.run call, with batching on and off. No network: the transports are
 * measured by serve.mjs.
 *
 *   npm run build && node bench/batching.mjs [--model digits|offthread] [--n 20000] [--runs 3]
 *       [--concurrency 64,1] [--max-concurrent 1,2] [--max-wait 0] [--wait-idle 30] [--json FILE]
 *
 * `--model offthread` is a synthetic batch model (batchSize 16) whose
 * predictBatch does a fixed ~0.4 ms of CPU on libuv's thread pool (pbkdf2),
 * whatever the batch size: the case of a predict that runs off the main
 * thread, where maxConcurrentBatches decides how many run in parallel.
 *
 * For each concurrency it prints one line per configuration (calls/s, p50,
 * p99 of a call, mean items per predictBatch call; the median run by calls/s
 * with the range) and the ratios on/off. `--max-concurrent 1,2` gives one
 * "on" line per value of batching.maxConcurrentBatches (the default is 1).
 * Runs of the configurations alternate, so drift in the machine hits all alike.
 * --json FILE also writes those lines' figures (bench/targets.mjs reads it).
 */
import { pbkdf2 } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { machine, ROOT, reportIdle } from "./lib.mjs";
import { count, counts, number, oneOf, readArgs, text } from "./lib-args.mjs";

const args = readArgs({
  model: oneOf(["digits", "offthread"], "digits"),
  n: count(20000),
  runs: count(3),
  concurrency: counts([64, 1]),
  "max-concurrent": counts([1, 2]),
  "max-wait": number(0),
  "wait-idle": number(30),
  json: text("a file to write the results to"),
});
const { model: modelName, n, runs, concurrency: concurrencies } = args;
const maxConcurrent = args["max-concurrent"];
const maxWaitMs = args["max-wait"];

const { defineModel, Runtime } = await import(pathToFileURL(join(ROOT, "dist/index.js")).href).catch(() => {
  throw new Error(`${ROOT}/dist is missing: run \`npm run build\` first`);
});
const { base, input } = modelName === "digits" ? await digitsModel() : offThreadModel();
const info = machine();
console.log(`# machine: nproc ${info.nproc}, ${info.cpu}, node ${info.node}`);
console.log(`# ${modelName} (batchSize ${base.metadata.features.batchSize}), ${n} calls of 1 item per run, ${runs} runs per configuration`);
await reportIdle(args["wait-idle"], info.nproc);

async function digitsModel() {
  // The model is TypeScript: tsx compiles it, as `chassis serve` does. Its `import "chassis-ts"` is dist/ too.
  (await import("tsx/esm/api")).register();
  const model = (await import(pathToFileURL(join(ROOT, "examples/digits/model.ts")).href)).default;
  return { base: model, input: new Uint8Array(readFileSync(join(ROOT, "examples/digits/sample.json"))) };
}

function offThreadModel() {
  const work = () => new Promise((resolve, reject) => pbkdf2("chassis", "salt", 1500, 32, "sha256", (e) => (e ? reject(e) : resolve())));
  const model = defineModel({
    name: "Off Thread",
    version: "1",
    inputs: [{ key: "input" }],
    outputs: [{ key: "results.json" }],
    batchSize: 16,
    async predictBatch(items) {
      await work();
      return items.map(() => ({ "results.json": '{"ok":true}' }));
    },
  });
  return { base: model, input: new TextEncoder().encode("x") };
}

/** The model with the given batching, counting predictBatch calls and items. */
function counted(batching) {
  const stats = { calls: 0, items: 0 };
  const { predictBatch } = base.definition;
  const model = defineModel({
    ...base.definition,
    batching,
    predictBatch(items, ctx) {
      stats.calls++;
      stats.items += items.length;
      return predictBatch(items, ctx);
    },
  });
  return { model, stats };
}

/** n calls from `concurrency` callers; every answer is checked against the first. */
async function measure(runtime, concurrency, calls, expected) {
  const latencies = new Float64Array(calls);
  let next = 0;
  let failed = 0;
  const caller = async () => {
    while (next < calls) {
      const i = next++;
      const t0 = performance.now();
      const [outcome] = await runtime.run([{ input }]);
      latencies[i] = performance.now() - t0;
      if (!outcome.ok || Buffer.compare(outcome.outputs["results.json"], expected) !== 0) failed++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, caller));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort();
  const at = (q) => latencies[Math.min(calls - 1, Math.floor(q * calls))];
  return { perS: calls / seconds, p50: at(0.5), p99: at(0.99), failed };
}

const configs = [
  { name: "off", options: { batching: "off" }, batching: undefined },
  ...maxConcurrent.map((k) => ({
    name: maxConcurrent.length > 1 ? `on (maxConcurrentBatches ${k})` : "on",
    options: { batching: "on" },
    batching: { maxConcurrentBatches: k, maxWaitMs },
  })),
];

let failures = 0;
const lines = [];
for (const concurrency of concurrencies) {
  const results = new Map(configs.map((c) => [c.name, []]));
  for (let r = 0; r < runs; r++) {
    for (const config of configs) {
      const { model, stats } = counted(config.batching);
      const runtime = new Runtime(model, config.options);
      await runtime.load();
      const [first] = await runtime.run([{ input }]);
      if (!first.ok) throw new Error(`digits failed: ${first.error.message}`);
      const expected = first.outputs["results.json"];
      await measure(runtime, concurrency, Math.min(2000, n), expected); // warm-up: JIT, ONNX arenas
      stats.calls = 0;
      stats.items = 0;
      const result = await measure(runtime, concurrency, n, expected);
      await runtime.drain();
      failures += result.failed;
      results.get(config.name).push({ ...result, perBatch: stats.items / stats.calls });
    }
  }
  const median = (name) => {
    const sorted = [...results.get(name)].sort((a, b) => a.perS - b.perS);
    return { ...sorted[Math.floor(sorted.length / 2)], min: sorted[0].perS, max: sorted[sorted.length - 1].perS };
  };
  const off = median("off");
  for (const config of configs) {
    const m = median(config.name);
    // The ratio of the medians, and the range of each round's own ratio (the runs alternate, so round r's are neighbours).
    const rounds = results.get(config.name).map((run, r) => run.perS / results.get("off")[r].perS);
    const onOff =
      config.name === "off"
        ? undefined
        : { perS: m.perS / off.perS, p50: m.p50 / off.p50, roundsMin: Math.min(...rounds), roundsMax: Math.max(...rounds) };
    const ratio = onOff
      ? `; on/off: calls/s x${onOff.perS.toFixed(2)} (rounds ${onOff.roundsMin.toFixed(2)}-${onOff.roundsMax.toFixed(2)}), p50 x${onOff.p50.toFixed(2)}`
      : "";
    lines.push({ concurrency, batching: config.name, ...m, onOff });
    console.log(
      `concurrency ${String(concurrency).padStart(2)} batching ${config.name}: ${m.perS.toFixed(0)} calls/s (${m.min.toFixed(0)}-${m.max.toFixed(0)}), ` +
        `p50 ${m.p50.toFixed(3)} ms, p99 ${m.p99.toFixed(3)} ms, ${m.perBatch.toFixed(1)} items/predictBatch${ratio}` +
        (m.failed ? ` FAILED: ${m.failed} wrong answers` : ""),
    );
  }
}
if (args.json) writeFileSync(args.json, `${JSON.stringify({ model: modelName, n, runs, failures, results: lines }, null, 2)}\n`);
process.exitCode = failures ? 1 : 0;

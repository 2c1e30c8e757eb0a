/**
 * Predicts off the event loop (issue 5 item 3): a CPU-bound model
 * (bench/models/busy, ~2-3 ms of plain JavaScript per predict by default)
 * served by `chassis serve` with its predicts on the main thread and with
 * `--predict-threads N` (and, with --workers, `--workers N` without and with
 * one predict thread each), under the same
 * OMI load. While h2load runs, a separate client asks GET /v2/health/ready
 * every 10 ms, each time over a new connection as a Kubernetes probe does,
 * and times each answer.
 *
 *   npm run build && node bench/threads.mjs [--threads 2] [--steps 100000]
 *       [--c 4] [--m 4] [--duration 5] [--runs 3] [--workers] [--wait-idle 30]
 *
 * One line per server and run: Run req/s, Run p50/p99, health p50/p99/max,
 * server CPU (summed over a --workers server's processes); then the medians
 * and the ratios to the main-thread server. Runs rotate between the servers. Every Run answer is checked: h2load's
 * count of successes, and a Run through grpc-js before and after each run
 * whose results.json must equal `chassis test`'s.
 */
import { execFileSync } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import {
  cpuSeconds,
  frame,
  machine,
  median,
  parseH2load,
  percentile,
  ROOT,
  reportIdle,
  runRequestBytes,
  runTool,
  startChassis,
  tempDir,
  verifyGrpc,
  writeTemp,
} from "./lib.mjs";
import { count, flag, number, readArgs } from "./lib-args.mjs";

const args = readArgs({
  threads: count(2),
  steps: count(100000),
  c: count(4),
  m: count(4),
  duration: count(5),
  runs: count(3),
  workers: flag(),
  "wait-idle": number(30),
});
const { threads, steps, c, m, duration, runs } = args;
const HEALTH_EVERY_MS = 10;

const modelDir = join(ROOT, "bench/models/busy");
const input = new TextEncoder().encode(String(steps));
const tested = JSON.parse(
  execFileSync(process.execPath, [join(ROOT, "bin/chassis.js"), "test", modelDir, "--input", `input=${steps}`, "--json"], {
    encoding: "utf8",
    cwd: ROOT,
  }),
);
if (!tested[0]?.success) throw new Error(`chassis test of ${modelDir} failed: ${JSON.stringify(tested)}`);
const expected = new TextEncoder().encode(tested[0].outputs["results.json"]);

const info = machine();
console.log(`# machine: nproc ${info.nproc}, ${info.cpu}, node ${info.node}, ${info.h2load}`);
console.log(
  `# busy model, ${steps} steps per predict; OMI Run at ${c}x${m} for ${duration} s; GET /v2/health/ready every ${HEALTH_EVERY_MS} ms; ${runs} runs each, alternating`,
);
await reportIdle(args["wait-idle"], info.nproc);

const tmp = tempDir();
const body = writeTemp(tmp.dir, "run.bin", frame(runRequestBytes(input)));
const servers = [];
try {
  const configurations = [
    ["main thread", []],
    [`${threads} predict threads`, ["--predict-threads", String(threads)]],
  ];
  if (args.workers) {
    configurations.push([`${threads} workers`, ["--workers", String(threads)]]);
    configurations.push([`${threads} workers x 1 thread`, ["--workers", String(threads), "--predict-threads", "1"]]);
  }
  for (const [label, extra] of configurations) {
    const process_ = await startChassis(modelDir, { extra });
    const [omiPort, httpPort] = process_.found.map(Number);
    servers.push({ label, process: process_, omiPort, httpPort, results: [] });
  }
  for (const server of servers) await measure(server, 1, true); // warm-up

  for (let run = 0; run < runs; run++) {
    for (const server of [...servers.slice(run % servers.length), ...servers.slice(0, run % servers.length)]) {
      const r = await measure(server, duration, false);
      server.results.push(r);
      console.log(
        `${server.label.padEnd(18)} run ${run + 1}: Run ${r.reqPerS.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; ` +
          `health p50 ${r.health.p50.toFixed(2)} ms, p99 ${r.health.p99.toFixed(2)} ms, max ${r.health.max.toFixed(1)} ms (${r.health.count} probes); ` +
          `server CPU ${r.cpu.toFixed(0)}%  ${r.ok ? "OK" : `FAILED: ${r.problems.join("; ")}`}`,
      );
    }
  }

  const summary = servers.map((server) => ({
    label: server.label,
    reqPerS: median(server.results.map((r) => r.reqPerS)),
    p99: median(server.results.map((r) => r.p99)),
    healthP50: median(server.results.map((r) => r.health.p50)),
    healthP99: median(server.results.map((r) => r.health.p99)),
    healthMax: median(server.results.map((r) => r.health.max)),
    cpu: median(server.results.map((r) => r.cpu)),
  }));
  console.log("\n| predicts on | Run req/s | Run p99 ms | health p50 ms | health p99 ms | health max ms | server CPU |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const s of summary) {
    console.log(
      `| ${s.label} | ${s.reqPerS.toFixed(0)} | ${s.p99.toFixed(1)} | ${s.healthP50.toFixed(2)} | ${s.healthP99.toFixed(2)} | ${s.healthMax.toFixed(1)} | ${s.cpu.toFixed(0)}% |`,
    );
  }
  const [main, ...others] = summary;
  for (const other of others) {
    console.log(
      `# ${other.label} / main thread (medians of ${runs}): Run req/s ${(other.reqPerS / main.reqPerS).toFixed(2)}, ` +
        `health p99 ${(other.healthP99 / main.healthP99).toFixed(3)} (${main.healthP99.toFixed(2)} -> ${other.healthP99.toFixed(2)} ms)`,
    );
  }
  const failedRuns = servers.flatMap((s) => s.results).filter((r) => !r.ok).length;
  console.log(failedRuns ? `# ${failedRuns} runs FAILED verification` : "# all runs verified");
  process.exitCode = failedRuns ? 1 : 0;
} finally {
  for (const server of servers) await server.process.stop();
  tmp.remove();
}

/** One h2load run against `server` with the health probe alongside; Run answers checked before and after. */
async function measure(server, seconds, warm) {
  const problems = [];
  const before = await verifyGrpc(server.omiPort, input, expected);
  if (before) problems.push(`before: ${before}`);
  const logFile = join(tmp.dir, `h2load-${process.hrtime.bigint()}.log`);
  const probe = healthProbe(server.httpPort);
  const cpu0 = cpuSeconds(server.process.pid);
  const started = process.hrtime.bigint();
  const tool = await runTool("h2load", [
    "-t1",
    `-c${c}`,
    `-m${m}`,
    "-D",
    String(seconds),
    ...(warm ? [] : ["--log-file", logFile]),
    "--data",
    body,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    `http://127.0.0.1:${server.omiPort}/ModzyModel/Run`,
  ]);
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = ((cpuSeconds(server.process.pid) - cpu0) / wallS) * 100;
  const health = await probe.stop();
  const parsed = parseH2load(tool.stdout, warm ? undefined : logFile);
  if (tool.code !== 0) problems.push(`h2load exited ${tool.code}: ${tool.stderr.slice(0, 200)}`);
  if (!(parsed.succeeded > 0) || parsed.failed !== 0 || parsed.errored !== 0) {
    problems.push(`h2load: ${parsed.succeeded} succeeded, ${parsed.failed} failed, ${parsed.errored} errored`);
  }
  if (health.failures > 0) problems.push(`${health.failures} health probes did not answer 200`);
  const after = await verifyGrpc(server.omiPort, input, expected);
  if (after) problems.push(`after: ${after}`);
  return { ...parsed, health, cpu, ok: problems.length === 0, problems };
}

/** GET /v2/health/ready every HEALTH_EVERY_MS (one at a time, a new connection each) until stop(). */
function healthProbe(port) {
  const times = [];
  let failures = 0;
  let stopped = false;
  const once = () =>
    new Promise((resolve) => {
      const start = process.hrtime.bigint();
      const req = http.get({ host: "127.0.0.1", port, path: "/v2/health/ready", agent: false }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) times.push(Number(process.hrtime.bigint() - start) / 1e6);
          else failures++;
          resolve();
        });
      });
      req.on("error", () => {
        failures++;
        resolve();
      });
    });
  const loop = (async () => {
    while (!stopped) {
      await once();
      await new Promise((resolve) => setTimeout(resolve, HEALTH_EVERY_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      times.sort((a, b) => a - b);
      return { count: times.length, failures, p50: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1) ?? Number.NaN };
    },
  };
}

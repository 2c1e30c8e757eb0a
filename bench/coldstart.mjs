#!/usr/bin/env node
/**
 * Cold start: from spawning `node bin/chassis.js serve MODEL` to the first
 * successful OMI Status (grpc-status 0, status_code 200), median of 7 starts
 * per model; then, on the last start, RSS after load (h2load at 16x16: N OMI
 * Runs, then N KServe v1 predicts). See bench/README.md.
 *
 *   node bench/coldstart.mjs [--models digits,echo] [--runs 7] [--n N] [--skip-load] [--wait-idle 30]
 *                            [--cli FILE] [--models-dir DIR] [--json FILE]
 *
 * --cli FILE runs another entry than bin/chassis.js, e.g. the bundled CLI of
 * an image (`/app/node_modules/chassis-ts/cli.mjs` copied out of one), and
 * --models-dir DIR serves DIR/MODEL instead of examples/MODEL (e.g. the
 * bundled model folders of images).
 *
 * The Status is polled over a raw node:http2 connection every 2 ms (a refused
 * connection is retried), so the figure includes up to ~2 ms of polling.
 * For scale it also times `node -e 0` and the node:http2 baseline server
 * (bench/baseline.mjs) to its first answer. All on 127.0.0.1.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import {
  cpuSeconds,
  frame,
  freePort,
  grpcRaw,
  machine,
  memory,
  modelCase,
  parseH2load,
  ROOT,
  reportIdle,
  runRequestBytes,
  runTool,
  StatusResponseSchema,
  spawnNode,
  tempDir,
  v1RequestBody,
  writeTemp,
} from "./lib.mjs";
import { count, flag, number, readArgs, someOf, text } from "./lib-args.mjs";

const args = readArgs({
  models: someOf(["digits", "echo"], ["digits", "echo"]),
  runs: count(7),
  n: count(),
  "skip-load": flag(),
  "wait-idle": number(30),
  cli: text("another entry than bin/chassis.js"),
  "models-dir": text("a folder of model folders"),
  json: text("a file to write the results to"),
});
const { models, runs } = args;
const cli = args.cli ? resolve(args.cli) : `${ROOT}/bin/chassis.js`;
const modelsDir = args["models-dir"] ? resolve(args["models-dir"]) : undefined;
const DEADLINE_MS = 60000;
const STATUS = frame(new Uint8Array(0));

const info = machine();
console.log(`# machine: nproc ${info.nproc}, ${info.cpu}, node ${info.node}, ${info.h2load}`);
if (args.cli || modelsDir) console.log(`# cli: ${cli}${modelsDir ? `, models from ${modelsDir}` : ""}`);
await reportIdle(args["wait-idle"], info.nproc);
const tmp = tempDir();
let failed = 0;
/** What --json FILE gets: the figures of each line printed. */
const summary = { machine: info, runs, bare: undefined, baseline: undefined, models: {} };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;

try {
  // Scale: a bare node process, and the minimal node:http2 server to its first answer.
  const bare = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await runTool(process.execPath, ["-e", "0"]);
    if (r.code !== 0) throw new Error("node -e 0 failed");
    bare.push(performance.now() - t0);
  }
  summary.bare = { medianMs: median(bare), minMs: Math.min(...bare), maxMs: Math.max(...bare) };
  console.log(`node -e 0 (spawn to exit): median ${median(bare).toFixed(0)} ms (${range(bare)}) of ${runs}`);
  const cannedFile = writeTemp(
    tmp.dir,
    "canned.json",
    JSON.stringify({
      grpc: { headers: { "content-type": "application/grpc+proto" }, body: STATUS.toString("base64"), trailers: { "grpc-status": "0" } },
      rest: { headers: [["content-type", "application/json"]], body: Buffer.from("{}").toString("base64") },
    }),
  );
  const base = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const proc = spawnNode([`${ROOT}/bench/baseline.mjs`, "--canned", cannedFile, "--port", String(port), "--http-port", "0"]);
    try {
      await pollUntil(port, proc, (r) => (String(r.trailers["grpc-status"]) === "0" ? null : "no grpc-status 0"));
      base.push(performance.now() - t0);
    } finally {
      await proc.stop();
    }
  }
  summary.baseline = { medianMs: median(base), minMs: Math.min(...base), maxMs: Math.max(...base) };
  console.log(`node:http2 baseline (spawn to first gRPC answer): median ${median(base).toFixed(0)} ms (${range(base)}) of ${runs}`);

  for (const model of models) {
    const caseInfo = modelCase(model);
    const n = args.n ?? caseInfo.defaultN;
    const times = [];
    const listens = [];
    const cpus = [];
    const rssReady = [];
    let after;
    for (let i = 0; i < runs; i++) {
      const [port, httpPort] = [await freePort(), await freePort()];
      const t0 = performance.now();
      const proc = spawnNode([
        cli,
        "serve",
        modelsDir ? join(modelsDir, model) : caseInfo.dir,
        "--port",
        String(port),
        "--http-port",
        String(httpPort),
        "--host",
        "127.0.0.1",
      ]);
      let listenAt;
      proc.child.stdout.on("data", () => {
        if (listenAt === undefined && /OMI gRPC server listening/.test(proc.output())) listenAt = performance.now() - t0;
      });
      proc.child.stderr.on("data", () => {
        if (listenAt === undefined && /OMI gRPC server listening/.test(proc.output())) listenAt = performance.now() - t0;
      });
      try {
        await pollUntil(port, proc, (r) => {
          if (String(r.trailers["grpc-status"]) !== "0")
            return `grpc-status ${r.trailers["grpc-status"]} ${r.trailers["grpc-message"] ?? ""}`;
          const status = fromBinary(StatusResponseSchema, r.body.subarray(5));
          return status.statusCode === 200 ? null : `status_code ${status.statusCode} ${status.message}`;
        });
        times.push(performance.now() - t0);
        if (listenAt !== undefined) listens.push(listenAt);
        cpus.push(cpuSeconds(proc.pid));
        rssReady.push(memory(proc.pid).rss);
        if (i === runs - 1 && !args["skip-load"]) after = await load(caseInfo, n, port, httpPort, proc.pid);
      } catch (error) {
        failed++;
        console.log(`coldstart ${model}: start ${i + 1} FAILED: ${error.message}`);
      } finally {
        const { code, signal } = await proc.stop();
        if (code !== 0) console.log(`# note: ${model} server exited with ${code ?? signal} after SIGTERM`);
      }
    }
    if (times.length === 0) continue;
    summary.models[model] = {
      starts: times.length,
      medianMs: median(times),
      minMs: Math.min(...times),
      maxMs: Math.max(...times),
      rssAtStatusMiB: median(rssReady),
      after: after && { summary: after.summary, rssMiB: after.rss, hwmMiB: after.hwm, ok: after.ok },
    };
    console.log(
      `coldstart ${model}: spawn to first OK Status median ${median(times).toFixed(0)} ms (${range(times)}) of ${times.length}; ` +
        `"listening" line seen at median ${listens.length ? median(listens).toFixed(0) : "?"} ms; ` +
        `server CPU until then median ${(median(cpus) * 1000).toFixed(0)} ms; VmRSS at first Status median ${median(rssReady).toFixed(1)} MiB`,
    );
    if (after) {
      console.log(
        `memory ${model}: after ${after.summary}: VmRSS ${after.rss.toFixed(1)} MiB, VmHWM ${after.hwm.toFixed(1)} MiB ${after.ok ? "OK" : `FAILED: ${after.problems.join("; ")}`}`,
      );
      if (!after.ok) failed++;
    }
  }
} catch (error) {
  failed++;
  console.error(`FAILED: ${error.stack ?? error}`);
} finally {
  tmp.remove();
}
if (args.json) writeFileSync(args.json, `${JSON.stringify({ ...summary, failed }, null, 2)}\n`);
process.exitCode = failed ? 1 : 0;

/** Polls Status until check(response) returns null; a refused connection is retried after 2 ms. */
async function pollUntil(port, proc, check) {
  const deadline = performance.now() + DEADLINE_MS;
  let last = "no answer";
  while (performance.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`server exited (${proc.child.exitCode}): ${proc.output().slice(-500)}`);
    try {
      const response = await grpcRaw(port, "/ModzyModel/Status", STATUS, { timeoutMs: 5000 });
      last = check(response);
      if (last === null) return;
    } catch (error) {
      last = error.code ?? error.message;
    }
    await sleep(2);
  }
  throw new Error(`no OK Status within ${DEADLINE_MS} ms (last: ${last})`);
}

/** h2load at 16x16: n OMI Runs, then n v1 predicts; checks every answer was 2xx with the right size. */
async function load(caseInfo, n, port, httpPort, pid) {
  const grpcFile = writeTemp(tmp.dir, `${caseInfo.model}.bin`, frame(runRequestBytes(caseInfo.input)));
  const restFile = writeTemp(tmp.dir, `${caseInfo.model}.json`, v1RequestBody(caseInfo.input));
  const restPath = `/v1/models/${caseInfo.model === "digits" ? "digits-classifier" : "echo"}:predict`;
  const problems = [];
  const omiLog = `${tmp.dir}/${caseInfo.model}-omi.log`; // h2load appends to an existing log file
  const omi = await runTool("h2load", [
    ...["-t", "1", "-c", "16", "-m", "16", "-n", String(n), "--log-file", omiLog, "--data", grpcFile],
    ...["-H", "content-type: application/grpc", "-H", "te: trailers", `http://127.0.0.1:${port}/ModzyModel/Run`],
  ]);
  const o = parseH2load(omi.stdout, omiLog);
  if (omi.code !== 0 || o.status2xx !== n || o.done !== n) problems.push(`OMI: ${o.status2xx} 2xx of ${n} (h2load exit ${omi.code})`);
  const restLog = `${tmp.dir}/${caseInfo.model}-rest.log`;
  const rest = await runTool("h2load", [
    ...["--h1", "-t", "1", "-c", "16", "-m", "16", "-n", String(n), "--log-file", restLog, "--data", restFile],
    ...["-H", "content-type: application/json", `http://127.0.0.1:${httpPort}${restPath}`],
  ]);
  const r = parseH2load(rest.stdout, restLog);
  if (rest.code !== 0 || r.status2xx !== n || r.done !== n) problems.push(`REST: ${r.status2xx} 2xx of ${n} (h2load exit ${rest.code})`);
  const mem = memory(pid);
  return {
    ...mem,
    ok: problems.length === 0,
    problems,
    summary: `${n} OMI Runs (${o.reqPerS.toFixed(0)} req/s) + ${n} v1 predicts (${r.reqPerS.toFixed(0)} req/s) at 16x16`,
  };
}

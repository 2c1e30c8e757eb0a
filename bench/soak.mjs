#!/usr/bin/env node
/**
 * Soak: `chassis serve` under mixed OMI and KServe v1 load for minutes, with
 * every response checked and memory sampled. See bench/README.md.
 *
 *   node bench/soak.mjs [--model echo|digits] [--minutes 5] [--c 16] [--m 16]
 *                       [--workers N] [--sample-s 5] [--settle-s 30] [--json FILE]
 *
 * Two h2load processes run side by side for the whole time: OMI Run over
 * HTTP/2 (c connections x m streams) and v1 predict over HTTP/1.1 (c
 * connections, m pipelined). A success is HTTP 200 carrying exactly the
 * expected response bytes (a gRPC error has no DATA, so the DATA byte count
 * catches any non-OK grpc-status). Every 30 s a separate client checks one
 * Run and one predict end to end. RSS is sampled every --sample-s seconds;
 * growth is measured from the sample at --settle-s (after warm-up and JIT) to
 * the last one. Exit 1 on any error or an RSS growth of 10% or more.
 */
import { readFileSync, writeFileSync } from "node:fs";
import {
  cpuSeconds,
  frame,
  grpcRaw,
  httpRaw,
  machine,
  memory,
  modelCase,
  parseH2load,
  runRequestBytes,
  runTool,
  startChassis,
  tempDir,
  v1RequestBody,
  verifyGrpc,
  verifyRest,
  writeTemp,
} from "./lib.mjs";
import { count, oneOf, positive, readArgs, text, usageError } from "./lib-args.mjs";

const args = readArgs({
  model: oneOf(["echo", "digits"], "echo"),
  minutes: positive(5),
  c: count(16),
  m: count(16),
  workers: count(1),
  "sample-s": positive(5),
  "settle-s": positive(30),
  json: text("a file to write the results to"),
});
const caseInfo = modelCase(args.model);
const seconds = Math.round(args.minutes * 60);
const { c, m, workers } = args;
const sampleS = args["sample-s"];
const settleS = args["settle-s"];
if (!(seconds >= 10) || !(settleS < seconds)) usageError("--minutes must give at least 10 s, and more than --settle-s");

const info = machine();
console.log(`# machine: nproc ${info.nproc}, ${info.cpu}, ${info.memGiB} GiB, node ${process.version}`);
console.log(`# soak: model ${caseInfo.model}, ${seconds} s, OMI ${c}x${m} + v1 ${c}x${m} (pipelined), workers ${workers}`);

const tmp = tempDir("chassis-soak-");
const grpcBodyFile = writeTemp(tmp.dir, "run-request.bin", frame(runRequestBytes(caseInfo.input)));
const restBodyFile = writeTemp(tmp.dir, "v1-request.json", v1RequestBody(caseInfo.input));
let chassis;
let failed = false;
try {
  chassis = await startChassis(caseInfo.dir, { extra: workers > 1 ? ["--workers", String(workers)] : [] });
  const [omiPort, httpPort] = chassis.found.map(Number);
  const restPath = `/v1/models/${caseInfo.model === "echo" ? "echo" : "digits-classifier"}:predict`;
  // The exact bytes one successful answer carries, from the server itself, checked first.
  const grpc = await grpcRaw(omiPort, "/ModzyModel/Run", readFileSync(grpcBodyFile));
  const rest = await httpRaw(httpPort, restPath, v1RequestBody(caseInfo.input));
  const firstCheck =
    (await verifyGrpc(omiPort, caseInfo.input, caseInfo.expected)) ??
    (await verifyRest(httpPort, restPath, caseInfo.input, caseInfo.expected));
  if (firstCheck || String(grpc.trailers["grpc-status"]) !== "0" || rest.status !== 200) {
    throw new Error(
      `the server does not answer correctly before the soak: ${firstCheck ?? `grpc-status ${grpc.trailers["grpc-status"]}, HTTP ${rest.status}`}`,
    );
  }
  const grpcBytes = grpc.body.length;
  const restBytes = rest.body.length;

  const h2load = (extra, url, body, contentType) =>
    runTool(
      "h2load",
      [
        ...extra,
        "-t",
        "1",
        "-c",
        String(c),
        "-m",
        String(m),
        "-D",
        String(seconds),
        "--data",
        body,
        "-H",
        `content-type: ${contentType}`,
        url,
      ],
      { timeoutMs: (seconds + 120) * 1000 },
    );
  const samples = [];
  const checks = [];
  const started = Date.now();
  const cpu0 = cpuSeconds(chassis.pid);
  const omiRun = h2load(["-H", "te: trailers"], `http://127.0.0.1:${omiPort}/ModzyModel/Run`, grpcBodyFile, "application/grpc");
  const restRun = h2load(["--h1"], `http://127.0.0.1:${httpPort}${restPath}`, restBodyFile, "application/json");
  let running = true;
  const sampler = (async () => {
    let nextCheck = 30;
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, sampleS * 1000));
      if (!running) break;
      const t = (Date.now() - started) / 1000;
      samples.push({ t, rss: memory(chassis.pid).rss });
      if (t >= nextCheck) {
        nextCheck += 30;
        const problem =
          (await verifyGrpc(omiPort, caseInfo.input, caseInfo.expected)) ??
          (await verifyRest(httpPort, restPath, caseInfo.input, caseInfo.expected));
        checks.push({ t, problem });
        if (problem) console.log(`# ${t.toFixed(0)} s: check FAILED: ${problem}`);
      }
    }
  })();
  const [omi, v1] = await Promise.all([omiRun, restRun]);
  running = false;
  await sampler;
  const cpuS = cpuSeconds(chassis.pid) - cpu0;
  const final = memory(chassis.pid).rss;

  const parse = (run, perResponse, label) => {
    const stats = parseH2load(run.stdout);
    const { done, status2xx: ok2xx, statusOther: other, dataBytes: data } = stats;
    const failedN = stats.failed + stats.errored + stats.timeout;
    const problems = [];
    if (run.code !== 0) problems.push(`h2load exited ${run.code}`);
    if (!(done > 0)) problems.push("no requests done");
    if (failedN > 0) problems.push(`${failedN} failed/errored/timed out`);
    if (other !== 0) problems.push(`${other} answers that are not 2xx`);
    // Every 2xx carries exactly one whole answer: a gRPC error (trailers only) or a short body would break this.
    // With -D, the bodies of up to c x m answers still arriving at the end are counted in DATA but not as 2xx.
    const answers = data / perResponse;
    if (!(Number.isInteger(answers) && answers >= ok2xx && answers <= ok2xx + c * m)) {
      problems.push(`${data} DATA bytes for ${ok2xx} answers of ${perResponse} bytes`);
    }
    // With -D, requests in flight at the end are counted as 2xx but not as done (at most c x m of them).
    if (!(ok2xx >= done && ok2xx <= done + c * m)) problems.push(`${ok2xx} 2xx for ${done} done`);
    console.log(
      `${label}  ${done} calls in ${seconds} s (${(done / seconds).toFixed(0)} req/s), ${ok2xx} HTTP 200 each with the expected ${perResponse} bytes, errors ${failedN}  ${problems.length ? `FAILED: ${problems.join("; ")}` : "OK"}`,
    );
    return { done, problems };
  };
  const omiResult = parse(omi, grpcBytes, "OMI Run    ");
  const v1Result = parse(v1, restBytes, "KServe v1  ");
  const settled = samples.find((s) => s.t >= settleS) ?? samples[0];
  const peak = Math.max(...samples.map((s) => s.rss), final);
  const growth = ((final - settled.rss) / settled.rss) * 100;
  const badChecks = checks.filter((check) => check.problem);
  console.log(
    `RSS        ${settled.rss.toFixed(1)} MiB at ${settled.t.toFixed(0)} s -> ${final.toFixed(1)} MiB at the end (${growth >= 0 ? "+" : ""}${growth.toFixed(1)}%), peak ${peak.toFixed(1)} MiB; ` +
      `${samples.length} samples every ${sampleS} s`,
  );
  console.log(`checks     ${checks.length} end-to-end checks (OMI Run + v1 predict), ${badChecks.length} failed`);
  console.log(`server CPU ${((cpuS / seconds) * 100).toFixed(0)}% of a core on average`);
  console.log(`rss-trace  ${samples.map((s) => s.rss.toFixed(0)).join(" ")}`);
  failed = omiResult.problems.length > 0 || v1Result.problems.length > 0 || badChecks.length > 0 || growth >= 10;
  if (args.json) {
    const figures = {
      machine: info,
      model: caseInfo.model,
      seconds,
      omi: omiResult,
      v1: v1Result,
      checks: { total: checks.length, failed: badChecks.length },
      rss: { settledMiB: settled.rss, finalMiB: final, peakMiB: peak, growthPercent: growth },
      passed: !failed,
    };
    writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`);
  }
  console.log(`# soak ${failed ? "FAILED" : "passed"}: no errors required, RSS growth under 10% required`);
} catch (error) {
  failed = true;
  console.error(`FAILED: ${error.stack ?? error}`);
} finally {
  await chassis?.stop();
  tmp.remove();
}
process.exitCode = failed ? 1 : 0;

#!/usr/bin/env node
/**
 * Throughput and latency of `chassis serve` against the Node transport's limit,
 * measured in the same run. See bench/README.md.
 *
 *   node bench/serve.mjs [--model echo|digits] [--protocol omi|v1|both]
 *                        [--c 16] [--m 16] [--n N] [--duration S]
 *                        [--configs 16x16,1x1,16x1] [--latency-n N] [--runs 3]
 *                        [--rest-tool h2load|wrk] [--retries 1] [--wait-idle 30]
 *                        [--json FILE] [--cpu-prof DIR] [--workers N] [--pin] [--batching-ab]
 *                        [--predict-threads N] [--versus [127.0.0.1:]PORT]
 *                        [--versus-v1 [127.0.0.1:]PORT] [--versus-label NAME] [--versus-v1-label NAME]
 *                        [--versus-pid PID] [--versus-v1-pid PID]
 *
 * For each configuration (connections x streams), protocol and server (the
 * baseline first, then chassis-ts): a warm-up of N/10 requests, a Run/predict
 * checked through a separate client, the measured run, and the check again.
 * One line per measured run; a run that does not verify prints FAILED and the
 * script exits 1. A run during which other processes used more than 30% of a
 * core is repeated (at most --retries times) and flagged if it stays so.
 * Runs alternate between the two servers; each ratio is against the baseline
 * run just before it, and the figure printed is the median of those ratios.
 * --pin puts each server (every thread) on CPU 0 and the load generator on
 * CPU 1 (taskset), so they do not compete for a core; not with --workers.
 * --workers N and --predict-threads N also run chassis-ts in one process
 * (predicting on its main thread), and --batching-ab also runs it with
 * `--batching off`, in the same alternation: the line after the table
 * compares the two chassis-ts runs of each round.
 * --versus adds an OMI server started elsewhere (another implementation, e.g.
 * the Chassis reference server or bench/python_omi_server.py) to the OMI
 * runs, and --versus-v1 a KServe v1 server (bench/python_v1_server.py) to the
 * v1 runs, each checked the same way against its own first answer; its
 * process (for CPU and RSS) is the one listening on the port, or --versus-pid
 * (--versus-v1-pid).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fromBinary } from "@bufbuild/protobuf";
import {
  cpuSeconds,
  frame,
  grpcRaw,
  httpRaw,
  listeningPid,
  machine,
  machineCpu,
  median,
  memory,
  modelCase,
  parseH2load,
  ROOT,
  RunResponseSchema,
  reapedChildrenCpuSeconds,
  reportIdle,
  runRequestBytes,
  runTool,
  startBaseline,
  startChassis,
  tempDir,
  v1RequestBody,
  verifyGrpc,
  verifyRest,
  writeTemp,
} from "./lib.mjs";
import { count, flag, localPort, number, oneOf, readArgs, text, usageError, whole } from "./lib-args.mjs";

const startedAt = performance.now();
const FROM_PROC = " (its CPU and memory are read from /proc)";
const args = readArgs({
  model: oneOf(["echo", "digits"], "echo"),
  protocol: oneOf(["omi", "v1", "both"], "both"),
  c: count(16),
  m: count(16),
  n: count(),
  duration: count(), // h2load -D takes whole seconds
  configs: text("configurations CxM, connections x streams, separated by commas"),
  "latency-n": count(),
  runs: count(3),
  "rest-tool": oneOf(["h2load", "wrk"], "h2load"),
  retries: whole(1),
  "wait-idle": number(30),
  json: text("a file to write the results to"),
  "cpu-prof": text("a folder for CPU profiles"),
  "profile-baseline": flag(),
  workers: count(1),
  pin: flag(),
  "batching-ab": flag(),
  "predict-threads": whole(0),
  versus: localPort(FROM_PROC),
  "versus-v1": localPort(FROM_PROC),
  "versus-label": text("a name for the --versus server", "versus"),
  "versus-v1-label": text("a name for the --versus-v1 server (default: --versus-label)"),
  "versus-pid": count(),
  "versus-v1-pid": count(),
});
const { model, c, m, runs, workers, retries, duration, pin } = args;
const protocols = { omi: ["omi"], v1: ["v1"], both: ["omi", "v1"] }[args.protocol];
const restTool = args["rest-tool"];
const caseInfo = modelCase(model);
const n = args.n ?? caseInfo.defaultN;
const latencyN = args["latency-n"] ?? Math.max(1, Math.round(n / 4));
const waitIdle = args["wait-idle"];
const batchingAb = args["batching-ab"];
const predictThreads = args["predict-threads"];
if (pin && (workers > 1 || predictThreads > 0)) {
  usageError("--pin puts the server on one core: it does not go with --workers or --predict-threads");
}
if ([workers > 1, batchingAb, predictThreads > 0].filter(Boolean).length > 1) {
  usageError("--batching-ab, --workers and --predict-threads each add a second chassis-ts: use one of them");
}
/** Servers this script neither starts nor stops, one per protocol: --versus (OMI) and --versus-v1. */
const versusServers = [
  ["versus", "omi"],
  ["versus-v1", "v1"],
].flatMap(([flag, protocol]) => {
  if (args[flag] === undefined && args[`${flag}-pid`] !== undefined) usageError(`--${flag}-pid goes with --${flag} PORT`);
  if (args[flag] === undefined) return [];
  if (!protocols.includes(protocol))
    usageError(`--${flag} is a${protocol === "omi" ? "n OMI" : " KServe v1"} server: it needs --protocol ${protocol} or both`);
  const labelFlag = flag === "versus-v1" && args["versus-v1-label"] !== undefined ? "versus-v1-label" : "versus-label";
  return [versusServer(flag, protocol, args[flag], labelFlag, args[labelFlag], args[`${flag}-pid`])];
});
const OTHER_LIMIT = 30; // % of one core used by other processes during a run
const configs = (args.configs ?? [`${c}x${m}`, "1x1", "16x1"].join(","))
  .split(",")
  .filter((v, i, all) => all.indexOf(v) === i)
  .map((s) => {
    const [cc, mm, extra] = s.split("x").map(Number);
    if (!Number.isInteger(cc) || !Number.isInteger(mm) || cc < 1 || mm < 1 || extra !== undefined)
      usageError(`--configs takes connections x streams, e.g. 16x16,1x1; got ${JSON.stringify(s)}`);
    return { c: cc, m: mm, n: cc === c && mm === m ? n : latencyN };
  });
const modelName = { echo: "echo", digits: "digits-classifier" }[model];
const restPath = `/v1/models/${modelName}:predict`;

const info = machine();
console.log(
  `# machine: nproc ${info.nproc}, ${info.cpu}, ${info.memGiB} GiB, kernel ${info.kernel}, node ${info.node}, ${info.h2load}, wrk ${info.wrk}`,
);
console.log(
  `# model ${model}, protocols ${protocols.join("+")}, configs ${configs.map((k) => `${k.c}x${k.m}`).join(" ")}, ` +
    `${duration ? `duration ${duration} s` : `N ${n} (latency-only configs ${latencyN})`}, warm-up N/10, runs ${runs} (alternating), REST tool ${restTool}${pin ? ", pinned (servers on CPU 0, load generator on CPU 1)" : ""}`,
);

// Other work on the machine skews every figure here: wait a while for it to end, then say how busy it was.
await reportIdle(waitIdle, info.nproc);

const tmp = tempDir();
const grpcBodyFile = writeTemp(tmp.dir, "run-request.bin", frame(runRequestBytes(caseInfo.input)));
const restBodyFile = writeTemp(tmp.dir, "v1-request.json", v1RequestBody(caseInfo.input));
const profDir = args["cpu-prof"] ? resolve(args["cpu-prof"]) : undefined;

let chassis;
/** A second chassis-ts in the alternation (--workers, --predict-threads: one process, one thread; --batching-ab: batching off), to compare with. */
let companion;
let baseline;
let failed = 0;
const results = [];
/** --workers, --predict-threads, --batching-ab: each configuration's chassis-ts runs against the companion's. */
const comparisons = [];
try {
  chassis = await startChassis(caseInfo.dir, {
    nodeFlags: profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [],
    extra: [
      ...(workers > 1 ? ["--workers", String(workers)] : []),
      ...(batchingAb ? ["--batching", "on"] : []),
      ...(predictThreads > 0 ? ["--predict-threads", String(predictThreads)] : []),
    ],
  });
  const [omiPort, httpPort] = chassis.found.map(Number);
  console.log(`# chassis-ts pid ${chassis.pid}: OMI 127.0.0.1:${omiPort}, REST 127.0.0.1:${httpPort}`);

  // Capture what chassis-ts answers, check it, and hand the same bytes to the baseline.
  const grpc = await grpcRaw(omiPort, "/ModzyModel/Run", readFileSync(grpcBodyFile));
  const grpcProblem = checkGrpcCapture(grpc);
  if (grpcProblem) throw new Error(`chassis-ts's Run answer is not a success: ${grpcProblem}`);
  const rest = await httpRaw(httpPort, restPath, v1RequestBody(caseInfo.input));
  if (rest.status !== 200) throw new Error(`chassis-ts's v1 predict answered HTTP ${rest.status}: ${rest.body}`);
  const restHeaders = [];
  for (let i = 0; i < rest.rawHeaders.length; i += 2) restHeaders.push([rest.rawHeaders[i], rest.rawHeaders[i + 1]]);
  const keepAlive = restHeaders.find(([k]) => /^keep-alive$/i.test(k))?.[1]?.match(/timeout=(\d+)/)?.[1];
  const canned = {
    grpc: { headers: grpc.headers, body: grpc.body.toString("base64"), trailers: grpc.trailers },
    rest: { headers: restHeaders, body: rest.body.toString("base64"), keepAliveTimeoutMs: keepAlive ? Number(keepAlive) * 1000 : 5000 },
  };
  const cannedFile = writeTemp(tmp.dir, "canned.json", JSON.stringify(canned));
  console.log(
    `# captured: gRPC ${JSON.stringify(stripDate(grpc.headers))} + ${grpc.body.length}-byte DATA + trailers ${JSON.stringify(grpc.trailers)}; ` +
      `REST ${rest.body.length}-byte body`,
  );
  baseline = await startBaseline(
    cannedFile,
    profDir && args["profile-baseline"] ? ["--cpu-prof", "--cpu-prof-dir", join(profDir, "baseline")] : [],
  );
  const [baseOmi, baseHttp] = baseline.found.map(Number);
  console.log(`# baseline pid ${baseline.pid}: gRPC 127.0.0.1:${baseOmi}, REST 127.0.0.1:${baseHttp}`);
  const baseGrpc = await grpcRaw(baseOmi, "/ModzyModel/Run", grpc.body);
  if (Buffer.compare(baseGrpc.body, grpc.body) !== 0 || checkGrpcCapture(baseGrpc))
    throw new Error("the baseline does not replay the captured gRPC answer");

  const servers = [
    { label: "node-baseline", pid: baseline.pid, omiPort: baseOmi, httpPort: baseHttp },
    {
      label:
        workers > 1
          ? `chassis-ts w${workers}`
          : batchingAb
            ? "chassis-ts batching on"
            : predictThreads > 0
              ? `chassis-ts t${predictThreads}`
              : "chassis-ts",
      pid: chassis.pid,
      omiPort,
      httpPort,
      restResponseBytes: v1ResponseBytes(rest),
    },
  ];
  if (workers > 1 || batchingAb || predictThreads > 0) {
    // What the extra workers or threads add (chassis-ts in one process, one thread), or what batching adds (chassis-ts without it).
    const label = workers > 1 ? "chassis-ts w1" : batchingAb ? "chassis-ts batching off" : "chassis-ts t0";
    companion = await startChassis(caseInfo.dir, { extra: batchingAb ? ["--batching", "off"] : [] });
    const [companionOmi, companionHttp] = companion.found.map(Number);
    console.log(`# ${label} pid ${companion.pid}: OMI 127.0.0.1:${companionOmi}, REST 127.0.0.1:${companionHttp}`);
    servers.splice(1, 0, { label, pid: companion.pid, omiPort: companionOmi, httpPort: companionHttp });
  }
  for (const versus of versusServers) {
    // Another implementation answers in its own words (digits scores may be printed otherwise): its first
    // answer is checked against chassis-ts's, then every later one against that first answer.
    const flag = versus.flag;
    const omi = versus.protocol === "omi";
    const answer = await (omi
      ? grpcRaw(versus.port, "/ModzyModel/Run", readFileSync(grpcBodyFile))
      : httpRaw(versus.port, restPath, v1RequestBody(caseInfo.input))
    ).catch((error) => {
      throw new Error(
        `--${flag}: no ${omi ? "OMI Run" : `v1 predict (${restPath})`} answer from 127.0.0.1:${versus.port} (${error.message})`,
      );
    });
    const found = omi ? runAnswerOf(answer) : predictionOf(answer);
    const problem = found.problem ?? answerProblem(found.resultsJson);
    if (problem)
      throw new Error(`--${flag}: ${versus.label}'s ${omi ? "Run" : "v1 predict"} answer is not what ${model} answers: ${problem}`);
    versus.pid ??= listeningPid(versus.port);
    if (versus.pid === undefined)
      throw new Error(
        `--${flag}: no process here listens on port ${versus.port} (a container's port forward?); give the server's --${flag}-pid`,
      );
    versus.expected = found.resultsJson;
    if (omi) versus.omiResponseBytes = answer.body.length;
    else [versus.restBodyBytes, versus.restResponseBytes] = [answer.body.length, v1ResponseBytes(answer)];
    console.log(
      `# ${versus.label} pid ${versus.pid}: ${omi ? "OMI" : "KServe v1"} 127.0.0.1:${versus.port}, answers ${answer.body.length}-byte ` +
        `${omi ? "DATA" : "body"} (chassis-ts ${omi ? grpc.body.length : rest.body.length})`,
    );
    servers.push({ ...versus, omiPort: versus.port, httpPort: versus.port, only: versus.protocol });
  }
  if (pin) {
    // A --versus server is not this script's: its CPUs are given back at the end.
    for (const versus of versusServers) versus.cpus = await affinityOf(versus.pid);
    for (const server of servers) await pinProcess(server.pid, "0");
  }
  for (const server of servers) {
    server.omiResponseBytes ??= grpc.body.length;
    server.restBodyBytes ??= rest.body.length;
  }
  // The size of one whole v1 answer, per server: the baseline's node:http adds `Connection: keep-alive`, ours does not.
  // chassis-ts's and a --versus-v1 server's come from the answers captured above; the others' are asked for.
  for (const server of servers.filter((x) => x.only !== "omi" && x.restResponseBytes === undefined))
    server.restResponseBytes = v1ResponseBytes(await httpRaw(server.httpPort, restPath, v1RequestBody(caseInfo.input)));

  for (const config of configs) {
    for (const protocol of protocols) {
      // Runs alternate between the servers (baseline, chassis-ts, baseline, ...): this VM's speed drifts by
      // 20% within minutes, and back-to-back blocks of runs would put that drift into the ratio.
      const here = servers.filter((server) => !server.only || server.only === protocol);
      const samplesOf = new Map(here.map((server) => [server.label, []]));
      for (let r = 0; r < runs; r++) {
        for (const server of here) {
          // A run during which other processes used much CPU is repeated (at most --retries times).
          for (let attempt = 0; ; attempt++) {
            const sample = await measure(server, protocol, config);
            const other = otherCpu(sample);
            if (other <= OTHER_LIMIT || attempt >= retries) {
              samplesOf.get(server.label).push(sample);
              break;
            }
            console.log(
              `# ${protocol} ${config.c}x${config.m} ${server.label}: other processes used ~${other.toFixed(0)}% of a core; repeating the run`,
            );
          }
        }
      }
      const baseSamples = samplesOf.get("node-baseline");
      for (const server of here) {
        const samples = samplesOf.get(server.label);
        // Each run's ratio is against the baseline run just before it; the figure is the median of those ratios.
        const ratios = samples.map((s, i) => s.reqPerS / baseSamples[i].reqPerS);
        const cpuRatios = samples.map((s, i) => baseSamples[i].cpuUsPerReq / s.cpuUsPerReq);
        const ok = samples.every((s) => s.ok);
        const problems = samples.flatMap((s) => s.problems);
        const byRate = [...samples].sort((a, b) => a.reqPerS - b.reqPerS);
        const r = { ...byRate[Math.floor(samples.length / 2)], ok, problems };
        r.range = runs > 1 ? [byRate[0].reqPerS, byRate[byRate.length - 1].reqPerS] : undefined;
        // The tail of every run, not only of the median one: a p99 target is met when most runs meet it.
        const p99s = samples.map((x) => x.p99).sort((a, b) => a - b);
        r.p99Runs = runs > 1 ? { median: median(p99s), min: p99s[0], max: p99s[p99s.length - 1] } : undefined;
        r.ratio = median(ratios);
        r.ratioRange = runs > 1 ? [Math.min(...ratios), Math.max(...ratios)] : undefined;
        r.cpuRatio = median(cpuRatios);
        results.push(r);
        if (!r.ok) failed++;
        console.log(line(r));
      }
      // Round by round, the chassis-ts runs against the companion's and --versus's runs of the same round.
      const chassisLabel = servers[companion ? 2 : 1].label;
      const others = [companion && servers[1].label, versusServers.find((x) => x.protocol === protocol)?.label].filter(Boolean);
      for (const otherLabel of others) {
        const [other, ours] = [samplesOf.get(otherLabel), samplesOf.get(chassisLabel)];
        const comparison = { protocol, model, c: config.c, m: config.m, server: chassisLabel, versus: otherLabel };
        const compare = (what, ratioOf) => {
          const ratios = ours.map((s, i) => ratioOf(s, other[i]));
          comparison[what] = { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
          const range = runs > 1 ? ` (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : "";
          return `${what} ${median(ratios).toFixed(2)}${range}`;
        };
        comparisons.push(comparison);
        console.log(
          `# ${protocol} ${config.c}x${config.m}: ${chassisLabel} / ${otherLabel}: ` +
            [
              compare("req/s", (s, o) => s.reqPerS / o.reqPerS),
              compare("p50", (s, o) => s.p50 / o.p50),
              compare("p99", (s, o) => s.p99 / o.p99),
            ].join(", "),
        );
      }
    }
  }

  console.log(
    "\n| protocol | model | c x m | server | req/s | p50 ms | p99 ms | server CPU | CPU µs/req | RSS MiB (peak) | loadgen CPU | machine | ratio | cpu ratio | check |",
  );
  console.log("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const r of results) {
    console.log(
      `| ${r.protocol === "omi" ? "OMI gRPC" : "KServe v1"} | ${model} | ${r.c}x${r.m} | ${r.label} | ${fmtRate(r)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ` +
        `${r.serverCpu.toFixed(0)}% | ${r.cpuUsPerReq.toFixed(0)} | ${r.rss.toFixed(1)} (${r.hwm.toFixed(1)}) | ${r.loadCpu.toFixed(0)}% | ${r.machineBusy.toFixed(0)}% | ` +
        `${r.ratio.toFixed(2)} | ${r.cpuRatio.toFixed(2)} | ${r.ok ? "ok" : "FAILED"} |`,
    );
  }
  if (args.json)
    writeFileSync(
      args.json,
      `${JSON.stringify({ machine: info, model, n, latencyN, duration, runs, restTool, results, comparisons }, null, 2)}\n`,
    );

  async function measure(server, protocol, config) {
    const grpcMode = protocol === "omi";
    const port = grpcMode ? server.omiPort : server.httpPort;
    const useWrk = !grpcMode && restTool === "wrk";
    const count = config.n;
    const warmN = Math.max(Math.ceil(count / 10), config.c * config.m);
    const logFile = join(tmp.dir, `h2load-${process.hrtime.bigint()}.log`);
    const problems = [];

    const toolArgs = (warm) => {
      if (useWrk) {
        const d = warm ? Math.max(1, Math.round((duration ?? 5) / 10)) : (duration ?? 5);
        return [
          "wrk",
          [
            "-t1",
            `-c${config.c}`,
            `-d${d}s`,
            "--latency",
            "-s",
            join(ROOT, "bench/wrk-post.lua"),
            `http://127.0.0.1:${port}${restPath}`,
            "--",
            restBodyFile,
          ],
        ];
      }
      const common = ["-t", "1", "-c", String(config.c), "-m", String(config.m)];
      const amount = duration
        ? ["-D", String(warm ? Math.max(1, Math.round(duration / 10)) : duration)]
        : ["-n", String(warm ? warmN : count)];
      const log = warm ? [] : ["--log-file", logFile];
      return grpcMode
        ? [
            "h2load",
            [
              ...common,
              ...amount,
              ...log,
              "--data",
              grpcBodyFile,
              "-H",
              "content-type: application/grpc",
              "-H",
              "te: trailers",
              `http://127.0.0.1:${port}/ModzyModel/Run`,
            ],
          ]
        : [
            "h2load",
            [
              "--h1",
              ...common,
              ...amount,
              ...log,
              "--data",
              restBodyFile,
              "-H",
              "content-type: application/json",
              `http://127.0.0.1:${port}${restPath}`,
            ],
          ];
    };
    const verify = () =>
      grpcMode
        ? verifyGrpc(port, caseInfo.input, server.expected ?? caseInfo.expected)
        : verifyRest(port, restPath, caseInfo.input, server.expected ?? caseInfo.expected);

    const tool = (warm) => {
      const [cmd, list] = toolArgs(warm);
      return pin ? ["taskset", ["-c", "1", cmd, ...list]] : [cmd, list];
    };
    const warm = await runTool(...tool(true));
    if (warm.code !== 0) problems.push(`warm-up exited ${warm.code}: ${warm.stderr.trim().slice(0, 300)}`);
    const before = await verify();
    if (before) problems.push(`before: ${before}`);

    const cpu0 = cpuSeconds(server.pid);
    const load0 = reapedChildrenCpuSeconds();
    const machine0 = machineCpu();
    const run = await runTool(...tool(false));
    const cpu1 = cpuSeconds(server.pid);
    const load1 = reapedChildrenCpuSeconds();
    const machine1 = machineCpu();
    const mem = memory(server.pid);
    const after = await verify();
    if (after) problems.push(`after: ${after}`);
    if (run.code !== 0) problems.push(`${useWrk ? "wrk" : "h2load"} exited ${run.code}: ${run.stderr.trim().slice(0, 300)}`);

    let stats;
    if (useWrk) {
      const json = run.stdout.match(/^WRK_JSON (.*)$/m)?.[1];
      const w = json ? JSON.parse(json) : undefined;
      if (!w) {
        problems.push("no wrk summary");
        stats = { reqPerS: Number.NaN, p50: Number.NaN, p99: Number.NaN, mean: Number.NaN, done: 0 };
      } else {
        stats = {
          reqPerS: w.requests / (w.duration_us / 1e6),
          p50: w.p50_us / 1000,
          p99: w.p99_us / 1000,
          mean: w.mean_us / 1000,
          done: w.requests,
        };
        const errors = w.connect + w.read + w.write + w.status + w.timeout;
        if (errors > 0) problems.push(`wrk errors: ${json}`);
        if (w.requests === 0) problems.push("0 requests");
        // Every complete response has the same size (the Date header has a fixed length); a few may be cut at the end.
        const size = server.restResponseBytes;
        if (w.bytes < w.requests * size || w.bytes >= (w.requests + config.c) * size) {
          problems.push(`read ${w.bytes} bytes for ${w.requests} responses of ${size} bytes`);
        }
      }
    } else {
      stats = parseH2load(run.stdout, logFile);
      const want = duration ? stats.done : count;
      // With -D, h2load counts as "done" the requests finished within the duration, but its
      // status codes and traffic also count those in flight at the end (at most c x m more).
      if (!(stats.done > 0)) problems.push("0 requests done");
      if (stats.done !== want) problems.push(`${stats.done} of ${want} requests done`);
      if (duration ? !(stats.status2xx >= want && stats.status2xx <= want + config.c * config.m) : stats.status2xx !== want) {
        problems.push(`${stats.status2xx} 2xx for ${want} requests done`);
      }
      if (stats.failed || stats.errored || stats.timeout)
        problems.push(`failed ${stats.failed}, errored ${stats.errored}, timeout ${stats.timeout}`);
      if (stats.logged !== want || stats.logged2xx !== want)
        problems.push(`log file has ${stats.logged2xx} 2xx lines of ${stats.logged}, expected ${want}`);
      const perResponse = grpcMode ? server.omiResponseBytes : server.restBodyBytes;
      const responses = stats.dataBytes / perResponse;
      if (duration ? !(Number.isInteger(responses) && responses >= want && responses <= want + config.c * config.m) : responses !== want) {
        problems.push(
          `DATA ${stats.dataBytes} bytes: not ${duration ? "" : `${want} x `}${perResponse}-byte responses for ${want} requests`,
        );
      }
      if (!grpcMode && config.m > 1) stats.note = `HTTP/1.1 pipelining ${config.m}`;
    }
    return {
      label: server.label,
      protocol,
      model,
      c: config.c,
      m: useWrk ? 1 : config.m,
      n: stats.done,
      tool: useWrk ? "wrk" : "h2load",
      ...stats,
      wallS: run.wallS,
      serverCpu: ((cpu1 - cpu0) / run.wallS) * 100,
      // Server CPU per request: steadier than req/s on a busy machine (contention lengthens runs, not work per request).
      cpuUsPerReq: ((cpu1 - cpu0) / stats.done) * 1e6,
      loadCpu: ((load1 - load0) / run.wallS) * 100,
      // whole machine, % of all cores (as mpstat), and the steal share
      machineBusy: ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100,
      steal: ((machine1.steal - machine0.steal) / (machine1.total - machine0.total)) * 100,
      rss: mem.rss,
      hwm: mem.hwm,
      ok: problems.length === 0,
      problems,
    };
  }
} catch (error) {
  failed++;
  console.error(`FAILED: ${error.stack ?? error}`);
} finally {
  await Promise.all([chassis?.stop(), companion?.stop(), baseline?.stop()]);
  for (const versus of versusServers.filter((x) => x.cpus))
    await pinProcess(versus.pid, versus.cpus).catch((error) => console.error(`# ${versus.label}: ${error.message}`));
  tmp.remove();
}
if (profDir)
  console.log(`# CPU profile of chassis-ts written to ${profDir} (summarise: node bench/profile-summary.mjs ${args["cpu-prof"]})`);
console.log(`# ${failed ? `${failed} FAILED` : "all runs verified"}; took ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
process.exitCode = failed ? 1 : 0;

/** chassis-ts's own Run answer, captured for the baseline: application/grpc+proto, and exactly the expected results.json. */
function checkGrpcCapture(answer) {
  const { problem, resultsJson } = runAnswerOf(answer);
  if (problem) return problem;
  if (answer.headers["content-type"] !== "application/grpc+proto") return `content-type ${answer.headers["content-type"]}`;
  return sameBytesProblem(resultsJson);
}

/** --versus / --versus-v1: the port of a server this script does not start (nor stop). */
function versusServer(flag, protocol, port, labelFlag, label, pid) {
  if (!/^[\w.-]{1,20}$/.test(label) || label === "node-baseline" || label.startsWith("chassis-ts"))
    usageError(`--${labelFlag} must be 1-20 letters, digits, '.', '_' or '-', and not a label of this script's own servers, got ${label}`);
  return { flag, protocol, label, port, pid };
}

/** A raw Run answer's results.json: a gRPC success of one frame, status_code 200, one successful item; or the problem. */
function runAnswerOf({ headers, body, trailers }) {
  if (headers[":status"] === undefined) return { problem: "no response headers: the stream ended unanswered (is it a gRPC server?)" };
  if (headers[":status"] !== 200) return { problem: `:status ${headers[":status"]}` };
  if (!/^application\/grpc(\+proto)?$/.test(headers["content-type"] ?? "")) return { problem: `content-type ${headers["content-type"]}` };
  const status = trailers["grpc-status"] ?? headers["grpc-status"];
  if (String(status) !== "0") return { problem: `grpc-status ${status} ${trailers["grpc-message"] ?? headers["grpc-message"] ?? ""}` };
  if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) return { problem: `DATA is not one gRPC frame (${body.length} bytes)` };
  const response = fromBinary(RunResponseSchema, body.subarray(5));
  const [item] = response.outputs;
  if (response.statusCode !== 200 || response.outputs.length !== 1 || !item.success)
    return { problem: `status_code ${response.statusCode}, ${response.outputs.length} outputs, success ${item?.success}` };
  const resultsJson = item.output["results.json"];
  if (!resultsJson) return { problem: `no results.json in its output (keys: ${Object.keys(item.output).join(", ") || "none"})` };
  return { resultsJson };
}

/** A raw v1 predict answer's only prediction, as results.json's bytes: HTTP 200, {"predictions": [one string]}; or the problem. */
function predictionOf({ status, body }) {
  const text = body.toString("utf8");
  if (status !== 200) return { problem: `HTTP ${status}: ${text.slice(0, 200)}` };
  let predictions;
  try {
    predictions = JSON.parse(text).predictions;
  } catch {
    return { problem: `not JSON: ${text.slice(0, 200)}` };
  }
  if (!Array.isArray(predictions) || predictions.length !== 1 || typeof predictions[0] !== "string")
    return { problem: `expected {"predictions": [one string]}, got ${text.slice(0, 200)}` };
  return { resultsJson: new TextEncoder().encode(predictions[0]) };
}

/** Whether another server's results.json says what chassis-ts's does (echo: the same bytes; digits: the same class first). */
function answerProblem(got) {
  if (model === "echo") return sameBytesProblem(got);
  const topClass = (bytes) => {
    try {
      return JSON.parse(Buffer.from(bytes).toString("utf8")).classPredictions?.[0]?.class;
    } catch {
      return undefined;
    }
  };
  const want = topClass(caseInfo.expected);
  const gotClass = topClass(got);
  return gotClass !== undefined && gotClass === want ? null : `results.json ${quoted(got)} (expected class ${want} first)`;
}

/** Whether results.json is exactly the expected bytes; else what it was. */
function sameBytesProblem(got) {
  return Buffer.compare(Buffer.from(got), Buffer.from(caseInfo.expected)) === 0 ? null : `results.json ${quoted(got)}`;
}

/** The size of a whole HTTP/1.1 v1 answer (status line, headers as sent, body), as wrk counts it. */
function v1ResponseBytes(answer) {
  let head = "HTTP/1.1 200 OK\r\n";
  for (let i = 0; i < answer.rawHeaders.length; i += 2) head += `${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}\r\n`;
  return Buffer.byteLength(`${head}\r\n`, "latin1") + answer.body.length;
}

/** The start of some bytes as a quoted string, for an error message. */
function quoted(bytes) {
  return JSON.stringify(Buffer.from(bytes).toString("utf8").slice(0, 200));
}

function stripDate(headers) {
  const { date: _date, ...rest } = headers;
  return rest;
}

/** Every thread of the process on the given CPU list (taskset -a). */
async function pinProcess(pid, cpus) {
  const result = await runTool("taskset", ["-a", "-p", "-c", cpus, String(pid)]);
  if (result.code !== 0) throw new Error(`taskset could not pin pid ${pid}: ${result.stderr.trim()}`);
}

/** The CPU list a process may run on (`taskset -c -p`: "pid N's current affinity list: 0,1"). */
async function affinityOf(pid) {
  const result = await runTool("taskset", ["-c", "-p", String(pid)]);
  const list = result.stdout.match(/affinity list:\s*([\d,-]+)/)?.[1];
  if (result.code !== 0 || !list) throw new Error(`taskset could not read the CPUs of pid ${pid}: ${result.stderr.trim()}`);
  return list;
}

function fmtRate(r) {
  return `${r.reqPerS.toFixed(0)}${r.range ? ` (${r.range[0].toFixed(0)}-${r.range[1].toFixed(0)})` : ""}`;
}

function line(r) {
  const proto = r.protocol === "omi" ? "OMI-gRPC " : "KServe-v1";
  const cfg = `${r.c}x${r.m}`.padEnd(5);
  return (
    `${proto} ${model.padEnd(6)} ${cfg} ${r.label.padEnd(13)} req/s ${fmtRate(r).padStart(6)}  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms${p99Runs(r)}  ` +
    `server CPU ${r.serverCpu.toFixed(0).padStart(3)}% (${r.cpuUsPerReq.toFixed(0)} µs/req)  RSS ${r.rss.toFixed(1)} MiB (HWM ${r.hwm.toFixed(1)})  ${r.tool} CPU ${r.loadCpu.toFixed(0).padStart(3)}%  ` +
    `machine ${r.machineBusy.toFixed(0)}%${r.steal >= 1 ? ` (steal ${r.steal.toFixed(0)}%)` : ""}${otherNote(r)}  ` +
    `ratio ${r.ratio.toFixed(2)}${r.ratioRange ? ` (${r.ratioRange[0].toFixed(2)}-${r.ratioRange[1].toFixed(2)})` : ""} cpu-ratio ${r.cpuRatio.toFixed(2)}${r.note ? `  [${r.note}]` : ""}  ${r.ok ? "OK" : `FAILED: ${r.problems.join("; ")}`}`
  );
}

/** Every run's p99: their median and range. */
function p99Runs(r) {
  const p = r.p99Runs;
  return p ? ` (runs: median ${p.median.toFixed(2)}, ${p.min.toFixed(2)}-${p.max.toFixed(2)})` : "";
}

/** CPU (% of one core) used during a run by everything but the server and the load generator (kernel included). */
function otherCpu(r) {
  return r.machineBusy * Number(info.nproc) - r.serverCpu - r.loadCpu;
}

/** Flags runs where something besides the server and the load generator used a lot of CPU. */
function otherNote(r) {
  const other = otherCpu(r);
  return other > OTHER_LIMIT ? ` [other processes ~${other.toFixed(0)}% of a core]` : "";
}

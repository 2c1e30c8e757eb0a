#!/usr/bin/env node
/**
 * Every target of issue 5, measured in one sitting on this machine: runs the
 * other scripts of bench/ one after another (each writes --json into a
 * temporary folder), then prints one verdict line per target: what was
 * asked, what was measured (median, with the range of the runs), met or not.
 * Nothing is carried over from earlier runs or from the docs; the only
 * figures not measured here are the Chassis reference's, which are
 * published (../shared/reference/omi-chassis.md) because that server needs
 * PyPI and cannot run here. Where it runs (one process per model), give its
 * ports: --versus-echo and --versus-digits join it to the OMI runs of the
 * serve and batching steps (serve.mjs --versus), and the goal is also judged
 * against it, in this run. --versus-v1 PORT joins a KServe v1 server (e.g.
 * bench/python_v1_server.py) to the serve step's v1 runs; its comparison is
 * reported, with no threshold (the issue sets none against another v1 server).
 * --versus-python starts bench/'s Python servers for those three (grpcio for
 * OMI echo and digits, FastAPI for v1, with Debian's /usr/bin/python3) on free
 * ports, and stops them at the end.
 *
 *   npm run build && node bench/targets.mjs [--runs 3] [--duration 4] [--soak-minutes 5]
 *       [--skip serve,workers,batching,coldstart,soak] [--json FILE] [--wait-idle 30]
 *       [--versus-echo [127.0.0.1:]PORT] [--versus-digits [127.0.0.1:]PORT] [--versus-label NAME]
 *       [--versus-v1 [127.0.0.1:]PORT] [--versus-v1-label NAME] [--versus-python]
 *
 * About 12 minutes with the defaults (the soak takes 5 of them). Exit 1 when a
 * script fails or a response was wrong; a target missed is a verdict, not a
 * failure of the run.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startProcess } from "./lib.mjs";
import { count, flag, localPort, number, positive, readArgs, someOf, text, usageError } from "./lib-args.mjs";
import { verdictsOf } from "./targets-verdicts.mjs";

const STEPS = ["serve", "workers", "batching", "coldstart", "soak"];
const args = readArgs({
  runs: count(3),
  duration: count(4), // serve.mjs --duration: h2load -D takes whole seconds
  "soak-minutes": positive(5),
  skip: someOf(STEPS),
  json: text("a file to write the verdicts and figures to"),
  "wait-idle": number(30),
  "versus-echo": localPort(),
  "versus-digits": localPort(),
  "versus-label": text("a name for the --versus-echo and --versus-digits servers (default versus, or python-grpcio)"),
  "versus-v1": localPort(),
  "versus-v1-label": text("a name for the --versus-v1 server (default versus-v1, or python-fastapi)"),
  "versus-python": flag(),
});
const runs = String(args.runs);
const duration = String(args.duration);
const soakMinutes = String(args["soak-minutes"]);
const waitIdle = String(args["wait-idle"]);
const skip = new Set(args.skip);
/** The --versus servers: [flag, the step it joins, Python server, its --model]. */
const VERSUS = [
  ["versus-echo", "serve", "python_omi_server.py", "echo"],
  ["versus-v1", "serve", "python_v1_server.py", "echo"],
  ["versus-digits", "batching", "python_omi_server.py", "digits"],
];
const PYTHON = "/usr/bin/python3"; // Debian's, where apt-get puts python3-grpcio and python3-fastapi
const python = args["versus-python"] ? await startPythonServers() : [];
const port = (flag) => python.find((server) => server.flag === flag)?.port ?? args[flag];
const omiLabel = args["versus-label"] ?? (python.length > 0 ? "python-grpcio" : "versus");
const v1Label = args["versus-v1-label"] ?? (python.length > 0 ? "python-fastapi" : "versus-v1");
/** The serve.mjs flags (--versus or --versus-v1, and its label) that join the server given for `flag`; none without one. */
const joinVersus = (flag, serveFlag, label) =>
  port(flag) === undefined ? [] : [`--${serveFlag}`, String(port(flag)), `--${serveFlag}-label`, label];
const versusEcho = joinVersus("versus-echo", "versus", omiLabel);
const versusDigits = joinVersus("versus-digits", "versus", omiLabel);
const versusV1 = joinVersus("versus-v1", "versus-v1", v1Label);
// A --versus server that is not there, or a step left out, would only show minutes into the run.
for (const [flag, step] of VERSUS) {
  if (args[flag] === undefined) continue;
  if (skip.has(step)) usageError(`--${flag} joins the ${step} step, which --skip leaves out`);
  const problem = await connectProblem(args[flag]);
  if (problem) usageError(`--${flag}: nothing answers on 127.0.0.1:${args[flag]} (${problem}); start that server first`);
}

/** --versus-python: bench/'s Python servers for the steps that run, on free ports, each printed with its pid. */
async function startPythonServers() {
  const given = VERSUS.filter(([flag]) => args[flag] !== undefined).map(([flag]) => `--${flag}`);
  if (given.length > 0) usageError(`--versus-python starts its own servers: it does not go with ${given.join(", ")}`);
  const wanted = VERSUS.filter(([, step]) => !skip.has(step));
  if (wanted.length === 0) usageError("--versus-python joins the serve and batching steps, which --skip leaves out");
  if (!existsSync(PYTHON)) usageError(`--versus-python needs ${PYTHON} (apt-get install python3)`);
  const servers = [];
  for (const [flag, , script, model] of wanted) {
    const kind = script === "python_v1_server.py" ? "v1" : "OMI";
    const pattern = new RegExp(`python ${kind} server \\(${model}\\) listening on 127\\.0\\.0\\.1:(\\d+)`);
    const started = await startProcess([join(ROOT, "bench", script), "--model", model, "--port", "0"], [pattern], {
      command: PYTHON,
    }).catch((error) => {
      for (const server of servers) server.stop();
      const hint = "apt-get install python3-grpcio python3-grpc-tools python3-fastapi python3-uvicorn python3-uvloop python3-httptools";
      usageError(`--versus-python: bench/${script} --model ${model} did not start (${hint}): ${error.message.replace(/\s+/g, " ")}`);
    });
    const server = { ...started, flag, port: Number(started.found[0]) };
    servers.push(server);
    console.log(`# --versus-python: bench/${script} --model ${model}, pid ${server.pid}, on 127.0.0.1:${server.port} (for --${flag})`);
  }
  return servers;
}

const here = new URL(".", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "chassis-targets-"));
const started = performance.now();
let failedSteps = 0;

/** Why a TCP connection to 127.0.0.1:port fails (an error code, or no answer within 3 s); undefined when it connects. */
function connectProblem(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (problem) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(3000, () => done("no answer within 3 s"));
    socket.once("connect", () => done(undefined));
    socket.once("error", (error) => done(error.code ?? error.message));
  });
}

/** Runs one bench script with --json, its output passed through; resolves with the parsed JSON (or undefined). */
function bench(name, script, flags) {
  const file = join(dir, `${name}.json`);
  const argv = [join(here, script), ...flags, "--json", file];
  console.log(`\n## ${name}: node bench/${script} ${flags.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: "inherit" });
    child.on("close", (code) => {
      let figures;
      try {
        figures = JSON.parse(readFileSync(file, "utf8"));
      } catch {
        figures = undefined;
      }
      if (code !== 0 || figures === undefined) {
        failedSteps++;
        console.log(`## ${name}: FAILED (exit ${code}${figures === undefined ? ", no figures written" : ""})`);
      }
      resolve(figures);
    });
  });
}

const common = ["--runs", runs, "--duration", duration, "--wait-idle", waitIdle];
const figures = {};
try {
  if (!skip.has("serve")) {
    figures.serve = await bench("serve", "serve.mjs", [...common, "--pin", "--configs", "16x16,16x1", ...versusEcho, ...versusV1]);
  }
  if (!skip.has("workers")) {
    figures.workersOmi = await bench("workers-omi", "serve.mjs", [...common, "--protocol", "omi", "--configs", "16x16", "--workers", "2"]);
    // wrk: one request in flight per connection, and about half the CPU per request of h2load --h1, which shares the two cores.
    figures.workersV1 = await bench("workers-v1", "serve.mjs", [
      ...common,
      ...["--protocol", "v1", "--rest-tool", "wrk", "--configs", "16x1,64x1", "--workers", "2"],
    ]);
  }
  if (!skip.has("batching")) {
    figures.batching = await bench("batching", "serve.mjs", [
      ...common,
      ...["--model", "digits", "--protocol", "omi", "--configs", "16x16,16x4,4x16,1x64,1x1", "--pin", "--batching-ab"],
      ...versusDigits,
    ]);
    figures.batchingInProcess = await bench("batching-in-process", "batching.mjs", [
      ...["--runs", runs, "--concurrency", "64", "--max-concurrent", "1", "--wait-idle", waitIdle],
    ]);
  }
  if (!skip.has("coldstart")) {
    figures.coldstart = await bench("coldstart", "coldstart.mjs", ["--runs", "7", "--wait-idle", waitIdle]);
  }
  if (!skip.has("soak")) {
    // The RSS growth counts from 30 s in (after warm-up and JIT), or from half-way in a shorter soak.
    const settle = Math.min(30, Math.floor((Number(soakMinutes) * 60) / 2));
    figures.soak = await bench("soak", "soak.mjs", ["--minutes", soakMinutes, "--settle-s", String(settle)]);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all(python.map((server) => server.stop()));
}

const verdicts = verdictsOf(figures);
console.log(`\n# issue 5's targets, measured in this run (${((performance.now() - started) / 60000).toFixed(1)} min)\n`);
console.log("| item | target | measured | met |");
console.log("| --- | --- | --- | --- |");
for (const v of verdicts)
  console.log(`| ${v.item} | ${v.target} | ${v.measured} | ${v.met === undefined ? "reported" : v.met ? "yes" : "**no**"} |`);
const missed = verdicts.filter((v) => v.met === false).length;
console.log(`\n# ${verdicts.length} lines, ${missed} target(s) missed${failedSteps ? `; ${failedSteps} step(s) FAILED` : ""}`);
if (args.json) writeFileSync(args.json, `${JSON.stringify({ verdicts, figures }, null, 2)}\n`);
process.exitCode = failedSteps ? 1 : 0;

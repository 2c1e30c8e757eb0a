/**
 * `bench/serve.mjs --versus` measures an OMI server it did not start in the
 * same alternation as chassis-ts and the node:http2 baseline, and
 * `--versus-v1` a KServe v1 server beside the node:http one. Here those are
 * bench/python_omi_server.py (Debian python3-grpcio) and
 * bench/python_v1_server.py (python3-fastapi, python3-uvicorn), driven by a
 * real h2load: their runs must be verified (the answer's size, a separate
 * call before and after), their process found from the port for CPU and RSS,
 * and the chassis-ts / versus line printed; a server that answers another
 * model's results is refused before any load. bench/targets.mjs
 * --versus-python starts those servers itself, for the steps that run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PYTHON } from "../helpers/python-checks.js";
import { ROOT, runProcess, withTimeout } from "../helpers/server.js";

const INSTALL_HINT = "apt-get install nghttp2-client python3-grpcio python3-grpc-tools";
const V1_INSTALL_HINT = "apt-get install nghttp2-client python3-fastapi python3-uvicorn python3-uvloop python3-httptools";

/** What is missing for a Python server and h2load: undefined when both are there. */
function toolProblem(pythonModules: string[]): string | undefined {
  const h2load = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  if (h2load.error) return `h2load cannot run (${h2load.error.message})`;
  const probe = spawnSync(PYTHON, ["-c", `import ${pythonModules.join(", ")}`], { encoding: "utf8", timeout: 30_000 });
  if (probe.error || probe.status !== 0) return `${PYTHON} cannot import ${pythonModules.join(", ")}`;
  return undefined;
}

// Locally a missing tool skips its tests and says so; under CI=true it fails them.
const problem = toolProblem(["grpc", "grpc_tools", "google.protobuf"]);
const skip = problem && !process.env.CI ? `${problem}; install with \`${INSTALL_HINT}\`` : false;
const v1Problem = toolProblem(["fastapi", "uvicorn"]);
const v1Skip = v1Problem && !process.env.CI ? `${v1Problem}; install with \`${V1_INSTALL_HINT}\`` : false;

/** serve.mjs flags for a run that only has to get past the checks before any load. */
const ONE_SHORT_RUN = ["--configs", "1x1", "--runs", "1", "--n", "100", "--wait-idle", "0"];

interface ServeJson {
  results: { label: string; protocol: string; ok: boolean; reqPerS: number; cpuUsPerReq: number; rss: number; n: number }[];
  comparisons: { server: string; versus: string; protocol: string; "req/s": { median: number; min: number; max: number } }[];
}

/** bench/python_omi_server.py (or python_v1_server.py) on a free port; rejects with its stderr when it exits first. */
async function startPythonServer(model: "echo" | "digits", kind: "omi" | "v1" = "omi"): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(PYTHON, [join(ROOT, `bench/python_${kind}_server.py`), "--model", model, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const found = new RegExp(`python ${kind === "omi" ? "OMI" : "v1"} server \\(${model}\\) listening on 127\\.0\\.0\\.1:(\\d+)`).exec(
        out,
      );
      if (found) resolve(Number(found[1]));
    });
    child.on("exit", (code) => reject(new Error(`the Python ${kind} server (${model}) exited ${code}: ${stderr}`)));
  });
  const port = await withTimeout(listening, 30_000, `the Python ${kind} server (${model}) listening`).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
  return { child, port };
}

describe("bench/serve.mjs --versus, against the Python OMI server", { skip }, () => {
  let python: ChildProcess;
  let pythonDigits: ChildProcess;
  let port: number;
  let digitsPort: number;
  let dir: string;
  before(async () => {
    if (problem) assert.fail(`CI is set and ${problem}; install with \`${INSTALL_HINT}\``);
    dir = mkdtempSync(join(tmpdir(), "serve-versus-"));
    ({ child: python, port } = await startPythonServer("echo"));
    ({ child: pythonDigits, port: digitsPort } = await startPythonServer("digits"));
  });
  after(() => {
    python?.kill("SIGTERM");
    pythonDigits?.kill("SIGTERM");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("its verified runs sit beside chassis-ts's and the baseline's, with its CPU, RSS and the ratio of the two", async () => {
    const json = join(dir, "serve.json");
    // With --pin every server runs on CPU 0; the --versus one, not the script's, gets its own CPUs back.
    const pin = availableParallelism() >= 2 ? ["--pin"] : [];
    const cpus = () => /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${python.pid}/status`, "utf8"))?.[1];
    const cpusBefore = cpus();
    const run = await runProcess(
      process.execPath,
      [
        "bench/serve.mjs",
        ...["--protocol", "omi", "--c", "4", "--m", "4", "--configs", "4x4", "--runs", "2", "--n", "2000", "--wait-idle", "0"],
        ...["--versus", `127.0.0.1:${port}`, "--versus-label", "python-grpcio", "--json", json, ...pin],
      ],
      { timeoutMs: 120_000 },
    );
    const transcript = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 0, transcript);
    assert.equal(cpus(), cpusBefore, "the Python server's CPUs after the run");
    if (pin.length > 0) assert.match(run.stdout, /pinned \(servers on CPU 0, load generator on CPU 1\)/);
    assert.match(
      run.stdout,
      new RegExp(`# python-grpcio pid ${python.pid}: OMI 127\\.0\\.0\\.1:${port}, answers 118-byte DATA`),
      transcript,
    );
    const result = JSON.parse(readFileSync(json, "utf8")) as ServeJson;
    const labels = result.results.map((r) => r.label);
    assert.deepEqual(labels, ["node-baseline", "chassis-ts", "python-grpcio"]);
    for (const r of result.results) {
      assert.ok(r.ok, `${r.label}: ${transcript}`);
      assert.equal(r.n, 2000, r.label);
      assert.ok(r.reqPerS > 0 && r.cpuUsPerReq > 0 && r.rss > 0, `${r.label} has req/s, CPU and RSS: ${JSON.stringify(r)}`);
    }
    const [comparison] = result.comparisons;
    assert.equal(result.comparisons.length, 1);
    assert.equal(comparison?.server, "chassis-ts");
    assert.equal(comparison?.versus, "python-grpcio");
    const ratio = comparison?.["req/s"];
    assert.ok(ratio && ratio.min > 0 && ratio.min <= ratio.median && ratio.median <= ratio.max, JSON.stringify(comparison));
    assert.match(run.stdout, /# omi 4x4: chassis-ts \/ python-grpcio: req\/s [\d.]+ \([\d.]+-[\d.]+\), p50/);
  });

  test("the Python digits server answers what chassis-ts's digits does (its weights from model.onnx): a verified run of each", async () => {
    const run = await runProcess(
      process.execPath,
      [
        "bench/serve.mjs",
        ...["--model", "digits", "--protocol", "omi", "--c", "2", "--m", "2", "--configs", "2x2", "--runs", "1", "--n", "300"],
        ...["--wait-idle", "0", "--versus", String(digitsPort), "--versus-label", "python-digits"],
      ],
      { timeoutMs: 120_000 },
    );
    const transcript = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 0, transcript);
    assert.match(run.stdout, /# python-digits pid \d+: OMI 127\.0\.0\.1:\d+, answers 104-byte DATA \(chassis-ts 104\)/, transcript);
    assert.match(run.stdout, /^OMI-gRPC {2}digits 2x2 {3}python-digits .* OK$/m, transcript);
  });

  test("a server answering another model's results is refused before any load, naming what it answered", async () => {
    const run = await runProcess(
      process.execPath,
      ["bench/serve.mjs", ...["--model", "digits", "--protocol", "omi", ...ONE_SHORT_RUN, "--versus", String(port)]],
      { timeoutMs: 120_000 },
    );
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stderr, /--versus: versus's Run answer is not what digits answers: results\.json .*\(expected class \d+ first\)/);
    assert.doesNotMatch(run.stdout, /^OMI-gRPC /m, "no load was run");
  });

  test("the Python server refuses a taken port (grpcio would share it) and a file that is not the digits model", async () => {
    const taken = await runProcess(PYTHON, ["bench/python_omi_server.py", "--port", String(port)], { timeoutMs: 30_000 });
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, new RegExp(`python_omi_server: could not listen on 127\\.0\\.0\\.1:${port} \\(taken`));
    const notOnnx = await runProcess(PYTHON, ["bench/python_omi_server.py", "--model", "digits", "--onnx", "examples/digits/sample.json"], {
      timeoutMs: 30_000,
    });
    assert.equal(notOnnx.code, 2, notOnnx.stderr);
    assert.match(notOnnx.stderr, /sample\.json is not an ONNX model with float32 initializers W and b/);
  });

  test("a port nobody answers on, and an address off this machine, are named in the error", async () => {
    const closed = await runProcess(process.execPath, ["bench/serve.mjs", "--protocol", "omi", ...ONE_SHORT_RUN, "--versus", "1"], {
      timeoutMs: 60_000,
    });
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /--versus: no OMI Run answer from 127\.0\.0\.1:1 /);
    const remote = await runProcess(process.execPath, ["bench/serve.mjs", "--versus", "10.0.0.1:80"], { timeoutMs: 60_000 });
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /--versus takes a port on this machine, PORT or 127\.0\.0\.1:PORT .*, got "10\.0\.0\.1:80"/);
  });
});

describe("bench/serve.mjs --versus-v1, against the Python KServe v1 server", { skip: v1Skip }, () => {
  let python: ChildProcess;
  let port: number;
  before(async () => {
    if (v1Problem) assert.fail(`CI is set and ${v1Problem}; install with \`${V1_INSTALL_HINT}\``);
    ({ child: python, port } = await startPythonServer("echo", "v1"));
  });
  after(() => python?.kill("SIGTERM"));

  test("its verified v1 runs sit beside chassis-ts's and node:http's, with the chassis-ts / versus line", async () => {
    const run = await runProcess(
      process.execPath,
      [
        "bench/serve.mjs",
        ...["--protocol", "both", "--c", "4", "--m", "4", "--configs", "4x4", "--runs", "1", "--n", "1000", "--wait-idle", "0"],
        // --versus-v1-label names the v1 server; --versus-label stays the OMI one's.
        ...["--versus-v1", String(port), "--versus-v1-label", "python-fastapi", "--versus-label", "python-grpcio"],
      ],
      { timeoutMs: 120_000 },
    );
    const transcript = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 0, transcript);
    assert.match(
      run.stdout,
      new RegExp(`# python-fastapi pid ${python.pid}: KServe v1 127\\.0\\.0\\.1:${port}, answers 88-byte body \\(chassis-ts 88\\)`),
      transcript,
    );
    assert.match(run.stdout, /^KServe-v1 echo {3}4x4 {3}python-fastapi .* OK$/m, transcript);
    assert.doesNotMatch(run.stdout, /^OMI-gRPC .*python-fastapi/m, "a v1 server has no OMI runs");
    assert.match(run.stdout, /^# v1 4x4: chassis-ts \/ python-fastapi: req\/s [\d.]+, p50/m, transcript);
  });

  test("it needs v1 runs, refuses a taken port, and an answer of another model is refused before any load", async () => {
    const omiOnly = await runProcess(process.execPath, ["bench/serve.mjs", "--protocol", "omi", "--versus-v1", String(port)], {
      timeoutMs: 60_000,
    });
    assert.equal(omiOnly.code, 2);
    assert.match(omiOnly.stderr, /--versus-v1 is a KServe v1 server: it needs --protocol v1 or both/);
    const taken = await runProcess(PYTHON, ["bench/python_v1_server.py", "--port", String(port)], { timeoutMs: 30_000 });
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, new RegExp(`python_v1_server: could not listen on 127\\.0\\.0\\.1:${port} \\(`));
    const digits = await runProcess(
      process.execPath,
      ["bench/serve.mjs", ...["--model", "digits", "--protocol", "v1", ...ONE_SHORT_RUN, "--versus-v1", String(port)]],
      { timeoutMs: 120_000 },
    );
    assert.equal(digits.code, 1, `${digits.stdout}\n${digits.stderr}`);
    // The echo server answers under /v1/models/echo only: digits' path is a 404 there, named in the error.
    assert.match(
      digits.stderr,
      /--versus-v1: versus's v1 predict answer is not what digits answers: HTTP 404: \{"error":"Model with name digits-classifier does not exist\."\}/,
    );
  });
});

describe("bench/targets.mjs --versus-python: starts the Python servers itself and stops them at the end", { skip: skip || v1Skip }, () => {
  test("the serve step runs them beside chassis-ts: the same-run goal verdict and the v1 line, then no Python server is left", async () => {
    if (problem || v1Problem) assert.fail(`CI is set and ${problem ?? v1Problem}`);
    const run = await runProcess(
      process.execPath,
      [
        "bench/targets.mjs",
        "--versus-python",
        ...["--skip", "workers,batching,coldstart,soak", "--runs", "1", "--duration", "1", "--wait-idle", "0"],
      ],
      { timeoutMs: 300_000 },
    );
    const transcript = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
    assert.equal(run.code, 0, transcript);
    const started = [
      ...run.stdout.matchAll(/^# --versus-python: bench\/(\S+) --model (\w+), pid (\d+), on 127\.0\.0\.1:\d+ \(for --([\w-]+)\)$/gm),
    ];
    assert.deepEqual(
      started.map((m) => [m[1], m[2], m[4]]),
      [
        ["python_omi_server.py", "echo", "versus-echo"],
        ["python_v1_server.py", "echo", "versus-v1"],
      ],
      "digits is not started: its batching step is skipped",
    );
    assert.match(
      run.stdout,
      /^\| goal: OMI echo 16x16 against python-grpcio, in this run \| >= 5x its req\/s, round by round \| [\d.]+x /m,
      transcript,
    );
    assert.match(
      run.stdout,
      /^\| KServe v1 echo 16x16 against python-fastapi, in this run \| reported \| [\d.]+x .* \| reported \|$/m,
      transcript,
    );
    for (const [, , , pid] of started) {
      assert.throws(() => process.kill(Number(pid), 0), /ESRCH/, `the Python server with pid ${pid} is still running`);
    }
  });

  test("it does not go with a --versus port, nor with every step it joins skipped", async () => {
    const both = await runProcess(process.execPath, ["bench/targets.mjs", "--versus-python", "--versus-echo", "1"], { timeoutMs: 60_000 });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /^targets\.mjs: --versus-python starts its own servers: it does not go with --versus-echo; see --help$/m);
    const skipped = await runProcess(process.execPath, ["bench/targets.mjs", "--versus-python", "--skip", "serve,batching"], {
      timeoutMs: 60_000,
    });
    assert.equal(skipped.code, 2, skipped.stderr);
    assert.match(skipped.stderr, /--versus-python joins the serve and batching steps, which --skip leaves out/);
  });
});

/**
 * `bench/serve.mjs --versus` measures an OMI server it did not start in the
 * same alternation as chassis-ts and the node:http2 baseline. Here that server
 * is bench/python_omi_server.py (Debian python3-grpcio), driven by a real
 * h2load: its runs must be verified (its answer's size, a separate Run before
 * and after), its process found from the port for CPU and RSS, and the
 * chassis-ts / versus line printed; a server that answers another model's
 * results is refused before any load.
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

function toolProblem(): string | undefined {
  const h2load = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  if (h2load.error) return `h2load cannot run (${h2load.error.message})`;
  const probe = spawnSync(PYTHON, ["-c", "import grpc, grpc_tools, google.protobuf"], { encoding: "utf8", timeout: 30_000 });
  if (probe.error || probe.status !== 0) return `${PYTHON} cannot import grpc, grpc_tools`;
  return undefined;
}

const problem = toolProblem();
const skip = problem && !process.env.CI ? `${problem}; install with \`${INSTALL_HINT}\`` : false;

interface ServeJson {
  results: { label: string; protocol: string; ok: boolean; reqPerS: number; cpuUsPerReq: number; rss: number; n: number }[];
  comparisons: { server: string; versus: string; protocol: string; "req/s": { median: number; min: number; max: number } }[];
}

/** bench/python_omi_server.py on a free port; rejects with its stderr when it exits first. */
async function startPythonServer(model: "echo" | "digits"): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(PYTHON, [join(ROOT, "bench/python_omi_server.py"), "--model", model, "--port", "0"], {
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
      const found = new RegExp(`python OMI server \\(${model}\\) listening on 127\\.0\\.0\\.1:(\\d+)`).exec(out);
      if (found) resolve(Number(found[1]));
    });
    child.on("exit", (code) => reject(new Error(`the Python OMI server (${model}) exited ${code}: ${stderr}`)));
  });
  const port = await withTimeout(listening, 30_000, `the Python OMI server (${model}) listening`).catch((error: unknown) => {
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
      [
        "bench/serve.mjs",
        "--model",
        "digits",
        "--protocol",
        "omi",
        "--configs",
        "1x1",
        "--runs",
        "1",
        "--n",
        "100",
        "--wait-idle",
        "0",
        "--versus",
        String(port),
      ],
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
    const closed = await runProcess(
      process.execPath,
      ["bench/serve.mjs", "--protocol", "omi", "--configs", "1x1", "--runs", "1", "--n", "100", "--wait-idle", "0", "--versus", "1"],
      { timeoutMs: 60_000 },
    );
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /--versus: no OMI Run answer from 127\.0\.0\.1:1 /);
    const remote = await runProcess(process.execPath, ["bench/serve.mjs", "--versus", "10.0.0.1:80"], { timeoutMs: 60_000 });
    assert.notEqual(remote.code, 0);
    assert.match(remote.stderr, /--versus must be a port on this machine, PORT or 127\.0\.0\.1:PORT .* got 10\.0\.0\.1:80/);
  });
});

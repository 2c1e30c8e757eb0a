// Build benchmark (issue 4): `node bench/build.mjs`, after `npm run build`.
//
// Prints one line per figure: a cold build of examples/digits with --base host
// (fresh cache folder), a warm build (host base cached), a build after only a
// model data file changed, the total and per-layer sizes, and cold start
// (`podman run -d` to the first successful OMI Status, median of 5, with
// podman's own store in a temporary folder via scripts/start-podman-service.sh).
// A baseline measured in the same run, gzip -6 of the node binary with
// node:zlib, puts the build times in proportion to this machine's speed.
// The issue's targets are printed next to the figures. Results: docs/performance.md.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzip } from "node:zlib";
import { readArgs } from "./lib-args.mjs";

readArgs({}); // no flags: one given by mistake is refused, not ignored

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHASSIS = join(ROOT, "bin", "chassis.js");
const STARTS = 5;
const TARGET = { buildS: 5, modelLayerMB: 10, coldStartS: 1, chassisBuildS: 60 };

if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) {
  process.stderr.write("bench/build.mjs: dist/ is missing; run npm run build first\n");
  process.exit(1);
}

const env = { ...process.env };
delete env.SOURCE_DATE_EPOCH;

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;
const line = (label, value, note = "") => process.stdout.write(`${label.padEnd(56)} ${value.padStart(10)}${note ? `   ${note}` : ""}\n`);

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], ...options });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s) => {
      stderr += s;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

function must(result, what) {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  return result;
}

/** `chassis build`, timed from outside (what a user waits, node start-up included); returns the parsed summary. */
async function build(model, cache, output) {
  const result = must(
    await run(process.execPath, [CHASSIS, "build", model, "--base", "host", "--cache", cache, "--output", output]),
    "chassis build",
  );
  const layers = [...result.stdout.matchAll(/^ {2}(\w+) layer\s+\S+(?: bytes)?\s+(sha256:([0-9a-f]{64}))$/gm)].map(
    ([, name, digest, hex]) => ({
      name,
      digest,
      // Exact sizes from the blobs in the working layout (the summary rounds them).
      size: statSync(join(cache, "oci", "blobs", "sha256", hex)).size,
    }),
  );
  const digest = /image digest\s+(sha256:[0-9a-f]{64})/.exec(result.stdout)?.[1];
  const internal = Number(/^built \S+ in ([\d.]+) s$/m.exec(result.stdout)?.[1]) * 1000;
  return { ms: result.ms, internalMs: internal, digest, layers, stdout: result.stdout };
}

async function gzipBaseline() {
  const node = realpathSync(process.execPath);
  const bytes = readFileSync(node);
  const times = [];
  let size = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const out = await new Promise((resolve, reject) =>
      gzip(bytes, { level: 6 }, (error, result) => (error ? reject(error) : resolve(result))),
    );
    times.push(performance.now() - started);
    size = out.length;
  }
  return { node, input: bytes.length, output: size, ms: median(times) };
}

/** Fresh OMI client per attempt: grpc-js backs off for a second after a refused connection, which would blur the figure. */
async function firstStatus(OmiClient, port, deadlineMs) {
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    const client = new OmiClient({ address: `127.0.0.1:${port}` });
    try {
      const status = await client.status({ timeoutMs: 1000 });
      if (status.statusCode === 200) return performance.now();
    } catch {
      // not up yet
    } finally {
      client.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no OMI Status 200 on 127.0.0.1:${port} within ${deadlineMs} ms`);
}

async function coldStarts(archive, work) {
  const onPath = (c) => spawnSync("sh", ["-c", `command -v ${c}`], { stdio: "ignore" }).status === 0;
  if (!onPath("podman") || !onPath("runc")) return { skipped: "podman or runc is not installed" };
  const { OmiClient } = await import(new URL("../dist/index.js", import.meta.url).href);
  const { createServer } = await import("node:net");
  const freePort = () =>
    new Promise((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
  const state = join(work, "podman");
  const store = ["--root", join(state, "root"), "--runroot", join(state, "run"), "--runtime", "runc", "--cgroup-manager", "cgroupfs"];
  const podman = (args) => run("podman", [...store, ...args]);
  must(await run("bash", [join(ROOT, "scripts", "start-podman-service.sh"), state]), "start-podman-service.sh");
  const servicePid = Number(readFileSync(join(state, "podman.pid"), "utf8"));
  try {
    const loaded = must(await podman(["load", "-i", archive]), "podman load");
    const image = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)?.[1];
    const totals = [];
    const runs = [];
    for (let i = 0; i < STARTS; i++) {
      const port = await freePort();
      const started = performance.now();
      const result = must(
        await podman(["run", "-d", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-p", `127.0.0.1:${port}:45000`, image]),
        "podman run",
      );
      runs.push(result.ms);
      const id = result.stdout.trim().split("\n").pop();
      try {
        totals.push((await firstStatus(OmiClient, port, 30_000)) - started);
      } finally {
        await podman(["rm", "-f", "-t", "0", id]);
      }
    }
    return { loadMs: loaded.ms, median: median(totals), all: totals, runMedian: median(runs) };
  } finally {
    await podman(["rm", "-a", "-f"]);
    try {
      process.kill(servicePid, "SIGTERM");
    } catch {
      // gone
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    await run("umount", [join(state, "root", "overlay")]);
  }
}

const work = mkdtempSync(join(tmpdir(), "chassis-bench-"));
const copy = join(ROOT, "bench", `.tmp-digits-${process.pid}`);
try {
  process.stdout.write(
    `machine: ${cpus().length} CPUs (nproc ${spawnSync("nproc", { encoding: "utf8" }).stdout.trim()}), ${cpus()[0]?.model ?? "unknown CPU"}, node ${process.version}, ${process.platform}/${process.arch}\n`,
  );
  process.stdout.write(
    `targets (issue 4): build < ${TARGET.buildS} s, model layer < ${TARGET.modelLayerMB} MB, cold start < ${TARGET.coldStartS} s; Chassis: ~${TARGET.chassisBuildS} s per build\n\n`,
  );

  const baseline = await gzipBaseline();
  const ratio = (ms) => `${(ms / baseline.ms).toFixed(2)}x gzip baseline`;
  line(`baseline: gzip -6 of node (${mb(baseline.input)})`, seconds(baseline.ms), `-> ${mb(baseline.output)}, node:zlib, median of 3`);

  const cache = join(work, "cache");
  const cold = await build("examples/digits", cache, `docker-archive:${join(work, "digits.tar")}`);
  line(
    "cold build, digits, --base host (fresh cache)",
    seconds(cold.ms),
    `${ratio(cold.ms)}; target < ${TARGET.buildS} s; Chassis ~${TARGET.chassisBuildS} s`,
  );
  const warm = await build("examples/digits", cache, `docker-archive:${join(work, "digits-warm.tar")}`);
  line(
    "warm build (host base cached)",
    seconds(warm.ms),
    `${ratio(warm.ms)}; target < ${TARGET.buildS} s; same digest: ${warm.digest === cold.digest}`,
  );

  // A model-only change: a copy of the example (inside the repository so chassis-ts resolves), built once, a data file edited, built again.
  cpSync(join(ROOT, "examples", "digits"), copy, { recursive: true });
  const copyRef = `bench/${copy.split("/").pop()}`;
  const before = await build(copyRef, cache, `docker-archive:${join(work, "copy.tar")}`);
  const sample = join(copy, "sample.json");
  writeFileSync(sample, `${readFileSync(sample, "utf8")}\n`);
  const after = await build(copyRef, cache, `docker-archive:${join(work, "copy-changed.tar")}`);
  const changed = after.layers.filter((layer, i) => layer.digest !== before.layers[i]?.digest).map((layer) => layer.name);
  line(
    "build after a model data file changed",
    seconds(after.ms),
    `${ratio(after.ms)}; target < ${TARGET.buildS} s; layers changed: ${changed.join(", ") || "none"}`,
  );

  const total = cold.layers.reduce((sum, layer) => sum + layer.size, 0);
  line("image size (compressed layers)", mb(total), cold.layers.map((layer) => `${layer.name} ${mb(layer.size)}`).join(", "));
  const model = cold.layers.find((layer) => layer.name === "model");
  line("model layer", mb(model?.size ?? 0), `target < ${TARGET.modelLayerMB} MB`);
  line(
    "build time inside chassis (cold / warm)",
    `${(cold.internalMs / 1000).toFixed(1)}/${(warm.internalMs / 1000).toFixed(1)} s`,
    "the summary's own figure, without node start-up",
  );

  const starts = await coldStarts(join(work, "digits.tar"), work);
  if (starts.skipped) line("cold start", "skipped", starts.skipped);
  else {
    line(
      `cold start: podman run -d -> OMI Status (median of ${STARTS})`,
      seconds(starts.median),
      `target < ${TARGET.coldStartS} s; all: ${starts.all.map((ms) => (ms / 1000).toFixed(2)).join(", ")} s; podman run -d alone ${seconds(starts.runMedian)}`,
    );
    line("podman load of the docker-archive (once)", seconds(starts.loadMs));
  }
} finally {
  rmSync(copy, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}

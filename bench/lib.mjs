/**
 * Shared helpers for bench/: payloads, starting and stopping the servers
 * (always by PID), /proc readings, raw HTTP/2 and HTTP/1.1 captures, gRPC
 * verification through @grpc/grpc-js, and running/parsing h2load and wrk.
 * Everything talks to 127.0.0.1 only.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const GEN = join(ROOT, "dist/omi/gen/model_pb.js");
const { RunRequestSchema, RunResponseSchema, StatusResponseSchema } = await import(GEN).catch(() => {
  throw new Error(`${GEN} is missing: run \`npm run build\` in ${ROOT} first`);
});

export { RunRequestSchema, RunResponseSchema, StatusResponseSchema };

export const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------- payloads

/** 64 bytes, as the reference's echo payload (its response frame is 118 bytes, as ours). */
export const ECHO_INPUT = encoder.encode('{"text":"chassis-ts bench payload, 64 bytes long........"}'.padEnd(64, "."));
if (ECHO_INPUT.length !== 64) throw new Error("echo payload must be 64 bytes");

/**
 * The model's request: input bytes, and the expected results.json. For digits
 * the expectation comes from `chassis test` (in-process, no server involved).
 */
export function modelCase(model) {
  if (model === "echo") {
    return { model, dir: join(ROOT, "examples/echo"), input: ECHO_INPUT, expected: ECHO_INPUT, defaultN: 20000 };
  }
  if (model === "digits") {
    const input = readFileSync(join(ROOT, "examples/digits/sample.json"));
    const out = execFileSync(
      process.execPath,
      [
        join(ROOT, "bin/chassis.js"),
        "test",
        join(ROOT, "examples/digits"),
        "--input",
        `input=@${join(ROOT, "examples/digits/sample.json")}`,
        "--json",
      ],
      { encoding: "utf8", cwd: ROOT },
    );
    const [item] = JSON.parse(out);
    if (!item?.success) throw new Error(`chassis test of digits failed: ${out}`);
    return {
      model,
      dir: join(ROOT, "examples/digits"),
      input: new Uint8Array(input),
      expected: encoder.encode(item.outputs["results.json"]),
      defaultN: 10000,
    };
  }
  throw new Error(`--model must be echo or digits, got ${model}`);
}

/** A gRPC length-prefixed message (flag 0, big-endian length). */
export function frame(message) {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export function runRequestBytes(input) {
  return toBinary(RunRequestSchema, create(RunRequestSchema, { inputs: [{ input: { input } }] }));
}

export function v1RequestBody(input) {
  return Buffer.from(JSON.stringify({ instances: [Buffer.from(input).toString("base64")] }));
}

export function tempDir(prefix = "chassis-bench-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- processes

const children = new Set();
function killAllSync() {
  for (const child of children) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }
}
process.on("exit", killAllSync);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killAllSync();
    process.exit(130);
  });
}

/**
 * Starts a server process (node, or `command`; no shell, so the PID is the
 * server's) and waits until every pattern has matched its output; returns
 * the captures.
 */
export async function startProcess(args, patterns, { timeoutMs = 30000, env = process.env, command = process.execPath } = {}) {
  const proc = spawnProcess(command, args, { env });
  const { child, exited } = proc;
  const found = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${patterns.join(", ")}; output:\n${proc.output()}`)), timeoutMs);
    const check = () => {
      const matches = patterns.map((p) => proc.output().match(p));
      if (matches.every(Boolean)) {
        clearTimeout(timer);
        resolve(matches.map((m) => m[1]));
      }
    };
    child.stdout.on("data", check);
    child.stderr.on("data", check);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code ?? signal}) before it was ready; output:\n${proc.output()}`));
    });
  });
  return { ...proc, found };
}

/** `node ARGS`, as spawnProcess. */
export function spawnNode(args, { env = process.env } = {}) {
  return spawnProcess(process.execPath, args, { env });
}

/**
 * Spawns COMMAND ARGS (no shell, so the PID is the command's), collects its
 * output, and gives stop(): SIGTERM to that PID, SIGKILL after 10 s.
 */
export function spawnProcess(command, args, { env = process.env } = {}) {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const exited = once(child, "exit").then(([code, signal]) => {
    children.delete(child);
    return { code, signal };
  });
  let output = "";
  const onData = (d) => {
    if (output.length < 1e6) output += d;
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  return {
    child,
    pid: child.pid,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {}
      }, 10000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** `chassis serve` on free loopback ports (port 0; the ports are read from its log lines). */
export function startChassis(modelDir, { nodeFlags = [], extra = [] } = {}) {
  return startProcess(
    [...nodeFlags, join(ROOT, "bin/chassis.js"), "serve", modelDir, "--port", "0", "--http-port", "0", "--host", "127.0.0.1", ...extra],
    [/OMI gRPC server listening on 127\.0\.0\.1:(\d+)/, /KServe REST server listening on 127\.0\.0\.1:(\d+)/],
  );
}

export function startBaseline(cannedFile, nodeFlags = []) {
  return startProcess(
    [...nodeFlags, join(ROOT, "bench/baseline.mjs"), "--canned", cannedFile],
    [/baseline gRPC listening on 127\.0\.0\.1:(\d+)/, /baseline REST listening on 127\.0\.0\.1:(\d+)/],
  );
}

/** Runs a command to completion; resolves with its output, wall time and exit code. */
export async function runTool(cmd, args, { timeoutMs = 600000 } = {}) {
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }, timeoutMs);
  const [code, signal] = await once(child, "close");
  clearTimeout(timer);
  children.delete(child);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  return { code: code ?? signal, stdout, stderr, wallS, pid: child.pid };
}

/** A port that was free on 127.0.0.1 a moment ago (bind 0, read, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- /proc

/** A process and its descendants (a `--workers N` server is a primary and N workers). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").trim();
        if (children) out.push(...children.split(/\s+/).map(Number));
      } catch {}
    }
  }
  return out;
}

/**
 * The process listening on a TCP port of this machine (/proc/net/tcp and tcp6, state LISTEN, then the
 * process holding that socket), or undefined when /proc shows none (another network namespace).
 */
export function listeningPid(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const row of text.split("\n").slice(1)) {
      const fields = row.trim().split(/\s+/);
      // fields: sl, local_address (ADDR:PORT in hex), rem_address, st (0A = LISTEN), ..., inode (#10)
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A") inodes.add(`socket:[${fields[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      } catch {}
    }
  }
  return undefined;
}

/** utime+stime of a process and its live descendants, in seconds. */
export function cpuSeconds(pid) {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from #3 (state) on
      total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // #14 utime, #15 stime
    } catch {}
  }
  return total;
}

/** cutime+cstime of this process: the CPU of children it has waited for (h2load, wrk), in seconds. */
export function reapedChildrenCpuSeconds() {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK; // #16 cutime, #17 cstime
}

/** Whole-machine CPU counters from /proc/stat (jiffies): busy, steal, total. */
export function machineCpu() {
  const [, ...v] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v.map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, steal, total: busy + idle + iowait + steal };
}

/**
 * Waits up to waitS seconds for the machine to be idle (at most 10% busy over
 * 1 s), then prints how busy it was, with a warning when it is not idle.
 */
export async function reportIdle(waitS, nproc) {
  const waitUntil = Date.now() + waitS * 1000;
  let busy;
  for (;;) {
    const a = machineCpu();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const b = machineCpu();
    busy = ((b.busy - a.busy) / (b.total - a.total)) * 100;
    if (busy <= 10 || Date.now() >= waitUntil) break;
  }
  console.log(`# machine busy before the run: ${busy.toFixed(0)}% of ${nproc} cores over 1 s`);
  if (busy > 10)
    console.log(`# WARNING: the machine is not idle (waited ${waitS} s); other processes compete with the server and the load generator`);
  return busy;
}

/** VmHWM and VmRSS of a process and its descendants (summed), in MiB; `each` lists the RSS of every process. */
export function memory(pid) {
  const out = { hwm: 0, rss: 0, each: [] };
  for (const p of processTree(pid)) {
    let status;
    try {
      status = readFileSync(`/proc/${p}/status`, "utf8");
    } catch {
      continue;
    }
    const kb = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? Number.NaN);
    out.hwm += kb("VmHWM") / 1024;
    out.rss += kb("VmRSS") / 1024;
    out.each.push(kb("VmRSS") / 1024);
  }
  return out;
}

export function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
        .split("\n")[0]
        .trim();
    } catch (error) {
      // wrk -v prints its version and exits 1
      const out = `${error.stdout ?? ""}${error.stderr ?? ""}`.split("\n")[0].trim();
      return out || "missing";
    }
  };
  return {
    nproc: execFileSync("nproc", { encoding: "utf8" }).trim(),
    cpu: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    node: process.version,
    h2load: version("h2load", ["--version"]),
    wrk: version("wrk", ["-v"]).replace(/ Copyright.*/, ""),
    kernel: version("uname", ["-r"]),
    memGiB: (Number(readFileSync("/proc/meminfo", "utf8").match(/MemTotal:\s+(\d+)/)?.[1]) / 1048576).toFixed(1),
  };
}

// ---------------------------------------------------------------- captures

/** One raw HTTP/2 gRPC call: response headers, the body bytes, trailers. */
export function grpcRaw(port, path, body, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`${path}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    session.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    let headers;
    let trailers = {};
    const chunks = [];
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (d) => chunks.push(d));
    stream.on("error", (e) => {
      clearTimeout(timer);
      session.destroy();
      reject(e);
    });
    stream.on("end", () => {
      clearTimeout(timer);
      session.close();
      resolve({ headers: { ...headers }, body: Buffer.concat(chunks), trailers: { ...trailers } });
    });
    stream.end(body);
  });
}

/** One raw HTTP/1.1 POST: status, raw header list, body; and the full response size in bytes. */
export function httpRaw(port, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: "POST", headers: { "content-type": "application/json", "content-length": body.length } },
      (res) => {
        const chunks = [];
        res.on("data", (d) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------- verification

/**
 * A Run through @grpc/grpc-js (a separate client, not the load generator):
 * grpc-status 0, status_code 200, one output, success, results.json as expected.
 * Resolves with null when all holds, or a reason.
 */
export async function verifyGrpc(port, input, expected) {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    const response = await new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        "/ModzyModel/Run",
        (request) => Buffer.from(toBinary(RunRequestSchema, request)),
        (bytes) => fromBinary(RunResponseSchema, bytes),
        create(RunRequestSchema, { inputs: [{ input: { input } }] }),
        { deadline: Date.now() + 10000 },
        (error, value) => (error ? reject(error) : resolve(value)),
      );
    });
    if (response.statusCode !== 200) return `status_code ${response.statusCode}`;
    if (response.outputs.length !== 1) return `${response.outputs.length} outputs`;
    const [item] = response.outputs;
    if (!item.success) return `success=false: ${decoder.decode(item.output.error ?? new Uint8Array())}`;
    const got = item.output["results.json"];
    if (!got || Buffer.compare(Buffer.from(got), Buffer.from(expected)) !== 0)
      return `results.json ${got ? decoder.decode(got) : "missing"}`;
    return null;
  } catch (error) {
    return `grpc call failed: ${error.code !== undefined ? `grpc-status ${error.code} ` : ""}${error.details ?? error.message}`;
  } finally {
    client.close();
  }
}

/** One v1 predict: HTTP 200 and predictions[0] equal to the expected results.json text. */
export async function verifyRest(port, path, input, expected) {
  try {
    const res = await httpRaw(port, path, v1RequestBody(input));
    if (res.status !== 200) return `HTTP ${res.status}: ${res.body}`;
    const parsed = JSON.parse(res.body.toString("utf8"));
    if (parsed.predictions?.[0] !== decoder.decode(expected)) return `predictions ${JSON.stringify(parsed.predictions)}`;
    return null;
  } catch (error) {
    return `REST call failed: ${error.message}`;
  }
}

// ---------------------------------------------------------------- load generators

/**
 * In-process load on a Runtime (thread-hop.mjs, ctx-signal.mjs): loads it and
 * takes the first call's results.json as what every later answer must be;
 * measure() then makes `calls` Runtime.run calls of `item` from `concurrency`
 * callers at once and gives calls/s, the process's CPU µs per call (every
 * thread counted) and how many answers were wrong.
 */
export async function inProcessLoad(runtime, item, concurrency) {
  await runtime.load();
  const [first] = await runtime.run([item]);
  if (!first.ok) throw new Error(`${runtime.model.metadata.name} failed: ${first.error.message}`);
  const expected = first.outputs["results.json"];
  const measure = async (calls) => {
    let next = 0;
    let failed = 0;
    const caller = async () => {
      while (next < calls) {
        next++;
        const [outcome] = await runtime.run([item]);
        if (!outcome.ok || Buffer.compare(outcome.outputs["results.json"], expected) !== 0) failed++;
      }
    };
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, caller));
    const seconds = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    return { perS: calls / seconds, cpuUs: (used.user + used.system) / calls, failed };
  };
  return { measure };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * Parses h2load's summary and, when given, its --log-file (one line per
 * request: start, status, duration in microseconds; without it there are no
 * percentiles).
 */
export function parseH2load(stdout, logFile) {
  const num = (re) => {
    const m = stdout.match(re);
    return m ? Number(m[1]) : Number.NaN;
  };
  const durations = [];
  let ok2xx = 0;
  for (const line of logFile ? readFileSync(logFile, "utf8").split("\n") : []) {
    if (!line) continue;
    const [, status, us] = line.split("\t");
    durations.push(Number(us) / 1000);
    if (status >= 200 && status < 300) ok2xx++;
  }
  durations.sort((a, b) => a - b);
  return {
    reqPerS: num(/finished in [\d.]+\w*, ([\d.]+) req\/s/),
    done: num(/requests: \d+ total, \d+ started, (\d+) done/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
    errored: num(/(\d+) errored/),
    timeout: num(/(\d+) timeout/),
    status2xx: num(/status codes: (\d+) 2xx/),
    statusOther: ["3xx", "4xx", "5xx"].reduce((sum, kind) => sum + num(new RegExp(`status codes: .*?(\\d+) ${kind}`)), 0),
    dataBytes: num(/traffic: .*?, [\d.]+\w*B \((\d+)\) data/),
    logged: durations.length,
    logged2xx: ok2xx,
    p50: percentile(durations, 50),
    p99: percentile(durations, 99),
    mean: durations.reduce((a, b) => a + b, 0) / (durations.length || 1),
  };
}

export function writeTemp(dir, name, content) {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

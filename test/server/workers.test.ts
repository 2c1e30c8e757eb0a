/**
 * `chassis serve --workers N` as users run it: N processes behind one pair of
 * ports, each with its own model, stopped together by Shutdown or a signal,
 * a dead worker replaced, a broken model reported once with its exit status.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { describe, test } from "node:test";
import { OmiClient } from "../../src/client/omi-client.js";
import { resolveServerConfig } from "../../src/server/config.js";
import { usableCpus } from "../../src/server/cpus.js";
import { type ChildServer, fixture, runCli, spawnServer, withTimeout } from "../helpers/server.js";

async function spawnWorkers(n: number, model = fixture("pid.ts")): Promise<ChildServer> {
  const server = await spawnServer([model, "--host", "127.0.0.1", "--workers", String(n)]);
  const serving = new RegExp(`${n} workers serving`);
  for (let i = 0; i < 200 && !serving.test(server.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.match(server.stderr(), serving);
  return server;
}

/**
 * A request over a connection of its own (agent: false): connections, not
 * requests, are shared out between workers. A body makes it a JSON POST.
 */
function overNewConnection(port: number, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const method = body === undefined ? "GET" : "POST";
    const req = http.request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The pids that answer Run over `connections` separate connections. */
async function pidsOver(port: number, connections: number): Promise<Set<string>> {
  const pids = new Set<string>();
  for (let i = 0; i < connections; i++) {
    const client = new OmiClient({ address: `127.0.0.1:${port}` });
    const reply = await client.run([{ input: "x" }]);
    pids.add(Buffer.from(reply.outputs[0]?.output.pid ?? new Uint8Array()).toString());
    client.close();
  }
  return pids;
}

describe("serve --workers", () => {
  test("two workers share both ports, report their memory, and all stop on one Shutdown call (exit 0)", async () => {
    const server = await spawnWorkers(2);
    assert.match(server.stderr(), /worker 1 \(pid \d+\) ready: RSS [\d.]+ MiB after loading the model/);
    assert.match(server.stderr(), /worker 2 \(pid \d+\) ready/);
    const pids = await pidsOver(server.port, 6);
    assert.equal(pids.size, 2, `connections were answered by ${[...pids].join(", ")}`);
    assert.ok(!pids.has(String(server.process.pid)), "the primary serves nothing");
    const restPids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // A new connection each time: connections, not requests, are shared out.
      const { body } = await overNewConnection(server.httpPort, "/v1/models/pid:predict", { instances: ["eA=="] });
      restPids.add(String((JSON.parse(body) as { predictions: string[] }).predictions[0]));
    }
    assert.equal(restPids.size, 2);
    // Any worker may answer a scrape; each answer counts both workers' calls (6 Runs, 6 predicts), not its own.
    const workerRss = [...server.stderr().matchAll(/ready: RSS ([\d.]+) MiB/g)].map((m) => Number(m[1]) * 2 ** 20);
    for (let i = 0; i < 4; i++) {
      const scrape = await overNewConnection(server.httpPort, "/metrics");
      assert.equal(scrape.status, 200);
      assert.match(scrape.body, /^chassis_requests_total\{interface="omi",outcome="ok"\} 6$/m);
      assert.match(scrape.body, /^chassis_requests_total\{interface="v1",outcome="ok"\} 6$/m);
      assert.match(scrape.body, /^request_predict_seconds_count\{model_name="pid"\} 12$/m);
      // The processes' figures add up too: the primary's and both workers' memory.
      const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(scrape.body)?.[1]);
      assert.ok(rss > 1.5 * Math.max(...workerRss), `RSS ${rss} against workers' ${workerRss.join(", ")}`);
    }
    const client = new OmiClient({ address: `127.0.0.1:${server.port}` });
    await client.shutdown();
    client.close();
    assert.equal(await withTimeout(server.exited, 15_000, "all workers exit"), 0, server.stderr());
    for (const pid of pids) assert.throws(() => process.kill(Number(pid), 0), "worker still running");
  });

  test("a scrape fails with 503 naming the worker whose metrics did not come within 5 s, and works once it answers", async () => {
    const server = await spawnWorkers(2);
    // One call holds a worker's event loop for 6.5 s; the next connection goes to the other worker (the primary hands
    // connections round-robin), whose scrape waits for the blocked worker's metrics.
    const blocking = overNewConnection(server.httpPort, "/v1/models/pid:predict", {
      instances: [Buffer.from("block:6500").toString("base64")],
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    const failed = await overNewConnection(server.httpPort, "/metrics");
    assert.equal(failed.status, 503, failed.body);
    assert.match(failed.body, /worker pid \d+ sent no metrics within 5000 ms/);
    assert.ok(Date.now() - started >= 4_500, "it waited about 5 s");
    const blocker = String((JSON.parse((await blocking).body) as { predictions: string[] }).predictions[0]);
    assert.match(failed.body, new RegExp(`pid ${blocker}`), "the blocked worker is the one named");
    const again = await overNewConnection(server.httpPort, "/metrics");
    assert.equal(again.status, 200);
    assert.match(again.body, /^chassis_requests_total\{interface="v1",outcome="ok"\} 1$/m);
    server.kill("SIGTERM");
    assert.equal(await withTimeout(server.exited, 15_000, "all workers exit"), 0, server.stderr());
  });

  test("a worker that dies is replaced and the server keeps answering; SIGTERM then stops everything with 0", async () => {
    const server = await spawnWorkers(2);
    const before = await pidsOver(server.port, 4);
    const victim = [...before][0] as string;
    process.kill(Number(victim), "SIGKILL");
    for (let i = 0; i < 200 && !/starting another/.test(server.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(server.stderr(), new RegExp(`worker \\d \\(pid ${victim}\\) died \\(SIGKILL\\); starting another`));
    for (let i = 0; i < 200 && (server.stderr().match(/ready: RSS/g) ?? []).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    const after = await pidsOver(server.port, 4);
    assert.equal(after.size, 2);
    assert.ok(!after.has(victim));
    server.kill("SIGTERM");
    assert.equal(await withTimeout(server.exited, 15_000, "all workers exit"), 0, server.stderr());
  });

  test("workers that drain and exit while the primary is busy (stopped) still end the server with 0", async () => {
    // Each worker takes its own SIGTERM (as a terminal's Ctrl-C reaches the whole process group), drains, tells the
    // stopped primary and exits. When the primary resumes, its stop message goes to workers that look connected but
    // are gone: that send failed with an unhandled EPIPE (exit 1) before sends took a callback.
    const server = await spawnWorkers(2);
    const pids = [...server.stderr().matchAll(/\(pid (\d+)\) ready/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2);
    const primary = server.process.pid as number;
    const state = (pid: number) => /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1];
    process.kill(primary, "SIGSTOP");
    try {
      for (const pid of pids) process.kill(pid, "SIGTERM");
      // Zombies: exited, waiting for the primary to reap them.
      for (let i = 0; i < 250 && !pids.every((pid) => state(pid) === "Z"); i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(pids.map(state), ["Z", "Z"]);
    } finally {
      process.kill(primary, "SIGCONT");
    }
    assert.equal(await withTimeout(server.exited, 15_000, "the primary exits"), 0, server.stderr());
    assert.match(server.stderr(), /stopping 2 workers \(worker \d: SIGTERM\)/);
  });

  test("a model that fails to import stops the server with its exit status, and workers with --load status are refused", async () => {
    const broken = await runCli(["serve", fixture("no-model.ts"), "--workers", "2", "--port", "0", "--http-port", "0"], {}, 30_000);
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, /exports no model/);
    assert.match(broken.stderr, /failed to start .*; stopping/);
    const lazy = await runCli(["serve", fixture("pid.ts"), "--workers", "2", "--load", "status"]);
    assert.equal(lazy.code, 2);
    assert.match(lazy.stderr, /--load="status" loads the model on the first OMI Status call, which reaches only one of 2 workers/);
  });

  test("--workers values: a count, auto, and clear refusals", () => {
    assert.equal(resolveServerConfig("m", { workers: "3" }, {}).workers, 3);
    assert.equal(resolveServerConfig("m", {}, { WORKERS: "auto" }, () => 5).workers, 5);
    assert.equal(resolveServerConfig("m", {}, {}).workers, 1);
    for (const bad of ["0", "two", "1.5", "-1", "300"]) {
      assert.throws(
        () => resolveServerConfig("m", { workers: bad }, {}),
        new RegExp(`--workers="${bad.replace(".", "\\.")}" is not a number of workers`),
      );
    }
  });

  test("auto counts the cgroup CPU quota (v2 and v1) and never goes below 1", () => {
    const files = (map: Record<string, string>) => (path: string) => {
      const text = map[path];
      if (text === undefined) throw new Error("ENOENT");
      return text;
    };
    const cpus = usableCpus(files({}));
    assert.ok(cpus >= 1);
    assert.equal(usableCpus(files({ "/sys/fs/cgroup/cpu.max": "max 100000\n" })), cpus);
    assert.equal(usableCpus(files({ "/sys/fs/cgroup/cpu.max": "50000 100000\n" })), 1);
    assert.equal(usableCpus(files({ "/sys/fs/cgroup/cpu.max": "150000 100000\n" })), Math.min(cpus, 2));
    assert.equal(
      usableCpus(files({ "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "100000", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000" })),
      1,
    );
    assert.equal(
      usableCpus(files({ "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000" })),
      cpus,
    );
  });
});

describe("serve --batching, --batch-max-wait", () => {
  test("values and refusals, from flags and the environment", () => {
    assert.equal(resolveServerConfig("m", {}, {}).batching, undefined);
    assert.equal(resolveServerConfig("m", { batching: "off" }, {}).batching, "off");
    assert.equal(resolveServerConfig("m", {}, { BATCHING: "on", BATCH_MAX_WAIT: "2.5" }).batchMaxWaitMs, 2.5);
    assert.throws(() => resolveServerConfig("m", { batching: "yes" }, {}), /--batching="yes" is not valid \(expected "on" or "off"\)/);
    assert.throws(
      () => resolveServerConfig("m", { "batch-max-wait": "70000" }, {}),
      /--batch-max-wait="70000" is not a wait in milliseconds \(expected 0 to 60000/,
    );
  });
});

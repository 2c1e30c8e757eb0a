/**
 * `--predict-threads N`: the model's predicts on worker threads, through the
 * Runtime as the servers use it, and through `chassis serve` (the bundle) with
 * real clients. test/fixtures/threads.ts answers which thread ran it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { threadId } from "node:worker_threads";
import { OmiClient } from "../../src/client/omi-client.js";
import { Code } from "../../src/core/code.js";
import { LazyAbortSource } from "../../src/core/lazy-abort.js";
import { type Logger, silentLogger } from "../../src/core/log.js";
import type { Model } from "../../src/model/define.js";
import { Runtime } from "../../src/runtime/runtime.js";
import { resolveServerConfig } from "../../src/server/config.js";
import { loadModelModule } from "../../src/server/load-module.js";
import { HANG_GRACE_MS, PredictThreads } from "../../src/server/threads/pool.js";
import { errorOf, item, outputsOf } from "../helpers/outcomes.js";
import { fixture, spawnServer } from "../helpers/server.js";

const marks = mkdtempSync(join(tmpdir(), "chassis-threads-"));
after(() => rmSync(marks, { recursive: true, force: true }));

/** A loaded Runtime whose predicts run on `count` threads; `lines` collects the log. */
async function threaded(path: string, count: number, lines: string[] = []): Promise<Runtime> {
  const { model } = await loadModelModule(path);
  const log = collecting(lines);
  const runtime = new Runtime(model as Model, { log, host: new PredictThreads({ count, modelPath: path, model, log }) });
  await runtime.load();
  return runtime;
}

/** Runs `body` against a threaded Runtime, drained afterwards whatever happens. */
async function withThreads(path: string, count: number, body: (runtime: Runtime, lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const runtime = await threaded(path, count, lines);
  try {
    await body(runtime, lines);
  } finally {
    await runtime.drain();
  }
}

function collecting(lines: string[]): Logger {
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const threadOf = (outcome: Parameters<typeof outputsOf>[0]) =>
  (JSON.parse(outputsOf(outcome)["results.json"] as string) as { threadId: number }).threadId;

describe("predict threads", () => {
  test("predicts run on the threads, the items of one call spread over them, and the main thread stays free", async () => {
    await withThreads(fixture("threads.ts"), 2, async (runtime) => {
      // Four items that each compute for 300 ms: two threads take two each.
      const started = Date.now();
      const running = runtime.run([1, 2, 3, 4].map(() => item({ spin: "300" })));
      // Meanwhile the main thread's event loop keeps turning: a 20 ms timer fires on time.
      const timerStart = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const timerLate = Date.now() - timerStart - 20;
      const outcomes = await running;
      const took = Date.now() - started;
      const threads = new Set(outcomes.map(threadOf));
      assert.equal(threads.size, 2, `ran on threads ${[...threads].join(", ")}`);
      assert.ok(!threads.has(threadId), "nothing ran on the main thread");
      assert.ok(timerLate < 150, `the main thread's timer fired ${timerLate} ms late`);
      // Two threads in parallel: ~600 ms, not the 1200 ms of one thread.
      assert.ok(took < 1100, `4 x 300 ms on 2 threads took ${took} ms`);
    });
  });

  test("control: without threads the same call holds the main thread (so the test above can fail)", async () => {
    const { model } = await loadModelModule(fixture("threads.ts"));
    const runtime = new Runtime(model as Model, { log: silentLogger });
    await runtime.load();
    const timerStart = Date.now();
    const timer = new Promise((resolve) => setTimeout(resolve, 20));
    const outcomes = await runtime.run([item({ spin: "300" })]);
    await timer;
    assert.equal(threadOf(outcomes[0]), threadId);
    assert.ok(Date.now() - timerStart >= 290, "the timer waited for the predict");
    await runtime.drain();
  });

  test("batching across calls reaches the threads; per-item and per-batch errors stay where they were", async () => {
    await withThreads(fixture("batch.ts"), 2, async (runtime) => {
      const calls = ["a", "bad", "c", "d", "e", "f"].map((text) => runtime.run([item({ input: text })]));
      const outcomes = (await Promise.all(calls)).map((o) => o[0]);
      assert.deepEqual(outputsOf(outcomes[0]), { "results.txt": "A" });
      assert.match(errorOf(outcomes[1], Code.UNKNOWN).message, /bad item/);
      assert.deepEqual(
        outcomes.slice(2).map((o) => outputsOf(o)["results.txt"]),
        ["C", "D", "E", "F"],
      );
      // A whole batch that throws fails its own items only (batchSize 2: "fail-batch" and its partner).
      const mixed = await Promise.all(["x", "fail-batch", "y", "z"].map((text) => runtime.run([item({ input: text })])));
      assert.match(errorOf(mixed[1]?.[0], Code.UNKNOWN).message, /batch exploded/);
      assert.equal(outputsOf(mixed[3]?.[0])["results.txt"], "Z");
    });
  });

  test("a predict that never returns: DEADLINE_EXCEEDED after timeout.run, and a new thread takes over", async () => {
    await withThreads(fixture("threads.ts"), 1, async (runtime, lines) => {
      const first = await runtime.run([item({ spin: "0" })]);
      const before = threadOf(first[0]);
      const started = Date.now();
      // Bounded, so that a watchdog that never fires fails this test instead of hanging it.
      const [stuck] = await Promise.race([
        runtime.run([item({ spin: "forever" })]),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 10 s: the stuck thread was never replaced")), 10_000).unref(),
        ),
      ]);
      const waited = Date.now() - started;
      const error = errorOf(stuck, Code.DEADLINE_EXCEEDED);
      assert.match(
        error.message,
        /did not finish within the run timeout of 1s \(timeout\.run\): predict thread 1 answered nothing for \d+ s and was replaced/,
      );
      assert.ok(waited >= 1000 && waited < 1000 + HANG_GRACE_MS + 2000, `answered after ${waited} ms`);
      // The replacement loads the model, then serves: the next call succeeds on another thread.
      const [next] = await runtime.run([item({ spin: "0" })]);
      assert.notEqual(threadOf(next), before);
      // A stuck predict that keeps logging is stuck all the same: log lines are not answers.
      const [logging] = await Promise.race([
        runtime.run([item({ spin: "forever-logging" })]),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no answer within 10 s: a logging thread was never replaced")), 10_000).unref(),
        ),
      ]);
      errorOf(logging, Code.DEADLINE_EXCEEDED);
      assert.ok(
        lines.some((l) => /^info \[predict thread 1\] still spinning$/.test(l)),
        "its log lines reached the main thread",
      );
      assert.ok(
        lines.some((l) => /^info predict thread 1 replaced: the model is loaded again/.test(l)),
        lines.join("\n"),
      );
      assert.equal(runtime.state, "ready");
    });
  });

  test("a thread that exits fails its task with INTERNAL and is replaced", async () => {
    await withThreads(fixture("threads.ts"), 1, async (runtime, lines) => {
      const [gone] = await runtime.run([item({ exit: "3" })]);
      assert.match(errorOf(gone, Code.INTERNAL).message, /^predict thread 1 exited \(status 3\) while predicting$/);
      assert.ok(
        lines.some((l) => /^error predict thread 1 exited \(status 3\) while predicting; 1 tasks failed/.test(l)),
        lines.join("\n"),
      );
      const [next] = await runtime.run([item({ spin: "0" })]);
      assert.equal(typeof threadOf(next), "number");
    });
  });

  test("a caller that goes away aborts ctx.signal inside the thread", async () => {
    await withThreads(fixture("threads.ts"), 1, async (runtime) => {
      const source = new LazyAbortSource();
      const running = runtime.run([item({ "wait-abort": "" })], { signal: source.signal });
      setTimeout(() => source.abort(new Error("client left")), 50);
      const [outcome] = await running;
      errorOf(outcome, Code.CANCELLED);
      // The thread is free again at once (its predict ended when the signal fired).
      const [next] = await runtime.run([item({ spin: "0" })]);
      assert.equal(typeof threadOf(next), "number");
      // A caller gone in the same turn as its call: the cancel follows the task to the thread, not ahead of it
      // (ahead, the thread would never see it, and the call would end at timeout.run with DEADLINE_EXCEEDED).
      const early = new LazyAbortSource();
      const call = runtime.run([item({ "wait-abort": "" })], { signal: early.signal });
      early.abort(new Error("client left at once"));
      errorOf((await call)[0], Code.CANCELLED);
    });
  });

  test("explain runs on the threads; an explanation that cannot leave the thread fails its item only", async () => {
    await withThreads(fixture("threads.ts"), 1, async (runtime) => {
      const [ok] = await runtime.explain([item({ spin: "0" })]);
      assert.ok(ok?.ok);
      assert.equal((ok.explanation as { why: string }).why, "because");
      assert.notEqual((ok.explanation as { threadId: number }).threadId, threadId);
      const [bad] = await runtime.explain([item({ exit: "0" })]);
      assert.ok(bad && !bad.ok);
      assert.equal(bad.error.code, Code.INTERNAL);
      assert.match(bad.error.message, /explain returned a value that cannot leave its predict thread/);
    });
  });

  test("load and unload run in every thread; a failed load fails the Runtime's load with the model's error and the thread's number", async () => {
    const log = join(marks, "marks.txt");
    process.env.THREADS_FIXTURE_LOG = log;
    try {
      const runtime = await threaded(fixture("threads.ts"), 2);
      // Each thread keeps a timer running: the drain ends the threads anyway, at once.
      const started = Date.now();
      await runtime.drain();
      assert.ok(Date.now() - started < 3000, `the drain took ${Date.now() - started} ms`);
      const lines = readFileSync(log, "utf8").trim().split("\n").sort();
      assert.equal(lines.length, 4, lines.join("\n"));
      assert.deepEqual(
        lines.map((l) => l.split(" ")[0]),
        ["load", "load", "unload", "unload"],
      );
      assert.ok(!lines.some((l) => l.endsWith(` ${threadId}`)), "nothing loaded on the main thread");
    } finally {
      delete process.env.THREADS_FIXTURE_LOG;
    }
    const { model } = await loadModelModule(fixture("broken-load.ts"));
    const runtime = new Runtime(model as Model, {
      host: new PredictThreads({ count: 2, modelPath: fixture("broken-load.ts"), model, log: silentLogger }),
    });
    await assert.rejects(
      runtime.load(),
      /^ChassisError: predict thread [12] could not load the model: weights file missing: \/nowhere\/model\.onnx$/,
    );
    assert.equal(runtime.state, "failed");
    await runtime.drain();
    // A native addon that cannot load on a worker thread: the message says what to do.
    const unsafe = await loadModelModule(fixture("thread-unsafe.ts"));
    const refused = new Runtime(unsafe.model as Model, {
      host: new PredictThreads({ count: 1, modelPath: fixture("thread-unsafe.ts"), model: unsafe.model, log: silentLogger }),
    });
    await assert.rejects(
      refused.load(),
      /predict thread 1 could not load the model: Module did not self-register: .*addon\.node'\. \(a native addon of the model cannot run on worker threads: serve it without --predict-threads\)/,
    );
    await refused.drain();
  });

  test("--predict-threads values: a count, auto, 0, and clear refusals", () => {
    assert.equal(resolveServerConfig("m", {}, {}).predictThreads, 0);
    assert.equal(resolveServerConfig("m", { "predict-threads": "3" }, {}).predictThreads, 3);
    assert.equal(resolveServerConfig("m", {}, { PREDICT_THREADS: "auto" }, () => 4).predictThreads, 4);
    for (const bad of ["two", "1.5", "-1", "300"]) {
      assert.throws(
        () => resolveServerConfig("m", { "predict-threads": bad }, {}),
        new RegExp(`--predict-threads="${bad.replace(".", "\\.")}" is not a number of predict threads \\(expected 0 to 256, or auto`),
      );
    }
  });

  test("chassis serve --predict-threads 2 (the bundle): OMI and KServe answer from the threads, health stays quick, SIGTERM unloads", async () => {
    const server = await spawnServer([fixture("threads.ts"), "--host", "127.0.0.1", "--predict-threads", "2"]);
    try {
      assert.match(server.stderr(), /model Threads 0\.1\.0 loaded/);
      assert.match(server.stderr(), /2 predict threads loaded the model \(RSS [\d.]+ MiB for the process\)/);
      const client = new OmiClient({ address: `127.0.0.1:${server.port}` });
      try {
        // Warm both clients up (the first fetch loads undici), then keep both threads busy for 1.5 s:
        // the health check and Status answer meanwhile, as they would not if the predicts held the main thread.
        assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/v2/health/live`)).status, 200);
        await client.status();
        const busy = Promise.all([client.run([{ spin: "1500" }]), client.run([{ spin: "1500" }])]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const started = Date.now();
        const health = await fetch(`http://127.0.0.1:${server.httpPort}/v2/health/ready`);
        assert.equal(health.status, 200);
        const status = await client.status();
        assert.equal(status.status, "OK");
        const quick = Date.now() - started;
        assert.ok(quick < 700, `health and Status took ${quick} ms while both threads computed for 1.5 s`);
        const replies = await busy;
        const threads = new Set(
          replies.map((r) => JSON.parse(Buffer.from(r.outputs[0]?.output["results.json"] ?? []).toString()).threadId),
        );
        assert.equal(threads.size, 2);
        const rest = await fetch(`http://127.0.0.1:${server.httpPort}/v1/models/threads:predict`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ instances: [{ spin: "MQ==" }, { spin: "MQ==" }] }), // base64 of "1", the Chassis convention
        });
        assert.equal(rest.status, 200);
        const restBody = await rest.text();
        const { predictions } = JSON.parse(restBody) as { predictions: string[] };
        assert.ok(Array.isArray(predictions), restBody);
        assert.equal(predictions.length, 2);
        for (const prediction of predictions) assert.notEqual(JSON.parse(prediction).threadId, server.process.pid);
      } finally {
        client.close();
      }
      server.kill("SIGTERM");
      assert.equal(await server.exited, 0);
      assert.match(server.stderr(), /shut down cleanly/);
    } finally {
      server.kill("SIGKILL");
    }
  });

  test("--workers 2 --predict-threads 1: each worker process predicts on a thread of its own", async () => {
    const server = await spawnServer([fixture("threads.ts"), "--host", "127.0.0.1", "--workers", "2", "--predict-threads", "1"]);
    try {
      for (let i = 0; i < 200 && !/2 workers serving/.test(server.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(server.stderr().match(/1 predict threads loaded the model/g)?.length, 2, server.stderr());
      // A new connection each time, shared out between the workers.
      const answers = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const client = new OmiClient({ address: `127.0.0.1:${server.port}` });
        try {
          const reply = await client.run([{ spin: "0" }]);
          assert.equal(reply.outputs[0]?.success, true);
          answers.add(Buffer.from(reply.outputs[0]?.output["results.json"] ?? []).toString());
        } finally {
          client.close();
        }
      }
      // Every answer comes from a predict thread (threadId 1 in either worker), never a worker's main thread (0).
      assert.deepEqual([...answers], ['{"threadId":1}']);
      server.kill("SIGTERM");
      assert.equal(await server.exited, 0);
    } finally {
      server.kill("SIGKILL");
    }
  });
});

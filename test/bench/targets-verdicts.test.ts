/**
 * bench/targets.mjs prints a verdict per target of issue 5; these check that a
 * figure on the wrong side of its threshold gives "no", on made-up figures
 * shaped as the --json of serve.mjs, coldstart.mjs and soak.mjs.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { REFERENCE_REQ_PER_S, type Verdict, verdictsOf } from "../../bench/targets-verdicts.mjs";

function result(label: string, protocol: string, c: number, m: number, extra: Record<string, unknown> = {}) {
  return { label, protocol, c, m, ok: true, reqPerS: 50_000, cpuUsPerReq: 20, p99: 1, ratio: 1, loadCpu: 50, machineBusy: 90, ...extra };
}

const OFF = "chassis-ts batching off";

const byItem = (verdicts: Verdict[], item: string): Verdict => {
  const found = verdicts.find((v) => v.item === item);
  assert.ok(found, `no verdict "${item}" in ${verdicts.map((v) => v.item).join(" | ")}`);
  return found;
};

describe("verdictsOf", () => {
  test("item 2: the ratio against 0.8, p99 (median of the runs) against 2 ms, and a failed check is never met", () => {
    const serve = {
      results: [
        result("chassis-ts", "omi", 16, 16, { ratio: 0.8 }),
        result("chassis-ts", "v1", 16, 16, { ratio: 0.79 }),
        result("chassis-ts", "omi", 16, 1, { p99: 5, p99Runs: { median: 1.9, min: 1.5, max: 5 } }),
        result("chassis-ts", "v1", 16, 1, { p99: 1, p99Runs: { median: 2.0, min: 1, max: 2.1 } }),
        result("node-baseline", "v1", 16, 1),
      ],
    };
    const verdicts = verdictsOf({ serve });
    assert.equal(byItem(verdicts, "2. OMI Run, echo, 16x16, one process").met, true);
    assert.equal(byItem(verdicts, "2. KServe v1, echo, 16x16, one process").met, false);
    assert.equal(byItem(verdicts, "2. p99, OMI echo, 16x1").met, true);
    assert.equal(byItem(verdicts, "2. p99, KServe v1 echo, 16x1").met, false);

    const failedCheck = {
      results: [result("chassis-ts", "omi", 16, 16, { ratio: 5, ok: false }), result("chassis-ts", "omi", 16, 1, { p99: 0.5, ok: false })],
    };
    const failedVerdicts = verdictsOf({ serve: failedCheck });
    assert.equal(byItem(failedVerdicts, "2. OMI Run, echo, 16x16, one process").met, false);
    assert.equal(byItem(failedVerdicts, "2. p99, OMI echo, 16x1").met, false);
  });

  test("item 3: each --workers 2 configuration against 1.3x, with w2/w1 from the comparisons", () => {
    const workersV1 = {
      results: [result("chassis-ts w2", "v1", 16, 1, { ratio: 1.29 }), result("chassis-ts w2", "v1", 64, 1, { ratio: 1.3 })],
      comparisons: [{ protocol: "v1", c: 16, m: 1, "req/s": { median: 0.97, min: 0.9, max: 1 } }],
    };
    const verdicts = verdictsOf({ workersV1 });
    const sixteen = byItem(verdicts, "3. --workers 2, KServe v1 (wrk), echo, 16x1");
    assert.equal(sixteen.met, false);
    assert.match(sixteen.measured, /w2\/w1 0\.97/);
    assert.equal(byItem(verdicts, "3. --workers 2, KServe v1 (wrk), echo, 64x1").met, true);
  });

  test("item 4: on/off at 64 in flight against 3x, and the 1x1 p50 within 10%", () => {
    const ratios = (median: number) => ({ median, min: median, max: median });
    const batching = {
      results: [result("chassis-ts batching on", "omi", 16, 16, { reqPerS: REFERENCE_REQ_PER_S.digits * 4.9 })],
      comparisons: [
        // --versus adds comparisons of its own, first here: they must not stand for batching on/off.
        { protocol: "omi", c: 16, m: 4, versus: "python-grpcio", "req/s": ratios(20), p50: ratios(0.05), p99: ratios(0.1) },
        { protocol: "omi", c: 1, m: 1, versus: "python-grpcio", "req/s": ratios(5), p50: ratios(0.2), p99: ratios(0.2) },
        { protocol: "omi", c: 16, m: 4, versus: OFF, "req/s": ratios(2.99), p50: ratios(0.3), p99: ratios(0.4) },
        { protocol: "omi", c: 1, m: 64, versus: OFF, "req/s": ratios(3), p50: ratios(0.3), p99: ratios(0.4) },
        { protocol: "omi", c: 1, m: 1, versus: OFF, "req/s": ratios(1), p50: ratios(1.11), p99: ratios(1) },
      ],
    };
    const verdicts = verdictsOf({ batching });
    assert.equal(byItem(verdicts, "4. batching, digits, 64 in flight (16x4)").met, false);
    assert.equal(byItem(verdicts, "4. batching, digits, 64 in flight (1x64)").met, true);
    assert.equal(byItem(verdicts, "4. batching, 1 connection (1x1)").met, false);
    assert.equal(byItem(verdicts, "goal: OMI digits 16x16 against the Chassis reference").met, false);
  });

  test("the goal against a --versus server of the same run: the median of the rounds' ratios against 5x, both servers' checks passed", () => {
    const ratios = (median: number) => ({ median, min: median - 1, max: median + 1 });
    const serve = {
      results: [
        result("chassis-ts", "omi", 16, 16, { reqPerS: 50_000 }),
        result("python-grpcio", "omi", 16, 16, { reqPerS: 10_100, cpuUsPerReq: 240 }),
        result("chassis-ts", "v1", 16, 16),
      ],
      comparisons: [{ protocol: "omi", c: 16, m: 16, server: "chassis-ts", versus: "python-grpcio", "req/s": ratios(4.95) }],
    };
    const batching = {
      results: [
        result("chassis-ts batching on", "omi", 16, 16, { reqPerS: 30_000 }),
        result("chassis-ts batching off", "omi", 16, 16),
        result("python-grpcio", "omi", 16, 16, { reqPerS: 3_000, ok: false }),
      ],
      comparisons: [
        { protocol: "omi", c: 16, m: 16, server: "chassis-ts batching on", versus: OFF, "req/s": ratios(2) },
        { protocol: "omi", c: 16, m: 16, server: "chassis-ts batching on", versus: "python-grpcio", "req/s": ratios(10) },
      ],
    };
    const verdicts = verdictsOf({ serve, batching });
    const echo = byItem(verdicts, "goal: OMI echo 16x16 against python-grpcio, in this run");
    assert.equal(echo.met, false, "4.95x is under 5x");
    assert.match(echo.measured, /^4\.95x \(3\.95-5\.95\): 50000 against 10100 req\/s; 20 against 240 µs/);
    assert.equal(byItem(verdicts, "goal: OMI digits 16x16 against python-grpcio, in this run").met, false, "its runs did not verify");
    // The published-figure verdicts stay beside them.
    assert.equal(byItem(verdicts, "goal: OMI echo 16x16 against the Chassis reference").met, true);

    serve.comparisons[0] = { ...serve.comparisons[0], "req/s": ratios(5) } as (typeof serve.comparisons)[0];
    assert.equal(byItem(verdictsOf({ serve }), "goal: OMI echo 16x16 against python-grpcio, in this run").met, true);
    assert.ok(!verdictsOf({ serve: { results: serve.results, comparisons: [] } }).some((v) => v.item.includes("in this run")));
  });

  test("KServe v1 against a --versus-v1 server of the same run: reported, never a verdict, saying when a run did not verify", () => {
    const ratios = (median: number) => ({ median, min: median - 0.5, max: median + 0.5 });
    const serve = {
      results: [
        result("chassis-ts", "omi", 16, 16),
        result("chassis-ts", "v1", 16, 16, { reqPerS: 40_000, cpuUsPerReq: 25 }),
        result("python-fastapi", "v1", 16, 16, { reqPerS: 14_500, cpuUsPerReq: 68 }),
      ],
      comparisons: [{ protocol: "v1", c: 16, m: 16, server: "chassis-ts", versus: "python-fastapi", "req/s": ratios(2.76) }],
    };
    const item = "KServe v1 echo 16x16 against python-fastapi, in this run";
    const line = byItem(verdictsOf({ serve }), item);
    assert.equal(line.met, undefined);
    assert.equal(line.measured, "2.76x (2.26-3.26): 40000 against 14500 req/s; 25 against 68 µs of server CPU per call");
    assert.ok(!verdictsOf({ serve }).some((v) => v.item.startsWith("goal: OMI echo 16x16 against python")), "not an OMI goal verdict");
    const unverified = { ...serve, results: [serve.results[0], serve.results[1], { ...serve.results[2], ok: false }] };
    assert.match(byItem(verdictsOf({ serve: unverified }), item).measured, /; a run did not verify$/);
  });

  test("item 4 in-process: reported with the 64-caller ratio and its rounds, never a verdict", () => {
    const batchingInProcess = {
      failures: 0,
      results: [
        { concurrency: 64, batching: "off", perS: 20000, perBatch: 1 },
        { concurrency: 64, batching: "on", perS: 90000, perBatch: 16, onOff: { perS: 4.5, p50: 0.2, roundsMin: 4.1, roundsMax: 4.9 } },
      ],
    };
    const line = byItem(verdictsOf({ batchingInProcess }), "4. batching in-process (Runtime.run, no transport), digits, 64 callers");
    assert.equal(line.met, undefined);
    assert.equal(line.measured, "4.50x (rounds 4.10-4.90): 90000 calls/s on, 16.0 items per predictBatch");
    const wrong = verdictsOf({ batchingInProcess: { ...batchingInProcess, failures: 3 } });
    assert.match(byItem(wrong, "4. batching in-process (Runtime.run, no transport), digits, 64 callers").measured, /3 wrong answers/);
  });

  test("items 5 and 6: cold start against 300 ms, RSS reported without a verdict, the soak's own pass", () => {
    const coldstart = {
      bare: { medianMs: 100 },
      models: {
        digits: { starts: 7, medianMs: 300, minMs: 250, maxMs: 320, rssAtStatusMiB: 86 },
        echo: { starts: 7, medianMs: 200, minMs: 190, maxMs: 220, rssAtStatusMiB: 53 },
      },
    };
    const soak = {
      seconds: 300,
      omi: { done: 10, problems: [] },
      v1: { done: 10, problems: ["1 answers that are not 2xx"] },
      checks: { total: 9, failed: 0 },
      rss: { settledMiB: 100, finalMiB: 101, growthPercent: 1 },
      passed: false,
    };
    const verdicts = verdictsOf({ coldstart, soak });
    assert.equal(byItem(verdicts, "5. cold start, digits").met, false);
    assert.equal(byItem(verdicts, "5. RSS, echo").met, undefined);
    const soaked = byItem(verdicts, "6. soak, 5.0 min, OMI + v1 16x16");
    assert.equal(soaked.met, false);
    assert.match(soaked.measured, /1 problems/);
  });

  test("a step that did not run gives no verdict", () => {
    assert.deepEqual(verdictsOf({}), []);
  });
});

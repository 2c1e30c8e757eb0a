import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { deferred, errorOf, item, never, outputsOf, settled, sleep } from "../../test/helpers/outcomes.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { type BatchingSpec, type BatchPredictDefinition, defineModel, type ModelDefinition } from "../model/define.js";
import type { ItemOutcome } from "./outcome.js";
import { Runtime, type RuntimeOptions } from "./runtime.js";

interface Recorder {
  /** The texts of each predictBatch call, in call order. */
  calls: string[][];
  /** When set, each predictBatch call waits for it before answering. */
  gate: Promise<void> | undefined;
  /** Each predictBatch call's ctx.signal. */
  signals: AbortSignal[];
}

/**
 * A batch model that upper-cases `input`. "bad" is a per-item Error, "boom"
 * makes the whole call throw, "short" makes it return one result too few.
 */
function upperModel(batchSize: number, batching?: BatchingSpec, extra: Partial<BatchPredictDefinition<undefined>> = {}) {
  const rec: Recorder = { calls: [], gate: undefined, signals: [] };
  const model = defineModel({
    name: "Upper",
    version: "1",
    inputs: [{ key: "input", maxSize: "1K" }],
    outputs: [{ key: "out.txt" }],
    batchSize,
    ...(batching ? { batching } : {}),
    async predictBatch(items, { signal }) {
      const texts = items.map((it) => it.text("input"));
      rec.calls.push(texts);
      rec.signals.push(signal);
      if (rec.gate) await rec.gate;
      if (texts.includes("boom")) throw new Error("batch exploded");
      const results = texts.map((t) => (t === "bad" ? new Error(`bad item ${t}`) : { "out.txt": t.toUpperCase() }));
      return texts.includes("short") ? results.slice(1) : results;
    },
    ...extra,
  } as ModelDefinition<undefined>);
  return { model, rec };
}

async function started(model: ReturnType<typeof upperModel>["model"], options: RuntimeOptions = {}): Promise<Runtime> {
  const runtime = new Runtime(model, options);
  await runtime.load();
  return runtime as Runtime;
}

const texts = (outcomes: ItemOutcome[]) => outcomes.map((o) => outputsOf(o)["out.txt"]);
const run = (runtime: Runtime, ...inputs: string[]) => runtime.run(inputs.map((input) => item({ input })));
/** Lets queued microtasks and one turn of the event loop run. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A runtime whose only batch slot is held by a call of "first" until
 * release(); calls made meanwhile queue.
 */
async function busy(batchSize: number, batching?: BatchingSpec, options: RuntimeOptions = {}) {
  const { model, rec } = upperModel(batchSize, batching);
  const runtime = await started(model, options);
  const gate = deferred();
  rec.gate = gate.promise;
  const first = run(runtime, "first");
  await turn();
  assert.deepEqual(rec.calls, [["first"]]);
  const release = () => {
    rec.gate = undefined;
    gate.resolve();
  };
  return { runtime, rec, first, release };
}

/** A full garbage collection, for tests that check what is let go (--expose-gc set at run time, not on the command line). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** `count` one-item calls, `${prefix}0`..., each with a caller that can go away; a turn later, all queued. */
async function queueCallers(runtime: Runtime, prefix: string, count: number) {
  const callers = Array.from({ length: count }, () => new AbortController());
  const calls = callers.map((caller, i) => runtime.run([item({ input: `${prefix}${i}` })], { signal: caller.signal }));
  await turn();
  return { callers, calls };
}

describe("BatchingExecutor: merging calls", () => {
  test("calls made while a batch runs share the next predictBatch call and each gets its own results, in order", async () => {
    const { runtime, rec, release } = await busy(8);
    const calls = [run(runtime, "a", "b"), run(runtime, "c"), run(runtime, "d", "e", "f")];
    release();
    const [one = [], two = [], three = []] = await Promise.all(calls);
    assert.deepEqual(rec.calls, [["first"], ["a", "b", "c", "d", "e", "f"]]);
    assert.deepEqual(texts(one), ["A", "B"]);
    assert.deepEqual(texts(two), ["C"]);
    assert.deepEqual(texts(three), ["D", "E", "F"]);
  });

  test("a lone call is dispatched at once, with no timer in between", async () => {
    const { model, rec } = upperModel(8);
    const runtime = await started(model);
    const t0 = performance.now();
    const running = run(runtime, "solo");
    // A few microtasks at most: no timer, no turn of the event loop.
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(rec.calls, [["solo"]]);
    assert.deepEqual(texts(await running), ["SOLO"]);
    assert.ok(performance.now() - t0 < 50, `took ${performance.now() - t0} ms`);
  });

  test("while a batch runs, calls queue; the next batch takes what queued, up to maxBatchSize", async () => {
    const { runtime, rec, first, release } = await busy(8, { maxBatchSize: 4 });
    const later = Array.from({ length: 10 }, (_, i) => run(runtime, `q${i}`));
    await turn();
    assert.equal(rec.calls.length, 1, "nothing else starts while the only slot is busy");
    release();
    assert.deepEqual(texts(await first), ["FIRST"]);
    const answers = await Promise.all(later);
    assert.deepEqual(
      rec.calls.map((c) => c.length),
      [1, 4, 4, 2],
    );
    assert.deepEqual(rec.calls.slice(1).flat(), ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9"]);
    answers.forEach((outcomes, i) => {
      assert.deepEqual(texts(outcomes), [`Q${i}`]);
    });
  });

  test("maxBatchSize is respected for one large call and for many small ones", async () => {
    const { model, rec } = upperModel(8, { maxBatchSize: 3 });
    const runtime = await started(model);
    const big = await run(runtime, ..."abcdefgh".split(""));
    assert.deepEqual(texts(big), "ABCDEFGH".split(""));
    await Promise.all(Array.from({ length: 20 }, (_, i) => run(runtime, `s${i}`)));
    assert.ok(
      rec.calls.every((c) => c.length <= 3),
      JSON.stringify(rec.calls.map((c) => c.length)),
    );
    assert.equal(rec.calls.flat().length, 28);
  });

  test("the default maxBatchSize is batchSize", async () => {
    assert.deepEqual(upperModel(5).model.batching, { enabled: true, maxBatchSize: 5, maxWaitMs: 0, maxConcurrentBatches: 1 });
    const { runtime, rec, release } = await busy(5);
    const calls = Array.from({ length: 12 }, (_, i) => run(runtime, `s${i}`));
    release();
    await Promise.all(calls);
    assert.deepEqual(
      rec.calls.map((c) => c.length),
      [1, 5, 5, 2],
    );
  });

  test("onBatch is told the size of every predictBatch call, the lone call's too, and nothing with batching off", async () => {
    const sizes: number[] = [];
    const { runtime, rec, release } = await busy(5, undefined, { onBatch: (items) => sizes.push(items) });
    const calls = Array.from({ length: 12 }, (_, i) => run(runtime, `s${i}`));
    release();
    await Promise.all(calls);
    assert.deepEqual(sizes, [1, 5, 5, 2]);
    assert.deepEqual(
      sizes,
      rec.calls.map((c) => c.length),
    );
    const off: number[] = [];
    const unbatched = await started(upperModel(5).model, { batching: "off", onBatch: (items) => off.push(items) });
    await Promise.all([run(unbatched, "a"), run(unbatched, "b")]);
    assert.deepEqual(off, []);
  });

  test("maxConcurrentBatches lets that many predictBatch calls run at once", async () => {
    const { model, rec } = upperModel(2, { maxConcurrentBatches: 2 });
    const runtime = await started(model);
    const gate = deferred();
    rec.gate = gate.promise;
    const calls = [run(runtime, "a"), run(runtime, "b"), run(runtime, "c"), run(runtime, "d"), run(runtime, "e")];
    await turn();
    assert.deepEqual(rec.calls, [["a"], ["b"]], "two run at once; the third waits");
    rec.gate = undefined;
    gate.resolve();
    assert.deepEqual((await Promise.all(calls)).flatMap(texts), ["A", "B", "C", "D", "E"]);
    assert.deepEqual(rec.calls.slice(2), [["c", "d"], ["e"]]);
  });
});

describe("BatchingExecutor: outcomes stay per item and per caller", () => {
  test("an Error in the results fails that item only, in that caller only", async () => {
    const { runtime, rec, release } = await busy(8);
    const calls = [run(runtime, "a"), run(runtime, "b", "bad", "c"), run(runtime, "d")];
    release();
    const [one = [], two = [], three = []] = await Promise.all(calls);
    assert.deepEqual(rec.calls[1], ["a", "b", "bad", "c", "d"]);
    assert.deepEqual(texts(one), ["A"]);
    assert.equal(outputsOf(two[0])["out.txt"], "B");
    assert.equal(errorOf(two[1], Code.UNKNOWN).message, "bad item bad");
    assert.equal(outputsOf(two[2])["out.txt"], "C");
    assert.deepEqual(texts(three), ["D"]);
  });

  test("a predictBatch that throws fails the items of its batch only", async () => {
    const { runtime, rec, first, release } = await busy(8, { maxBatchSize: 2 });
    // Queued behind "first": [boom, x] then [y, z].
    const calls = [run(runtime, "boom"), run(runtime, "x"), run(runtime, "y"), run(runtime, "z")];
    release();
    const [boom, x, y, z] = await Promise.all(calls);
    assert.deepEqual(rec.calls, [["first"], ["boom", "x"], ["y", "z"]]);
    assert.deepEqual(texts(await first), ["FIRST"]);
    assert.equal(errorOf(boom?.[0], Code.UNKNOWN).message, "batch exploded");
    assert.equal(errorOf(x?.[0], Code.UNKNOWN).message, "batch exploded", "x shared the throwing batch");
    assert.deepEqual(texts(y ?? []), ["Y"]);
    assert.deepEqual(texts(z ?? []), ["Z"]);
  });

  test("a wrong number of results fails that batch with the clear INTERNAL error", async () => {
    const { runtime, release } = await busy(8);
    const calls = [run(runtime, "a", "short"), run(runtime, "b")];
    release();
    const [one = [], two = []] = await Promise.all(calls);
    const message = "predictBatch returned 2 results for 3 items; it must return one result per item, in order";
    for (const outcome of [...one, ...two]) assert.equal(errorOf(outcome, Code.INTERNAL).message, message);
    assert.deepEqual(texts(await run(runtime, "after")), ["AFTER"]);
  });

  test("invalid items are answered by validation and never queued", async () => {
    const { runtime, rec, release } = await busy(8);
    const calls = [runtime.run([item({ input: "a" }), item({ wrong: "x" })]), run(runtime, "b")];
    release();
    const [one = [], two = []] = await Promise.all(calls);
    assert.deepEqual(rec.calls, [["first"], ["a", "b"]]);
    assert.equal(outputsOf(one[0])["out.txt"], "A");
    errorOf(one[1], Code.INVALID_ARGUMENT);
    assert.deepEqual(texts(two), ["B"]);
  });

  test("the run timeout applies to each batch call; the batch queued behind it runs after it", async () => {
    const { model } = upperModel(
      2,
      {},
      {
        timeout: { run: "80ms" },
        predictBatch: (items) =>
          items.some((it) => it.text("input") === "hang") ? never() : items.map((it) => ({ "out.txt": it.text("input") })),
      },
    );
    const runtime = await started(model);
    const t0 = performance.now();
    const [hang, other, later] = await Promise.all([run(runtime, "hang"), run(runtime, "other"), run(runtime, "later")]);
    assert.ok(performance.now() - t0 >= 75, "the queued batch did not wait for the hung one");
    assert.equal(errorOf(hang[0], Code.DEADLINE_EXCEEDED).message, "predict did not finish within the run timeout of 80ms (timeout.run)");
    assert.equal(outputsOf(other[0])["out.txt"], "other");
    assert.equal(outputsOf(later[0])["out.txt"], "later");
  });

  test("explain stays per item", async () => {
    const seen: string[] = [];
    const { model } = upperModel(8, undefined, {
      explain: (it) => {
        seen.push(it.text("input"));
        return { why: it.text("input") };
      },
    });
    const runtime = await started(model);
    const outcomes = await runtime.explain([item({ input: "a" }), item({ input: "b" })]);
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? o.explanation : o.error.message)),
      [{ why: "a" }, { why: "b" }],
    );
    assert.deepEqual(seen, ["a", "b"]);
  });
});

describe("BatchingExecutor: waiting and cancellation", () => {
  test("maxWaitMs holds the first item that long for a fuller batch; a full batch leaves at once", async () => {
    // 250 ms: far enough above "at once" that a slow, busy CI machine cannot blur the two.
    const { model, rec } = upperModel(8, { maxWaitMs: 250, maxBatchSize: 3 });
    const runtime = await started(model);
    const t0 = performance.now();
    const first = run(runtime, "a");
    await sleep(20);
    assert.equal(rec.calls.length, 0, "dispatched before maxWaitMs");
    const second = run(runtime, "b");
    const [a, b] = await Promise.all([first, second]);
    const waited = performance.now() - t0;
    assert.ok(waited >= 245 && waited < 2000, `waited ${waited} ms`);
    assert.deepEqual(rec.calls, [["a", "b"]]);
    assert.deepEqual([...texts(a), ...texts(b)], ["A", "B"]);

    const t1 = performance.now();
    await Promise.all([run(runtime, "c"), run(runtime, "d", "e")]);
    assert.ok(performance.now() - t1 < 150, `a full batch waited ${performance.now() - t1} ms`);
    assert.deepEqual(rec.calls[1], ["c", "d", "e"]);
  });

  test("the runtime's batchMaxWaitMs overrides the model's maxWaitMs", async () => {
    const { model, rec } = upperModel(8, { maxWaitMs: 5000 });
    const runtime = await started(model, { batchMaxWaitMs: 0 });
    const t0 = performance.now();
    assert.deepEqual(texts(await run(runtime, "a")), ["A"]);
    assert.ok(performance.now() - t0 < 100);
    assert.equal(rec.calls.length, 1);
  });

  test("a caller that aborts before dispatch gets CANCELLED at once and its items never reach the model", async () => {
    const { runtime, rec, first, release } = await busy(8);
    const caller = new AbortController();
    const gone = runtime.run([item({ input: "gone1" }), item({ input: "gone2" })], { signal: caller.signal });
    const kept = run(runtime, "kept");
    await turn();
    caller.abort();
    assert.ok(await settled(gone), "the aborted caller was not answered at once");
    for (const outcome of await gone) assert.equal(errorOf(outcome, Code.CANCELLED).message, "the call was cancelled by the client");
    release();
    assert.deepEqual(texts(await first), ["FIRST"]);
    assert.deepEqual(texts(await kept), ["KEPT"]);
    assert.deepEqual(rec.calls, [["first"], ["kept"]]);
    assert.equal(runtime.inFlight, 0);
  });

  test("callers that go away while queued, in any order: the model sees only the others, in order, in full batches", async () => {
    const { runtime, rec, first, release } = await busy(4);
    const { callers, calls } = await queueCallers(runtime, "c", 10);
    for (const i of [8, 1, 4, 3]) callers[i]?.abort();
    for (const i of [8, 1, 4, 3]) errorOf((await calls[i])?.[0], Code.CANCELLED);
    release();
    await first;
    const answered = await Promise.all([0, 2, 5, 6, 7, 9].map((i) => calls[i] as Promise<ItemOutcome[]>));
    assert.deepEqual(answered.flatMap(texts), ["C0", "C2", "C5", "C6", "C7", "C9"]);
    assert.deepEqual(rec.calls, [["first"], ["c0", "c2", "c5", "c6"], ["c7", "c9"]]);
    assert.equal(runtime.inFlight, 0);
  });

  test("once every queued caller has gone, the next lone call is dispatched at once", async () => {
    const { runtime, rec, first, release } = await busy(4);
    const { callers, calls } = await queueCallers(runtime, "gone", 6);
    for (const caller of callers) caller.abort();
    await Promise.all(calls);
    release();
    await first;
    const solo = run(runtime, "solo");
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(rec.calls, [["first"], ["solo"]]);
    assert.deepEqual(texts(await solo), ["SOLO"]);
  });

  test("the queued items of callers that all went away are let go at once, not when the next batch is taken", async () => {
    const { runtime, first, release } = await busy(4);
    // The inputs and the outcomes stay inside this function (an outcome's CANCELLED error holds its stack's frames,
    // and through them the call's items, until it is dropped), so that only the batcher could still hold the inputs.
    const queueGone = () => {
      const callers = Array.from({ length: 3 }, () => new AbortController());
      const inputs = callers.map((_, i) => new TextEncoder().encode(`gone${i}`));
      const calls = callers.map((caller, i) => runtime.run([{ input: inputs[i] as Uint8Array }], { signal: caller.signal }));
      const answered = Promise.all(calls).then((outcomes) => {
        for (const [outcome] of outcomes) errorOf(outcome, Code.CANCELLED);
      });
      return { callers, answered, refs: inputs.map((input) => new WeakRef(input)) };
    };
    const { callers, answered, refs } = queueGone();
    await turn();
    for (const caller of callers) caller.abort();
    await answered;
    await turn();
    collectGarbage();
    assert.deepEqual(
      refs.map((ref) => ref.deref() === undefined),
      [true, true, true],
      "the batch still running holds the slot, yet the gone callers' inputs must not be held",
    );
    release();
    await first;
  });

  test("maxWaitMs counts from the first queued item of a caller still waiting, not from one that went away", async () => {
    const { model, rec } = upperModel(8, { maxWaitMs: 400, maxBatchSize: 3 });
    const runtime = await started(model);
    const caller = new AbortController();
    const t0 = performance.now();
    const gone = runtime.run([item({ input: "gone" })], { signal: caller.signal });
    await sleep(300);
    const t1 = performance.now();
    const kept = run(runtime, "kept"); // queued behind the item that then goes away
    caller.abort();
    await gone;
    await sleep(200);
    // Waiting from the gone item would have dispatched at t0 + 400.
    assert.equal(rec.calls.length, 0, `dispatched ${performance.now() - t0} ms after the gone item`);
    assert.deepEqual(texts(await kept), ["KEPT"]);
    assert.ok(performance.now() - t1 >= 390, `kept waited ${performance.now() - t1} ms`);
    assert.deepEqual(rec.calls, [["kept"]]);
  });

  test("an already-aborted caller gets CANCELLED without a predictBatch call", async () => {
    const { model, rec } = upperModel(8);
    const runtime = await started(model);
    const outcomes = await runtime.run([item({ input: "a" })], { signal: AbortSignal.abort() });
    errorOf(outcomes[0], Code.CANCELLED);
    assert.equal(rec.calls.length, 0);
  });

  test("a caller that aborts during its batch is answered at once; ctx.signal aborts only when nobody waits", async () => {
    const { runtime, rec, release } = await busy(8);
    const [c1, c2] = [new AbortController(), new AbortController()];
    const one = runtime.run([item({ input: "one" })], { signal: c1.signal });
    const two = runtime.run([item({ input: "two" })], { signal: c2.signal });
    release();
    const gate = deferred();
    rec.gate = gate.promise; // holds the batch of one and two
    await turn();
    assert.deepEqual(rec.calls, [["first"], ["one", "two"]]);
    const signal = rec.signals[1] as AbortSignal;
    c1.abort();
    errorOf((await one)[0], Code.CANCELLED);
    assert.equal(signal.aborted, false, "the batch still has a caller waiting");
    assert.equal(await settled(two), false);
    c2.abort();
    errorOf((await two)[0], Code.CANCELLED);
    assert.equal(signal.aborted, true);
    assert.ok(signal.reason instanceof ChassisError);
    assert.equal(signal.reason.code, Code.CANCELLED);
    // The abandoned batch frees its slot: new work runs although the old call never returns.
    rec.gate = undefined;
    assert.deepEqual(texts(await run(runtime, "next")), ["NEXT"]);
    gate.resolve();
  });

  test("drain waits for queued items", async () => {
    const { runtime, first, release } = await busy(8);
    const queued = run(runtime, "queued");
    await turn();
    const drained = runtime.drain();
    assert.equal(await settled(drained), false);
    release();
    await drained;
    assert.deepEqual([...texts(await first), ...texts(await queued)], ["FIRST", "QUEUED"]);
  });
});

describe("BatchingExecutor: choosing it", () => {
  test("batching.enabled false, or the runtime's batching off, runs each call at once, apart", async () => {
    for (const [batching, options] of [
      [{ enabled: false }, {}],
      [undefined, { batching: "off" }],
    ] as const) {
      const { model, rec } = upperModel(8, batching);
      const runtime = await started(model, options);
      const gate = deferred();
      rec.gate = gate.promise;
      const calls = [run(runtime, "a"), run(runtime, "b", "c"), run(runtime, "d")];
      await turn();
      assert.deepEqual(rec.calls, [["a"], ["b", "c"], ["d"]]);
      gate.resolve();
      await Promise.all(calls);
    }
  });

  test("the runtime's batching on overrides a model's enabled: false", async () => {
    const { runtime, rec, release } = await busy(8, { enabled: false }, { batching: "on" });
    const calls = [run(runtime, "a"), run(runtime, "b", "c")];
    release();
    await Promise.all(calls);
    assert.deepEqual(rec.calls, [["first"], ["a", "b", "c"]]);
  });

  test("a predict model is never batched, even with batching on", async () => {
    let calls = 0;
    const model = defineModel({
      name: "Single",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "out.txt" }],
      predict: (it) => {
        calls++;
        return { "out.txt": it.text("input") };
      },
    });
    assert.deepEqual(model.batching, { enabled: false, maxBatchSize: 1, maxWaitMs: 0, maxConcurrentBatches: 1 });
    const runtime = new Runtime(model, { batching: "on" });
    await runtime.load();
    await Promise.all([runtime.run([item({ input: "a" })]), runtime.run([item({ input: "b" })])]);
    assert.equal(calls, 2);
  });

  test("bad runtime options are rejected with a clear message", () => {
    const { model } = upperModel(8);
    assert.throws(
      () => new Runtime(model, { batching: "yes" as "on" }),
      (e: unknown) => e instanceof ChassisError && /batching must be "on" or "off" \(got "yes"\)/.test(e.message),
    );
    assert.throws(
      () => new Runtime(model, { batchMaxWaitMs: -1 }),
      (e: unknown) =>
        e instanceof ChassisError && /batchMaxWaitMs must be a number of milliseconds from 0 to 60000 \(got -1\)/.test(e.message),
    );
  });
});

describe("defineModel: batching validation", () => {
  const base = {
    name: "Batchy",
    version: "1",
    inputs: [{ key: "input" }],
    outputs: [{ key: "out.txt" }],
    predictBatch: () => [],
  };
  const problemsOf = (definition: unknown): string => {
    try {
      defineModel(definition as ModelDefinition<undefined>);
    } catch (error) {
      assert.ok(error instanceof ChassisError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      return error.message;
    }
    assert.fail("defineModel accepted an invalid definition");
  };

  test("every bad field is reported at once, with the metadata's problems", () => {
    const message = problemsOf({
      ...base,
      version: "",
      batchSize: 4,
      batching: { enabled: "yes", maxBatchSize: 5, maxWaitMs: -2, maxConcurrentBatches: 0, maxWait: 3 },
    });
    assert.match(message, /^invalid model "Batchy": /);
    for (const expected of [
      "batching.maxWait is not a batching option (enabled, maxBatchSize, maxWaitMs, maxConcurrentBatches)",
      'batching.enabled must be true or false (got "yes")',
      "batching.maxBatchSize must be a whole number from 1 to batchSize (4) (got 5)",
      "batching.maxWaitMs must be a number of milliseconds from 0 to 60000 (got -2)",
      "batching.maxConcurrentBatches must be a whole number, 1 or more (got 0)",
      "version must not be empty",
    ]) {
      assert.ok(message.includes(expected), `missing "${expected}" in: ${message}`);
    }
  });

  test("batching must be an object, and needs predictBatch", () => {
    assert.match(problemsOf({ ...base, batching: true }), /batching must be an object such as \{ maxBatchSize: 16, maxWaitMs: 2 \}/);
    const single = { ...base, predictBatch: undefined, predict: () => ({}), batching: { maxWaitMs: 1 } };
    assert.match(problemsOf(single), /batching applies to predictBatch only; remove it, or use predictBatch\(items, ctx\) with batchSize/);
  });

  test("a bad batchSize is reported once, not again as a bad maxBatchSize", () => {
    const message = problemsOf({ ...base, batchSize: 0, batching: { maxWaitMs: 1 } });
    assert.match(message, /batchSize must be a whole number, 1 or more \(got 0\)/);
    assert.doesNotMatch(message, /maxBatchSize/);
  });

  test("valid options are kept, defaults filled in, and the result frozen", () => {
    const model = defineModel({ ...base, batchSize: 16, batching: { maxBatchSize: 8, maxWaitMs: 2.5 } });
    assert.deepEqual(model.batching, { enabled: true, maxBatchSize: 8, maxWaitMs: 2.5, maxConcurrentBatches: 1 });
    assert.ok(Object.isFrozen(model.batching));
  });
});

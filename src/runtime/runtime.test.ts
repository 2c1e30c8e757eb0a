import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deferred, errorOf, item, never, outputsOf, settled, sleep } from "../../test/helpers/outcomes.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { LazyAbortSource } from "../core/lazy-abort.js";
import { createLogger } from "../core/log.js";
import { defineModel, type ModelDefinition } from "../model/define.js";
import type { ModelItem } from "../model/item.js";
import { Runtime, type RuntimeState } from "./runtime.js";

/** An echo model: output `out.txt` is input `input` as text; counts predict calls. */
function echo<S = undefined>(extra: Partial<ModelDefinition<S>> = {}) {
  const calls: string[] = [];
  const model = defineModel<S>({
    name: "Echo",
    version: "1.0.0",
    inputs: [{ key: "input", maxSize: "1K" }],
    outputs: [{ key: "out.txt" }],
    predict(it: ModelItem) {
      calls.push(it.text("input"));
      return { "out.txt": it.text("input") };
    },
    ...extra,
  } as ModelDefinition<S>);
  return { model, calls };
}

/** A loaded runtime whose predict never returns and keeps each ctx.signal it was given. */
async function hangingRuntime(): Promise<{ runtime: Runtime<undefined>; signals: AbortSignal[] }> {
  const signals: AbortSignal[] = [];
  const { model } = echo({
    predict(_it: ModelItem, ctx: { signal: AbortSignal }) {
      signals.push(ctx.signal);
      return never();
    },
  } as Partial<ModelDefinition<undefined>>);
  return { runtime: await ready(model), signals };
}

async function ready<S>(model: ReturnType<typeof defineModel<S>>): Promise<Runtime<S>> {
  const runtime = new Runtime(model);
  await runtime.load();
  return runtime;
}

describe("Runtime lifecycle", () => {
  test("idle -> loading -> ready, with load's result as ctx.state", async () => {
    const seen: { state?: RuntimeState; metadataName?: string } = {};
    let runtime: Runtime<{ weights: number }> | undefined;
    const model = defineModel({
      name: "Stateful",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "out.txt" }],
      load(ctx) {
        seen.state = runtime?.state;
        seen.metadataName = ctx.metadata.name;
        return { weights: 42 };
      },
      predict: (_it, ctx) => ({ "out.txt": String(ctx.state.weights) }),
    });
    runtime = new Runtime(model);
    const events: RuntimeState[] = [];
    runtime.onStateChange((state) => events.push(state));
    assert.equal(runtime.state, "idle");
    assert.equal(runtime.metadata, model.metadata);
    await runtime.load();
    assert.equal(seen.state, "loading");
    assert.equal(seen.metadataName, "Stateful");
    assert.equal(runtime.state, "ready");
    assert.deepEqual(events, ["loading", "ready"]);
    assert.equal(runtime.loadError, undefined);
    assert.deepEqual(outputsOf((await runtime.run([item({ input: "x" })]))[0]), { "out.txt": "42" });
  });

  test("a model without load() becomes ready", async () => {
    const { model } = echo();
    const runtime = await ready(model);
    assert.equal(runtime.state, "ready");
  });

  test("onStateChange returns an unsubscribe function", async () => {
    const { model } = echo();
    const runtime = new Runtime(model);
    const kept: RuntimeState[] = [];
    const dropped: RuntimeState[] = [];
    runtime.onStateChange((s) => kept.push(s));
    const unsubscribe = runtime.onStateChange((s) => dropped.push(s));
    await runtime.load();
    unsubscribe();
    await runtime.drain();
    assert.deepEqual(kept, ["loading", "ready", "draining", "stopped"]);
    assert.deepEqual(dropped, ["loading", "ready"]);
  });

  test("concurrent load() calls share one load, and a loaded model is not loaded again", async () => {
    const gate = deferred();
    let loads = 0;
    const { model } = echo({
      load: async () => {
        loads++;
        await gate.promise;
      },
    });
    const runtime = new Runtime(model);
    const first = runtime.load();
    const second = runtime.load();
    const third = runtime.load();
    assert.equal(second, first);
    assert.equal(third, first);
    assert.equal(runtime.state, "loading");
    gate.resolve();
    await Promise.all([first, second, third]);
    assert.equal(loads, 1);
    await runtime.load();
    assert.equal(loads, 1);
    assert.equal(runtime.state, "ready");
  });

  test("run() before load() gives FAILED_PRECONDITION per item without calling predict", async () => {
    const { model, calls } = echo();
    const runtime = new Runtime(model);
    const outcomes = await runtime.run([item({ input: "a" }), item({ input: "b" })]);
    assert.equal(outcomes.length, 2);
    for (const outcome of outcomes) {
      assert.match(errorOf(outcome, Code.FAILED_PRECONDITION).message, /^Model has not been initialized: call Status first/);
    }
    assert.equal(calls.length, 0);
  });

  test("a failed load: state failed, loadError set, load() rejects, run() gives FAILED_PRECONDITION per item", async () => {
    const { model, calls } = echo({
      load: () => {
        throw new Error("weights file missing");
      },
    });
    const runtime = new Runtime(model);
    const events: RuntimeState[] = [];
    runtime.onStateChange((s) => events.push(s));
    await assert.rejects(runtime.load(), (error: unknown) => {
      assert.ok(error instanceof ChassisError);
      assert.equal(error.code, Code.INTERNAL);
      assert.equal(error.message, "weights file missing");
      return true;
    });
    assert.equal(runtime.state, "failed");
    assert.deepEqual(events, ["loading", "failed"]);
    assert.equal(runtime.loadError?.code, Code.INTERNAL);
    assert.equal(runtime.loadError?.message, "weights file missing");
    const outcomes = await runtime.run([item({ input: "a" }), item({ input: "b" })]);
    assert.equal(outcomes.length, 2);
    for (const outcome of outcomes) {
      const error = errorOf(outcome, Code.FAILED_PRECONDITION);
      assert.ok(error.message.startsWith("Model has not been initialized"), error.message);
      assert.match(error.message, /weights file missing/);
    }
    assert.equal(calls.length, 0);
  });

  test("a load that throws a non-Error keeps its text", async () => {
    const { model } = echo({
      load: () => {
        throw "no GPU";
      },
    });
    const runtime = new Runtime(model);
    await assert.rejects(runtime.load(), (error: unknown) => error instanceof ChassisError && error.message === "no GPU");
    assert.equal(runtime.loadError?.message, "no GPU");
  });

  test("load() after a failed load retries it", async () => {
    let loads = 0;
    const { model } = echo<{ loads: number }>({
      load: () => {
        loads++;
        if (loads === 1) throw new Error("flaky");
        return { loads };
      },
      predict: (_it: ModelItem, ctx: { state: { loads: number } }) => ({ "out.txt": `loads=${ctx.state.loads}` }),
    } as Partial<ModelDefinition<{ loads: number }>>);
    const runtime = new Runtime(model);
    const events: RuntimeState[] = [];
    runtime.onStateChange((s) => events.push(s));
    await assert.rejects(runtime.load(), /flaky/);
    assert.equal(runtime.state, "failed");
    await runtime.load();
    assert.equal(loads, 2);
    assert.equal(runtime.state, "ready");
    assert.equal(runtime.loadError, undefined);
    assert.deepEqual(events, ["loading", "failed", "loading", "ready"]);
    assert.deepEqual(outputsOf((await runtime.run([item({ input: "x" })]))[0]), { "out.txt": "loads=2" });
  });

  test("a load slower than timeout.status fails with DEADLINE_EXCEEDED", async () => {
    const { model } = echo({ load: never, timeout: { status: "100ms" } });
    const runtime = new Runtime(model);
    const started = performance.now();
    await assert.rejects(runtime.load(), (error: unknown) => {
      assert.ok(error instanceof ChassisError);
      assert.equal(error.code, Code.DEADLINE_EXCEEDED);
      assert.equal(error.message, "load() did not finish within timeout.status (100ms)");
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 90 && elapsed < 1000, `took ${elapsed} ms`);
    assert.equal(runtime.state, "failed");
    assert.equal(runtime.loadError?.code, Code.DEADLINE_EXCEEDED);
    assert.match(errorOf((await runtime.run([item({ input: "a" })]))[0], Code.FAILED_PRECONDITION).message, /timeout\.status \(100ms\)/);
  });

  test("a failed load is logged as an error", async () => {
    const lines: string[] = [];
    const { model } = echo({
      load: () => {
        throw new Error("bad weights");
      },
    });
    const runtime = new Runtime(model, { log: createLogger("debug", (line) => lines.push(line)) });
    await assert.rejects(runtime.load());
    assert.ok(
      lines.some((line) => / ERROR model Echo failed to load: bad weights/.test(line)),
      lines.join(""),
    );
  });
});

describe("Runtime.run validation (predict is not called)", () => {
  const twoInputs = () => {
    const calls: number[] = [];
    const model = defineModel({
      name: "Two",
      version: "1",
      inputs: [
        { key: "image", maxSize: "1K" },
        { key: "options", required: false, maxSize: "10" },
      ],
      outputs: [{ key: "out.txt" }],
      predict(it) {
        calls.push(1);
        return { "out.txt": it.has("options") ? "with options" : "plain" };
      },
    });
    return { model, calls };
  };

  test("an unknown key is INVALID_ARGUMENT naming it and the model's inputs", async () => {
    const { model, calls } = twoInputs();
    const runtime = await ready(model);
    const [outcome] = await runtime.run([item({ image: "x", extra: "y" })]);
    const error = errorOf(outcome, Code.INVALID_ARGUMENT);
    assert.match(error.message, /unknown input "extra"/);
    assert.match(error.message, /item has inputs "image", "extra"; the model's inputs are "image", "options" \(optional\)/);
    assert.equal(calls.length, 0);
  });

  test("a missing required key is INVALID_ARGUMENT; a missing optional key is fine", async () => {
    const { model, calls } = twoInputs();
    const runtime = await ready(model);
    const [missing, plain] = await runtime.run([item({ options: "{}" }), item({ image: "x" })]);
    assert.match(errorOf(missing, Code.INVALID_ARGUMENT).message, /^missing input "image"/);
    assert.deepEqual(outputsOf(plain), { "out.txt": "plain" });
    assert.equal(calls.length, 1);
  });

  test("an input over its max_size is RESOURCE_EXHAUSTED naming the key and the limit", async () => {
    const { model, calls } = twoInputs();
    const runtime = await ready(model);
    const [over, atLimit, overOptional] = await runtime.run([
      item({ image: new Uint8Array(1025) }),
      item({ image: new Uint8Array(1024) }),
      item({ image: "x", options: "12345678901" }),
    ]);
    assert.match(
      errorOf(over, Code.RESOURCE_EXHAUSTED).message,
      /^input "image" is \S+ \(1025 bytes\), over its max_size of 1K \(1024 bytes\)/,
    );
    assert.deepEqual(outputsOf(atLimit), { "out.txt": "plain" });
    assert.match(
      errorOf(overOptional, Code.RESOURCE_EXHAUSTED).message,
      /input "options" is 11 bytes \(11 bytes\), over its max_size of 10 \(10 bytes\)/,
    );
    assert.equal(calls.length, 1);
  });

  test("an empty item is INVALID_ARGUMENT", async () => {
    const optionalOnly = defineModel({
      name: "Opt",
      version: "1",
      inputs: [{ key: "a", required: false }],
      outputs: [{ key: "out.txt" }],
      predict: () => {
        throw new Error("predict must not be called");
      },
    });
    const [empty] = await (await ready(optionalOnly)).run([{}]);
    assert.match(
      errorOf(empty, Code.INVALID_ARGUMENT).message,
      /^the item has no inputs \(item has no inputs; the model's inputs are "a" \(optional\)\)$/,
    );

    const { model, calls } = twoInputs();
    const [emptyRequired] = await (await ready(model)).run([{}]);
    assert.match(errorOf(emptyRequired, Code.INVALID_ARGUMENT).message, /^missing input "image" \(item has no inputs;/);
    assert.equal(calls.length, 0);
  });

  test("valid and invalid items keep their order; only the valid ones reach predict", async () => {
    const { model, calls } = echo();
    const runtime = await ready(model);
    const outcomes = await runtime.run([item({ input: "a" }), item({ nope: "b" }), item({ input: "c" }), {}]);
    assert.equal(outcomes.length, 4);
    assert.deepEqual(outputsOf(outcomes[0]), { "out.txt": "a" });
    errorOf(outcomes[1], Code.INVALID_ARGUMENT);
    assert.deepEqual(outputsOf(outcomes[2]), { "out.txt": "c" });
    errorOf(outcomes[3], Code.INVALID_ARGUMENT);
    assert.deepEqual(calls.sort(), ["a", "c"]);
  });

  test("no items give no outcomes", async () => {
    const { model, calls } = echo();
    assert.deepEqual(await (await ready(model)).run([]), []);
    assert.equal(calls.length, 0);
  });
});

describe("Runtime.run outputs and errors", () => {
  const outputsModel = (predict: (it: ModelItem) => unknown) =>
    defineModel({
      name: "Outputs",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "out.txt" }, { key: "results.json" }, { key: "raw.bin" }],
      predict: predict as (it: ModelItem) => Record<string, string>,
    });

  test("strings are encoded as UTF-8 and bytes pass through unchanged", async () => {
    const raw = new Uint8Array([0, 200, 255]);
    const runtime = await ready(outputsModel(() => ({ "out.txt": "héllo ✓", "raw.bin": raw })));
    const [outcome] = await runtime.run([item({ input: "x" })]);
    assert.ok(outcome?.ok);
    assert.deepEqual([...(outcome.outputs["out.txt"] ?? [])], [...new TextEncoder().encode("héllo ✓")]);
    assert.deepEqual([...(outcome.outputs["raw.bin"] ?? [])], [0, 200, 255]);
    assert.deepEqual(Object.keys(outcome.outputs).sort(), ["out.txt", "raw.bin"]);
  });

  test("a plain value for an application/json output is encoded as JSON", async () => {
    const runtime = await ready(outputsModel(() => ({ "results.json": { label: "cat", scores: [0.9, 0.1] } })));
    const [outcome] = await runtime.run([item({ input: "x" })]);
    assert.deepEqual(outputsOf(outcome), { "results.json": '{"label":"cat","scores":[0.9,0.1]}' });
  });

  test("a plain object for a non-JSON output is an INTERNAL error naming the output", async () => {
    const runtime = await ready(outputsModel(() => ({ "raw.bin": { a: 1 } })));
    const [outcome] = await runtime.run([item({ input: "x" })]);
    assert.match(
      errorOf(outcome, Code.INTERNAL).message,
      /^predict returned an object for output "raw\.bin" \(application\/octet-stream\); expected bytes \(Uint8Array\) or a string$/,
    );
  });

  test("an undeclared output key is a per-item INTERNAL error naming it", async () => {
    const runtime = await ready(
      outputsModel((it) => (it.text("input") === "bad" ? { "out.txt": "x", "extra.txt": "y" } : { "out.txt": "ok" })),
    );
    const [good, bad] = await runtime.run([item({ input: "good" }), item({ input: "bad" })]);
    assert.deepEqual(outputsOf(good), { "out.txt": "ok" });
    assert.match(
      errorOf(bad, Code.INTERNAL).message,
      /^predict returned output "extra\.txt", which the model does not declare \(declared: "out\.txt", "results\.json", "raw\.bin"\)$/,
    );
  });

  test("a result that is not an object keyed by output is an INTERNAL error", async () => {
    const results: Record<string, unknown> = {
      string: "just text",
      null: null,
      array: [{ "out.txt": "x" }],
      bytes: new Uint8Array([1]),
      number: 7,
      undefined: undefined,
    };
    const runtime = await ready(outputsModel((it) => results[it.text("input")]));
    const outcomes = await runtime.run(Object.keys(results).map((input) => item({ input })));
    const described = ["a string", "null", "an array", "bytes", "a number", "a undefined"];
    outcomes.forEach((outcome, i) => {
      assert.match(
        errorOf(outcome, Code.INTERNAL).message,
        new RegExp(
          `^predict returned ${described[i]}; expected an object keyed by output \\("out\\.txt", "results\\.json", "raw\\.bin"\\)$`,
        ),
      );
    });
  });

  test("a JSON output value that JSON cannot encode is the model's fault (INTERNAL), not the caller's", async () => {
    const runtime = await ready(outputsModel(() => ({ "results.json": undefined })));
    const [outcome] = await runtime.run([item({ input: "x" })]);
    assert.match(errorOf(outcome, Code.INTERNAL).message, /results\.json/);
  });

  test("predict throwing fails only its item: an Error keeps its message, a non-Error its text, a ChassisError its code", async () => {
    const runtime = await ready(
      outputsModel((it) => {
        const what = it.text("input");
        if (what === "error") throw new Error("model exploded");
        if (what === "string") throw "plain string thrown";
        if (what === "object") throw { reason: "odd" };
        if (what === "chassis") throw new ChassisError(Code.NOT_FOUND, "no such label");
        if (what === "missing") it.get("other");
        return { "out.txt": what };
      }),
    );
    const [error, string, object, chassis, missing, fine] = await runtime.run(
      ["error", "string", "object", "chassis", "missing", "fine"].map((input) => item({ input })),
    );
    assert.equal(errorOf(error, Code.UNKNOWN).message, "model exploded");
    assert.equal(errorOf(string, Code.UNKNOWN).message, "plain string thrown");
    assert.equal(errorOf(object, Code.UNKNOWN).message, '{"reason":"odd"}');
    assert.equal(errorOf(chassis, Code.NOT_FOUND).message, "no such label");
    assert.match(errorOf(missing, Code.INVALID_ARGUMENT).message, /^missing input "other"/);
    assert.deepEqual(outputsOf(fine), { "out.txt": "fine" });
  });

  test("an async predict that rejects fails only its item", async () => {
    const runtime = await ready(
      outputsModel(async (it) => {
        await sleep(1);
        if (it.text("input") === "bad") throw new Error("async failure");
        return { "out.txt": "ok" };
      }),
    );
    const [good, bad] = await runtime.run([item({ input: "good" }), item({ input: "bad" })]);
    assert.deepEqual(outputsOf(good), { "out.txt": "ok" });
    assert.equal(errorOf(bad, Code.UNKNOWN).message, "async failure");
  });

  test("inFlight counts running calls", async () => {
    const gate = deferred();
    const runtime = await ready(
      outputsModel(async () => {
        await gate.promise;
        return { "out.txt": "x" };
      }),
    );
    assert.equal(runtime.inFlight, 0);
    const running = runtime.run([item({ input: "x" })]);
    assert.equal(runtime.inFlight, 1);
    gate.resolve();
    await running;
    assert.equal(runtime.inFlight, 0);
  });
});

describe("Runtime.run with predictBatch", () => {
  const batchModel = (batchSize: number | undefined, onBatch: (texts: string[]) => unknown) => {
    const chunks: number[] = [];
    const model = defineModel({
      name: "Batch",
      version: "1",
      inputs: [{ key: "input", maxSize: "1K" }],
      outputs: [{ key: "out.txt" }],
      ...(batchSize === undefined ? {} : { batchSize }),
      predictBatch(items) {
        chunks.push(items.length);
        return onBatch(items.map((it) => it.text("input"))) as Array<Record<string, string> | Error>;
      },
    });
    return { model, chunks };
  };
  const upper = (texts: string[]) => texts.map((t) => ({ "out.txt": t.toUpperCase() }));
  const inputs = (...texts: string[]) => texts.map((input) => item({ input }));

  test("items are chunked by batchSize and results keep their order", async () => {
    const { model, chunks } = batchModel(3, upper);
    const runtime = await ready(model);
    const outcomes = await runtime.run(inputs("a", "b", "c", "d", "e", "f", "g"));
    assert.deepEqual(chunks, [3, 3, 1]);
    assert.deepEqual(
      outcomes.map((o) => outputsOf(o)["out.txt"]),
      ["A", "B", "C", "D", "E", "F", "G"],
    );
  });

  test("the default batchSize is 8", async () => {
    const { model, chunks } = batchModel(undefined, upper);
    const runtime = await ready(model);
    await runtime.run(inputs(..."abcdefghijk".split("")));
    assert.deepEqual(chunks, [8, 3]);
  });

  test("invalid items are left out of the batches", async () => {
    const { model, chunks } = batchModel(2, upper);
    const runtime = await ready(model);
    const outcomes = await runtime.run([item({ input: "a" }), item({ wrong: "b" }), item({ input: "c" }), item({ input: "d" })]);
    assert.deepEqual(chunks, [2, 1]);
    assert.equal(outputsOf(outcomes[0])["out.txt"], "A");
    errorOf(outcomes[1], Code.INVALID_ARGUMENT);
    assert.equal(outputsOf(outcomes[2])["out.txt"], "C");
    assert.equal(outputsOf(outcomes[3])["out.txt"], "D");
  });

  test("an Error in the results fails that item only", async () => {
    const { model } = batchModel(4, (texts) => texts.map((t) => (t === "bad" ? new Error(`bad item ${t}`) : { "out.txt": t })));
    const runtime = await ready(model);
    const [a, bad, c] = await runtime.run(inputs("a", "bad", "c"));
    assert.equal(outputsOf(a)["out.txt"], "a");
    assert.equal(errorOf(bad, Code.UNKNOWN).message, "bad item bad");
    assert.equal(outputsOf(c)["out.txt"], "c");
  });

  test("an undeclared output for one item fails that item only", async () => {
    const { model } = batchModel(4, (texts) => texts.map((t) => (t === "odd" ? { "odd.txt": t } : { "out.txt": t })));
    const runtime = await ready(model);
    const [a, odd] = await runtime.run(inputs("a", "odd"));
    assert.equal(outputsOf(a)["out.txt"], "a");
    assert.match(errorOf(odd, Code.INTERNAL).message, /predict returned output "odd\.txt", which the model does not declare/);
  });

  test("a predictBatch that throws fails only its chunk", async () => {
    const { model, chunks } = batchModel(2, (texts) => {
      if (texts.includes("boom")) throw new Error("batch exploded");
      return upper(texts);
    });
    const runtime = await ready(model);
    const outcomes = await runtime.run(inputs("a", "b", "boom", "c", "d"));
    assert.deepEqual(chunks, [2, 2, 1]);
    assert.equal(outputsOf(outcomes[0])["out.txt"], "A");
    assert.equal(outputsOf(outcomes[1])["out.txt"], "B");
    assert.equal(errorOf(outcomes[2], Code.UNKNOWN).message, "batch exploded");
    assert.equal(errorOf(outcomes[3], Code.UNKNOWN).message, "batch exploded");
    assert.equal(outputsOf(outcomes[4])["out.txt"], "D");
  });

  test("a wrong number of results fails that chunk with a clear INTERNAL error", async () => {
    const { model } = batchModel(3, (texts) => {
      if (texts.includes("short")) return upper(texts).slice(1);
      if (texts.includes("long")) return [...upper(texts), { "out.txt": "extra" }];
      if (texts.includes("none")) return { "out.txt": "not an array" };
      return upper(texts);
    });
    const runtime = await ready(model);
    const outcomes = await runtime.run(inputs("a", "short", "b", "c", "d", "e", "long", "f", "g", "none"));
    for (const i of [0, 1, 2]) {
      assert.equal(
        errorOf(outcomes[i], Code.INTERNAL).message,
        "predictBatch returned 2 results for 3 items; it must return one result per item, in order",
      );
    }
    assert.deepEqual(
      [3, 4, 5].map((i) => outputsOf(outcomes[i])["out.txt"]),
      ["C", "D", "E"],
    );
    for (const i of [6, 7, 8]) assert.match(errorOf(outcomes[i], Code.INTERNAL).message, /^predictBatch returned 4 results for 3 items/);
    assert.match(errorOf(outcomes[9], Code.INTERNAL).message, /^predictBatch returned no array for 1 items/);
  });
});

describe("Runtime.run timeouts and cancellation", () => {
  test("a predict slower than timeout.run gives DEADLINE_EXCEEDED for its item, aborts its signal, and others are fine", async () => {
    const signals = new Map<string, AbortSignal>();
    const { model } = echo({
      timeout: { run: "200ms" },
      predict(it: ModelItem, ctx: { signal: AbortSignal }) {
        const text = it.text("input");
        signals.set(text, ctx.signal);
        if (text === "hang") return never();
        return { "out.txt": text };
      },
    } as Partial<ModelDefinition<undefined>>);
    const lines: string[] = [];
    const runtime = new Runtime(model, { log: createLogger("warn", (line) => lines.push(line)) });
    await runtime.load();
    const started = performance.now();
    const [fast, hang, other] = await runtime.run([item({ input: "fast" }), item({ input: "hang" }), item({ input: "other" })]);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 1500, `took ${elapsed} ms`);
    assert.deepEqual(outputsOf(fast), { "out.txt": "fast" });
    assert.deepEqual(outputsOf(other), { "out.txt": "other" });
    assert.equal(errorOf(hang, Code.DEADLINE_EXCEEDED).message, "predict did not finish within the run timeout of 200ms (timeout.run)");
    const hangSignal = signals.get("hang");
    assert.ok(hangSignal, "predict saw no signal for the hanging item");
    assert.equal(hangSignal.aborted, true);
    assert.ok(hangSignal.reason instanceof ChassisError);
    assert.equal(hangSignal.reason.code, Code.DEADLINE_EXCEEDED);
    assert.equal(signals.get("fast")?.aborted, false);
    assert.ok(
      lines.some((line) => /WARN predict did not finish within the run timeout of 200ms/.test(line)),
      lines.join(""),
    );
    // The runtime keeps serving after abandoning the hung predict.
    assert.deepEqual(outputsOf((await runtime.run([item({ input: "after" })]))[0]), { "out.txt": "after" });
    assert.equal(runtime.inFlight, 0);
  });

  test("a late result or late rejection of an abandoned predict is ignored (no unhandled rejection)", async () => {
    let finished = 0;
    const { model } = echo({
      timeout: { run: "50ms" },
      predict: async (it: ModelItem) => {
        await sleep(100);
        finished++;
        if (it.text("input") === "reject") throw new Error("late failure");
        return { "out.txt": "too late" };
      },
    } as Partial<ModelDefinition<undefined>>);
    const runtime = await ready(model);
    const outcomes = await runtime.run([item({ input: "resolve" }), item({ input: "reject" })]);
    for (const outcome of outcomes) errorOf(outcome, Code.DEADLINE_EXCEEDED);
    // Let the abandoned predicts settle inside this test, so an unhandled rejection would fail it.
    await sleep(120);
    assert.equal(finished, 2);
    for (const outcome of outcomes) errorOf(outcome, Code.DEADLINE_EXCEEDED);
  });

  test("a hanging predictBatch gives DEADLINE_EXCEEDED to every item of its chunk", async () => {
    const model = defineModel({
      name: "HangBatch",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "out.txt" }],
      batchSize: 2,
      timeout: { run: "100ms" },
      predictBatch: (items) =>
        items.some((it) => it.text("input") === "hang") ? never() : items.map((it) => ({ "out.txt": it.text("input") })),
    });
    const runtime = await ready(model);
    const outcomes = await runtime.run(["a", "hang", "b", "c"].map((input) => item({ input })));
    errorOf(outcomes[0], Code.DEADLINE_EXCEEDED);
    errorOf(outcomes[1], Code.DEADLINE_EXCEEDED);
    assert.equal(outputsOf(outcomes[2])["out.txt"], "b");
    assert.equal(outputsOf(outcomes[3])["out.txt"], "c");
  });

  test("a very long timeout.run (1000h) does not expire at once", async () => {
    const { model } = echo({
      timeout: { run: "1000h" },
      predict: async () => {
        await sleep(20);
        return { "out.txt": "done" };
      },
    } as Partial<ModelDefinition<undefined>>);
    const runtime = await ready(model);
    assert.deepEqual(outputsOf((await runtime.run([item({ input: "x" })]))[0]), { "out.txt": "done" });
  });

  test("the caller aborting its signal gives CANCELLED and aborts ctx.signal", async () => {
    const { runtime, signals } = await hangingRuntime();
    const caller = new AbortController();
    const started = performance.now();
    const running = runtime.run([item({ input: "a" }), item({ input: "b" })], { signal: caller.signal });
    setTimeout(() => caller.abort(), 30);
    const outcomes = await running;
    assert.ok(performance.now() - started < 1000);
    for (const outcome of outcomes) assert.equal(errorOf(outcome, Code.CANCELLED).message, "the call was cancelled by the client");
    assert.equal(signals.length, 2);
    for (const signal of signals) {
      assert.equal(signal.aborted, true);
      assert.equal((signal.reason as ChassisError).code, Code.CANCELLED);
    }
    assert.equal(runtime.inFlight, 0);
  });

  test("ctx.aborted and a destructured ctx.throwIfAborted follow the timeout and the caller without making an AbortSignal", async () => {
    type Seen = { before: boolean; after: boolean; thrown?: unknown; signalsMade?: number; signal?: AbortSignal };
    const made = { count: 0 };
    const Original = globalThis.AbortController;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        made.count++;
      }
    };
    try {
      // Polls ctx.aborted as a long predict would, then throws through the destructured throwIfAborted.
      async function watch(ctx: { aborted: boolean; throwIfAborted: () => void; signal: AbortSignal }, seen: Seen): Promise<never> {
        const { throwIfAborted } = ctx;
        seen.before = ctx.aborted;
        while (!ctx.aborted) await sleep(5);
        seen.after = ctx.aborted;
        try {
          throwIfAborted();
        } catch (error) {
          seen.thrown = error;
        }
        seen.signalsMade = made.count;
        seen.signal = ctx.signal; // made now, born aborted with the same reason
        throw seen.thrown;
      }

      const byTimeout: Seen = { before: true, after: false };
      const batchModel = defineModel({
        name: "WatchBatch",
        version: "1",
        inputs: [{ key: "input" }],
        outputs: [{ key: "out.txt" }],
        batchSize: 2,
        timeout: { run: "60ms" },
        predictBatch: (_items, ctx) => watch(ctx, byTimeout),
      });
      const [timedOut] = await (await ready(batchModel)).run([item({ input: "a" })]);
      errorOf(timedOut, Code.DEADLINE_EXCEEDED);
      await sleep(20); // the abandoned predict notices within one 5 ms poll
      assert.equal(byTimeout.before, false);
      assert.equal(byTimeout.after, true);
      assert.ok(byTimeout.thrown instanceof ChassisError);
      assert.equal(byTimeout.thrown.code, Code.DEADLINE_EXCEEDED);
      assert.equal(byTimeout.signalsMade, 0, "ctx.aborted or throwIfAborted made an AbortController");
      assert.equal(byTimeout.signal?.aborted, true);
      assert.equal(byTimeout.signal?.reason, byTimeout.thrown);

      const byCaller: Seen = { before: true, after: false };
      made.count = 0;
      const { model } = echo({ predict: (_it, ctx) => watch(ctx, byCaller) });
      const caller = new LazyAbortSource();
      const running = (await ready(model)).run([item({ input: "a" })], caller);
      setTimeout(() => caller.abort(), 30);
      errorOf((await running)[0], Code.CANCELLED);
      await sleep(20);
      assert.equal(byCaller.before, false);
      assert.equal(byCaller.after, true);
      assert.ok(byCaller.thrown instanceof ChassisError);
      assert.equal(byCaller.thrown.code, Code.CANCELLED);
      assert.equal(byCaller.signalsMade, 0, "ctx.aborted or throwIfAborted made an AbortController");
      assert.equal(byCaller.signal?.reason, byCaller.thrown);
    } finally {
      globalThis.AbortController = Original;
    }
  });

  test("20 items under one caller: an AbortSignal or a LazyAbortSource cancels them all, with no MaxListenersExceededWarning", async () => {
    const { runtime, signals } = await hangingRuntime();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const items = Array.from({ length: 20 }, (_, i) => item({ input: String(i) }));
      const controller = new AbortController();
      const lazy = new LazyAbortSource();
      for (const [caller, abort] of [
        [{ signal: controller.signal }, () => controller.abort()],
        [lazy, () => lazy.abort()],
      ] as const) {
        signals.length = 0;
        const running = runtime.run(items, caller);
        setTimeout(abort, 20);
        const outcomes = await running;
        assert.equal(outcomes.length, 20);
        for (const outcome of outcomes) assert.equal(errorOf(outcome, Code.CANCELLED).message, "the call was cancelled by the client");
        assert.equal(signals.length, 20);
        for (const signal of signals) assert.equal(signal.aborted, true);
      }
      await sleep(10); // warnings are emitted on the next tick
      assert.deepEqual(warnings, []);
    } finally {
      process.off("warning", onWarning);
    }
    assert.equal(runtime.inFlight, 0);
  });

  test("an already-aborted caller signal gives CANCELLED for every item", async () => {
    const { model } = echo();
    const runtime = await ready(model);
    const outcomes = await runtime.run([item({ input: "a" }), item({ input: "b" })], { signal: AbortSignal.abort() });
    assert.equal(outcomes.length, 2);
    for (const outcome of outcomes) errorOf(outcome, Code.CANCELLED);
  });
});

describe("Runtime.drain", () => {
  test("draining then stopped; waits for an in-flight run; refuses new work; unloads once with the loaded state", async () => {
    const gate = deferred();
    const unloads: unknown[] = [];
    const loaded = { session: "onnx" };
    let predicts = 0;
    const model = defineModel({
      name: "Drain",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "out.txt" }],
      load: () => loaded,
      unload: (state) => {
        unloads.push(state);
      },
      predict: async (it) => {
        predicts++;
        await gate.promise;
        return { "out.txt": it.text("input") };
      },
    });
    const runtime = await ready(model);
    const events: RuntimeState[] = [];
    runtime.onStateChange((s) => events.push(s));

    const inFlight = runtime.run([item({ input: "in flight" })]);
    const drained = runtime.drain();
    assert.equal(runtime.drain(), drained, "a second drain() shares the first");
    assert.equal(runtime.state, "draining");
    assert.equal(await settled(drained), false, "drain must wait for the in-flight run");
    assert.equal(unloads.length, 0, "unload must wait for the in-flight run");

    const refused = await runtime.run([item({ input: "late 1" }), item({ input: "late 2" })]);
    assert.equal(refused.length, 2);
    for (const outcome of refused) assert.match(errorOf(outcome, Code.UNAVAILABLE).message, /shutting down/);
    assert.equal(predicts, 1);
    await assert.rejects(runtime.load(), (error: unknown) => error instanceof ChassisError && error.code === Code.UNAVAILABLE);

    gate.resolve();
    assert.deepEqual(outputsOf((await inFlight)[0]), { "out.txt": "in flight" });
    assert.equal(await settled(drained), true, "drain must finish as soon as the last run does");
    assert.equal(runtime.state, "stopped");
    assert.deepEqual(events, ["draining", "stopped"]);
    assert.equal(unloads.length, 1);
    assert.equal(unloads[0], loaded);

    await runtime.drain();
    assert.equal(unloads.length, 1);
    errorOf((await runtime.run([item({ input: "after" })]))[0], Code.UNAVAILABLE);
  });

  test("drain() with nothing in flight stops at once", async () => {
    let unloads = 0;
    const { model } = echo({ load: () => "state", unload: () => void unloads++ });
    const runtime = await ready(model);
    await runtime.drain();
    assert.equal(runtime.state, "stopped");
    assert.equal(unloads, 1);
  });

  test("a model that never loaded is not unloaded", async () => {
    let unloads = 0;
    const { model } = echo({ unload: () => void unloads++ });
    const runtime = new Runtime(model);
    await runtime.drain();
    assert.equal(runtime.state, "stopped");
    assert.equal(unloads, 0);
  });

  test("an unload() that throws is logged and drain still stops", async () => {
    const lines: string[] = [];
    const { model } = echo({
      unload: () => {
        throw new Error("cannot free GPU");
      },
    });
    const runtime = new Runtime(model, { log: createLogger("error", (line) => lines.push(line)) });
    await runtime.load();
    await runtime.drain();
    assert.equal(runtime.state, "stopped");
    assert.ok(
      lines.some((line) => /unload\(\) failed: cannot free GPU/.test(line)),
      lines.join(""),
    );
  });

  test("drain gives up waiting after its timeout", async () => {
    const { model } = echo({ predict: never, timeout: { run: "250ms" } } as Partial<ModelDefinition<undefined>>);
    const runtime = await ready(model);
    const stuck = runtime.run([item({ input: "x" })]);
    const started = performance.now();
    await runtime.drain(50);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 45 && elapsed < 200, `took ${elapsed} ms`);
    assert.equal(runtime.state, "stopped");
    assert.equal(runtime.inFlight, 1);
    // The abandoned call still ends with its own deadline.
    errorOf((await stuck)[0], Code.DEADLINE_EXCEEDED);
    assert.equal(runtime.inFlight, 0);
  });

  test("drain() during a load unloads what the load returns (or load() rejects)", async () => {
    const gate = deferred();
    const unloads: unknown[] = [];
    const { model } = echo<string>({
      load: async () => {
        await gate.promise;
        return "weights";
      },
      unload: (state: string) => void unloads.push(state),
    });
    const runtime = new Runtime(model);
    const loading = runtime.load();
    await runtime.drain();
    gate.resolve();
    const loadResult = await loading.then(
      () => "resolved",
      () => "rejected",
    );
    await sleep(5);
    assert.ok(loadResult === "rejected" || unloads.length === 1, `load() ${loadResult}, unload calls: ${unloads.length}`);
    assert.deepEqual(unloads, ["weights"]);
  });
});

describe("model.test()", () => {
  test("loads, runs and drains; strings are sent as UTF-8", async () => {
    const received: number[][] = [];
    const lifecycle: string[] = [];
    const model = defineModel({
      name: "Bytes",
      version: "1",
      inputs: [{ key: "input" }],
      outputs: [{ key: "results.json" }],
      load: () => {
        lifecycle.push("load");
        return "state";
      },
      unload: (state) => {
        lifecycle.push(`unload ${state}`);
      },
      predict(it) {
        const bytes = it.get("input");
        received.push([...bytes]);
        return { "results.json": JSON.stringify({ length: bytes.byteLength, text: it.text("input") }) };
      },
    });
    const outcomes = await model.test([{ input: "é✓" }, { input: new Uint8Array([1, 2, 3]) }, { wrong: "x" }]);
    assert.equal(outcomes.length, 3);
    assert.deepEqual(received, [
      [0xc3, 0xa9, 0xe2, 0x9c, 0x93],
      [1, 2, 3],
    ]);
    assert.deepEqual(JSON.parse(outputsOf(outcomes[0])["results.json"] ?? ""), { length: 5, text: "é✓" });
    assert.equal(JSON.parse(outputsOf(outcomes[1])["results.json"] ?? "").length, 3);
    assert.match(errorOf(outcomes[2], Code.INVALID_ARGUMENT).message, /unknown input "wrong"/);
    assert.deepEqual(lifecycle, ["load", "unload state"]);
  });

  test("a failing load rejects model.test()", async () => {
    const { model } = echo({
      load: () => {
        throw new Error("no weights");
      },
    });
    await assert.rejects(model.test([{ input: "x" }]), /no weights/);
  });
});

/**
 * node --import tsx --test examples/digits/model.test.ts
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, type ItemOutcome } from "chassis-ts";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { CLASSES, type Digit, loadDigits, PIXELS, splitDigits } from "./dataset.js";
import model from "./model.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const metrics = JSON.parse(readFileSync(here("./metrics.json"), "utf8")) as {
  seed: number;
  split: { testFraction: number; train: number; test: number };
  accuracy: number;
  correct: number;
  sample: { row: number; label: number };
};
const sampleText = readFileSync(here("./sample.json"), "utf8");

const rows = loadDigits();
const split = splitDigits(rows, metrics.seed, metrics.split.testFraction);
const heldOut = split.test.map((i) => rows[i] as Digit);

interface Results {
  classPredictions: Array<{ class: number; score: number }>;
}
const decoder = new TextDecoder();
function resultsOf(outcome: ItemOutcome | undefined): Results {
  assert.ok(outcome, "missing outcome");
  assert.ok(outcome.ok, `expected success, got: ${outcome.ok ? "" : outcome.error.message}`);
  const bytes = outcome.outputs["results.json"];
  assert.ok(bytes, "missing results.json");
  return JSON.parse(decoder.decode(bytes)) as Results;
}
function errorOf(outcome: ItemOutcome | undefined): { code: Code; message: string } {
  assert.ok(outcome, "missing outcome");
  assert.ok(!outcome.ok, "expected a per-item error");
  return outcome.error;
}

test("split and metrics agree", () => {
  assert.equal(split.train.length, metrics.split.train);
  assert.equal(split.test.length, metrics.split.test);
  assert.equal(split.train.length + split.test.length, 1797);
  assert.ok(metrics.accuracy >= 0.95, `metrics.json accuracy ${metrics.accuracy}`);
});

test("sample.json is a real held-out row and predicts its label", async () => {
  const sample = JSON.parse(sampleText) as number[];
  assert.deepEqual(sample, rows[metrics.sample.row]?.pixels);
  assert.ok(split.test.includes(metrics.sample.row));
  const [outcome] = await model.test([{ input: sampleText }]);
  const results = resultsOf(outcome);
  assert.equal(results.classPredictions.length, 1);
  const [top] = results.classPredictions;
  assert.equal(top?.class, metrics.sample.label);
  assert.ok(top && top.score > 0.5 && top.score <= 1, `score ${top?.score}`);
  assert.equal(top?.score, Math.round(top.score * 1e5) / 1e5);
});

test("20 held-out rows (two batches): >= 18 right, outputs in input order", async () => {
  const digits = heldOut.slice(0, 20);
  const outcomes = await model.test(digits.map((d) => ({ input: JSON.stringify(d.pixels) })));
  assert.equal(outcomes.length, 20);
  const predicted = outcomes.map((o) => resultsOf(o).classPredictions[0]?.class);
  const correct = predicted.filter((p, i) => p === digits[i]?.label).length;
  assert.ok(correct >= 18, `only ${correct}/20 right`);

  // Order: each item's answer equals the one it gets alone.
  for (const i of [0, 7, 15, 16, 19]) {
    const [alone] = await model.test([{ input: JSON.stringify(digits[i]?.pixels) }]);
    assert.deepEqual(resultsOf(alone), resultsOf(outcomes[i]), `item ${i}`);
  }
  // And a reversed batch gives the reversed answers.
  const reversed = await model.test([...digits].reverse().map((d) => ({ input: JSON.stringify(d.pixels) })));
  assert.deepEqual(
    reversed.map((o) => resultsOf(o).classPredictions[0]?.class),
    [...predicted].reverse(),
  );
});

test("bad items fail alone with a clear message; good items in the same batch succeed", async () => {
  const good = heldOut[1] as Digit;
  const outcomes = await model.test([
    { input: "[1,2,3]" },
    { input: sampleText },
    { input: "not json" },
    { input: JSON.stringify(good.pixels) },
    { input: JSON.stringify([...good.pixels.slice(0, 63), 17]) },
    { input: '{"pixels":[]}' },
    { input: JSON.stringify([...good.pixels.slice(0, 10), "3", ...good.pixels.slice(11)]) },
  ]);
  assert.equal(outcomes.length, 7);

  const short = errorOf(outcomes[0]);
  assert.equal(short.code, Code.INVALID_ARGUMENT);
  assert.equal(short.message, "input must be a JSON array of 64 numbers (pixel values 0..16); got an array of 3");

  const notJson = errorOf(outcomes[2]);
  assert.equal(notJson.code, Code.INVALID_ARGUMENT);
  assert.match(notJson.message, /^input "input" is not valid JSON: /);

  assert.match(errorOf(outcomes[4]).message, /pixel values 0\.\.16\); value 63 is 17$/);
  assert.match(errorOf(outcomes[5]).message, /pixel values 0\.\.16\); got an object$/);
  assert.match(errorOf(outcomes[6]).message, /pixel values 0\.\.16\); value 10 is a string "3"$/);

  assert.equal(resultsOf(outcomes[1]).classPredictions[0]?.class, metrics.sample.label);
  assert.equal(resultsOf(outcomes[3]).classPredictions[0]?.class, good.label);

  // A batch of only bad items never reaches onnxruntime and still answers per item.
  const allBad = await model.test([{ input: "[]" }, { input: "null" }]);
  assert.match(errorOf(allBad[0]).message, /got an array of 0$/);
  assert.match(errorOf(allBad[1]).message, /got null$/);
});

test("model.onnx through onnxruntime reproduces metrics.json's held-out accuracy", async () => {
  const session = await InferenceSession.create(here("./model.onnx"), { intraOpNumThreads: 1 });
  try {
    assert.deepEqual(session.inputNames, ["input"]);
    assert.deepEqual(session.outputNames, ["probabilities"]);
    const input = new Float32Array(heldOut.length * PIXELS);
    for (const [i, d] of heldOut.entries()) input.set(d.pixels, i * PIXELS);
    const output = await session.run({ input: new Tensor("float32", input, [heldOut.length, PIXELS]) });
    const probabilities = output.probabilities?.data as Float32Array;
    assert.equal(probabilities.length, heldOut.length * CLASSES);
    let correct = 0;
    heldOut.forEach((d, i) => {
      const p = Array.from(probabilities.subarray(i * CLASSES, (i + 1) * CLASSES));
      const sum = p.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `row ${i}: probabilities sum to ${sum}`);
      if (p.indexOf(Math.max(...p)) === d.label) correct++;
    });
    assert.equal(correct, metrics.correct);
    assert.equal(correct / heldOut.length, metrics.accuracy);
    assert.ok(metrics.accuracy >= 0.95);
  } finally {
    await session.release();
  }
});

/**
 * Trains the digits classifier and exports it as ONNX.
 *
 *   npx tsx examples/digits/train.ts
 *
 * Multinomial (softmax) logistic regression on pixels / 16, fitted with
 * full-batch L-BFGS on the mean cross-entropy plus an L2 penalty on the
 * weights (the same objective as scikit-learn's LogisticRegression(C=1.0)).
 * Everything is deterministic: a seeded stratified split, zero initial
 * weights, a fixed iteration order, no threads, no clock in the outputs, so
 * running this twice writes byte-identical files.
 *
 * Writes, next to this file:
 *   model.onnx    input "input" float[N,64] (raw pixels 0..16) -> Mul(1/16)
 *                 -> MatMul W[64,10] -> Add b[10] -> Softmax(axis=1)
 *                 -> "probabilities" float[N,10]   (opset 13, IR version 7)
 *   metrics.json  held-out accuracy (measured by running model.onnx through
 *                 onnxruntime), split sizes, seed and training settings
 *   sample.json   the first held-out row, as a JSON array of 64 pixel values
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { CLASSES, type Digit, loadDigits, MAX_PIXEL, PIXELS, splitDigits } from "./dataset.js";
import { DataType, encodeModel } from "./onnx-writer.js";

export const SEED = 20240611;
export const TEST_FRACTION = 0.2;
/** Inverse regularization strength, as scikit-learn's C: penalty = ||W||^2 / (2 C n). */
const C = 1.0;
const MAX_ITERATIONS = 1000;
const GRADIENT_TOLERANCE = 1e-6;
const HISTORY = 10;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const started = performance.now();

const rows = loadDigits();
const split = splitDigits(rows, SEED, TEST_FRACTION);
const trainRows = split.train.map((i) => rows[i] as Digit);
const testRows = split.test.map((i) => rows[i] as Digit);
console.log(`data: ${rows.length} rows; split (seed ${SEED}): ${trainRows.length} train, ${testRows.length} held out`);

// ---------------------------------------------------------------------------
// The objective. Parameters theta = [W (64x10, row-major), b (10)].
const n = trainRows.length;
const X = new Float64Array(n * PIXELS);
const Y = new Int32Array(n);
trainRows.forEach((row, i) => {
  row.pixels.forEach((v, j) => {
    X[i * PIXELS + j] = v / MAX_PIXEL;
  });
  Y[i] = row.label;
});
const lambda = 1 / (C * n);
const WEIGHTS = PIXELS * CLASSES;
const PARAMS = WEIGHTS + CLASSES;

/** Mean cross-entropy + (lambda/2)||W||^2 at theta; writes its gradient into grad. */
function objective(theta: Float64Array, grad: Float64Array): number {
  grad.fill(0);
  const z = new Float64Array(CLASSES);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const x = i * PIXELS;
    for (let c = 0; c < CLASSES; c++) z[c] = theta[WEIGHTS + c] as number;
    for (let j = 0; j < PIXELS; j++) {
      const v = X[x + j] as number;
      if (v === 0) continue;
      const w = j * CLASSES;
      for (let c = 0; c < CLASSES; c++) z[c] = (z[c] as number) + v * (theta[w + c] as number);
    }
    let max = -Infinity;
    for (let c = 0; c < CLASSES; c++) max = Math.max(max, z[c] as number);
    let sum = 0;
    for (let c = 0; c < CLASSES; c++) {
      const e = Math.exp((z[c] as number) - max);
      z[c] = e;
      sum += e;
    }
    const label = Y[i] as number;
    loss += Math.log(sum) - Math.log(z[label] as number);
    // z becomes dLoss_i/dz = p - onehot(label), scaled by 1/n.
    for (let c = 0; c < CLASSES; c++) z[c] = ((z[c] as number) / sum - (c === label ? 1 : 0)) / n;
    for (let j = 0; j < PIXELS; j++) {
      const v = X[x + j] as number;
      if (v === 0) continue;
      const w = j * CLASSES;
      for (let c = 0; c < CLASSES; c++) grad[w + c] = (grad[w + c] as number) + v * (z[c] as number);
    }
    for (let c = 0; c < CLASSES; c++) grad[WEIGHTS + c] = (grad[WEIGHTS + c] as number) + (z[c] as number);
  }
  let penalty = 0;
  for (let k = 0; k < WEIGHTS; k++) {
    const w = theta[k] as number;
    penalty += w * w;
    grad[k] = (grad[k] as number) + lambda * w;
  }
  return loss / n + (lambda / 2) * penalty;
}

// ---------------------------------------------------------------------------
// L-BFGS (two-loop recursion) with a backtracking Armijo line search.
const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] as number) * (b[k] as number);
  return s;
};
const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function lbfgs(theta: Float64Array): { loss: number; iterations: number; gradient: number } {
  const grad = new Float64Array(PARAMS);
  let loss = objective(theta, grad);
  const history: Array<{ s: Float64Array; y: Float64Array; rho: number }> = [];
  const direction = new Float64Array(PARAMS);
  const next = new Float64Array(PARAMS);
  const nextGrad = new Float64Array(PARAMS);
  let iteration = 0;
  while (iteration < MAX_ITERATIONS && maxAbs(grad) > GRADIENT_TOLERANCE) {
    iteration++;
    // direction = -H * grad
    for (let k = 0; k < PARAMS; k++) direction[k] = -(grad[k] as number);
    const alphas: number[] = [];
    for (let h = history.length - 1; h >= 0; h--) {
      const { s, y, rho } = history[h] as (typeof history)[number];
      const alpha = rho * dot(s, direction);
      alphas[h] = alpha;
      for (let k = 0; k < PARAMS; k++) direction[k] = (direction[k] as number) - alpha * (y[k] as number);
    }
    const last = history[history.length - 1];
    const gamma = last ? dot(last.s, last.y) / dot(last.y, last.y) : 1 / Math.sqrt(dot(grad, grad));
    for (let k = 0; k < PARAMS; k++) direction[k] = (direction[k] as number) * gamma;
    for (let h = 0; h < history.length; h++) {
      const { s, y, rho } = history[h] as (typeof history)[number];
      const beta = rho * dot(y, direction);
      const alpha = alphas[h] as number;
      for (let k = 0; k < PARAMS; k++) direction[k] = (direction[k] as number) + (alpha - beta) * (s[k] as number);
    }
    let slope = dot(grad, direction);
    if (slope >= 0) {
      // Not a descent direction (should not happen on a convex problem): restart from steepest descent.
      history.length = 0;
      for (let k = 0; k < PARAMS; k++) direction[k] = -(grad[k] as number);
      slope = dot(grad, direction);
    }
    let step = 1;
    let nextLoss = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let k = 0; k < PARAMS; k++) next[k] = (theta[k] as number) + step * (direction[k] as number);
      nextLoss = objective(next, nextGrad);
      if (nextLoss <= loss + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(nextLoss < loss)) break; // no further progress at double precision
    const s = new Float64Array(PARAMS);
    const y = new Float64Array(PARAMS);
    for (let k = 0; k < PARAMS; k++) {
      s[k] = (next[k] as number) - (theta[k] as number);
      y[k] = (nextGrad[k] as number) - (grad[k] as number);
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      history.push({ s, y, rho: 1 / sy });
      if (history.length > HISTORY) history.shift();
    }
    theta.set(next);
    grad.set(nextGrad);
    loss = nextLoss;
  }
  return { loss, iterations: iteration, gradient: maxAbs(grad) };
}

const theta = new Float64Array(PARAMS);
const fit = lbfgs(theta);
console.log(
  `trained: L-BFGS ${fit.iterations} iterations, objective ${fit.loss.toFixed(6)}, max |gradient| ${fit.gradient.toExponential(2)}`,
);

// The model stores float32 weights; predictions below use exactly those.
const W = Float32Array.from(theta.subarray(0, WEIGHTS));
const b = Float32Array.from(theta.subarray(WEIGHTS));

function predictJs(pixels: readonly number[]): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let c = 0; c < CLASSES; c++) {
    let z = b[c] as number;
    for (let j = 0; j < PIXELS; j++) z += ((pixels[j] as number) / MAX_PIXEL) * (W[j * CLASSES + c] as number);
    if (z > bestScore) {
      bestScore = z;
      best = c;
    }
  }
  return best;
}
const trainCorrect = trainRows.filter((row) => predictJs(row.pixels) === row.label).length;

// ---------------------------------------------------------------------------
// Export to ONNX.
const onnx = encodeModel({
  irVersion: 7,
  opsetImports: [{ domain: "", version: 13 }],
  producerName: "chassis-ts examples/digits",
  producerVersion: "1.0.0",
  docString:
    "Softmax regression for 8x8 handwritten digits (UCI optical digits, CC BY 4.0). Input: raw pixel values 0..16, shape [N,64]; output: class probabilities, shape [N,10].",
  graph: {
    name: "digits_logistic_regression",
    nodes: [
      { opType: "Mul", name: "scale_pixels", inputs: ["input", "pixel_scale"], outputs: ["scaled"] },
      { opType: "MatMul", name: "matmul", inputs: ["scaled", "W"], outputs: ["matmul_out"] },
      { opType: "Add", name: "add_bias", inputs: ["matmul_out", "b"], outputs: ["logits"] },
      { opType: "Softmax", name: "softmax", inputs: ["logits"], outputs: ["probabilities"], attributes: [{ name: "axis", int: 1 }] },
    ],
    initializers: [
      { name: "pixel_scale", dims: [], data: Float32Array.of(1 / MAX_PIXEL) },
      { name: "W", dims: [PIXELS, CLASSES], data: W },
      { name: "b", dims: [CLASSES], data: b },
    ],
    inputs: [{ name: "input", elemType: DataType.FLOAT, shape: ["N", PIXELS] }],
    outputs: [{ name: "probabilities", elemType: DataType.FLOAT, shape: ["N", CLASSES] }],
  },
});
writeFileSync(here("./model.onnx"), onnx);

// ---------------------------------------------------------------------------
// Held-out accuracy, measured through onnxruntime on the exported file (and
// cross-checked against the float32 weights evaluated in JS).
const session = await InferenceSession.create(here("./model.onnx"), { intraOpNumThreads: 1, interOpNumThreads: 1 });
const input = new Float32Array(testRows.length * PIXELS);
for (const [i, row] of testRows.entries()) input.set(row.pixels, i * PIXELS);
const result = await session.run({ input: new Tensor("float32", input, [testRows.length, PIXELS]) });
await session.release();
const probabilities = result.probabilities?.data as Float32Array;
let testCorrect = 0;
let disagreements = 0;
testRows.forEach((row, i) => {
  const p = probabilities.subarray(i * CLASSES, (i + 1) * CLASSES);
  const predicted = p.indexOf(Math.max(...p));
  if (predicted === row.label) testCorrect++;
  if (predicted !== predictJs(row.pixels)) disagreements++;
});
if (disagreements > 0) throw new Error(`onnxruntime and the JS check disagree on ${disagreements} held-out rows`);
const accuracy = testCorrect / testRows.length;
if (accuracy < 0.95) throw new Error(`held-out accuracy ${accuracy} is below 0.95`);

// sample.json: the first held-out row, laid out as the project's formatter
// (biome, line width 140) lays out a JSON array of numbers, so that
// regenerating it never shows up as a formatting change.
const sampleIndex = split.test[0] as number;
const sample = rows[sampleIndex] as Digit;
writeFileSync(here("./sample.json"), formatNumberArray(sample.pixels, 140));

function formatNumberArray(values: readonly number[], lineWidth: number): string {
  const lines: string[] = [];
  let line = "";
  for (const value of values) {
    const next = line === "" ? `  ${value},` : `${line} ${value},`;
    if (line !== "" && next.length > lineWidth) {
      lines.push(line);
      line = `  ${value},`;
    } else {
      line = next;
    }
  }
  lines.push(line.slice(0, -1)); // no comma after the last value
  return `[\n${lines.join("\n")}\n]\n`;
}

const metrics = {
  dataset: "UCI Optical Recognition of Handwritten Digits, 8x8 (examples/digits/data/digits.csv.gz, 1797 rows), CC BY 4.0",
  seed: SEED,
  split: {
    method: "stratified by label: seeded mulberry32 shuffle per label, round(testFraction * count) held out",
    testFraction: TEST_FRACTION,
    train: trainRows.length,
    test: testRows.length,
  },
  model: {
    type: "multinomial logistic regression on pixels / 16",
    optimizer: "full-batch L-BFGS (history 10, Armijo backtracking), zero init",
    l2: { C, lambda, penalty: "lambda/2 * ||W||^2 (bias not penalized)" },
    iterations: fit.iterations,
    objective: Number(fit.loss.toFixed(8)),
  },
  accuracy,
  correct: testCorrect,
  trainAccuracy: trainCorrect / trainRows.length,
  sample: { file: "sample.json", row: sampleIndex, label: sample.label },
  onnx: { file: "model.onnx", bytes: onnx.length, sha256: createHash("sha256").update(onnx).digest("hex") },
};
writeFileSync(here("./metrics.json"), `${JSON.stringify(metrics, null, 2)}\n`);

console.log(`train accuracy ${(metrics.trainAccuracy * 100).toFixed(2)}% (${trainCorrect}/${trainRows.length})`);
console.log(`held-out accuracy (onnxruntime) ${(accuracy * 100).toFixed(2)}% (${testCorrect}/${testRows.length})`);
console.log(`wrote model.onnx (${onnx.length} bytes, sha256 ${metrics.onnx.sha256.slice(0, 16)}...), metrics.json, sample.json`);
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);

/**
 * Digits Classifier: softmax regression over 8x8 handwritten digits, served
 * from an ONNX file with onnxruntime. Train (and re-export model.onnx) with
 * `npx tsx examples/digits/train.ts`; see README.md.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ChassisError, Code, defineModel, json, type ModelItem, type ModelOutputs } from "chassis-ts";
import { InferenceSession, Tensor } from "onnxruntime-node";

const PIXELS = 64;
const CLASSES = 10;
const MAX_PIXEL = 16;
const INPUT = "input";
const OUTPUT = "results.json";

const MODEL_PATH = fileURLToPath(new URL("./model.onnx", import.meta.url));

/** The held-out accuracy train.ts measured (through onnxruntime) for the model.onnx next to it. */
interface Metrics {
  accuracy: number;
  correct: number;
  split: { train: number; test: number };
}
const metrics = JSON.parse(readFileSync(new URL("./metrics.json", import.meta.url), "utf8")) as Metrics;
const percent = (metrics.accuracy * 100).toFixed(2);

interface State {
  session: InferenceSession;
}

export default defineModel<State>({
  name: "Digits Classifier",
  version: "1.0.0",
  author: "chassis-ts examples",
  description: {
    summary: "Classifies an 8x8 image of a handwritten digit (0-9).",
    details:
      "Takes the 64 pixel values of an 8x8 grayscale image (row by row, each 0..16, as in the UCI optical digits data set) and returns the most likely digit with its probability.",
    technical:
      "Multinomial (softmax) logistic regression on pixels / 16, trained with full-batch L-BFGS and an L2 penalty (C=1.0) on the UCI Optical Recognition of Handwritten Digits data (CC BY 4.0). Exported to ONNX (opset 13: Mul, MatMul, Add, Softmax) and run with onnxruntime on CPU; one ONNX run per batch of up to 16 items.",
    performance: `Accuracy ${percent}% (${metrics.correct}/${metrics.split.test}) on a held-out, stratified 20% split (${metrics.split.train} training rows).`,
  },
  inputs: [
    {
      key: INPUT,
      mediaTypes: ["application/json"],
      maxSize: "8K",
      description: "A JSON array of 64 pixel values 0..16: an 8x8 grayscale image, row by row (e.g. examples/digits/sample.json).",
    },
  ],
  outputs: [
    {
      key: OUTPUT,
      mediaType: "application/json",
      maxSize: "1K",
      description: 'The predicted digit and its probability: {"classPredictions":[{"class":7,"score":0.99123}]}.',
    },
  ],
  resources: { ram: "512M", cpus: 1, gpus: 0 },
  batchSize: 16,

  async load({ log }) {
    const session = await InferenceSession.create(MODEL_PATH, {
      executionProviders: ["cpu"],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    });
    if (!session.inputNames.includes(INPUT) || !session.outputNames.includes("probabilities")) {
      throw new Error(
        `${MODEL_PATH} has inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]; expected "input" and "probabilities"`,
      );
    }
    log.info(`loaded ${MODEL_PATH} (held-out accuracy ${percent}%)`);
    return { session };
  },

  async unload({ session }) {
    await session.release();
  },

  async predictBatch(items, { state, throwIfAborted }) {
    const results: Array<ModelOutputs | Error> = new Array(items.length);
    const valid: Array<{ index: number; pixels: number[] }> = [];
    items.forEach((item, index) => {
      try {
        valid.push({ index, pixels: readPixels(item) });
      } catch (error) {
        results[index] = error instanceof Error ? error : new Error(String(error));
      }
    });
    if (valid.length > 0) {
      const batch = new Float32Array(valid.length * PIXELS);
      for (const [row, { pixels }] of valid.entries()) batch.set(pixels, row * PIXELS);
      throwIfAborted(); // ctx.signal.throwIfAborted() would make an AbortSignal per batch: ~5 µs and GC work on Node 20
      const output = await state.session.run({ [INPUT]: new Tensor("float32", batch, [valid.length, PIXELS]) });
      const probabilities = output.probabilities?.data;
      if (!(probabilities instanceof Float32Array) || probabilities.length !== valid.length * CLASSES) {
        throw new Error(`model.onnx returned ${probabilities?.length ?? "no"} probabilities for ${valid.length} rows`);
      }
      valid.forEach(({ index }, row) => {
        const p = probabilities.subarray(row * CLASSES, (row + 1) * CLASSES);
        let best = 0;
        for (let c = 1; c < CLASSES; c++) if ((p[c] as number) > (p[best] as number)) best = c;
        const score = Math.round((p[best] as number) * 1e5) / 1e5;
        results[index] = { [OUTPUT]: json({ classPredictions: [{ class: best, score }] }) };
      });
    }
    return results;
  },
});

/** The item's 64 pixel values, or a per-item INVALID_ARGUMENT error saying what is wrong. */
function readPixels(item: ModelItem): number[] {
  const value = item.json<unknown>(INPUT); // invalid JSON: a ChassisError(INVALID_ARGUMENT) naming the input
  const expected = `input must be a JSON array of ${PIXELS} numbers (pixel values 0..${MAX_PIXEL})`;
  if (!Array.isArray(value)) {
    throw new ChassisError(Code.INVALID_ARGUMENT, `${expected}; got ${describe(value)}`);
  }
  if (value.length !== PIXELS) {
    throw new ChassisError(Code.INVALID_ARGUMENT, `${expected}; got an array of ${value.length}`);
  }
  const bad = value.findIndex((v) => typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_PIXEL);
  if (bad !== -1) {
    throw new ChassisError(Code.INVALID_ARGUMENT, `${expected}; value ${bad} is ${describe(value[bad])}`);
  }
  return value as number[];
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return `a string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}...` : value)}`;
  return `${typeof value === "object" ? "an" : "a"} ${typeof value}`;
}

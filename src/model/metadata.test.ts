import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { DEFAULT_BATCH_SIZE, defineModel, isModel, Model, type ModelDefinition } from "./define.js";
import { DEFAULTS, type MetadataSpec, mediaTypeFor, normalizeMetadata } from "./metadata.js";

const predict = () => ({ out: "x" });

/** The smallest valid single-predict definition. */
function minimal(): ModelDefinition<undefined> {
  return { name: "Minimal", version: "1.0.0", inputs: [{ key: "input" }], outputs: [{ key: "out" }], predict };
}

/** defineModel for definitions that the types rightly reject (as plain-JS model modules may write them). */
function defineLoose(definition: unknown): Model {
  return defineModel(definition as ModelDefinition<unknown>);
}

/** Returns the INVALID_ARGUMENT ChassisError that defineModel throws. */
function invalid(definition: unknown): ChassisError {
  try {
    defineLoose(definition);
  } catch (error) {
    assert.ok(error instanceof ChassisError, `expected a ChassisError, got ${String(error)}`);
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    return error;
  }
  assert.fail("defineModel accepted an invalid definition");
}

describe("defineModel defaults (as Chassis)", () => {
  test("a minimal single-predict model gets every default", () => {
    const { metadata } = defineModel(minimal());
    assert.deepEqual(metadata, {
      name: "Minimal",
      version: "1.0.0",
      author: "",
      modelType: "grpc",
      source: "chassis-ts",
      description: { summary: "", details: "", technical: "", performance: "" },
      inputs: [
        {
          key: "input",
          mediaTypes: ["application/octet-stream"],
          maxSize: "1M",
          maxBytes: 1_048_576,
          description: "",
          required: true,
        },
      ],
      outputs: [{ key: "out", mediaType: "application/octet-stream", maxSize: "1M", maxBytes: 1_048_576, description: "" }],
      resources: { ram: "512M", cpus: 1, gpus: 0 },
      timeout: { status: "60s", run: "60s", statusMs: 60_000, runMs: 60_000 },
      features: {
        adversarialDefense: false,
        batchSize: 1,
        retrainable: false,
        resultsFormat: "",
        driftFormat: "",
        explanationFormat: "",
      },
    });
  });

  test("DEFAULTS hold Chassis's values", () => {
    assert.deepEqual(
      { ...DEFAULTS },
      {
        modelType: "grpc",
        source: "chassis-ts",
        inputMediaType: "application/octet-stream",
        maxSize: "1M",
        ram: "512M",
        cpus: 1,
        gpus: 0,
        timeout: "60s",
      },
    );
    assert.ok(Object.isFrozen(DEFAULTS));
  });

  test("predictBatch without batchSize gets batch_size 8", () => {
    const model = defineModel({ ...minimal(), predict: undefined, predictBatch: (items) => items.map(predict) });
    assert.equal(DEFAULT_BATCH_SIZE, 8);
    assert.equal(model.metadata.features.batchSize, 8);
  });

  test("predictBatch with batchSize keeps it", () => {
    const model = defineModel({ ...minimal(), predict: undefined, predictBatch: (items) => items.map(predict), batchSize: 3 });
    assert.equal(model.metadata.features.batchSize, 3);
  });

  test("given values override the defaults", () => {
    const { metadata } = defineModel({
      name: "Full",
      version: "2.1.0",
      author: "Ada",
      description: { summary: "s", details: "d", technical: "t", performance: "p" },
      inputs: [
        { key: "image", mediaTypes: ["image/png", "image/jpeg"], maxSize: "5M", description: "a picture", required: false },
        { key: "config.json", mediaTypes: ["application/json"], maxSize: "1K" },
      ],
      outputs: [{ key: "results.json", maxSize: "512K", description: "the scores" }],
      resources: { ram: "2G", cpus: 2.5, gpus: 1 },
      timeout: { status: "5m", run: "500ms" },
      features: { adversarialDefense: true, retrainable: true, resultsFormat: "OCR", driftFormat: "d", explanationFormat: "e" },
      predict,
    });
    assert.equal(metadata.author, "Ada");
    assert.deepEqual(metadata.description, { summary: "s", details: "d", technical: "t", performance: "p" });
    assert.deepEqual(metadata.inputs[0], {
      key: "image",
      mediaTypes: ["image/png", "image/jpeg"],
      maxSize: "5M",
      maxBytes: 5 * 1024 ** 2,
      description: "a picture",
      required: false,
    });
    assert.equal(metadata.inputs[1]?.maxBytes, 1024);
    assert.equal(metadata.inputs[1]?.required, true);
    assert.deepEqual(metadata.outputs[0], {
      key: "results.json",
      mediaType: "application/json",
      maxSize: "512K",
      maxBytes: 512 * 1024,
      description: "the scores",
    });
    assert.deepEqual(metadata.resources, { ram: "2G", cpus: 2.5, gpus: 1 });
    assert.deepEqual(metadata.timeout, { status: "5m", run: "500ms", statusMs: 300_000, runMs: 500 });
    assert.deepEqual(metadata.features, {
      adversarialDefense: true,
      batchSize: 1,
      retrainable: true,
      resultsFormat: "OCR",
      driftFormat: "d",
      explanationFormat: "e",
    });
    // modelType and source are not the author's to choose.
    assert.equal(metadata.modelType, "grpc");
    assert.equal(metadata.source, "chassis-ts");
  });

  test("only one of the two timeouts may be given", () => {
    const { metadata } = defineModel({ ...minimal(), timeout: { run: "2s" } });
    assert.deepEqual(metadata.timeout, { status: "60s", run: "2s", statusMs: 60_000, runMs: 2_000 });
  });

  test("defineModel returns a Model that isModel recognises", () => {
    const model = defineModel(minimal());
    assert.ok(model instanceof Model);
    assert.equal(isModel(model), true);
    assert.equal(isModel({ metadata: {}, definition: {} }), false);
    assert.equal(isModel(null), false);
    assert.equal(model.definition.predict, predict);
  });
});

describe("output media type", () => {
  test("comes from the key's extension when not given", () => {
    const { metadata } = defineModel({
      ...minimal(),
      outputs: [{ key: "results.json" }, { key: "summary.txt" }, { key: "mask.png" }, { key: "raw" }, { key: "json" }],
    });
    assert.deepEqual(
      metadata.outputs.map((o) => o.mediaType),
      ["application/json", "text/plain", "application/octet-stream", "application/octet-stream", "application/octet-stream"],
    );
  });

  test("a given media type wins over the extension", () => {
    const { metadata } = defineModel({ ...minimal(), outputs: [{ key: "results.json", mediaType: "text/plain" }] });
    assert.equal(metadata.outputs[0]?.mediaType, "text/plain");
  });

  test("mediaTypeFor", () => {
    assert.equal(mediaTypeFor("a.json"), "application/json");
    assert.equal(mediaTypeFor("a.txt"), "text/plain");
    assert.equal(mediaTypeFor("a.json.gz"), "application/octet-stream");
    assert.equal(mediaTypeFor(""), "application/octet-stream");
  });
});

describe("validation", () => {
  test("every metadata problem is reported in one message, each naming its field", () => {
    const error = invalid({
      version: "",
      inputs: [
        { key: "a", maxSize: "huge" },
        { key: "a", maxSize: "0" },
      ],
      outputs: [{ key: "o", maxSize: "-1M" }, { key: "o" }],
      resources: { ram: "lots", cpus: 0, gpus: 1.5 },
      timeout: { status: "forever", run: "0s" },
      predict,
    });
    const expected = [
      "name is required (a non-empty string)",
      "version must not be empty",
      'inputs[0].maxSize "huge" is not a size such as 512K, 1M or 1.5G',
      'inputs[1].maxSize "0" is not a size',
      'outputs[0].maxSize "-1M" is not a size',
      'inputs declares key "a" twice',
      'outputs declares key "o" twice',
      'resources.ram "lots" is not a size',
      "resources.cpus must be a number above 0",
      "resources.gpus must be a whole number, 0 or more",
      'timeout.status "forever" is not a duration such as 500ms, 60s or 5m',
      'timeout.run "0s" is not a duration',
    ];
    assert.match(error.message, /^invalid model: /);
    for (const part of expected) assert.ok(error.message.includes(part), `missing ${JSON.stringify(part)} in: ${error.message}`);
    assert.equal(error.message.split("; ").length, expected.length, error.message);
  });

  test("no inputs and no outputs are both reported, and the message names the model", () => {
    const error = invalid({ name: "Empty", version: "1", inputs: [], outputs: undefined, predict });
    assert.match(error.message, /^invalid model "Empty": /);
    assert.match(error.message, /inputs must list at least one input/);
    assert.match(error.message, /outputs must list at least one output/);
  });

  test("fields of the wrong type are named", () => {
    const error = invalid({
      name: 42,
      version: "1",
      author: ["me"],
      inputs: [{ key: "" }, null],
      outputs: [{ key: "o", mediaType: 3 }],
      predict,
    });
    assert.match(error.message, /name must be a string, got number/);
    assert.match(error.message, /author must be a string, got object/);
    assert.match(error.message, /inputs\[0\]\.key must not be empty/);
    assert.match(error.message, /inputs\[1\]\.key is required/);
    assert.match(error.message, /outputs\[0\]\.mediaType must be a string, got number/);
  });

  test("mediaTypes must be an array of strings", () => {
    const error = invalid({ ...minimal(), inputs: [{ key: "input", mediaTypes: ["text/plain", 7] }] });
    assert.match(error.message, /inputs\[0\]\.mediaTypes must be an array of strings/);
  });

  test("a non-iterable mediaTypes is reported, not a TypeError", () => {
    const error = invalid({ ...minimal(), inputs: [{ key: "input", mediaTypes: 5 }] });
    assert.match(error.message, /inputs\[0\]\.mediaTypes must be an array of strings/);
  });

  test("a bad batchSize is reported", () => {
    for (const batchSize of [0, -1, 2.5]) {
      const error = invalid({ ...minimal(), predict: undefined, predictBatch: () => [], batchSize });
      assert.match(error.message, new RegExp(`batchSize must be a whole number, 1 or more \\(got ${batchSize}\\)`));
    }
  });

  test("both predict and predictBatch is rejected", () => {
    const error = invalid({ ...minimal(), predictBatch: () => [] });
    assert.match(error.message, /^invalid model "Minimal": it has both predict and predictBatch; give exactly one/);
  });

  test("neither predict nor predictBatch is rejected", () => {
    const error = invalid({ ...minimal(), predict: undefined });
    assert.match(error.message, /it has neither predict nor predictBatch/);
    // A predict that is not a function counts as none.
    assert.match(invalid({ ...minimal(), predict: "yes" }).message, /neither predict nor predictBatch/);
  });

  test("load and unload must be functions", () => {
    assert.match(invalid({ ...minimal(), load: "weights.onnx" }).message, /^invalid model "Minimal": load must be a function$/);
    assert.match(invalid({ ...minimal(), unload: {} }).message, /^invalid model "Minimal": unload must be a function$/);
  });

  test("function problems are reported together with metadata problems", () => {
    const error = invalid({ name: "M", version: "", inputs: [{ key: "input" }], outputs: [{ key: "out" }], load: 1 });
    assert.match(error.message, /neither predict nor predictBatch/);
    assert.match(error.message, /load must be a function/);
    assert.match(error.message, /version must not be empty/);
  });

  test("a non-object definition is rejected", () => {
    assert.match(invalid(null).message, /defineModel\(\) needs an object/);
    assert.match(invalid("model").message, /defineModel\(\) needs an object/);
  });

  test("normalizeMetadata rejects a non-object spec", () => {
    assert.throws(
      () => normalizeMetadata(null as unknown as MetadataSpec, 1),
      (error: unknown) => error instanceof ChassisError && error.code === Code.INVALID_ARGUMENT && /needs an object/.test(error.message),
    );
  });
});

describe("frozen metadata", () => {
  test("mutating the metadata at any depth throws", () => {
    const model = defineModel(minimal());
    const metadata = model.metadata as unknown as {
      name: string;
      inputs: Array<{ maxBytes: number; mediaTypes: string[] }>;
      outputs: unknown[];
      timeout: { runMs: number };
      features: { batchSize: number };
    };
    assert.throws(() => {
      metadata.name = "other";
    }, TypeError);
    assert.throws(() => {
      metadata.timeout.runMs = 1;
    }, TypeError);
    assert.throws(() => {
      metadata.features.batchSize = 64;
    }, TypeError);
    assert.throws(() => metadata.inputs.push({ maxBytes: 1, mediaTypes: [] }), TypeError);
    assert.throws(() => {
      (metadata.inputs[0] as { maxBytes: number }).maxBytes = 1e9;
    }, TypeError);
    assert.throws(() => metadata.inputs[0]?.mediaTypes.push("text/plain"), TypeError);
    assert.throws(() => metadata.outputs.pop(), TypeError);
    assert.equal(model.metadata.name, "Minimal");
    assert.equal(model.metadata.inputs[0]?.maxBytes, 1_048_576);
  });

  test("the model and its definition are frozen too", () => {
    const model = defineModel(minimal());
    assert.throws(() => {
      (model as unknown as { metadata: unknown }).metadata = {};
    }, TypeError);
    assert.throws(() => {
      (model.definition as { predict: unknown }).predict = () => ({});
    }, TypeError);
  });

  test("the author's spec is copied: it stays mutable and later changes do not leak in", () => {
    const spec = minimal();
    const model = defineModel(spec);
    assert.equal(Object.isFrozen(spec), false);
    assert.equal(Object.isFrozen(spec.inputs), false);
    (spec.inputs[0] as { maxSize?: string }).maxSize = "1K";
    spec.inputs.push({ key: "late" });
    assert.equal(model.metadata.inputs.length, 1);
    assert.equal(model.metadata.inputs[0]?.maxSize, "1M");
  });
});

describe("JSON media types", () => {
  test("application/json and +json types take JSON, with or without parameters, in any case; others do not", async () => {
    const { acceptsJson, isJsonMediaType } = await import("./metadata.js");
    for (const type of ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json"]) {
      assert.equal(isJsonMediaType(type), true, type);
    }
    for (const type of ["text/plain", "application/octet-stream", "application/jsonl", "image/png"]) {
      assert.equal(isJsonMediaType(type), false, type);
    }
    const input = {
      key: "x",
      mediaTypes: ["image/png", "application/json; charset=utf-8"],
      maxSize: "1M",
      maxBytes: 1,
      description: "",
      required: true,
    };
    assert.equal(acceptsJson(input), true);
    assert.equal(acceptsJson({ ...input, mediaTypes: ["image/png"] }), false);
  });
});

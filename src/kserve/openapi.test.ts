import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { type MetadataSpec, type ModelMetadata, normalizeMetadata } from "../model/metadata.js";
import { openApiDocument, swaggerUiAsset, swaggerUiHtml } from "./openapi.js";
import { instanceToItem, requestInstances, requestOutputFormat } from "./v1-codec.js";
import { requestToItems, validateInferenceRequest } from "./v2-codec.js";

type Json = Record<string, unknown>;

const ECHO: MetadataSpec = {
  name: "Echo",
  version: "1.0.0",
  description: { summary: "Returns its input unchanged.", details: "Output results.json is the bytes of input `input`." },
  inputs: [
    { key: "input", mediaTypes: ["application/octet-stream"], maxSize: "1M", description: "Any bytes.", required: false },
    { key: "raise", mediaTypes: ["text/plain"], maxSize: "1K", description: "If present, predict throws with this text.", required: false },
  ],
  outputs: [{ key: "results.json", mediaType: "application/json", maxSize: "1M", description: "The bytes of `input`." }],
};

const DIGITS: MetadataSpec = {
  name: "Digits Classifier",
  version: "1.0.0",
  description: { summary: "Classifies an 8x8 image of a handwritten digit (0-9).", details: "Takes the 64 pixel values of an 8x8 image." },
  inputs: [
    {
      key: "input",
      mediaTypes: ["application/json"],
      maxSize: "8K",
      description: "A JSON array of 64 pixel values 0..16: an 8x8 grayscale image, row by row.",
    },
  ],
  outputs: [{ key: "results.json", mediaType: "application/json", maxSize: "1K", description: "The predicted digit and its probability." }],
};

/** Two required inputs: Chassis's base64 form (first input only) cannot be the leading example. */
const PAIR: MetadataSpec = {
  name: "Pair",
  version: "2.1.0",
  inputs: [
    { key: "image", mediaTypes: ["image/png"], maxSize: "2M", description: "A PNG." },
    { key: "options.json", mediaTypes: ["application/json"], description: "Settings." },
  ],
  outputs: [{ key: "results.json" }, { key: "mask.png", mediaType: "image/png" }],
};

const echo = normalizeMetadata(ECHO, 1);
const digits = normalizeMetadata(DIGITS, 16);
const pair = normalizeMetadata(PAIR, 1);

const doc = (metadata: ModelMetadata, name: string, protocol: "v1" | "v2" = "v1") =>
  openApiDocument(metadata, name, protocol, "9.9.9") as Json;
const at = (value: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((v, key) => (v as Json | undefined)?.[key], value);
const METHODS = ["get", "post", "put", "delete", "patch", "head", "options"];

function operations(document: Json): Array<{ path: string; method: string; op: Json }> {
  return Object.entries(document.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op: op as Json })),
  );
}

/** Every `$ref` in the document, with the JSON it points to (undefined when dangling). */
function refs(document: Json): Array<[string, unknown]> {
  const found: Array<[string, unknown]> = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [key, child] of Object.entries(value)) {
        if (key === "$ref" && typeof child === "string") {
          assert.ok(child.startsWith("#/"), `external $ref ${child}`);
          found.push([child, at(document, ...child.slice(2).split("/"))]);
        } else walk(child);
      }
    }
  };
  walk(document);
  return found;
}

/** Validates a value against a schema of the document with OpenAPI 3.0's dialect (nullable, format byte). */
function validator(document: Json) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat("byte", /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  return (schema: unknown, value: unknown, what: string): void => {
    const validate = ajv.compile({ allOf: [schema], components: document.components });
    assert.ok(validate(value), `${what} does not match its schema: ${ajv.errorsText(validate.errors)}`);
  };
}

/** Every example of a request body or response, with its schema. */
function examples(document: Json): Array<{ what: string; schema: unknown; value: unknown }> {
  const out: Array<{ what: string; schema: unknown; value: unknown }> = [];
  const collect = (content: unknown, what: string) => {
    for (const [type, media] of Object.entries((content ?? {}) as Json)) {
      const { schema, example, examples: named } = media as Json;
      if (example !== undefined) out.push({ what: `${what} ${type}`, schema, value: example });
      for (const [key, ex] of Object.entries((named ?? {}) as Json))
        out.push({ what: `${what} ${type} example ${key}`, schema, value: (ex as Json).value });
    }
  };
  for (const { path, method, op } of operations(document)) {
    collect(at(op, "requestBody", "content"), `${method.toUpperCase()} ${path} request`);
    for (const [status, response] of Object.entries(op.responses as Json)) {
      const pointer = (response as Json).$ref;
      const resolved = typeof pointer === "string" ? at(document, ...pointer.slice(2).split("/")) : response;
      collect((resolved as Json).content, `${method.toUpperCase()} ${path} ${status}`);
    }
  }
  return out;
}

describe("openApiDocument: structure", () => {
  for (const [label, metadata, name] of [
    ["echo", echo, "echo"],
    ["digits", digits, "digits-classifier"],
    ["pair", pair, "pair"],
  ] as const) {
    test(`${label}: OpenAPI 3.0.3, every $ref resolves, every operation tagged and answered`, () => {
      const document = doc(metadata, name);
      assert.equal(document.openapi, "3.0.3");
      const tagNames = (document.tags as Json[]).map((t) => t.name);
      assert.deepEqual([...tagNames].sort(), ["health", "v1", "v2"]);
      for (const [pointer, target] of refs(document)) assert.ok(target !== undefined, `dangling $ref ${pointer}`);
      const ids = new Set<string>();
      for (const { path, method, op } of operations(document)) {
        assert.ok(path.startsWith("/"), path);
        assert.equal((op.tags as string[]).length, 1, `${method} ${path} has one tag`);
        assert.ok(tagNames.includes((op.tags as string[])[0]), `${method} ${path} tag`);
        assert.equal(typeof op.operationId, "string");
        assert.ok(!ids.has(op.operationId as string), `operationId ${op.operationId} repeats`);
        ids.add(op.operationId as string);
        assert.ok(Object.keys(op.responses as Json).length > 0, `${method} ${path} has responses`);
        for (const [status, response] of Object.entries(op.responses as Json)) {
          const resolved =
            "$ref" in (response as Json) ? at(document, ...((response as Json).$ref as string).slice(2).split("/")) : response;
          assert.equal(typeof (resolved as Json).description, "string", `${method} ${path} ${status} has a description`);
        }
      }
      // Survives JSON (what /openapi.json sends).
      assert.deepEqual(JSON.parse(JSON.stringify(document)), document);
    });
  }

  test("info: model name and version as the title, description from the metadata", () => {
    const info = doc(digits, "digits-classifier").info as Json;
    assert.equal(info.title, "Digits Classifier 1.0.0");
    assert.equal(info.version, "1.0.0");
    const description = info.description as string;
    assert.match(description, /Classifies an 8x8 image of a handwritten digit/);
    assert.match(description, /Takes the 64 pixel values/);
    assert.match(description, /`digits-classifier` by chassis-ts 9\.9\.9/);
    // No empty paragraphs when the metadata has no description.
    assert.doesNotMatch((doc(pair, "pair").info as Json).description as string, /^\n|\n\n\n/);
  });

  test("paths carry the served model name, not a template; every REST route is there", () => {
    const paths = Object.keys(doc(echo, "my-echo").paths as Json);
    assert.deepEqual([...paths].sort(), [
      "/",
      "/metrics",
      "/v1/models",
      "/v1/models/my-echo",
      "/v1/models/my-echo:explain",
      "/v1/models/my-echo:predict",
      "/v2",
      "/v2/health/live",
      "/v2/health/ready",
      "/v2/models",
      "/v2/models/my-echo",
      "/v2/models/my-echo/infer",
      "/v2/models/my-echo/ready",
    ]);
    assert.ok(paths.every((p) => !p.includes("{")));
  });

  test("the primary protocol's routes and tag come first", () => {
    const firstTag = (protocol: "v1" | "v2") => {
      const document = doc(echo, "echo", protocol);
      return [(document.tags as Json[])[0]?.name, Object.keys(document.paths as Json)[0]];
    };
    assert.deepEqual(firstTag("v1"), ["v1", "/v1/models"]);
    assert.deepEqual(firstTag("v2"), ["v2", "/v2"]);
    const v2Paths = Object.keys(doc(echo, "echo", "v2").paths as Json);
    assert.ok(v2Paths.indexOf("/v2/models/echo/infer") < v2Paths.indexOf("/v1/models/echo:predict"));
  });

  test("predict documents KServe's error statuses with {error} bodies; explain documents 501", () => {
    const document = doc(echo, "echo");
    const predict = at(document, "paths", "/v1/models/echo:predict", "post", "responses") as Json;
    for (const status of ["200", "400", "404", "413", "500", "503"]) assert.ok(status in predict, `predict ${status}`);
    assert.ok("501" in (at(document, "paths", "/v1/models/echo:explain", "post", "responses") as Json));
    assert.deepEqual(at(document, "components", "responses", "Error400", "content", "application/json", "schema"), {
      $ref: "#/components/schemas/Error",
    });
    assert.deepEqual(at(document, "components", "schemas", "Error", "required"), ["error"]);
    assert.deepEqual(at(document, "components", "responses", "Error404", "content", "application/json", "example"), {
      error: "Model with name echo does not exist.",
    });
  });

  test("each input's description, media types and max size reach the schemas", () => {
    const schemas = at(doc(echo, "echo"), "components", "schemas") as Json;
    for (const schema of ["V1Instance", "V2RequestInput"]) {
      const text = (schemas[schema] as Json).description as string;
      assert.match(text, /`input` \(optional; application\/octet-stream; at most 1M\): Any bytes\./, schema);
      assert.match(text, /`raise` \(optional; text\/plain; at most 1K\): If present, predict throws/, schema);
    }
    assert.match(at(schemas, "V1Prediction", "description") as string, /`results\.json` \(application\/json; at most 1M\)/);
    assert.deepEqual(at(schemas, "V2RequestInput", "properties", "name", "enum"), ["input", "raise"]);
    const digitsText = at(doc(digits, "digits-classifier"), "components", "schemas", "V1Instance", "description") as string;
    assert.match(digitsText, /`input` \(required; application\/json; at most 8K\): A JSON array of 64 pixel values/);
  });
});

describe("openApiDocument: examples", () => {
  for (const [label, metadata, name] of [
    ["echo", echo, "echo"],
    ["digits", digits, "digits-classifier"],
    ["pair", pair, "pair"],
  ] as const) {
    test(`${label}: every example matches its schema and decodes with the v1 and v2 codecs`, () => {
      const document = doc(metadata, name);
      const check = validator(document);
      const all = examples(document);
      assert.ok(all.length >= 10, "examples for predict, explain, infer and answers");
      for (const { what, schema, value } of all) check(schema, value, what);
      for (const { what, value } of all.filter((e) => e.what.includes(":predict request"))) {
        requestOutputFormat(value);
        const items = requestInstances(value).map((instance, i) => instanceToItem(instance, metadata, i));
        assert.equal(items.length, 1, what);
        for (const input of metadata.inputs.filter((i) => i.required)) assert.ok(items[0]?.[input.key], `${what}: carries ${input.key}`);
      }
      for (const { what, value } of all.filter((e) => e.what.includes("/infer request"))) {
        const items = requestToItems(validateInferenceRequest(value), undefined, metadata, name);
        assert.equal(items.length, 1, what);
        for (const input of metadata.inputs.filter((i) => i.required)) assert.ok(items[0]?.[input.key], `${what}: carries ${input.key}`);
      }
    });
  }

  test("the request schemas refuse what the codec refuses (the check above is not vacuous)", () => {
    const check = validator(doc(echo, "echo"));
    const request = { $ref: "#/components/schemas/V1PredictRequest" };
    for (const bad of [
      { instances: "aGVsbG8=" },
      { instances: [{ bogus: "aGVsbG8=" }] },
      { instances: [[1, 2]] },
      { instances: ["not base64!"] },
    ]) {
      assert.throws(() => check(request, bad, JSON.stringify(bad)), /does not match its schema/);
      assert.throws(() => requestInstances(bad).map((instance, i) => instanceToItem(instance, echo, i)));
    }
    assert.throws(() => check(request, { instances: [], parameters: { output_format: "xml" } }, "output_format xml"), /does not match/);
    // A JSON input takes any JSON value.
    validator(doc(digits, "d"))(request, { instances: [[1, 2], { a: 1 }] }, "digits JSON values");
  });

  test("a non-JSON first input: Chassis's base64 form leads, with a base64 example", () => {
    const body = at(doc(echo, "echo"), "paths", "/v1/models/echo:predict", "post", "requestBody", "content", "application/json") as Json;
    const [first, ...rest] = Object.values(body.examples as Json) as Json[];
    assert.deepEqual(first?.value, { instances: ["aGVsbG8="] });
    assert.ok(rest.some((e) => JSON.stringify(e.value).includes('{"input":"aGVsbG8="}')));
    const item = instanceToItem("aGVsbG8=", echo, 0);
    assert.equal(Buffer.from(item.input as Uint8Array).toString(), "hello");
  });

  test("a JSON first input (digits): the JSON value leads, a 64-number array", () => {
    const document = doc(digits, "digits-classifier");
    const body = at(
      document,
      "paths",
      "/v1/models/digits-classifier:predict",
      "post",
      "requestBody",
      "content",
      "application/json",
    ) as Json;
    const [first] = Object.values(body.examples as Json) as Json[];
    const instance = (at(first, "value", "instances") as unknown[])[0];
    assert.ok(Array.isArray(instance) && instance.length === 64 && instance.every((v) => v === 0));
    const item = instanceToItem(instance, digits, 0);
    assert.deepEqual(JSON.parse(Buffer.from(item.input as Uint8Array).toString()), instance);
    // v2: a BYTES tensor named after the input, its element the JSON text; and a numeric tensor, row 0 the array.
    const v2 = at(
      document,
      "paths",
      "/v2/models/digits-classifier/infer",
      "post",
      "requestBody",
      "content",
      "application/json",
      "examples",
    ) as Json;
    const [bytes] = at(v2, "bytes", "value", "inputs") as Json[];
    assert.deepEqual(bytes, { name: "input", shape: [1], datatype: "BYTES", data: [JSON.stringify(instance)] });
    const [numeric] = at(v2, "numeric", "value", "inputs") as Json[];
    assert.deepEqual(numeric, { name: "input", shape: [1, 64], datatype: "FP32", data: instance });
    assert.equal(
      at(doc(echo, "echo"), "paths", "/v2/models/echo/infer", "post", "requestBody", "content", "application/json", "examples", "numeric"),
      undefined,
    );
  });

  test("several required inputs: the by-name example leads and carries each of them", () => {
    const body = at(doc(pair, "pair"), "paths", "/v1/models/pair:predict", "post", "requestBody", "content", "application/json") as Json;
    const [first] = Object.values(body.examples as Json) as Json[];
    const [instance] = at(first, "value", "instances") as Json[];
    assert.deepEqual(Object.keys(instance ?? {}), ["image", "options.json"]);
    const v2 = at(
      doc(pair, "pair"),
      "paths",
      "/v2/models/pair/infer",
      "post",
      "requestBody",
      "content",
      "application/json",
      "examples",
    ) as Json;
    assert.deepEqual(Object.keys(v2), ["bytes"]);
    assert.deepEqual(
      (at(v2, "bytes", "value", "inputs") as Json[]).map((t) => t.name),
      ["image", "options.json"],
    );
  });
});

describe("Swagger UI", () => {
  test("the page loads every asset from this server and points at /openapi.json", () => {
    const html = swaggerUiHtml();
    for (const asset of ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui-standalone-preset.js"])
      assert.ok(html.includes(`"${asset}"`), asset);
    assert.match(html, /SwaggerUIBundle\(\{/);
    assert.match(html, /url: "\/openapi\.json"/);
    assert.match(html, /dom_id: "#swagger-ui"/);
    assert.match(html, /tryItOutEnabled: true/);
    assert.match(html, /validatorUrl: null/);
    assert.doesNotMatch(html, /https?:|["'(]\/\//, "no external URL");
  });

  test("allow-listed assets come from swagger-ui-dist, read once", () => {
    const dir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
    for (const [file, type] of [
      ["swagger-ui.css", "text/css; charset=utf-8"],
      ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
      ["swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"],
    ] as const) {
      const asset = swaggerUiAsset(file);
      assert.ok(asset, file);
      assert.equal(asset.contentType, type);
      assert.deepEqual(Buffer.from(asset.body), readFileSync(join(dir, file)));
      assert.equal(swaggerUiAsset(file)?.body, asset.body, `${file} is cached`);
    }
  });

  test("anything else is refused, including path tricks", () => {
    for (const file of [
      "../package.json",
      "package.json",
      "../../package.json",
      "swagger-ui.css/../../package.json",
      "%2e%2e/package.json",
      "/etc/passwd",
      "swagger-ui.js",
      "swagger-ui-bundle.js.map",
      "index.html",
      "swagger-initializer.js",
      "Swagger-UI.css",
      "swagger-ui.css ",
      "__proto__",
      "constructor",
      "toString",
      "",
    ]) {
      assert.equal(swaggerUiAsset(file), undefined, JSON.stringify(file));
    }
  });
});

/**
 * @module kserve/openapi
 * `GET /openapi.json` and `GET /docs`: an OpenAPI 3.0.3 document for the
 * KServe REST routes (SPEC.md section 3), generated from the model's metadata,
 * and a Swagger UI page served from the `swagger-ui-dist` package (no external
 * URLs: containers often have no internet).
 *
 * Paths carry the served model name itself, not a `{name}` template, so
 * "Try it out" works without typing the name; the primary protocol's routes
 * come first. Request schemas follow what the server accepts: v1 instances as
 * in kserve/v1-codec (base64 strings into the first input, objects keyed by
 * input name, JSON values for JSON inputs), v2 inference requests with BYTES
 * tensors named by the input keys (reference kserve-rest.md 2.1).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { acceptsJson, type InputMetadata, type ModelMetadata, type OutputMetadata } from "../model/metadata.js";
import { modelMetadataV2 } from "./v2-codec.js";

type Json = Record<string, unknown>;
type Protocol = "v1" | "v2";

/** base64 of "hello": the example value of a non-JSON input. */
const HELLO_BASE64 = "aGVsbG8=";
const HELLO = "hello";

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const refResponse = (name: string): Json => ({ $ref: `#/components/responses/${name}` });
const code = (text: string): string => `\`${text}\``;

function jsonContent(schema: Json, extra: Json = {}): Json {
  return { "application/json": { schema, ...extra } };
}

function describeInput(input: InputMetadata): string {
  const facts = `${input.required ? "required" : "optional"}; ${input.mediaTypes.join(", ") || "any media type"}; at most ${input.maxSize}`;
  return `${code(input.key)} (${facts})${input.description ? `: ${input.description}` : ""}`;
}

function describeOutput(output: OutputMetadata): string {
  return `${code(output.key)} (${output.mediaType}; at most ${output.maxSize})${output.description ? `: ${output.description}` : ""}`;
}

/**
 * A JSON value to show for a JSON input. Metadata carries no example, so a
 * description that says "array of N ..." (as the digits model's "a JSON array
 * of 64 pixel values") gets N zeros; anything else gets `{}`.
 */
function jsonExample(input: InputMetadata): unknown {
  const match = /\barray of (\d{1,4})\b/i.exec(input.description);
  return match ? new Array<number>(Number(match[1])).fill(0) : {};
}

/** The input's example as a v1 value: the JSON value itself for JSON inputs, else base64. */
function v1Value(input: InputMetadata): unknown {
  return acceptsJson(input) ? jsonExample(input) : HELLO_BASE64;
}

/** The input's example as a v2 BYTES element (UTF-8 text). */
function v2Value(input: InputMetadata): string {
  return acceptsJson(input) ? JSON.stringify(jsonExample(input)) : HELLO;
}

/** The first input, then every other required one: what an example must carry. */
function exampleInputs(metadata: ModelMetadata): InputMetadata[] {
  return metadata.inputs.filter((input, i) => i === 0 || input.required);
}

function v1Examples(metadata: ModelMetadata): Json {
  const first = metadata.inputs[0] as InputMetadata;
  const needed = exampleInputs(metadata);
  const byName = {
    summary: "An object keyed by input name",
    value: { instances: [Object.fromEntries(needed.map((input) => [input.key, v1Value(input)]))], parameters: { output_format: "all" } },
  };
  // Chassis's base64 form (and a bare JSON value) fill only the first input: no use when another input is required.
  if (needed.length > 1) return { byName };
  const examples: Json = {};
  if (acceptsJson(first)) examples.json = { summary: `The JSON value of input ${first.key}`, value: { instances: [jsonExample(first)] } };
  examples.base64 = {
    summary: `Chassis convention: the base64 of input ${first.key}`,
    value: { instances: [acceptsJson(first) ? Buffer.from(JSON.stringify(jsonExample(first))).toString("base64") : HELLO_BASE64] },
  };
  examples.byName = byName;
  return examples;
}

function v2Examples(metadata: ModelMetadata): Json {
  const needed = exampleInputs(metadata);
  const examples: Json = {
    bytes: {
      summary: "BYTES tensors, one element per item",
      value: {
        id: "example-1",
        inputs: needed.map((input) => ({ name: input.key, shape: [1], datatype: "BYTES", data: [v2Value(input)] })),
      },
    },
  };
  const first = metadata.inputs[0] as InputMetadata;
  const value = acceptsJson(first) ? jsonExample(first) : undefined;
  // A JSON input also takes a numeric tensor: row i, as JSON, is item i's value (kserve/v2-codec).
  if (needed.length === 1 && Array.isArray(value) && value.length > 0) {
    examples.numeric = {
      summary: `A numeric tensor for JSON input ${first.key}`,
      value: { id: "example-2", inputs: [{ name: first.key, shape: [1, value.length], datatype: "FP32", data: value }] },
    };
  }
  return examples;
}

function schemas(metadata: ModelMetadata): Json {
  const first = metadata.inputs[0] as InputMetadata;
  const firstOutput = metadata.outputs[0] as OutputMetadata;
  const inputKeys = metadata.inputs.map((input) => input.key);
  const outputKeys = metadata.outputs.map((output) => output.key);
  const requiredKeys = metadata.inputs.filter((input) => input.required).map((input) => input.key);
  const base64 = (description: string): Json => ({ type: "string", format: "byte", description });

  const byNameValue = (input: InputMetadata): Json => ({
    description: describeInput(input),
    anyOf: [
      base64("The value's bytes, base64-encoded."),
      ref("V1Base64Object"),
      ...(acceptsJson(input) ? [{ description: "The JSON value itself (a JSON string must be sent base64-encoded)." }] : []),
    ],
  });
  const instanceForms: Json[] = [
    base64(`Chassis convention: the bytes of input ${code(first.key)}, base64-encoded.`),
    ref("V1Base64Object"),
    {
      type: "object",
      description: "An object keyed by input name.",
      properties: Object.fromEntries(metadata.inputs.map((input) => [input.key, byNameValue(input)])),
      ...(requiredKeys.length > 0 ? { required: requiredKeys } : {}),
      additionalProperties: false,
    },
  ];
  if (acceptsJson(first)) instanceForms.push({ description: `The JSON value of input ${code(first.key)} itself.` });

  const errorBody = { type: "object", required: ["error"], properties: { error: { type: "string" } } };
  const parameterValue = { anyOf: [{ type: "string" }, { type: "number" }, { type: "boolean" }] };
  const tensorMetadata = {
    type: "object",
    required: ["name", "datatype", "shape"],
    properties: { name: { type: "string" }, datatype: { type: "string" }, shape: { type: "array", items: { type: "integer" } } },
  };

  return {
    Error: { ...errorBody, description: 'KServe\'s error body: `{"error": "..."}`.' },
    Detail: {
      type: "object",
      required: ["detail"],
      properties: { detail: {} },
      description: "A framework-level error (unknown route, wrong method, unparsable v2 body), as FastAPI words it.",
    },
    V1Base64Object: {
      type: "object",
      required: ["b64"],
      properties: { b64: base64("The bytes, base64-encoded.") },
      additionalProperties: false,
      description: 'TensorFlow Serving\'s binary form: `{"b64": "..."}`.',
    },
    V1Instance: {
      description: [
        "One item for the model, in one of these forms:",
        `- a base64 string: the bytes of input ${code(first.key)} (the Chassis convention);`,
        '- `{"b64": "..."}`: the same;',
        "- an object keyed by input name, each value base64 (or, for a JSON input, the JSON value itself);",
        ...(acceptsJson(first) ? [`- any other JSON value: the value of JSON input ${code(first.key)}.`] : []),
        "",
        "Inputs:",
        ...metadata.inputs.map((input) => `- ${describeInput(input)}`),
      ].join("\n"),
      anyOf: instanceForms,
    },
    V1OutputFormat: {
      type: "string",
      enum: ["text", "json", "all"],
      default: "text",
      description: [
        `How each prediction is written: \`text\`, output ${code(firstOutput.key)} as UTF-8 text (the Chassis convention);`,
        `\`json\`, output ${code(firstOutput.key)} parsed as JSON; \`all\`, an object with every output, keyed by name`,
        '(JSON outputs parsed). Bytes that are not UTF-8 come as `{"b64": "..."}`.',
      ].join(" "),
    },
    V1PredictRequest: {
      type: "object",
      required: ["instances"],
      properties: {
        instances: { type: "array", items: ref("V1Instance"), description: "One prediction comes back per instance, in order." },
        parameters: { type: "object", properties: { output_format: ref("V1OutputFormat") } },
      },
    },
    V1Prediction: {
      description: [
        `Output ${code(firstOutput.key)} as text (default), parsed JSON (\`output_format: json\`), or every output keyed by name (\`all\`).`,
        "",
        "Outputs:",
        ...metadata.outputs.map((output) => `- ${describeOutput(output)}`),
      ].join("\n"),
    },
    V1PredictResponse: {
      type: "object",
      required: ["predictions"],
      properties: { predictions: { type: "array", items: ref("V1Prediction"), description: "One per instance, in order." } },
    },
    V1ExplainResponse: {
      type: "object",
      required: ["predictions", "explanations"],
      properties: {
        predictions: { type: "array", items: ref("V1Prediction") },
        explanations: { type: "array", items: {}, description: "One per instance: what the model's explain function returned." },
      },
    },
    V1ModelList: { type: "object", required: ["models"], properties: { models: { type: "array", items: { type: "string" } } } },
    ModelReady: { type: "object", required: ["name", "ready"], properties: { name: { type: "string" }, ready: { type: "boolean" } } },
    V2Parameters: { type: "object", additionalProperties: parameterValue, nullable: true },
    V2RequestInput: {
      type: "object",
      required: ["name", "shape", "datatype", "data"],
      description: [
        "A tensor named after an input. BYTES (what every input takes): shape `[N]`, element i is item i's value as a UTF-8 string.",
        "A numeric tensor (BOOL, INT*, UINT*, FP*) is accepted for a JSON input: shape `[N, ...]`, row i as JSON is item i's value.",
        "",
        "Inputs:",
        ...metadata.inputs.map((input) => `- ${describeInput(input)}`),
      ].join("\n"),
      properties: {
        name: { type: "string", enum: inputKeys },
        shape: { type: "array", items: { type: "integer" }, description: "`[N]`: N items." },
        datatype: { type: "string", default: "BYTES", description: "`BYTES`, or a numeric type for a JSON input." },
        parameters: ref("V2Parameters"),
        data: { type: "array", items: {}, description: "Strings for BYTES; numbers (flat or nested) for a numeric tensor." },
      },
    },
    V2RequestOutput: {
      type: "object",
      required: ["name"],
      properties: { name: { type: "string", enum: outputKeys }, parameters: ref("V2Parameters") },
    },
    V2InferenceRequest: {
      type: "object",
      required: ["inputs"],
      properties: {
        id: { type: "string", description: "Echoed in the response; generated when absent." },
        parameters: ref("V2Parameters"),
        inputs: { type: "array", items: ref("V2RequestInput") },
        outputs: { type: "array", items: ref("V2RequestOutput"), description: "Only these outputs, in this order (default: all)." },
      },
    },
    V2ResponseOutput: {
      type: "object",
      required: ["name", "shape", "datatype", "data"],
      description: ["A tensor per output, one element per item:", ...metadata.outputs.map((output) => `- ${describeOutput(output)}`)].join(
        "\n",
      ),
      properties: {
        name: { type: "string", enum: outputKeys },
        shape: { type: "array", items: { type: "integer" } },
        datatype: { type: "string" },
        parameters: ref("V2Parameters"),
        data: { type: "array", items: {} },
      },
    },
    V2InferenceResponse: {
      type: "object",
      required: ["model_name", "id", "outputs"],
      properties: {
        model_name: { type: "string" },
        model_version: { type: "string", nullable: true },
        id: { type: "string" },
        parameters: ref("V2Parameters"),
        outputs: { type: "array", items: ref("V2ResponseOutput") },
      },
    },
    V2TensorMetadata: tensorMetadata,
    V2ModelMetadata: {
      type: "object",
      required: ["name", "platform", "inputs", "outputs"],
      properties: {
        name: { type: "string" },
        versions: { type: "array", items: { type: "string" }, nullable: true },
        platform: { type: "string" },
        inputs: { type: "array", items: ref("V2TensorMetadata") },
        outputs: { type: "array", items: ref("V2TensorMetadata") },
      },
    },
    V2ServerMetadata: {
      type: "object",
      required: ["name", "version", "extensions"],
      properties: { name: { type: "string" }, version: { type: "string" }, extensions: { type: "array", items: { type: "string" } } },
    },
  };
}

const ERROR_TEXT: Readonly<Record<string, string>> = {
  "400": "Invalid request (bad JSON, bad instance, invalid input for the model).",
  "404": "No model with that name.",
  "413": "The request body is over the server's limit.",
  "500": "The model failed.",
  "501": "Not implemented.",
  "503": "The model is not ready.",
  "504": "The model took longer than its run timeout.",
};

/** KServe's exact texts where they do not depend on the request (reference kserve-rest.md 1). */
function errorExample(status: string, modelName: string): string | undefined {
  if (status === "404") return `Model with name ${modelName} does not exist.`;
  if (status === "501") return "Could not find explainer_host.";
  if (status === "503") return `Model with name ${modelName} is not ready.`;
  return undefined;
}

function errors(...statuses: string[]): Json {
  return Object.fromEntries(statuses.map((status) => [status, refResponse(`Error${status}`)]));
}

function operation(tag: string, operationId: string, summary: string, responses: Json, extra: Json = {}): Json {
  return { tags: [tag], operationId, summary, ...extra, responses };
}

function ok(description: string, schema: Json, example?: unknown): Json {
  return { description, content: jsonContent(schema, example === undefined ? {} : { example }) };
}

/**
 * The OpenAPI 3.0.3 document for the REST routes of `modelName`, served by
 * chassis-ts `version`; the `protocol` routes are listed first.
 */
export function openApiDocument(metadata: ModelMetadata, modelName: string, protocol: Protocol, version: string): unknown {
  const name = encodeURIComponent(modelName);
  const v1 = `/v1/models/${name}`;
  const v2 = `/v2/models/${name}`;
  const firstOutput = metadata.outputs[0] as OutputMetadata;
  const ready = { name: modelName, ready: true };

  const v1Paths: Json = {
    "/v1/models": {
      get: operation("v1", "v1ListModels", "List the served models", {
        "200": ok("The served model.", ref("V1ModelList"), { models: [modelName] }),
      }),
    },
    [v1]: {
      get: operation("v1", "v1ModelReady", "Whether the model is ready", {
        "200": ok("Ready.", ref("ModelReady"), ready),
        ...errors("404", "503"),
      }),
    },
    [`${v1}:predict`]: {
      post: operation(
        "v1",
        "v1Predict",
        "Predict",
        {
          "200": ok("One prediction per instance, in order.", ref("V1PredictResponse")),
          ...errors("400", "404", "413", "500", "503", "504"),
        },
        {
          description: [
            `Runs the model on each instance. Each prediction is output ${code(firstOutput.key)} as text unless \`parameters.output_format\` says otherwise.`,
            `A body sent with a content type other than \`application/json\` (or \`application/octet-stream\`) goes to input ${code(
              (metadata.inputs[0] as InputMetadata).key,
            )} unparsed, and the answer is that output's raw bytes, as KServe does.`,
          ].join(" "),
          requestBody: { required: true, content: jsonContent(ref("V1PredictRequest"), { examples: v1Examples(metadata) }) },
        },
      ),
    },
    [`${v1}:explain`]: {
      post: operation(
        "v1",
        "v1Explain",
        "Explain",
        {
          "200": ok("Predictions and explanations, one per instance.", ref("V1ExplainResponse")),
          ...errors("400", "404", "413", "500", "501", "503", "504"),
        },
        {
          description:
            "Runs the model's explain function on each instance. Answers 501 when the model has none, as KServe does without an explainer.",
          requestBody: { required: true, content: jsonContent(ref("V1PredictRequest"), { examples: v1Examples(metadata) }) },
        },
      ),
    },
  };

  const v2Paths: Json = {
    "/v2": {
      get: operation("v2", "v2ServerMetadata", "Server metadata", {
        "200": ok("The server's name, version and extensions.", ref("V2ServerMetadata")),
      }),
    },
    "/v2/models": {
      get: operation("v2", "v2ListModels", "List the served models (a KServe extension)", {
        "200": ok("The served model.", ref("V1ModelList"), { models: [modelName] }),
      }),
    },
    [v2]: {
      get: operation("v2", "v2ModelMetadata", "Model metadata: input and output tensors", {
        "200": ok("The model's tensors.", ref("V2ModelMetadata"), modelMetadataV2(metadata, modelName)),
        ...errors("404"),
      }),
    },
    [`${v2}/ready`]: {
      get: operation("v2", "v2ModelReady", "Whether the model is ready", {
        "200": ok("Ready.", ref("ModelReady"), ready),
        ...errors("404", "503"),
      }),
    },
    [`${v2}/infer`]: {
      post: operation(
        "v2",
        "v2Infer",
        "Infer (Open Inference Protocol)",
        {
          "200": ok("One element per item in each output tensor.", ref("V2InferenceResponse")),
          ...errors("400", "404", "413"),
          "422": {
            description: "The body is not an inference request (FastAPI's `detail` list, as KServe).",
            content: jsonContent(ref("Detail")),
          },
          ...errors("500", "503", "504"),
        },
        {
          description: `Each input is a tensor named after a model input: BYTES of shape \`[N]\`, element i being item i's value (UTF-8 text), or, for a JSON input, a numeric tensor whose row i is item i's value. Outputs: ${metadata.outputs
            .map((output) => code(output.key))
            .join(", ")}.`,
          requestBody: { required: true, content: jsonContent(ref("V2InferenceRequest"), { examples: v2Examples(metadata) }) },
        },
      ),
    },
  };

  const healthPaths: Json = {
    "/": {
      get: operation("health", "live", "Liveness", {
        "200": ok("The server is up.", { type: "object", properties: { status: { type: "string" } } }, { status: "alive" }),
      }),
    },
    "/v2/health/live": {
      get: operation("health", "v2Live", "Liveness (v2)", {
        "200": ok("The server is up.", { type: "object", properties: { live: { type: "boolean" } } }, { live: true }),
      }),
    },
    "/v2/health/ready": {
      get: operation("health", "v2Ready", "Readiness (v2): ready only when the model is", {
        "200": ok("Ready.", { type: "object", properties: { ready: { type: "boolean" } } }, { ready: true }),
        "503": ok("Not ready yet.", { type: "object", properties: { ready: { type: "boolean" } } }, { ready: false }),
      }),
    },
    "/metrics": {
      get: operation("health", "metrics", "Prometheus metrics", {
        "200": {
          description: "Prometheus text format 0.0.4, with KServe's histogram names.",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      }),
    },
  };

  const tags = {
    v1: { name: "v1", description: "KServe v1 (TensorFlow Serving style): instances in, predictions out." },
    v2: { name: "v2", description: "KServe v2 / Open Inference Protocol: tensors in, tensors out." },
    health: { name: "health", description: "Liveness, readiness and metrics." },
  };
  const [primary, secondary] = protocol === "v2" ? [v2Paths, v1Paths] : [v1Paths, v2Paths];

  const description = [
    metadata.description.summary,
    metadata.description.details,
    `Served as ${code(modelName)} by chassis-ts ${version} over KServe REST (v1 and v2 / Open Inference Protocol; primary: ${protocol}).`,
    `**Inputs**\n\n${metadata.inputs.map((input) => `- ${describeInput(input)}`).join("\n")}`,
    `**Outputs**\n\n${metadata.outputs.map((output) => `- ${describeOutput(output)}`).join("\n")}`,
  ].filter((part) => part.trim() !== "");

  return {
    openapi: "3.0.3",
    info: { title: `${metadata.name} ${metadata.version}`, version: metadata.version, description: description.join("\n\n") },
    tags: protocol === "v2" ? [tags.v2, tags.v1, tags.health] : [tags.v1, tags.v2, tags.health],
    paths: { ...primary, ...secondary, ...healthPaths },
    components: {
      schemas: schemas(metadata),
      responses: Object.fromEntries(
        Object.entries(ERROR_TEXT).map(([status, text]) => {
          const error = errorExample(status, modelName);
          return [
            `Error${status}`,
            { description: text, content: jsonContent(ref("Error"), error === undefined ? {} : { example: { error } }) },
          ];
        }),
      ),
    },
  };
}

/** The Swagger UI page at `/docs`; every asset comes from this server. */
export function swaggerUiHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API docs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<style>body { margin: 0; }</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  tryItOutEnabled: true,
  deepLinking: true,
  // No online validator badge: it would call out to the internet.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
</script>
</body>
</html>
`;
}

/** The only files served under /docs/, with their content types. */
const ASSETS: ReadonlyMap<string, string> = new Map([
  ["swagger-ui.css", "text/css; charset=utf-8"],
  ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
  ["swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"],
]);
const assetCache = new Map<string, Uint8Array>();
let assetDir: string | undefined;

/**
 * A Swagger UI file from the allow-list (read once, then cached), or
 * undefined for any other name. Throws INTERNAL when swagger-ui-dist is not
 * installed, so /docs says why instead of a bare 404.
 */
export function swaggerUiAsset(file: string): { body: Uint8Array; contentType: string } | undefined {
  const contentType = ASSETS.get(file);
  if (contentType === undefined) return undefined;
  let body = assetCache.get(file);
  if (body === undefined) {
    if (assetDir === undefined) {
      try {
        assetDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
      } catch (error) {
        throw new ChassisError(Code.INTERNAL, "the /docs assets are missing: the swagger-ui-dist package is not installed", {
          cause: error,
        });
      }
    }
    body = readFileSync(join(assetDir, file));
    assetCache.set(file, body);
  }
  return { body, contentType };
}

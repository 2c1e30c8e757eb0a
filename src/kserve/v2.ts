/**
 * @module kserve/v2
 * The v2 / Open Inference Protocol routes that carry data: server and model
 * metadata, and `/infer` with JSON tensors or the binary tensor extension.
 * The order of checks is KServe's (reference kserve-rest.md 2.3): the body is
 * parsed and validated first, then versions, then the model lookup.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { ServingMetrics } from "../metrics/serving.js";
import type { Failure } from "../runtime/outcome.js";
import type { Runtime } from "../runtime/runtime.js";
import { httpErrorFor, modelNotFound, modelNotReady, versioningNotSupported } from "./errors.js";
import type { H1Request, H1Response } from "./h1/connection.js";
import { readBody, sendError, sendJson, sendText } from "./http.js";
import { JsonSyntaxError, parseJson } from "./json-bigint.js";
import {
  decodeBinaryBody,
  INFERENCE_HEADER_CONTENT_LENGTH,
  type InferenceRequest,
  modelMetadataV2,
  outputsToResponse,
  planOutputs,
  requestToItems,
  requestValidationDetail,
  V2ValidationError,
  validateInferenceRequest,
} from "./v2-codec.js";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

export class V2Handler {
  constructor(
    private readonly runtime: Runtime,
    private readonly modelName: string,
    private readonly metrics: ServingMetrics,
    private readonly version: string,
  ) {}

  serverMetadata(): { name: string; version: string; extensions: string[] } {
    return { name: "chassis-ts", version: this.version, extensions: ["binary_tensor_data"] };
  }

  /** `GET /v2/models/{name}`: as KServe, no readiness check. */
  modelMetadata(res: H1Response, name: string): void {
    if (name !== this.modelName) sendError(res, modelNotFound(name));
    else sendJson(res, 200, modelMetadataV2(this.runtime.metadata, name));
  }

  async infer(req: H1Request, res: H1Response, name: string, versioned: boolean): Promise<void> {
    const started = performance.now();
    let request: InferenceRequest;
    let binary: Map<string, Uint8Array> | undefined;
    try {
      const bytes = await readBody(req);
      const contentType = req.headers.get("content-type");
      if (contentType !== undefined && JSON_TYPE.test(contentType)) {
        const parsed = this.#parse(res, bytes);
        if (parsed === undefined) {
          // #parse answered 422: count it like every other refused v2 call (it was missing from chassis_requests_total).
          this.metrics.recordRefused("v2");
          return;
        }
        request = parsed;
      } else {
        const header = req.headers.get(INFERENCE_HEADER_CONTENT_LENGTH);
        if (header === undefined) {
          // KServe's text, byte for byte (including the missing space).
          throw new ChassisError(
            Code.INVALID_ARGUMENT,
            "received byte inputs, but the'inference-header-content-length' header is missing.",
          );
        }
        if (!/^\d+$/.test(String(header).trim())) {
          // Departure: KServe answers 500 (a Python ValueError); a malformed header is the caller's error.
          throw new ChassisError(
            Code.INVALID_ARGUMENT,
            `${INFERENCE_HEADER_CONTENT_LENGTH} must be a whole number of bytes, got "${header}"`,
          );
        }
        ({ request, binary } = decodeBinaryBody(bytes, Number(header)));
      }
    } catch (error) {
      this.metrics.recordRefused("v2");
      if (error instanceof V2ValidationError) sendJson(res, 422, { detail: requestValidationDetail(error, undefined) });
      else sendError(res, httpErrorFor(error, name));
      return;
    }
    const refuse = (error: Parameters<typeof sendError>[1]) => {
      this.metrics.recordRefused("v2");
      sendError(res, error);
    };
    if (versioned) return refuse(versioningNotSupported);
    if (name !== this.modelName) return refuse(modelNotFound(name));
    if (this.runtime.state !== "ready") return refuse(modelNotReady(name));

    const metadata = this.runtime.metadata;
    let items: Array<Record<string, Uint8Array>>;
    try {
      items = requestToItems(request, binary, metadata, name);
      planOutputs(metadata.outputs, request.outputs, request.parameters, name);
    } catch (error) {
      return refuse(httpErrorFor(error, name));
    } finally {
      this.metrics.observe(this.metrics.preprocess, (performance.now() - started) / 1000);
    }

    const predictStarted = performance.now();
    const outcomes = await this.runtime.run(items, res.cancellation);
    const failedAt = outcomes.findIndex((o) => !o.ok);
    const failed = outcomes.filter((o) => !o.ok).length;
    this.metrics.recordRun("v2", (performance.now() - predictStarted) / 1000, outcomes.length - failed, failed);
    const post = performance.now();
    try {
      if (failedAt !== -1) {
        sendError(res, httpErrorFor((outcomes[failedAt] as Failure).error, name, outcomes.length > 1 ? `item ${failedAt}` : undefined));
        return;
      }
      const answer = outputsToResponse({
        modelName: name,
        id: request.id,
        outputs: metadata.outputs,
        requested: request.outputs,
        parameters: request.parameters,
        results: outcomes.map((o) => (o as { outputs: Record<string, Uint8Array> }).outputs),
      });
      if (answer.binary) {
        sendText(res, 200, answer.body, "application/octet-stream", { [INFERENCE_HEADER_CONTENT_LENGTH]: String(answer.headerLength) });
      } else {
        sendText(res, 200, answer.body, "application/json");
      }
    } catch (error) {
      sendError(res, httpErrorFor(error, name));
    } finally {
      this.metrics.observe(this.metrics.postprocess, (performance.now() - post) / 1000);
    }
  }

  /** JSON body -> request, or answers 422 as KServe (FastAPI) does and returns undefined. */
  #parse(res: H1Response, bytes: Buffer): InferenceRequest | undefined {
    if (bytes.length === 0) {
      sendJson(res, 422, { detail: [{ type: "missing", loc: ["body"], msg: "Field required", input: null }] });
      return undefined;
    }
    let body: unknown;
    try {
      body = parseJson(bytes.toString("utf8"));
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      sendJson(res, 422, {
        detail: [
          { type: "json_invalid", loc: ["body", error.position], msg: "JSON decode error", input: {}, ctx: { error: error.reason } },
        ],
      });
      return undefined;
    }
    try {
      return validateInferenceRequest(body);
    } catch (error) {
      if (!(error instanceof V2ValidationError)) throw error;
      sendJson(res, 422, { detail: requestValidationDetail(error, body) });
      return undefined;
    }
  }
}

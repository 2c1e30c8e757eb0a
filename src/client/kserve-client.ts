/**
 * @module client/kserve-client
 * KServeClient: a typed client for KServe v1 and v2 (Open Inference Protocol)
 * REST servers, chassis-ts or any other. Uses the global fetch; failures
 * reject with ChassisError carrying the server's `error` text.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

export interface KServeClientOptions {
  /** Base URL, e.g. `http://localhost:8080`. */
  url: string;
  /** Per-request timeout. @default 60_000 */
  timeoutMs?: number;
}

export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
  parameters?: Record<string, unknown> | null;
}

export interface V2InferResponse {
  model_name: string;
  model_version?: string | null;
  id: string;
  parameters?: Record<string, unknown> | null;
  outputs: V2Tensor[];
}

const HTTP_TO_CODE: Record<number, Code> = {
  400: Code.INVALID_ARGUMENT,
  404: Code.NOT_FOUND,
  413: Code.RESOURCE_EXHAUSTED,
  422: Code.INVALID_ARGUMENT,
  501: Code.UNIMPLEMENTED,
  // 503 is "model not ready"; UNAVAILABLE is kept for a server that cannot be reached at all.
  503: Code.FAILED_PRECONDITION,
  504: Code.DEADLINE_EXCEEDED,
};

export class KServeClient {
  readonly url: string;
  readonly #timeoutMs: number;

  constructor(options: KServeClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** `GET /v1/models/{name}`: true when ready, false on 503; other failures reject. */
  async ready(model: string): Promise<boolean> {
    try {
      await this.#request("GET", `/v1/models/${encodeURIComponent(model)}`);
      return true;
    } catch (error) {
      if (error instanceof ChassisError && error.code === Code.FAILED_PRECONDITION) return false;
      throw error;
    }
  }

  async models(): Promise<string[]> {
    return ((await this.#request("GET", "/v1/models")) as { models: string[] }).models;
  }

  /**
   * v1 predict with the Chassis convention: each item is the bytes of the
   * model's first input, sent base64; each prediction is the first output's text.
   */
  async predictBytes(model: string, items: Array<Uint8Array | string>): Promise<unknown[]> {
    const instances = items.map((item) => Buffer.from(typeof item === "string" ? new TextEncoder().encode(item) : item).toString("base64"));
    return this.predict(model, instances);
  }

  /** v1 predict with any instances; returns `predictions`. */
  async predict(model: string, instances: unknown[], parameters?: Record<string, unknown>): Promise<unknown[]> {
    const body = parameters ? { instances, parameters } : { instances };
    return ((await this.#request("POST", `/v1/models/${encodeURIComponent(model)}:predict`, body)) as { predictions: unknown[] })
      .predictions;
  }

  async explain(model: string, instances: unknown[]): Promise<{ predictions: unknown[]; explanations: unknown[] }> {
    return (await this.#request("POST", `/v1/models/${encodeURIComponent(model)}:explain`, { instances })) as {
      predictions: unknown[];
      explanations: unknown[];
    };
  }

  /** v2 infer with JSON tensors. */
  async infer(
    model: string,
    request: { id?: string; inputs: V2Tensor[]; outputs?: Array<{ name: string }>; parameters?: Record<string, unknown> },
  ): Promise<V2InferResponse> {
    return (await this.#request("POST", `/v2/models/${encodeURIComponent(model)}/infer`, request)) as V2InferResponse;
  }

  /** v2 infer of items (input key -> bytes or text) as BYTES tensors; returns each item's outputs as text. */
  async inferItems(model: string, items: Array<Record<string, string>>): Promise<Array<Record<string, string>>> {
    const keys = [...new Set(items.flatMap((item) => Object.keys(item)))];
    const inputs = keys.map((key) => ({ name: key, shape: [items.length], datatype: "BYTES", data: items.map((item) => item[key] ?? "") }));
    const response = await this.infer(model, { inputs });
    return items.map((_, i) => Object.fromEntries(response.outputs.map((output) => [output.name, String(output.data[i])])));
  }

  async v2Ready(model: string): Promise<boolean> {
    try {
      await this.#request("GET", `/v2/models/${encodeURIComponent(model)}/ready`);
      return true;
    } catch (error) {
      if (error instanceof ChassisError && error.code === Code.FAILED_PRECONDITION) return false;
      throw error;
    }
  }

  /** Polls `GET /v1/models/{name}` until ready, or rejects with DEADLINE_EXCEEDED after timeoutMs. */
  async waitUntilReady(model: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last = "no answer yet";
    let delay = 50;
    while (Date.now() < deadline) {
      try {
        if (await this.ready(model)) return;
        last = "model not ready (503)";
      } catch (error) {
        last = ChassisError.from(error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 500);
    }
    throw new ChassisError(Code.DEADLINE_EXCEEDED, `KServe server at ${this.url} was not ready within ${timeoutMs} ms (${last})`);
  }

  async #request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      const code = (error as Error).name === "TimeoutError" ? Code.DEADLINE_EXCEEDED : Code.UNAVAILABLE;
      throw new ChassisError(code, `${method} ${this.url}${path} failed: ${reason}`, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (!response.ok) {
      const detail = (parsed as { error?: unknown; detail?: unknown })?.error ?? (parsed as { detail?: unknown })?.detail ?? text;
      throw new ChassisError(
        HTTP_TO_CODE[response.status] ?? Code.UNKNOWN,
        `${method} ${path} answered ${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`,
      );
    }
    return parsed;
  }
}

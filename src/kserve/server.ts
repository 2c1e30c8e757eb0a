/**
 * @module kserve/server
 * The KServe REST server on our HTTP/1.1 server (./h1): v1 (`/v1/models/...`), v2 / Open
 * Inference Protocol (`/v2/...`), `/metrics`, `/openapi.json` and `/docs`,
 * all adapting one Runtime. Routes, statuses, bodies and the order of checks
 * follow KServe's ModelServer (reference kserve-rest.md); departures are
 * marked "Departure".
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { type Logger, silentLogger } from "../core/log.js";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.js";
import type { ServingMetrics } from "../metrics/serving.js";
import type { ItemOutcome, RawItem } from "../runtime/outcome.js";
import type { Runtime } from "../runtime/runtime.js";
import {
  type HttpError,
  httpErrorFor,
  methodNotAllowed,
  modelNotFound,
  modelNotReady,
  routeNotFound,
  versioningNotSupported,
} from "./errors.js";
import type { H1Request, H1Response } from "./h1/connection.js";
import { H1Server } from "./h1/server.js";
import { sendError, sendJson, sendText } from "./http.js";
import { JsonSyntaxError, parseJson, stringifyJson } from "./json-bigint.js";
import { instanceToItem, type OutputFormat, outputsToPrediction, requestInstances, requestOutputFormat } from "./v1-codec.js";
import type { V2Handler } from "./v2.js";

export interface KServeServerOptions {
  /** Name the model is served under (`MODEL_NAME`). */
  modelName: string;
  /** @default "0.0.0.0" */
  host?: string;
  /** @default 8080 */
  port?: number;
  /** Largest request body. KServe sets none; we default to 64 MiB and answer 413 above it. */
  maxBodyBytes?: number;
  /** Which protocol the docs present first. @default "v1" */
  protocol?: "v1" | "v2";
  metrics: ServingMetrics;
  /**
   * What GET /metrics answers. @default this process's registry. Under
   * `--workers`, every worker's, merged (server/workers.ts); a rejection is
   * a 503, so a scrape fails rather than counters seeming to go back.
   */
  renderMetrics?: () => Promise<string>;
  log?: Logger;
  version: string;
}

export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Content types KServe parses as JSON on v1; any other declared type reaches
 * the model as raw bytes. Departure: we also parse curl's default
 * `application/x-www-form-urlencoded` (what `curl -d` sends) as JSON.
 */
const V1_JSON_TYPES = new Set([
  "application/json",
  "application/cloudevents+json",
  "application/ld+json",
  "application/octet-stream",
  "application/x-www-form-urlencoded",
]);

type Handler = (req: H1Request, res: H1Response, match: RegExpExecArray) => Promise<void> | void;
interface Route {
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, Handler>>;
}

/** A v1 body, decoded: the items, the answer's format, and whether the body went to the model unparsed. */
interface DecodedV1 {
  readonly items: RawItem[];
  readonly format: OutputFormat;
  readonly raw: boolean;
}

/** The OpenAPI document and Swagger UI, loaded by the first request for them (~20 KB of code) rather than at start-up. */
let openApi: Promise<typeof import("./openapi.js")> | undefined;
function openApiModule(): Promise<typeof import("./openapi.js")> {
  openApi ??= import("./openapi.js");
  return openApi;
}

/** Paths whose route is remembered (handlers only read the match's groups). */
const ROUTE_CACHE_SIZE = 64;

export class KServeServer {
  readonly #runtime: Runtime;
  readonly #options: Required<Omit<KServeServerOptions, "log" | "renderMetrics">> &
    Pick<KServeServerOptions, "renderMetrics"> & { log: Logger };
  readonly #server: H1Server;
  readonly #routes: Route[];
  #port: number | undefined;

  constructor(runtime: Runtime, options: KServeServerOptions) {
    this.#runtime = runtime;
    this.#options = {
      host: "0.0.0.0",
      port: DEFAULT_HTTP_PORT,
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      protocol: "v1",
      log: silentLogger,
      ...options,
    };
    const name = "([^/]+)";
    const v = "(?:/versions/[^/]+)";
    this.#routes = [
      { pattern: /^\/$/, methods: { GET: (_q, s) => sendJson(s, 200, { status: "alive" }) } },
      {
        pattern: /^\/metrics$/,
        methods: { GET: (_q, s) => this.#metricsText(s) },
      },
      { pattern: /^\/openapi\.json$/, methods: { GET: async (_q, s) => sendJson(s, 200, await this.#openApi()) } },
      {
        pattern: /^\/docs$/,
        methods: { GET: async (_q, s) => sendText(s, 200, (await openApiModule()).swaggerUiHtml(), "text/html; charset=utf-8") },
      },
      { pattern: /^\/docs\/(swagger-ui[\w.-]*\.(?:js|css))$/, methods: { GET: (_q, s, m) => this.#asset(s, m[1] as string) } },
      { pattern: /^\/v1\/models$/, methods: { GET: (_q, s) => sendJson(s, 200, { models: [this.#options.modelName] }) } },
      // Departure: `GET /v1/models/m:predict` matches the predict route first (405, allow: POST); KServe's one-segment
      // path parameter reads it as model health for "m:predict" and answers 404 (reference G6).
      { pattern: new RegExp(`^/v1/models/${name}:predict$`), methods: { POST: (q, s, m) => this.#v1Predict(q, s, m[1] as string) } },
      { pattern: new RegExp(`^/v1/models/${name}:explain$`), methods: { POST: (q, s, m) => this.#v1Explain(q, s, m[1] as string) } },
      { pattern: new RegExp(`^/v1/models/${name}$`), methods: { GET: (_q, s, m) => this.#modelReady(s, m[1] as string) } },
      { pattern: /^\/v2$/, methods: { GET: async (_q, s) => sendJson(s, 200, (await this.#v2()).serverMetadata()) } },
      { pattern: /^\/v2\/health\/live$/, methods: { GET: (_q, s) => sendJson(s, 200, { live: true }) } },
      // Departure: KServe answers ready:true even while the model is not; ours is ready only when the model is.
      { pattern: /^\/v2\/health\/ready$/, methods: { GET: (_q, s) => this.#serverReady(s) } },
      { pattern: /^\/v2\/models$/, methods: { GET: (_q, s) => sendJson(s, 200, { models: [this.#options.modelName] }) } },
      { pattern: new RegExp(`^/v2/models/${name}${v}(?:/ready)?$`), methods: { GET: (_q, s) => sendError(s, versioningNotSupported) } },
      {
        pattern: new RegExp(`^/v2/models/${name}${v}/infer$`),
        methods: { POST: async (q, s, m) => (await this.#v2()).infer(q, s, m[1] as string, true) },
      },
      { pattern: new RegExp(`^/v2/models/${name}/ready$`), methods: { GET: (_q, s, m) => this.#modelReady(s, m[1] as string) } },
      {
        pattern: new RegExp(`^/v2/models/${name}/infer$`),
        methods: { POST: async (q, s, m) => (await this.#v2()).infer(q, s, m[1] as string, false) },
      },
      {
        pattern: new RegExp(`^/v2/models/${name}$`),
        methods: { GET: async (_q, s, m) => (await this.#v2()).modelMetadata(s, m[1] as string) },
      },
    ];
    this.#server = new H1Server({
      onRequest: (req, res) => this.#handle(req, res),
      maxBodyBytes: this.#options.maxBodyBytes,
      maxBodyName: "MAX_BODY_SIZE",
      // Longer than typical proxies' idle timeouts, as KServe's --timeout-keep-alive 65.
      keepAliveTimeoutMs: 65_000,
      headersTimeoutMs: 66_000,
    });
  }

  get port(): number | undefined {
    return this.#port;
  }

  listen(): Promise<number> {
    const { host, port } = this.#options;
    return this.#server.listen(host, port).then((bound) => {
      this.#port = bound;
      this.#options.log.info(`KServe REST server listening on ${host}:${bound}`);
      return bound;
    });
  }

  /**
   * Stops accepting; each connection answers what it has read (the last
   * answer with `connection: close`) and closes once that answer is written.
   * After graceMs, closes what is left.
   */
  close(graceMs = 30_000): Promise<void> {
    return this.#server.close(graceMs);
  }

  forceClose(): void {
    this.#server.forceClose();
  }

  #handle(req: H1Request, res: H1Response): void {
    const url = req.url;
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const route = this.#route(path);
    if (!route) {
      // KServe (Starlette) redirects a trailing slash to the path without it.
      if (path.length > 1 && path.endsWith("/") && this.#route(path.slice(0, -1))) {
        const location = `http://${req.headers.get("host") ?? "localhost"}${path.slice(0, -1)}${query === -1 ? "" : url.slice(query)}`;
        sendText(res, 307, "", undefined, { location });
      } else {
        sendError(res, routeNotFound);
      }
      return;
    }
    const [found, match] = route;
    const handler = found.methods[req.method];
    if (!handler) {
      sendError(res, methodNotAllowed(Object.keys(found.methods).join(", ")));
      return;
    }
    try {
      const done = handler(req, res, match);
      if (done) done.catch((error: unknown) => this.#fail(res, error));
    } catch (error) {
      this.#fail(res, error);
    }
  }

  readonly #routeCache = new Map<string, [Route, RegExpExecArray]>();

  #route(path: string): [Route, RegExpExecArray] | undefined {
    const cached = this.#routeCache.get(path);
    if (cached) return cached;
    for (const route of this.#routes) {
      const match = route.pattern.exec(path);
      if (match) {
        // The few paths clients use again and again skip the regex walk; bounded, so odd paths cannot grow it.
        if (this.#routeCache.size < ROUTE_CACHE_SIZE) this.#routeCache.set(path, [route, match]);
        return [route, match];
      }
    }
    return undefined;
  }

  /** Last resort for a handler that threw: 500 with KServe's text; the connection stays open. */
  #fail(res: H1Response, error: unknown): void {
    this.#options.log.error(`KServe handler failed: ${ChassisError.from(error).message}`);
    if (!res.responded) sendError(res, httpErrorFor(error, this.#options.modelName));
  }

  /** 404 for another name, 503 while not ready; undefined when the call may proceed. */
  #check(name: string): HttpError | undefined {
    if (name !== this.#options.modelName) return modelNotFound(name);
    if (this.#runtime.state !== "ready") return modelNotReady(name);
    return undefined;
  }

  #modelReady(res: H1Response, name: string): void {
    const problem = this.#check(name);
    if (problem) sendError(res, problem);
    else sendJson(res, 200, { name, ready: true });
  }

  #serverReady(res: H1Response): void {
    const ready = this.#runtime.state === "ready";
    sendJson(res, ready ? 200 : 503, { ready });
  }

  /**
   * Reads and decodes a v1 body, then calls `next` with the items. Refusals
   * (unknown model, not ready, a bad body) are answered here, and `next` is
   * not called. Callbacks rather than async/await: v1 predict is a hot path
   * (bench/serve.mjs), and each await is a promise and a microtask per call.
   */
  #v1Decode(req: H1Request, res: H1Response, name: string, next: (decoded: DecodedV1) => void): void {
    const { metrics } = this.#options;
    const problem = this.#check(name);
    if (problem) {
      metrics.recordRefused("v1");
      sendError(res, problem);
      return;
    }
    const started = performance.now();
    req.readBody((error, bytes) => {
      let decoded: DecodedV1 | undefined;
      try {
        if (error) throw error;
        decoded = this.#v1Items(req, bytes);
      } catch (failure) {
        metrics.recordRefused("v1");
        sendError(res, httpErrorFor(failure, name));
      }
      metrics.observe(metrics.preprocess, (performance.now() - started) / 1000);
      if (!decoded) return;
      try {
        next(decoded);
      } catch (failure) {
        this.#fail(res, failure);
      }
    });
  }

  /** A v1 body -> items (and the answer's format); throws INVALID_ARGUMENT naming what is wrong. */
  #v1Items(req: H1Request, bytes: Buffer): DecodedV1 {
    const contentType = req.headers.get("content-type");
    if (contentType !== undefined && !V1_JSON_TYPES.has(contentType)) {
      // KServe hands a body of any other declared type to the model unparsed: here, the first input.
      const first = this.#runtime.metadata.inputs[0]?.key as string;
      return { items: [{ [first]: bytes }], format: "text", raw: true };
    }
    let body: unknown;
    try {
      // parseJson, not JSON.parse: it keeps integers above 2^53 exact (a JSON instance value reaches the model
      // unchanged, as with KServe's orjson) and its messages are orjson's, which KServe puts in this error.
      body = parseJson(bytes.toString("utf8"));
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      throw new ChassisError(Code.INVALID_ARGUMENT, `Unrecognized request format: ${error.message}`);
    }
    const items = requestInstances(body).map((instance, i) => instanceToItem(instance, this.#runtime.metadata, i));
    // Checked here, before predict runs: a bad output_format used to be found only after the model had run.
    return { items, format: requestOutputFormat(body), raw: false };
  }

  #metricsText(res: H1Response): void | Promise<void> {
    const { renderMetrics, metrics } = this.#options;
    if (!renderMetrics) return sendText(res, 200, metrics.registry.render(), PROMETHEUS_CONTENT_TYPE);
    return renderMetrics().then(
      (text) => sendText(res, 200, text, PROMETHEUS_CONTENT_TYPE),
      (error: unknown) => sendError(res, { status: 503, body: { error: error instanceof Error ? error.message : String(error) } }),
    );
  }

  #v1Predict(req: H1Request, res: H1Response, name: string): void {
    this.#v1Decode(req, res, name, (decoded) => {
      const started = performance.now();
      this.#runtime.run(decoded.items, res.cancellation).then(
        (outcomes) => this.#v1Answer(res, name, decoded, outcomes, started),
        (error: unknown) => this.#fail(res, error),
      );
    });
  }

  /** Records the call and answers it: the predictions, or the first failed item's error. */
  #v1Answer(res: H1Response, name: string, decoded: DecodedV1, outcomes: ItemOutcome[], started: number): void {
    const { metrics } = this.#options;
    let failedAt = -1;
    let failed = 0;
    for (let i = 0; i < outcomes.length; i++) {
      if ((outcomes[i] as ItemOutcome).ok) continue;
      if (failedAt === -1) failedAt = i;
      failed++;
    }
    const post = performance.now();
    metrics.recordRun("v1", (post - started) / 1000, outcomes.length - failed, failed);
    try {
      if (failedAt !== -1) {
        // KServe answers a failing predict with one error for the request; the instance is named when there are several.
        const failure = outcomes[failedAt] as { error: ChassisError };
        sendError(res, httpErrorFor(failure.error, name, outcomes.length > 1 ? `instance ${failedAt}` : undefined));
        return;
      }
      const metadata = this.#runtime.metadata;
      if (decoded.raw) {
        const first = metadata.outputs[0];
        const outcome = outcomes[0] as { outputs: Record<string, Uint8Array> };
        sendText(res, 200, outcome.outputs[first?.key as string] ?? new Uint8Array(), first?.mediaType);
        return;
      }
      const { format } = decoded;
      const predictions = outcomes.map((o) =>
        outputsToPrediction((o as { outputs: Record<string, Uint8Array> }).outputs, metadata, format),
      );
      // output_format json/all may hold bigints (parseJson keeps them exact), which JSON.stringify cannot write.
      sendText(res, 200, format === "text" ? JSON.stringify({ predictions }) : stringifyJson({ predictions }), "application/json");
    } catch (error) {
      this.#fail(res, error);
    } finally {
      metrics.observe(metrics.postprocess, (performance.now() - post) / 1000);
    }
  }

  #v1Explain(req: H1Request, res: H1Response, name: string): void {
    if (typeof this.#runtime.model.definition.explain !== "function") {
      // As KServe's default Model.explain without an explainer.
      const problem = this.#check(name);
      sendError(res, problem ?? { status: 501, body: { error: "Could not find explainer_host." } });
      return;
    }
    this.#v1Decode(req, res, name, (decoded) => {
      this.#v1ExplainDecoded(res, name, decoded).catch((error: unknown) => this.#fail(res, error));
    });
  }

  async #v1ExplainDecoded(res: H1Response, name: string, decoded: DecodedV1): Promise<void> {
    const { metrics } = this.#options;
    const started = performance.now();
    const [predicted, explained] = await Promise.all([this.#runtime.run(decoded.items), this.#runtime.explain(decoded.items)]);
    metrics.observe(metrics.explain, (performance.now() - started) / 1000);
    const failedAt = [...predicted, ...explained].findIndex((o) => !o.ok);
    if (failedAt !== -1) {
      const failure = [...predicted, ...explained][failedAt] as { error: ChassisError };
      const index = failedAt % decoded.items.length;
      sendError(res, httpErrorFor(failure.error, name, decoded.items.length > 1 ? `instance ${index}` : undefined));
      return;
    }
    const { format } = decoded;
    const answer = {
      predictions: predicted.map((o) =>
        outputsToPrediction((o as { outputs: Record<string, Uint8Array> }).outputs, this.#runtime.metadata, format),
      ),
      explanations: explained.map((o) => (o as { explanation: unknown }).explanation),
    };
    // stringifyJson: an explanation (any value the model returns) or a parsed output may hold bigints.
    sendText(res, 200, stringifyJson(answer), "application/json");
  }

  #v2Handler: Promise<V2Handler> | undefined;
  /** The v2 routes' handler, loaded by the first v2 request rather than at start-up (its codec is ~30 KB of code). */
  #v2(): Promise<V2Handler> {
    this.#v2Handler ??= import("./v2.js").then(
      ({ V2Handler }) => new V2Handler(this.#runtime, this.#options.modelName, this.#options.metrics, this.#options.version),
    );
    return this.#v2Handler;
  }

  #openApiCache: Promise<unknown> | undefined;
  #openApi(): Promise<unknown> {
    this.#openApiCache ??= openApiModule().then(({ openApiDocument }) =>
      openApiDocument(this.#runtime.metadata, this.#options.modelName, this.#options.protocol, this.#options.version),
    );
    return this.#openApiCache;
  }

  async #asset(res: H1Response, file: string): Promise<void> {
    const asset = (await openApiModule()).swaggerUiAsset(file);
    if (!asset) sendError(res, routeNotFound);
    else sendText(res, 200, asset.body, asset.contentType, { "cache-control": "public, max-age=86400" });
  }
}

/**
 * KServe REST (v1 and v2 / Open Inference Protocol) over real sockets,
 * against servers started in this process: the T1-T30 checklist of
 * reference/kserve-rest.md section 6, the Chassis convention (base64
 * instance -> first input, prediction = first output as text), and the
 * places where chassis-ts departs from KServe's ModelServer on purpose
 * (each such test says "Departure" and how in its name, matching a
 * "Departure" comment in src/kserve).
 *
 * Models: examples/echo, examples/digits and the fixtures kserve-throws.ts
 * (errors thrown by predict), kserve-pair.ts (two inputs incl. a JSON one,
 * three outputs, explain), broken-load.ts (never ready), delayed-load.ts.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect, createServer as createNetServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { createLogger } from "../../src/core/log.js";
import { TOOL_ERRORS, ToolError } from "../../src/core/tool-error.js";
import { parseServeArgs, resolveServerConfig } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/serve.js";
import { fixture, ROOT, runCli, seriesValue, startInProcess } from "../helpers/server.js";

const ECHO = `${ROOT}/examples/echo`;
const DIGITS = `${ROOT}/examples/digits`;
/** 64 pixels that the digits model classifies as 1 (its README and model tests agree). */
const SAMPLE = JSON.parse(readFileSync(`${ROOT}/examples/digits/sample.json`, "utf8")) as number[];
const SAMPLE_CLASS = 1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const b64 = (text: string) => Buffer.from(text).toString("base64");
type Obj = Record<string, unknown>;

interface Reply {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

interface CallInit {
  method?: string;
  /** A string or bytes body; an object is sent as JSON with content-type application/json. */
  body?: string | Uint8Array | Obj;
  headers?: Record<string, string>;
}

/** One request with global fetch (redirects not followed). */
async function call(port: number, path: string, init: CallInit = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | Uint8Array | undefined;
  if (init.body !== undefined && typeof init.body === "object" && !(init.body instanceof Uint8Array)) {
    body = JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  } else body = init.body;
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    redirect: "manual",
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, bytes, text, json };
}

const post = (port: number, path: string, body: CallInit["body"], headers?: Record<string, string>) =>
  call(port, path, { method: "POST", body, ...(headers ? { headers } : {}) });

/** A v2 BYTES input tensor of one element per item. */
const bytesInput = (name: string, data: string[]) => ({ name, shape: [data.length], datatype: "BYTES", data });

/** BYTES binary data: each element a 4-byte little-endian length, then its bytes. */
function lengthPrefixed(elements: Array<string | Uint8Array>): Buffer {
  return Buffer.concat(
    elements.flatMap((element) => {
      const bytes = typeof element === "string" ? Buffer.from(element) : Buffer.from(element);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );
}

/** A binary-extension request: the JSON header, then the raw tensors. */
function binaryBody(header: Obj, ...tensors: Uint8Array[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...tensors]),
    headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(json.length) },
  };
}

/** Splits a binary response: the JSON header (inference-header-content-length bytes), then the raw outputs. */
function splitBinary(reply: Reply): { header: Obj; rest: Buffer } {
  const length = Number(reply.headers.get("inference-header-content-length"));
  assert.ok(Number.isInteger(length) && length > 0, "inference-header-content-length is set");
  return { header: JSON.parse(reply.bytes.subarray(0, length).toString("utf8")) as Obj, rest: reply.bytes.subarray(length) };
}

/** Reads the elements of a BYTES binary block. */
function readLengthPrefixed(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const length = bytes.readUInt32LE(offset);
    out.push(bytes.subarray(offset + 4, offset + 4 + length).toString("utf8"));
    offset += 4 + length;
  }
  return out;
}

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The client socket the answer came on, to check keep-alive reuse. */
  socket: Socket;
}

/** node:http through a given Agent, so tests can see which socket carried a request. */
function agentCall(agent: Agent, port: number, path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return new Promise<RawReply>((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "POST", agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString("utf8"),
          socket: req.socket as Socket,
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A raw TCP connection that sends whole HTTP/1.1 requests one at a time and
 * reads each answer (the server always sends content-length).
 */
class RawConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  async exchange(head: string, body: Buffer = Buffer.alloc(0)): Promise<{ status: number; headers: string; body: string }> {
    this.send(head, body);
    return this.answer();
  }

  /** Writes a request without waiting for its answer (several sent this way are pipelined). */
  send(head: string, body: Buffer = Buffer.alloc(0)): void {
    this.#socket.write(Buffer.concat([Buffer.from(head.replace(/\n/g, "\r\n")), body]));
  }

  /** The next answer on the connection. */
  async answer(): Promise<{ status: number; headers: string; body: string }> {
    for (;;) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end !== -1) {
        const headers = this.#buffer.subarray(0, end).toString("latin1");
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          const answer = this.#buffer.subarray(end + 4, end + 4 + length).toString("utf8");
          this.#buffer = this.#buffer.subarray(end + 4 + length);
          return { status: Number(headers.split(" ")[1]), headers, body: answer };
        }
      }
      if (this.#closed) throw new Error(`the server closed the connection (buffered: ${JSON.stringify(this.#buffer.toString())})`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

// ---------------------------------------------------------------------------

describe("KServe REST with the echo model (v1)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(ECHO, { interface: "kserve", "max-body-size": "4K" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  test("T1: GET / is alive; POST / is 405 with allow: GET; HEAD / is 405 with an empty body", async () => {
    const alive = await call(port, "/");
    assert.equal(alive.status, 200);
    assert.match(alive.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(alive.json, { status: "alive" });
    const wrong = await post(port, "/", { a: 1 });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET");
    assert.deepEqual(wrong.json, { detail: "Method Not Allowed" });
    const head = await call(port, "/", { method: "HEAD" });
    assert.equal(head.status, 405);
    assert.equal(head.text, "");
  });

  test("T2: GET /v1/models lists the model under its name (the slug of 'Echo')", async () => {
    const reply = await call(port, "/v1/models");
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { models: ["echo"] });
  });

  test("T3: GET /v1/models/{name} is 200 ready; an unknown name is 404 with KServe's text", async () => {
    assert.deepEqual((await call(port, "/v1/models/echo")).json, { name: "echo", ready: true });
    const unknown = await call(port, "/v1/models/nope");
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: "Model with name nope does not exist." });
  });

  test("T4 + Chassis convention: a base64 instance goes to the first input; the prediction is the first output as text", async () => {
    const reply = await post(port, "/v1/models/echo:predict", { instances: [b64("hello"), b64('{"a":[1,2]}')] });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("content-type"), "application/json");
    assert.deepEqual(reply.json, { predictions: ["hello", '{"a":[1,2]}'] });
  });

  test('v1: {"b64": ...} instances and objects keyed by input name are accepted', async () => {
    const reply = await post(port, "/v1/models/echo:predict", {
      instances: [{ b64: b64("from b64") }, { input: b64("by name") }, { input: { b64: b64("by name, b64") } }],
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { predictions: ["from b64", "by name", "by name, b64"] });
  });

  test('v1: TF-serving style {"inputs": [...]} is read like "instances"', async () => {
    const reply = await post(port, "/v1/models/echo:predict", { inputs: [b64("tf")] });
    assert.deepEqual(reply.json, { predictions: ["tf"] });
  });

  test("v1: output_format json parses the first output; all returns every output keyed by name", async () => {
    const json = await post(port, "/v1/models/echo:predict", { instances: [b64('{"a":[1,2]}')], parameters: { output_format: "json" } });
    assert.deepEqual(json.json, { predictions: [{ a: [1, 2] }] });
    const all = await post(port, "/v1/models/echo:predict", { instances: [b64('{"b":true}')], parameters: { output_format: "all" } });
    assert.deepEqual(all.json, { predictions: [{ "results.json": { b: true } }] });
    const predicts = async () => seriesValue((await call(port, "/metrics")).text, 'request_predict_seconds_count{model_name="echo"}');
    const baseline = await predicts();
    const bad = await post(port, "/v1/models/echo:predict", { instances: [b64("x")], parameters: { output_format: "yaml" } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.json, { error: 'parameters.output_format must be one of "text", "json", "all", got "yaml"' });
    assert.equal(await predicts(), baseline, "a bad output_format is refused before the model runs");
  });

  test("v1: base64 wrapped over lines (as the base64 tool prints it) is accepted; whitespace alone does not make it valid", async () => {
    const text = "a line long enough that its base64 needs more than one line of 76 characters when wrapped by the tool";
    const wrapped = (b64(text).match(/.{1,76}/g) as string[]).join("\n");
    assert.ok(wrapped.includes("\n"));
    const reply = await post(port, "/v1/models/echo:predict", { instances: [wrapped] });
    assert.deepEqual(reply.json, { predictions: [text] });
    const bad = await post(port, "/v1/models/echo:predict", { instances: ["aGVs\nbG8!"] });
    assert.equal(bad.status, 400);
    assert.match((bad.json as Obj).error as string, /^instance 0 is not valid base64/);
  });

  test("v1: an instance that is not base64 or has keys that are not inputs is 400 naming the instance", async () => {
    const notBase64 = await post(port, "/v1/models/echo:predict", { instances: [b64("ok"), "not base64!"] });
    assert.equal(notBase64.status, 400);
    assert.match((notBase64.json as Obj).error as string, /^instance 1 is not valid base64/);
    const badKeys = await post(port, "/v1/models/echo:predict", { instances: [{ foo: b64("x") }] });
    assert.equal(badKeys.status, 400);
    assert.match(
      (badKeys.json as Obj).error as string,
      /^instance 0 has keys "foo", which are not this model's inputs \("input", "raise"\)/,
    );
  });

  test("v1: requests pipelined in one write are answered in order on the connection, each with its own answer", async () => {
    const connection = await RawConnection.open(port);
    try {
      const predict = (text: string) => {
        const body = Buffer.from(JSON.stringify({ instances: [b64(text)] }));
        return [
          `POST /v1/models/echo:predict HTTP/1.1\nhost: x\ncontent-type: application/json\ncontent-length: ${body.length}\n\n`,
          body,
        ] as const;
      };
      const requests = [
        predict("first"),
        [`GET /v1/models/echo HTTP/1.1\nhost: x\n\n`, Buffer.alloc(0)] as const,
        predict("third"),
        [
          `POST /v1/models/echo:predict HTTP/1.1\nhost: x\ncontent-type: application/json\ncontent-length: 1\n\n`,
          Buffer.from("{"),
        ] as const,
        predict("fifth"),
      ];
      // One write carries all five, so the server parses them in one read.
      connection.send(requests.map(([head, body]) => head + body.toString()).join(""));
      const answers = [];
      for (let i = 0; i < requests.length; i++) answers.push(await connection.answer());
      assert.deepEqual(
        answers.map((a) => [a.status, JSON.parse(a.body)]),
        [
          [200, { predictions: ["first"] }],
          [200, { name: "echo", ready: true }],
          [200, { predictions: ["third"] }],
          [400, { error: "Unrecognized request format: unexpected end of data: line 1 column 2 (char 1)" }],
          [200, { predictions: ["fifth"] }],
        ],
      );
    } finally {
      connection.close();
    }
  });

  test("T5: invalid JSON or an empty body is 400 'Unrecognized request format: <orjson's message>'", async () => {
    const cases: Array<[string, string]> = [
      ['{"instances": [', "unexpected end of data: line 1 column 16 (char 15)"],
      ["", "Input is a zero-length, empty document: line 1 column 1 (char 0)"],
      ['{"instances": [NaN]}', "unexpected character, expected a JSON value: line 1 column 16 (char 15)"],
    ];
    for (const [body, message] of cases) {
      const reply = await post(port, "/v1/models/echo:predict", Buffer.from(body), { "content-type": "application/json" });
      assert.equal(reply.status, 400, body);
      assert.deepEqual(reply.json, { error: `Unrecognized request format: ${message}` }, body);
    }
  });

  test("T5: no content-type is parsed as JSON, as KServe does", async () => {
    const reply = await post(port, "/v1/models/echo:predict", Buffer.from(JSON.stringify({ instances: [b64("no type")] })));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { predictions: ["no type"] });
  });

  test("T5: the checks run in KServe's order: an unknown model is 404 before the body is decoded", async () => {
    const reply = await post(port, "/v1/models/nope:predict", "{not json", { "content-type": "application/json" });
    assert.equal(reply.status, 404);
    assert.deepEqual(reply.json, { error: "Model with name nope does not exist." });
    const explain = await post(port, "/v1/models/nope:explain", "{not json", { "content-type": "application/json" });
    assert.equal(explain.status, 404);
    assert.deepEqual(explain.json, { error: "Model with name nope does not exist." });
  });

  test('T6: "instances" that is not a list is 400 with KServe\'s text', async () => {
    const reply = await post(port, "/v1/models/echo:predict", { instances: "abc" });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, { error: 'Expected "instances" to be a list' });
  });

  test("T7: a text/plain body reaches the model's first input unparsed", async () => {
    const reply = await post(port, "/v1/models/echo:predict", "raw words, not JSON", { "content-type": "text/plain" });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, "raw words, not JSON");
  });

  test("T7: application/json; charset=utf-8 is also passed unparsed, as KServe does (not exactly application/json)", async () => {
    const body = JSON.stringify({ instances: [b64("x")] });
    const reply = await post(port, "/v1/models/echo:predict", body, { "content-type": "application/json; charset=utf-8" });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, body, "the echo model got the whole body as its input");
  });

  test("Departure: curl's application/x-www-form-urlencoded (curl -d) is parsed as JSON (KServe passes it raw to the model)", async () => {
    const reply = await post(port, "/v1/models/echo:predict", JSON.stringify({ instances: [b64("curl")] }), {
      "content-type": "application/x-www-form-urlencoded",
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, { predictions: ["curl"] });
  });

  test('T8: predict throwing is 500 {"error":"<Type> : <message>"}; the server keeps serving', async () => {
    const reply = await post(port, "/v1/models/echo:predict", { instances: [{ raise: b64("boom value") }] });
    assert.equal(reply.status, 500);
    assert.deepEqual(reply.json, { error: "Error : boom value" });
    const next = await post(port, "/v1/models/echo:predict", { instances: [b64("still here")] });
    assert.deepEqual(next.json, { predictions: ["still here"] });
  });

  test("Departure: one failing instance fails the request with an error naming the instance (KServe has no per-instance errors)", async () => {
    const reply = await post(port, "/v1/models/echo:predict", { instances: [{ input: b64("fine") }, { raise: b64("boom") }] });
    assert.equal(reply.status, 500);
    assert.deepEqual(reply.json, { error: "Error : instance 1: boom" });
  });

  test('T9: :explain on a model without an explain function is 501 "Could not find explainer_host."', async () => {
    const reply = await post(port, "/v1/models/echo:explain", { instances: [b64("x")] });
    assert.equal(reply.status, 501);
    assert.deepEqual(reply.json, { error: "Could not find explainer_host." });
  });

  test('T10: an unknown path is 404 {"detail":"Not Found"}; a wrong method is 405 with an allow header', async () => {
    for (const path of ["/nope", "/v1", "/v1/models/echo/extra", "/v3/models"]) {
      const reply = await call(port, path);
      assert.equal(reply.status, 404, path);
      assert.deepEqual(reply.json, { detail: "Not Found" }, path);
    }
    const put = await call(port, "/v1/models/echo", { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET");
  });

  test("Departure G6: GET /v1/models/echo:predict is 405 allow: POST (KServe reads it as model health for 'echo:predict': 404)", async () => {
    const getPredict = await call(port, "/v1/models/echo:predict");
    assert.equal(getPredict.status, 405);
    assert.equal(getPredict.headers.get("allow"), "POST");
    assert.deepEqual(getPredict.json, { detail: "Method Not Allowed" });
  });

  test("T29: a trailing slash is 307 to the path without it (absolute location, query kept, empty body)", async () => {
    const models = await call(port, "/v1/models/");
    assert.equal(models.status, 307);
    assert.equal(models.headers.get("location"), `http://127.0.0.1:${port}/v1/models`);
    assert.equal(models.text, "");
    const v2 = await call(port, "/v2/?x=1");
    assert.equal(v2.status, 307);
    assert.equal(v2.headers.get("location"), `http://127.0.0.1:${port}/v2?x=1`);
    assert.equal((await call(port, "/nope/")).status, 404, "no redirect to a path that does not exist");
  });

  test("T30: N instances give exactly N predictions, in order (the batcher sidecar relies on it)", async () => {
    const texts = Array.from({ length: 25 }, (_, i) => `item-${i}`);
    const reply = await post(port, "/v1/models/echo:predict", { instances: texts.map(b64) });
    assert.deepEqual(reply.json, { predictions: texts });
    const none = await post(port, "/v1/models/echo:predict", { instances: [] });
    assert.deepEqual(none.json, { predictions: [] });
  });

  test("a body over --max-body-size is 413, and the keep-alive connection serves the next request on the same socket", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ instances: [b64("x".repeat(6000))] });
      const tooLarge = await agentCall(agent, port, "/v1/models/echo:predict", big, { "content-type": "application/json" });
      assert.equal(tooLarge.status, 413);
      assert.match(JSON.parse(tooLarge.text).error, /over the limit of 4K \(MAX_BODY_SIZE\)/);
      const next = await agentCall(agent, port, "/v1/models/echo:predict", JSON.stringify({ instances: [b64("small")] }), {
        "content-type": "application/json",
      });
      assert.equal(next.status, 200);
      assert.deepEqual(JSON.parse(next.text), { predictions: ["small"] });
      assert.equal(next.socket, tooLarge.socket, "the same socket carried both requests");
      // Chunked (no content-length): the limit is found while reading, and the connection still survives.
      const chunked = await agentCall(agent, port, "/v1/models/echo:predict", big, {
        "content-type": "application/json",
        "transfer-encoding": "chunked",
      });
      assert.equal(chunked.status, 413);
      const after = await agentCall(agent, port, "/", "");
      assert.equal(after.status, 405, "POST / answered on the same socket");
      assert.equal(after.socket, tooLarge.socket);
    } finally {
      agent.destroy();
    }
  });
});

describe("KServe REST with the echo model (v2 / Open Inference Protocol)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(ECHO, { interface: "kserve", "max-body-size": "4K" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  test("Departure T11: GET /v2 names chassis-ts and the binary_tensor_data extension (KServe: kserve, model_repository_extension)", async () => {
    const reply = await call(port, "/v2");
    assert.equal(reply.status, 200);
    const version = (JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")) as { version: string }).version;
    assert.deepEqual(reply.json, { name: "chassis-ts", version, extensions: ["binary_tensor_data"] });
  });

  test("T12: /v2/health/live and /v2/health/ready are true while the model is ready; HEAD and POST are 405", async () => {
    assert.deepEqual((await call(port, "/v2/health/live")).json, { live: true });
    assert.deepEqual((await call(port, "/v2/health/ready")).json, { ready: true });
    assert.equal((await call(port, "/v2/health/live", { method: "HEAD" })).status, 405);
    const wrong = await post(port, "/v2/health/ready", {});
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET");
  });

  test("T13: /v2/models/{name} is metadata with BYTES tensors of shape [-1]; an unknown name is 404", async () => {
    const reply = await call(port, "/v2/models/echo");
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, {
      name: "echo",
      versions: null,
      platform: "chassis-ts",
      inputs: [
        { name: "input", datatype: "BYTES", shape: [-1] },
        { name: "raise", datatype: "BYTES", shape: [-1] },
      ],
      outputs: [{ name: "results.json", datatype: "BYTES", shape: [-1] }],
    });
    const unknown = await call(port, "/v2/models/nope");
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: "Model with name nope does not exist." });
    assert.deepEqual((await call(port, "/v2/models")).json, { models: ["echo"] });
  });

  test("T14: /v2/models/{name}/ready is 200 ready; unknown is 404", async () => {
    assert.deepEqual((await call(port, "/v2/models/echo/ready")).json, { name: "echo", ready: true });
    const unknown = await call(port, "/v2/models/nope/ready");
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: "Model with name nope does not exist." });
  });

  test("T15: any /versions/{v} route is 501 'Model versioning not supported yet.' (infer: after the body passed validation)", async () => {
    const expected = { error: "Model versioning not supported yet." };
    for (const path of ["/v2/models/echo/versions/1", "/v2/models/echo/versions/1/ready", "/v2/models/nope/versions/2"]) {
      const reply = await call(port, path);
      assert.equal(reply.status, 501, path);
      assert.deepEqual(reply.json, expected, path);
    }
    const infer = await post(port, "/v2/models/echo/versions/1/infer", { inputs: [bytesInput("input", ["x"])] });
    assert.equal(infer.status, 501);
    assert.deepEqual(infer.json, expected);
    const invalid = await post(port, "/v2/models/echo/versions/1/infer", { id: "1" });
    assert.equal(invalid.status, 422, "the body is validated before the version is looked at");
  });

  test("T16: /infer JSON: id echoed, model_name set, BYTES outputs with flat data, KServe's key order and nulls", async () => {
    const reply = await post(port, "/v2/models/echo/infer", { id: "42", inputs: [bytesInput("input", ["hello", "wörld"])] });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("content-type"), "application/json");
    assert.deepEqual(reply.json, {
      model_name: "echo",
      model_version: null,
      id: "42",
      parameters: null,
      outputs: [{ name: "results.json", shape: [2], datatype: "BYTES", parameters: null, data: ["hello", "wörld"] }],
    });
    assert.deepEqual(Object.keys(reply.json as Obj), ["model_name", "model_version", "id", "parameters", "outputs"]);
  });

  test("T16: datatype is upper-cased, shape items may be integer strings, nested data and unknown fields are accepted", async () => {
    const reply = await post(port, "/v2/models/echo/infer", {
      extra: true,
      inputs: [{ name: "input", shape: ["2", 1], datatype: "bytes", data: [["a"], ["b"]] }],
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(((reply.json as Obj).outputs as Obj[])[0]?.data, ["a", "b"]);
  });

  test("T17: /infer without an id still answers with a string id (a UUID)", async () => {
    const reply = await post(port, "/v2/models/echo/infer", { inputs: [bytesInput("input", ["x"])] });
    assert.equal(reply.status, 200);
    assert.match((reply.json as Obj).id as string, UUID);
  });

  test("T18: schema violations are 422 with FastAPI's detail list (InferenceRequest errors, then the bytes alternative)", async () => {
    const missingInputs = await post(port, "/v2/models/echo/infer", { id: "1" });
    assert.equal(missingInputs.status, 422);
    assert.deepEqual(missingInputs.json, {
      detail: [
        { type: "missing", loc: ["body", "InferenceRequest", "inputs"], msg: "Field required", input: { id: "1" } },
        { type: "bytes_type", loc: ["body", "bytes"], msg: "Input should be a valid bytes", input: { id: "1" } },
      ],
    });
    const cases: Array<[Obj, (string | number)[], string]> = [
      [{ inputs: [{ name: "input", shape: [1], datatype: "BYTES" }] }, ["inputs", 0, "data"], "missing"],
      [{ inputs: [{ shape: [1], datatype: "BYTES", data: ["x"] }] }, ["inputs", 0, "name"], "missing"],
      [{ id: 5, inputs: [bytesInput("input", ["x"])] }, ["id"], "string_type"],
      [{ inputs: [bytesInput("input", ["x"])], parameters: { nested: { a: 1 } } }, ["parameters", "nested", "float"], "float_type"],
      [{ inputs: "abc" }, ["inputs"], "list_type"],
    ];
    for (const [body, loc, type] of cases) {
      const reply = await post(port, "/v2/models/echo/infer", body);
      assert.equal(reply.status, 422, JSON.stringify(body));
      const detail = (reply.json as { detail: Obj[] }).detail;
      assert.deepEqual(detail[0]?.loc, ["body", "InferenceRequest", ...loc], JSON.stringify(body));
      assert.equal(detail[0]?.type, type);
      assert.deepEqual(detail.at(-1)?.loc, ["body", "bytes"]);
    }
  });

  test("T18: invalid JSON and an empty JSON body are 422 (json_invalid, missing) as FastAPI; Departure: ctx.error is orjson's wording, not Python json's", async () => {
    const invalid = await post(port, "/v2/models/echo/infer", '{"inputs": [', { "content-type": "application/json" });
    assert.equal(invalid.status, 422);
    const entry = (invalid.json as { detail: Obj[] }).detail[0] as Obj;
    assert.equal(entry.type, "json_invalid");
    assert.equal(entry.msg, "JSON decode error");
    assert.deepEqual(entry.loc, ["body", 12]);
    assert.deepEqual(entry.ctx, { error: "unexpected end of data" }, "FastAPI says 'Expecting value'");
    const empty = await post(port, "/v2/models/echo/infer", new Uint8Array(), { "content-type": "application/json" });
    assert.equal(empty.status, 422);
    assert.deepEqual(empty.json, { detail: [{ type: "missing", loc: ["body"], msg: "Field required", input: null }] });
  });

  test("T18 order, as KServe: the body is validated before the model lookup (unknown model + bad body = 422, good body = 404)", async () => {
    assert.equal((await post(port, "/v2/models/nope/infer", { id: "1" })).status, 422);
    const unknown = await post(port, "/v2/models/nope/infer", { inputs: [bytesInput("input", ["x"])] });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: "Model with name nope does not exist." });
  });

  test("Departure T19: a shape that does not fit the data count is 400 naming the input (KServe: 500 ValueError cannot reshape)", async () => {
    const reply = await post(port, "/v2/models/echo/infer", {
      inputs: [{ name: "input", shape: [3], datatype: "BYTES", data: ["a", "b"] }],
    });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, { error: "input 'input' has 2 values but shape [3] needs 3" });
  });

  test("T20: FP16 data in JSON is 400 with KServe's text", async () => {
    const reply = await post(port, "/v2/models/echo/infer", { inputs: [{ name: "input", shape: [1], datatype: "FP16", data: [1] }] });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, {
      error: "Sending FP16 data via JSON is not supported. Please use the binary data format for input input",
    });
  });

  test("T21: an unknown requested output is 400 with KServe's text", async () => {
    const reply = await post(port, "/v2/models/echo/infer", { inputs: [bytesInput("input", ["x"])], outputs: [{ name: "zzz" }] });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, { error: "Unexpected inference output 'zzz' for model 'echo'" });
  });

  test("v2: an input the model does not declare is 400 naming it and the model's inputs", async () => {
    const reply = await post(port, "/v2/models/echo/infer", { inputs: [bytesInput("image", ["x"])] });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, { error: "input 'image' is not an input of model 'echo'; its inputs are 'input', 'raise'" });
  });

  test("T22: a binary request decodes BYTES (length-prefixed) and may mix JSON data and binary inputs", async () => {
    const elements = ["hello", "wörld", ""];
    const block = lengthPrefixed(elements);
    const { body, headers } = binaryBody(
      { id: "bin", inputs: [{ name: "input", shape: [3], datatype: "BYTES", parameters: { binary_data_size: block.length } }] },
      block,
    );
    const reply = await post(port, "/v2/models/echo/infer", body, headers);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("content-type"), "application/json", "outputs not asked as binary come back as JSON");
    assert.deepEqual(((reply.json as Obj).outputs as Obj[])[0]?.data, elements);
    assert.equal((reply.json as Obj).id, "bin");
  });

  test("T23: a bytes body without inference-header-content-length is 400 with KServe's exact text (also with no content-type)", async () => {
    const expected = { error: "received byte inputs, but the'inference-header-content-length' header is missing." };
    const octet = await post(port, "/v2/models/echo/infer", Buffer.from("abc"), { "content-type": "application/octet-stream" });
    assert.equal(octet.status, 400);
    assert.deepEqual(octet.json, expected);
    const untyped = await post(port, "/v2/models/echo/infer", Buffer.from(JSON.stringify({ inputs: [bytesInput("input", ["x"])] })));
    assert.equal(untyped.status, 400, "no content-type: the body is bytes (FastAPI 0.142)");
    assert.deepEqual(untyped.json, expected);
  });

  test("Departure: a non-integer inference-header-content-length is 400 (KServe: 500 ValueError invalid literal for int())", async () => {
    const reply = await post(port, "/v2/models/echo/infer", Buffer.from("{}"), {
      "content-type": "application/octet-stream",
      "inference-header-content-length": "abc",
    });
    assert.equal(reply.status, 400);
    assert.match((reply.json as Obj).error as string, /inference-header-content-length must be a whole number of bytes, got "abc"/);
  });

  test("v2 binary: a JSON header that is not JSON is 400 'Unrecognized request format: ...'; sizes that do not add up are 400", async () => {
    const bad = await post(port, "/v2/models/echo/infer", Buffer.from("{nope"), {
      "content-type": "application/octet-stream",
      "inference-header-content-length": "5",
    });
    assert.equal(bad.status, 400);
    assert.match((bad.json as Obj).error as string, /^Unrecognized request format: /);
    const { body, headers } = binaryBody(
      { inputs: [{ name: "input", shape: [1], datatype: "BYTES", parameters: { binary_data_size: 100 } }] },
      lengthPrefixed(["short"]),
    );
    const short = await post(port, "/v2/models/echo/infer", body, headers);
    assert.equal(short.status, 400);
    assert.match((short.json as Obj).error as string, /binary_data_size 100, but only 9 bytes of binary data remain/);
    const noData = binaryBody({ inputs: [{ name: "input", shape: [1], datatype: "BYTES" }] });
    const missing = await post(port, "/v2/models/echo/infer", noData.body, noData.headers);
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json, { error: "'data' field is missing for input 'input' for model 'echo'" });
  });

  test("T24: binary_data_output gives a binary response: JSON header of inference-header-content-length bytes, then the raw outputs", async () => {
    const reply = await post(port, "/v2/models/echo/infer", {
      id: "b",
      parameters: { binary_data_output: true },
      inputs: [bytesInput("input", ["hello", "wörld"])],
    });
    assert.equal(reply.status, 200);
    // Ours says application/octet-stream, as Triton does; KServe sends no content-type on binary responses.
    assert.equal(reply.headers.get("content-type"), "application/octet-stream");
    const { header, rest } = splitBinary(reply);
    const size = 4 + 5 + 4 + Buffer.byteLength("wörld");
    assert.deepEqual(header, {
      id: "b",
      model_name: "echo",
      model_version: null,
      outputs: [{ name: "results.json", shape: [2], datatype: "BYTES", parameters: { binary_data_size: size } }],
    });
    assert.equal(rest.length, size);
    assert.deepEqual(readLengthPrefixed(rest), ["hello", "wörld"]);
    assert.equal(Number(reply.headers.get("content-length")), reply.bytes.length);
  });

  test('T24: binary_data_output "true" (a string) counts; "false" does not', async () => {
    const yes = await post(port, "/v2/models/echo/infer", {
      parameters: { binary_data_output: "true" },
      inputs: [bytesInput("input", ["x"])],
    });
    assert.equal(yes.headers.get("content-type"), "application/octet-stream");
    const no = await post(port, "/v2/models/echo/infer", {
      parameters: { binary_data_output: "false" },
      inputs: [bytesInput("input", ["x"])],
    });
    assert.equal(no.headers.get("content-type"), "application/json");
  });

  test("T25 (not implemented): /v2/repository/models/{name}/load, /unload and /v2/repository/index are 404 Not Found", async () => {
    for (const path of ["/v2/repository/models/echo/load", "/v2/repository/models/echo/unload", "/v2/repository/index"]) {
      const reply = await post(port, path, {});
      assert.equal(reply.status, 404, path);
      assert.deepEqual(reply.json, { detail: "Not Found" }, path);
    }
    assert.deepEqual((await call(port, "/v2/models/echo/ready")).json, { name: "echo", ready: true }, "still served after an unload call");
  });

  test("v2: a body over --max-body-size is 413, and a raw keep-alive socket serves the next request", async () => {
    const connection = await RawConnection.open(port);
    try {
      const big = Buffer.from(JSON.stringify({ inputs: [bytesInput("input", ["y".repeat(5000)])] }));
      const first = await connection.exchange(
        `POST /v2/models/echo/infer HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length: ${big.length}\n\n`,
        big,
      );
      assert.equal(first.status, 413);
      assert.match(JSON.parse(first.body).error, /over the limit of 4K \(MAX_BODY_SIZE\)/);
      const small = Buffer.from(JSON.stringify({ id: "after", inputs: [bytesInput("input", ["ok"])] }));
      const second = await connection.exchange(
        `POST /v2/models/echo/infer HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length: ${small.length}\n\n`,
        small,
      );
      assert.equal(second.status, 200);
      assert.equal(JSON.parse(second.body).id, "after");
      assert.equal(connection.closed, false);
    } finally {
      connection.close();
    }
  });

  test("T26: /metrics is Prometheus text with request_predict_seconds_bucket{model_name} and chassis_requests_total for v1 and v2", async () => {
    const baseline = (await call(port, "/metrics")).text;
    await post(port, "/v1/models/echo:predict", { instances: [b64("m")] });
    await post(port, "/v2/models/echo/infer", { inputs: [bytesInput("input", ["m"])] });
    await post(port, "/v2/models/echo/infer", { id: 1, inputs: [] });
    const reply = await call(port, "/metrics");
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = reply.text;
    assert.match(text, /^# TYPE request_predict_seconds histogram$/m);
    assert.match(text, /^request_predict_seconds_bucket\{model_name="echo",le="0\.005"\} \d+$/m);
    assert.match(text, /^request_predict_seconds_bucket\{model_name="echo",le="\+Inf"\} \d+$/m);
    for (const name of ["request_preprocess_seconds", "request_postprocess_seconds"]) {
      assert.match(text, new RegExp(`^${name}_count\\{model_name="echo"\\} \\d+$`, "m"));
    }
    const delta = (series: string) => seriesValue(text, series) - seriesValue(baseline, series);
    assert.equal(delta('request_predict_seconds_count{model_name="echo"}'), 2, "one predict observed per v1 and v2 call");
    assert.equal(delta('chassis_requests_total{interface="v1",outcome="ok"}'), 1);
    assert.equal(delta('chassis_requests_total{interface="v2",outcome="ok"}'), 1);
    assert.equal(delta('chassis_requests_total{interface="v2",outcome="error"}'), 1, "a 422 counts as a failed v2 call");
    assert.equal(delta('chassis_items_total{interface="v1",outcome="ok"}'), 1);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  });

  test("/openapi.json is valid JSON (OpenAPI 3) with the predict and infer paths of this model", async () => {
    const reply = await call(port, "/openapi.json");
    assert.equal(reply.status, 200);
    const doc = reply.json as { openapi: string; paths: Obj };
    assert.match(doc.openapi, /^3\./);
    assert.ok("/v1/models/echo:predict" in doc.paths, Object.keys(doc.paths).join(", "));
    assert.ok("/v2/models/echo/infer" in doc.paths, Object.keys(doc.paths).join(", "));
  });
});

describe("KServe REST with the digits model (JSON input, ONNX, batch function)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(DIGITS, { interface: "kserve" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  const classOf = (prediction: unknown) =>
    (JSON.parse(prediction as string) as { classPredictions: Array<{ class: number; score: number }> }).classPredictions[0]?.class;

  test("Chassis convention: a base64 JSON instance goes to the first input; the prediction is the output text", async () => {
    const reply = await post(port, "/v1/models/digits-classifier:predict", { instances: [b64(JSON.stringify(SAMPLE))] });
    assert.equal(reply.status, 200);
    const [prediction] = (reply.json as { predictions: unknown[] }).predictions;
    assert.equal(typeof prediction, "string");
    assert.equal(classOf(prediction), SAMPLE_CLASS);
  });

  test("v1: a JSON value is accepted for a JSON input (plain array, or keyed by input name); output_format json parses", async () => {
    const reply = await post(port, "/v1/models/digits-classifier:predict", {
      instances: [SAMPLE, { input: SAMPLE }],
      parameters: { output_format: "json" },
    });
    assert.equal(reply.status, 200);
    const predictions = (reply.json as { predictions: Array<{ classPredictions: Array<{ class: number; score: number }> }> }).predictions;
    assert.equal(predictions.length, 2);
    for (const prediction of predictions) {
      assert.equal(prediction.classPredictions[0]?.class, SAMPLE_CLASS);
      assert.ok((prediction.classPredictions[0]?.score ?? 0) > 0.5);
    }
  });

  test("T30: 40 instances (3 predictBatch calls of at most 16) give 40 predictions in order", async () => {
    const reply = await post(port, "/v1/models/digits-classifier:predict", { instances: Array.from({ length: 40 }, () => SAMPLE) });
    const predictions = (reply.json as { predictions: unknown[] }).predictions;
    assert.equal(predictions.length, 40);
    assert.ok(predictions.every((p) => classOf(p) === SAMPLE_CLASS));
  });

  test("T8: the model's validation error (INVALID_ARGUMENT) is 400, naming the failing instance", async () => {
    const reply = await post(port, "/v1/models/digits-classifier:predict", { instances: [SAMPLE, [1, 2, 3]] });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, {
      error: "instance 1: input must be a JSON array of 64 numbers (pixel values 0..16); got an array of 3",
    });
  });

  test("v2 JSON: an FP32 tensor [2,64] for the JSON input gives one item per row", async () => {
    const reply = await post(port, "/v2/models/digits-classifier/infer", {
      inputs: [{ name: "input", shape: [2, 64], datatype: "FP32", data: [...SAMPLE, ...SAMPLE] }],
    });
    assert.equal(reply.status, 200);
    const output = ((reply.json as Obj).outputs as Obj[])[0] as Obj;
    assert.deepEqual(output.shape, [2]);
    assert.deepEqual((output.data as string[]).map(classOf), [SAMPLE_CLASS, SAMPLE_CLASS]);
  });

  test("T22: a binary FP32 request (little-endian, row-major) reaches the JSON input; T24 binary output", async () => {
    const pixels = Buffer.from(new Float32Array(SAMPLE).buffer);
    const { body, headers } = binaryBody(
      {
        inputs: [{ name: "input", shape: [1, 64], datatype: "FP32", parameters: { binary_data_size: pixels.length } }],
        outputs: [{ name: "results.json", parameters: { binary_data: true } }],
      },
      pixels,
    );
    const reply = await post(port, "/v2/models/digits-classifier/infer", body, headers);
    assert.equal(reply.status, 200);
    const { header, rest } = splitBinary(reply);
    const output = (header.outputs as Obj[])[0] as Obj;
    assert.equal((output.parameters as Obj).binary_data_size, rest.length);
    assert.equal(output.data, undefined);
    const [text] = readLengthPrefixed(rest);
    assert.equal(classOf(text), SAMPLE_CLASS);
  });

  test("v2: a numeric value out of range for the datatype is 400 naming the input and element", async () => {
    const reply = await post(port, "/v2/models/digits-classifier/infer", {
      inputs: [{ name: "input", shape: [1, 2], datatype: "UINT8", data: [1, 300] }],
    });
    assert.equal(reply.status, 400);
    assert.match((reply.json as Obj).error as string, /^input 'input' is UINT8, but element 1 is 300, outside UINT8's range 0\.\.255/);
  });
});

describe("KServe REST with a model that throws (kserve-throws fixture)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(fixture("kserve-throws.ts"), { interface: "kserve" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  const predict = (text: string) => post(port, "/v1/models/thrower:predict", { instances: [b64(text)] });

  test('T8: a TypeError in predict is 500 {"error":"TypeError : ..."}; the keep-alive connection stays open (uvicorn closes it, G8)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const headers = { "content-type": "application/json" };
      const failed = await agentCall(
        agent,
        port,
        "/v1/models/thrower:predict",
        JSON.stringify({ instances: [b64("type-error")] }),
        headers,
      );
      assert.equal(failed.status, 500);
      assert.deepEqual(JSON.parse(failed.text), { error: "TypeError : Cannot read properties of undefined (reading 'value')" });
      const next = await agentCall(agent, port, "/v1/models/thrower:predict", JSON.stringify({ instances: [b64("fine")] }), headers);
      assert.equal(next.status, 200);
      assert.deepEqual(JSON.parse(next.text), { predictions: ['{"ok":"fine"}'] });
      assert.equal(next.socket, failed.socket, "the same socket carried both requests");
    } finally {
      agent.destroy();
    }
  });

  test("T8: other thrown errors: RangeError 500, a thrown string 500, INVALID_ARGUMENT 400, UNIMPLEMENTED 501", async () => {
    const range = await predict("range");
    assert.equal(range.status, 500);
    assert.deepEqual(range.json, { error: "RangeError : boom range" });
    const thrown = await predict("thrown-string");
    assert.equal(thrown.status, 500);
    assert.deepEqual(thrown.json, { error: "Error : plain string" });
    const invalid = await predict("invalid");
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.json, { error: "bad input from model" });
    const unimplemented = await predict("unimplemented");
    assert.equal(unimplemented.status, 501);
    assert.deepEqual(unimplemented.json, { error: "not impl" });
  });

  test("T8 on v2: a TypeError in predict is 500 with the same text; the next call works", async () => {
    const failed = await post(port, "/v2/models/thrower/infer", { inputs: [bytesInput("input", ["type-error"])] });
    assert.equal(failed.status, 500);
    assert.deepEqual(failed.json, { error: "TypeError : Cannot read properties of undefined (reading 'value')" });
    const invalid = await post(port, "/v2/models/thrower/infer", { inputs: [bytesInput("input", ["invalid"])] });
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.json, { error: "bad input from model" });
    const next = await post(port, "/v2/models/thrower/infer", { inputs: [bytesInput("input", ["fine"])] });
    assert.equal(next.status, 200);
    assert.deepEqual(((next.json as Obj).outputs as Obj[])[0]?.data, ['{"ok":"fine"}']);
  });

  test("failed calls are counted in /metrics (chassis_requests_total outcome item_error), with the predict histogram", async () => {
    const text = (await call(port, "/metrics")).text;
    assert.ok(seriesValue(text, 'chassis_requests_total{interface="v1",outcome="item_error"}') >= 1);
    assert.ok(seriesValue(text, 'chassis_requests_total{interface="v2",outcome="item_error"}') >= 1);
    assert.match(text, /^request_predict_seconds_bucket\{model_name="thrower",le="\+Inf"\} \d+$/m);
  });
});

describe("KServe REST with two inputs incl. a JSON one, three outputs and explain (kserve-pair fixture)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(fixture("kserve-pair.ts"), { interface: "both" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  test("v1: object instances keyed by input name: base64 text, a JSON value for the JSON input, {b64} for either", async () => {
    const reply = await post(port, "/v1/models/pair:predict", {
      instances: [
        { text: b64("one two"), config: { k: [1, "x"] } },
        { text: { b64: b64("three") }, config: { b64: b64('{"from":"b64"}') } },
        b64("first input only"),
      ],
      parameters: { output_format: "all" },
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, {
      predictions: [
        { "results.json": { text: "one two", words: 2 }, "config.json": { k: [1, "x"] }, "summary.txt": "ONE TWO" },
        { "results.json": { text: "three", words: 1 }, "config.json": { from: "b64" }, "summary.txt": "THREE" },
        { "results.json": { text: "first input only", words: 3 }, "config.json": null, "summary.txt": "FIRST INPUT ONLY" },
      ],
    });
  });

  test("v1: a JSON value for the text (non-JSON) input is 400 saying it takes base64", async () => {
    const reply = await post(port, "/v1/models/pair:predict", { instances: [{ text: { not: "base64" } }] });
    assert.equal(reply.status, 400);
    assert.match((reply.json as Obj).error as string, /^instance 0\.text must be a base64 string or \{"b64": \.\.\.\}/);
  });

  test("v1: a big integer (9007199254740993) in a JSON instance value reaches the model exactly", async () => {
    const body = `{"instances":[{"text":"${b64("big")}","config":{"id":9007199254740993,"list":[-9007199254740993,1.5]}}],"parameters":{"output_format":"all"}}`;
    const reply = await post(port, "/v1/models/pair:predict", body, { "content-type": "application/json" });
    assert.equal(reply.status, 200);
    assert.match(reply.text, /"config\.json":\{"id":9007199254740993,"list":\[-9007199254740993,1\.5\]\}/);
  });

  test("T9: :explain with an explain function answers predictions and explanations, one per instance", async () => {
    const reply = await post(port, "/v1/models/pair:explain", { instances: [b64("a bb ccc"), { text: b64("dddd") }] }, { "x-foo": "bar" });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json, {
      predictions: ['{"text":"a bb ccc","words":3}', '{"text":"dddd","words":1}'],
      explanations: [
        { words: ["a", "bb", "ccc"], weights: [1, 2, 3] },
        { words: ["dddd"], weights: [4] },
      ],
    });
    assert.equal(reply.headers.get("x-foo"), null, "request headers are not echoed (KServe's quirk, not copied)");
  });

  test("T9: :explain checks and decodes like predict (400 for a bad body)", async () => {
    const reply = await post(port, "/v1/models/pair:explain", { instances: "abc" });
    assert.equal(reply.status, 400);
    assert.deepEqual(reply.json, { error: 'Expected "instances" to be a list' });
  });

  test("T21: requested outputs are returned filtered and in request order", async () => {
    const reply = await post(port, "/v2/models/pair/infer", {
      inputs: [bytesInput("text", ["hi there"])],
      outputs: [{ name: "summary.txt" }, { name: "results.json" }],
    });
    assert.equal(reply.status, 200);
    const outputs = (reply.json as Obj).outputs as Obj[];
    assert.deepEqual(
      outputs.map((o) => [o.name, o.data]),
      [
        ["summary.txt", ["HI THERE"]],
        ["results.json", ['{"text":"hi there","words":2}']],
      ],
    );
  });

  test("INT64 9007199254740993 survives v2 /infer (JSON and binary) into the model and back in its output", async () => {
    const json = `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x"]},{"name":"config","shape":[1,3],"datatype":"INT64","data":[9007199254740993,-9007199254740993,1]}],"outputs":[{"name":"config.json"}]}`;
    const reply = await post(port, "/v2/models/pair/infer", json, { "content-type": "application/json" });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(((reply.json as Obj).outputs as Obj[])[0]?.data, ["[9007199254740993,-9007199254740993,1]"]);

    const ints = Buffer.from(new BigInt64Array([9007199254740993n, -9223372036854775808n]).buffer);
    const text = lengthPrefixed(["x"]);
    const { body, headers } = binaryBody(
      {
        inputs: [
          { name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: text.length } },
          { name: "config", shape: [1, 2], datatype: "INT64", parameters: { binary_data_size: ints.length } },
        ],
        outputs: [{ name: "config.json" }],
      },
      text,
      ints,
    );
    const binary = await post(port, "/v2/models/pair/infer", body, headers);
    assert.equal(binary.status, 200, binary.text);
    assert.deepEqual(((binary.json as Obj).outputs as Obj[])[0]?.data, ["[9007199254740993,-9223372036854775808]"]);
  });

  test("T22: FP16 travels in binary to a JSON input; FP16 given as JSON data on the binary path is 400 'Receiving ...'", async () => {
    const half = Buffer.alloc(4);
    half.writeUInt16LE(0x3c00, 0); // 1.0
    half.writeUInt16LE(0x4100, 2); // 2.5
    const text = lengthPrefixed(["f"]);
    const ok = binaryBody(
      {
        inputs: [
          { name: "config", shape: [1, 2], datatype: "FP16", parameters: { binary_data_size: 4 } },
          { name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: text.length } },
        ],
        outputs: [{ name: "config.json" }],
      },
      half,
      text,
    );
    const reply = await post(port, "/v2/models/pair/infer", ok.body, ok.headers);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(((reply.json as Obj).outputs as Obj[])[0]?.data, ["[1,2.5]"]);

    const viaJson = binaryBody(
      {
        inputs: [
          { name: "config", shape: [1], datatype: "FP16", data: [1] },
          { name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: text.length } },
        ],
      },
      text,
    );
    const refused = await post(port, "/v2/models/pair/infer", viaJson.body, viaJson.headers);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.json, {
      error: "Receiving FP16 data via JSON is not supported. Please use the binary data format for input config",
    });
  });

  test("Departure T24: a per-output binary_data overrides the global binary_data_output, which still applies to outputs without it (Triton's rule; KServe 0.20 ignores the global flag once outputs are listed)", async () => {
    const reply = await post(port, "/v2/models/pair/infer", {
      id: "mix",
      parameters: { binary_data_output: true },
      inputs: [bytesInput("text", ["ab", "c"])],
      outputs: [{ name: "summary.txt", parameters: { binary_data: false } }, { name: "results.json" }],
    });
    assert.equal(reply.status, 200);
    const { header, rest } = splitBinary(reply);
    const results = ['{"text":"ab","words":1}', '{"text":"c","words":1}'];
    const size = results.reduce((total, r) => total + 4 + r.length, 0);
    assert.deepEqual(header, {
      id: "mix",
      model_name: "pair",
      model_version: null,
      outputs: [
        { name: "summary.txt", shape: [2], datatype: "BYTES", data: ["AB", "C"] },
        { name: "results.json", shape: [2], datatype: "BYTES", parameters: { binary_data_size: size } },
      ],
    });
    assert.deepEqual(readLengthPrefixed(rest), results);
  });

  test("v2: inputs that disagree on the batch size are 400", async () => {
    const reply = await post(port, "/v2/models/pair/infer", {
      inputs: [bytesInput("text", ["a", "b"]), { name: "config", shape: [1], datatype: "BYTES", data: ["{}"] }],
    });
    assert.equal(reply.status, 400);
    assert.match((reply.json as Obj).error as string, /inputs disagree on the batch size/);
  });
});

describe("KServe REST while the model is not ready (broken-load, INTERFACE=both keeps serving)", () => {
  let server: RunningServer;
  let port: number;
  before(async () => {
    server = await startInProcess(fixture("broken-load.ts"), { interface: "both" });
    port = server.httpPort;
  });
  after(() => server.forceClose());

  const notReady = { error: "Model with name broken is not ready." };

  test("T3/T14: model health is 503 'Model with name X is not ready.' on v1 and v2", async () => {
    for (const path of ["/v1/models/broken", "/v2/models/broken/ready"]) {
      const reply = await call(port, path);
      assert.equal(reply.status, 503, path);
      assert.deepEqual(reply.json, notReady, path);
    }
  });

  test("T5 order: unknown model 404, then not ready 503, both before the body is decoded", async () => {
    const unknown = await post(port, "/v1/models/nope:predict", "{bad", { "content-type": "application/json" });
    assert.equal(unknown.status, 404);
    const predict = await post(port, "/v1/models/broken:predict", "{bad", { "content-type": "application/json" });
    assert.equal(predict.status, 503);
    assert.deepEqual(predict.json, notReady);
    const explain = await post(port, "/v1/models/broken:explain", "{bad", { "content-type": "application/json" });
    assert.equal(explain.status, 503, "T9: explain is 503 too");
    assert.deepEqual(explain.json, notReady);
  });

  test("v2 /infer on a model that is not ready is 503 (after body validation, as KServe)", async () => {
    const reply = await post(port, "/v2/models/broken/infer", { inputs: [bytesInput("input", ["x"])] });
    assert.equal(reply.status, 503);
    assert.deepEqual(reply.json, notReady);
  });

  test("Departure T12: /v2/health/ready is 503 {ready:false} while the model is not ready (KServe answers 200 ready:true regardless)", async () => {
    const reply = await call(port, "/v2/health/ready");
    assert.equal(reply.status, 503);
    assert.deepEqual(reply.json, { ready: false });
    assert.deepEqual((await call(port, "/v2/health/live")).json, { live: true }, "still live");
    assert.deepEqual((await call(port, "/")).json, { status: "alive" });
  });

  test("T13: model metadata has no readiness check (200 while not ready), as KServe", async () => {
    const reply = await call(port, "/v2/models/broken");
    assert.equal(reply.status, 200);
    assert.equal((reply.json as Obj).name, "broken");
  });
});

describe("T27: KServe's command-line flags", () => {
  test("--http_port, --model_name and --workers in both --k v and --k=v forms; --grpc_port, --model_dir and unknown flags accepted and ignored", async () => {
    const forms: Array<[string[], string[]]> = [
      [
        [ECHO, "--http_port", "0", "--model_name", "echo-k", "--grpc_port", "9000", "--workers", "2", "--model_dir", "/mnt/models"],
        ["grpc_port", "model_dir"],
      ],
      [
        [
          ECHO,
          "--http_port=0",
          "--model_name=echo-k",
          "--grpc_port=9000",
          "--workers=2",
          "--model_dir=/mnt/models",
          "--enable_docs_url=true",
        ],
        ["grpc_port", "model_dir", "enable_docs_url"],
      ],
    ];
    for (const [args, ignored] of forms) {
      const parsed = parseServeArgs([...args, "--host", "127.0.0.1", "--interface", "kserve"]);
      assert.deepEqual(parsed.positionals, [ECHO]);
      assert.deepEqual(parsed.flags, { "http-port": "0", "model-name": "echo-k", workers: "2", host: "127.0.0.1", interface: "kserve" });
      assert.equal(resolveServerConfig(parsed.positionals[0], parsed.flags, {}).workers, 2, "KServe's --workers means the same here");
      assert.deepEqual(parsed.ignored, ignored);
      // startServer is one worker's server; the CLI forks the others (test/server/workers.test.ts).
      const server = await startServer(resolveServerConfig(parsed.positionals[0], parsed.flags, {}), { log: createLogger("silent") });
      try {
        assert.deepEqual((await call(server.httpPort, "/v1/models")).json, { models: ["echo-k"] });
        assert.equal((await post(server.httpPort, "/v1/models/echo-k:predict", { instances: [b64("k")] })).status, 200);
      } finally {
        server.forceClose();
      }
    }
  });

  test("Departure: --http_port defaults to 8080 as KServe; there is no OIP gRPC server, so --grpc_port (KServe default 8081) is ignored", () => {
    const config = resolveServerConfig(ECHO, parseServeArgs([ECHO, "--grpc_port", "9000"]).flags, {});
    assert.equal(config.httpPort, 8080);
    assert.equal(config.omiPort, 45000, "the gRPC port is OMI's (PSC_MODEL_PORT), untouched by --grpc_port");
  });
});

describe("T28: start-up", () => {
  test("the REST port opens only after the model has loaded", async () => {
    const probe = createNetServer();
    const free = await new Promise<number>((resolve) =>
      probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const connects = (): Promise<boolean> =>
      new Promise((resolve) => {
        const socket = connect(free, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    const starting = startInProcess(fixture("delayed-load.ts"), { interface: "kserve", "http-port": String(free) });
    let started = false;
    void starting.then(() => {
      started = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(started, false, "still loading");
    assert.equal(await connects(), false, "nothing listens while the model loads");
    const server = await starting;
    try {
      assert.equal(server.httpPort, free);
      assert.equal(server.runtime.state, "ready");
      assert.deepEqual((await call(free, "/v2/models/delayed-load/ready")).json, { name: "delayed-load", ready: true });
    } finally {
      server.forceClose();
    }
  });

  test("Departure: with INTERFACE=kserve a failed load ends start-up with CHASSIS_LOAD_FAILED, exit 5 (KServe: NoModelReady, exit 1)", async () => {
    await assert.rejects(startInProcess(fixture("broken-load.ts"), { interface: "kserve" }), (error: unknown) => {
      assert.ok(error instanceof ToolError);
      assert.equal(error.id, "CHASSIS_LOAD_FAILED");
      assert.equal(error.exitCode, 5);
      assert.match(error.message, /weights file missing/);
      return true;
    });
    const result = await runCli(["serve", fixture("broken-load.ts"), "--interface", "kserve", "--host", "127.0.0.1", "--http-port", "0"]);
    assert.equal(result.code, TOOL_ERRORS.CHASSIS_LOAD_FAILED.exit);
    assert.doesNotMatch(result.stderr, /KServe REST server listening/);
    assert.match(result.stderr, /weights file missing/);
  });
});

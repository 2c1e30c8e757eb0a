/**
 * The gRPC transport on its own, with toy byte handlers: framing, limits,
 * deadlines, cancellation, compression and HTTP-level refusals, seen through a
 * raw node:http2 client (so nothing is well-formed by accident) and through
 * grpc-js (a real client's view of statuses and streaming).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import zlib from "node:zlib";
import { Client, credentials, type Metadata, status } from "@grpc/grpc-js";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import { frameMessage, MessageReader } from "./frame.js";
import { encodeGrpcMessage, parseGrpcTimeout } from "./headers.js";
import { GrpcServer } from "./server.js";

describe("MessageReader", () => {
  test("splits messages across and within chunks, and views a one-chunk message without copying", () => {
    const reader = new MessageReader(100);
    const both = Buffer.concat([frameMessage(Buffer.from("abc")), frameMessage(Buffer.from("defgh"))]);
    reader.push(both.subarray(0, 3));
    reader.push(both.subarray(3, 10));
    assert.equal(reader.messages.length, 1);
    reader.push(both.subarray(10));
    assert.deepEqual(
      reader.messages.map((m) => m.bytes.toString()),
      ["abc", "defgh"],
    );
    assert.equal(reader.pendingBytes, 0);
    const one = frameMessage(Buffer.from("xyz"));
    const alone = new MessageReader(100);
    alone.push(one);
    assert.equal(alone.messages[0]?.bytes.buffer, one.buffer);
  });

  test("refuses a message over the limit as soon as its prefix arrives", () => {
    const reader = new MessageReader(10);
    const prefix = Buffer.from([0, 0, 0, 0, 11]);
    assert.throws(
      () => reader.push(prefix),
      (error: ChassisError) => error.code === Code.RESOURCE_EXHAUSTED && /11 bytes, over the limit of 10 bytes/.test(error.message),
    );
  });

  test("reports an unfinished message", () => {
    const reader = new MessageReader(100);
    reader.push(frameMessage(Buffer.from("abcdef")).subarray(0, 7));
    assert.equal(reader.pendingBytes, 7);
    assert.equal(reader.pendingAnnounced, 6);
  });
});

describe("gRPC headers", () => {
  test("grpc-timeout: every unit, and malformed values", () => {
    assert.equal(parseGrpcTimeout("2H"), 7_200_000);
    assert.equal(parseGrpcTimeout("3M"), 180_000);
    assert.equal(parseGrpcTimeout("5S"), 5000);
    assert.equal(parseGrpcTimeout("250m"), 250);
    assert.equal(parseGrpcTimeout("1500u"), 1.5);
    assert.equal(parseGrpcTimeout("99999999n"), 99.999999);
    for (const bad of ["", "5", "S", "123456789S", "1.5S", "5s", "-1S"]) assert.equal(parseGrpcTimeout(bad), undefined, bad);
  });

  test("grpc-message is percent-encoded UTF-8", () => {
    assert.equal(encodeGrpcMessage("plain text: ok"), "plain text: ok");
    assert.equal(encodeGrpcMessage("100% é\n"), "100%25 %C3%A9%0A");
    assert.equal(decodeURIComponent(encodeGrpcMessage("größe ✓ 50%")), "größe ✓ 50%");
  });
});

interface RawAnswer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function rawCall(port: number, path: string, body: Buffer | undefined, headers: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const answer: RawAnswer = { status: undefined, headers: {}, trailers: {}, body: Buffer.alloc(0) };
    stream.on("response", (h) => {
      answer.status = Number(h[":status"]);
      answer.headers = h;
    });
    stream.on("trailers", (h) => {
      answer.trailers = h;
    });
    stream.on("data", (chunk: Buffer) => {
      answer.body = Buffer.concat([answer.body, chunk]);
    });
    stream.on("close", () => {
      session.close();
      resolve(answer);
    });
    stream.on("error", () => {});
    stream.end(body);
  });
}

/** grpc-status and message of an answer, from its trailers or a trailers-only header block. */
function grpcOf(answer: RawAnswer): { code: number; message: string } {
  const source = answer.trailers["grpc-status"] !== undefined ? answer.trailers : answer.headers;
  return { code: Number(source["grpc-status"]), message: decodeURIComponent(String(source["grpc-message"] ?? "")) };
}

describe("GrpcServer", () => {
  const server = new GrpcServer({ maxMessageBytes: 1000 });
  const aborted: unknown[] = [];
  let port = 0;
  let releaseSlow: () => void = () => {};

  before(async () => {
    server.unary("/t.T/Echo", (bytes) => bytes);
    server.unary("/t.T/Upper", async (bytes) => Buffer.from(Buffer.from(bytes).toString().toUpperCase()));
    server.unary("/t.T/Empty", (bytes) => Buffer.from(`got ${bytes.byteLength}`), { emptyRequestOk: true });
    server.unary("/t.T/Fail", () => {
      throw new ChassisError(Code.NOT_FOUND, "no such thing: ünïcode 100%");
    });
    server.unary("/t.T/Huge", () => new Uint8Array(1001));
    server.unary(
      "/t.T/Slow",
      (_bytes, call) =>
        new Promise((resolve) => {
          call.signal.addEventListener("abort", () => aborted.push(call.signal.reason));
          releaseSlow = () => resolve(Buffer.from("late"));
        }),
    );
    server.serverStream("/t.T/Count", (bytes, call) => {
      const n = Number(Buffer.from(bytes).toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
      if (n > 2) call.end(new ChassisError(Code.OUT_OF_RANGE, "counted too far"));
      else call.end();
    });
    server.bidi("/t.T/Chat", (call) => {
      call.onMessage((bytes) => call.write(Buffer.from(`re: ${Buffer.from(bytes).toString()}`)));
      call.onEnd(() => call.end());
    });
    port = await server.listen("127.0.0.1", 0);
  });
  after(() => server.close(1000));

  test("a unary call: headers, one frame, trailers with grpc-status 0", async () => {
    const answer = await rawCall(port, "/t.T/Echo", frameMessage(Buffer.from("hello")));
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-type"], "application/grpc+proto");
    assert.deepEqual(answer.body, frameMessage(Buffer.from("hello")));
    assert.deepEqual(grpcOf(answer), { code: 0, message: "" });
  });

  test("an async handler's error becomes its code and percent-encoded message in a trailers-only reply", async () => {
    const answer = await rawCall(port, "/t.T/Fail", frameMessage(Buffer.alloc(0)));
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, 0);
    assert.deepEqual(grpcOf(answer), { code: Code.NOT_FOUND, message: "no such thing: ünïcode 100%" });
  });

  test("HTTP-level refusals: GET is 405, a non-gRPC content-type 415, an unknown method UNIMPLEMENTED", async () => {
    const get = await rawCall(port, "/t.T/Echo", undefined, { ":method": "GET" });
    assert.equal(get.status, 405);
    assert.match(get.body.toString(), /gRPC calls are POST requests/);
    const json = await rawCall(port, "/t.T/Echo", Buffer.from("{}"), { "content-type": "application/json" });
    assert.equal(json.status, 415);
    assert.match(grpcOf(json).message, /content-type "application\/json" is not supported; expected application\/grpc/);
    const unknown = await rawCall(port, "/t.T/Nope", frameMessage(Buffer.alloc(0)));
    assert.deepEqual(grpcOf(unknown), { code: Code.UNIMPLEMENTED, message: "method /t.T/Nope not found on this server" });
  });

  test("malformed framing: cut short, none, two messages, compressed without an encoding", async () => {
    const cut = await rawCall(port, "/t.T/Echo", frameMessage(Buffer.from("abcdef")).subarray(0, 7));
    assert.deepEqual(grpcOf(cut), {
      code: Code.INTERNAL,
      message: "the request ended inside a message: 2 of the 6 bytes its prefix announced",
    });
    const none = await rawCall(port, "/t.T/Echo", undefined);
    assert.deepEqual(grpcOf(none), { code: Code.INTERNAL, message: "/t.T/Echo takes one request message; the request carried none" });
    const emptyOk = await rawCall(port, "/t.T/Empty", undefined);
    assert.deepEqual(emptyOk.body, frameMessage(Buffer.from("got 0")));
    const two = await rawCall(port, "/t.T/Echo", Buffer.concat([frameMessage(Buffer.from("a")), frameMessage(Buffer.from("b"))]));
    assert.deepEqual(grpcOf(two), { code: Code.UNIMPLEMENTED, message: "/t.T/Echo takes one request message; got 2" });
    // 120,000 empty messages (600 KB): refused at the first chunk that holds a second one, not collected to the end.
    const flood = await rawCall(port, "/t.T/Echo", Buffer.alloc(600_000));
    assert.equal(grpcOf(flood).code, Code.UNIMPLEMENTED);
    const counted = Number(/^\/t\.T\/Echo takes one request message; got (\d+)$/.exec(grpcOf(flood).message)?.[1]);
    assert.ok(counted >= 2 && counted < 60_000, `refused after ${counted} messages`);
    const flagged = frameMessage(Buffer.from("x"));
    flagged[0] = 1;
    const compressed = await rawCall(port, "/t.T/Echo", flagged);
    assert.equal(grpcOf(compressed).code, Code.INTERNAL);
    assert.match(grpcOf(compressed).message, /compressed flag set, but the call's grpc-encoding is identity/);
  });

  test("gzip and deflate requests are inflated; an unknown encoding is refused naming the supported ones", async () => {
    for (const [encoding, pack] of [
      ["gzip", zlib.gzipSync],
      ["deflate", zlib.deflateSync],
    ] as const) {
      const body = frameMessage(pack(Buffer.from("squeezed")));
      body[0] = 1;
      const answer = await rawCall(port, "/t.T/Echo", body, { "grpc-encoding": encoding });
      assert.deepEqual(answer.body, frameMessage(Buffer.from("squeezed")), encoding);
    }
    const bomb = frameMessage(zlib.gzipSync(Buffer.alloc(5000)));
    bomb[0] = 1;
    const big = await rawCall(port, "/t.T/Echo", bomb, { "grpc-encoding": "gzip" });
    assert.equal(grpcOf(big).code, Code.RESOURCE_EXHAUSTED);
    const snappy = await rawCall(port, "/t.T/Echo", frameMessage(Buffer.from("x")), { "grpc-encoding": "snappy" });
    assert.deepEqual(grpcOf(snappy), {
      code: Code.UNIMPLEMENTED,
      message: 'grpc-encoding "snappy" is not supported; use identity,deflate,gzip',
    });
  });

  test("size limits both ways, and the connection stays usable", async () => {
    const big = await rawCall(port, "/t.T/Echo", frameMessage(Buffer.alloc(1001)));
    assert.equal(grpcOf(big).code, Code.RESOURCE_EXHAUSTED);
    assert.match(grpcOf(big).message, /1001 bytes, over the limit of 1000 bytes \(MAX_MESSAGE_SIZE\)/);
    const huge = await rawCall(port, "/t.T/Huge", frameMessage(Buffer.alloc(0)));
    assert.equal(grpcOf(huge).code, Code.RESOURCE_EXHAUSTED);
    assert.match(grpcOf(huge).message, /the response message is 1001 bytes/);
    assert.deepEqual((await rawCall(port, "/t.T/Echo", frameMessage(Buffer.from("ok")))).body, frameMessage(Buffer.from("ok")));
  });

  test("grpc-timeout: a late handler gets DEADLINE_EXCEEDED and its signal aborts; a malformed value is refused", async () => {
    aborted.length = 0;
    const answer = await rawCall(port, "/t.T/Slow", frameMessage(Buffer.alloc(0)), { "grpc-timeout": "50m" });
    assert.equal(grpcOf(answer).code, Code.DEADLINE_EXCEEDED);
    assert.match(grpcOf(answer).message, /grpc-timeout was 50m/);
    assert.equal((aborted[0] as ChassisError).code, Code.DEADLINE_EXCEEDED);
    releaseSlow();
    const bad = await rawCall(port, "/t.T/Echo", frameMessage(Buffer.alloc(0)), { "grpc-timeout": "soon" });
    assert.equal(grpcOf(bad).code, Code.INTERNAL);
  });

  test("a client that resets its stream cancels the call's signal", async () => {
    aborted.length = 0;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const stream = session.request({ ":method": "POST", ":path": "/t.T/Slow", "content-type": "application/grpc" });
    stream.on("error", () => {});
    stream.end(frameMessage(Buffer.alloc(0)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    for (let i = 0; i < 100 && aborted.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    session.close();
    assert.equal((aborted[0] as ChassisError).code, Code.CANCELLED);
    releaseSlow();
  });

  describe("through grpc-js", () => {
    let client: Client;
    const identity = (b: Buffer) => b;
    before(() => {
      client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), { "grpc.default_compression_algorithm": 2 });
    });
    after(() => client.close());

    test("unary with gzip from the client, and an error status", async () => {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest("/t.T/Upper", identity, identity, Buffer.from("shout"), (e, r) => (e ? reject(e) : resolve(r as Buffer))),
      );
      assert.equal(reply.toString(), "SHOUT");
      const failure = await new Promise<{ code: number; details: string }>((resolve) =>
        client.makeUnaryRequest("/t.T/Fail", identity, identity, Buffer.alloc(0), (e) => resolve(e as never)),
      );
      assert.equal(failure.code, status.NOT_FOUND);
      assert.equal(failure.details, "no such thing: ünïcode 100%");
    });

    test("server streaming: every message, then OK or the error in the trailers", async () => {
      const collect = (n: number) =>
        new Promise<{ got: string[]; code: number }>((resolve) => {
          const got: string[] = [];
          const call = client.makeServerStreamRequest("/t.T/Count", identity, identity, Buffer.from(String(n)));
          call.on("data", (b: Buffer) => got.push(b.toString()));
          call.on("status", (s: { code: number; metadata: Metadata }) => resolve({ got, code: s.code }));
          call.on("error", () => {});
        });
      assert.deepEqual(await collect(2), { got: ["1", "2"], code: status.OK });
      assert.deepEqual(await collect(3), { got: ["1", "2", "3"], code: status.OUT_OF_RANGE });
    });

    test("bidi streaming: one answer per message, OK after the client ends", async () => {
      const got: string[] = [];
      const call = client.makeBidiStreamRequest("/t.T/Chat", identity, identity);
      const done = new Promise<number>((resolve) => call.on("status", (s: { code: number }) => resolve(s.code)));
      call.on("data", (b: Buffer) => got.push(b.toString()));
      call.write(Buffer.from("one"));
      call.write(Buffer.from("two"));
      call.end();
      assert.equal(await done, status.OK);
      assert.deepEqual(got, ["re: one", "re: two"]);
    });
  });
});

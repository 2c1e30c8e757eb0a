/**
 * Bad input at the wire level, sent with node:http2 so nothing is
 * well-formed by accident: malformed protobuf, a truncated frame, an empty
 * body. Each gets a gRPC error status, and the server keeps serving.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { OmiClient } from "../../src/client/omi-client.js";
import type { RunningServer } from "../../src/server/serve.js";
import { ROOT, startInProcess } from "../helpers/server.js";

interface RawAnswer {
  status: number | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  body: Buffer;
}

function rawCall(port: number, path: string, body: Buffer | undefined, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    const answer: RawAnswer = { status: undefined, grpcStatus: undefined, grpcMessage: undefined, body: Buffer.alloc(0) };
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) answer.grpcStatus = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) answer.grpcMessage = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", (h) => {
      answer.status = Number(h[":status"]);
      take(h);
    });
    stream.on("trailers", take);
    stream.on("data", (chunk: Buffer) => {
      answer.body = Buffer.concat([answer.body, chunk]);
    });
    stream.on("close", () => {
      session.close();
      resolve(answer);
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

function frame(payload: Buffer, announced = payload.length): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeUInt32BE(announced, 1);
  return Buffer.concat([header, payload]);
}

describe("OMI wire-level bad input", () => {
  let server: RunningServer;
  let client: OmiClient;
  before(async () => {
    server = await startInProcess(`${ROOT}/examples/echo`);
    client = new OmiClient({ address: `127.0.0.1:${server.omiPort}` });
  });
  after(() => {
    client.close();
    server.forceClose();
  });

  async function stillServing() {
    const response = await client.run([{ input: "ok" }]);
    assert.equal(response.outputs[0]?.success, true);
  }

  test("a well-framed message holding garbage protobuf gets a non-OK grpc-status with a message", async () => {
    const answer = await rawCall(server.omiPort, "/ModzyModel/Run", frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
    assert.equal(answer.status, 200);
    assert.notEqual(answer.grpcStatus, undefined);
    assert.notEqual(answer.grpcStatus, "0");
    assert.ok(answer.grpcMessage && answer.grpcMessage.length > 0);
    await stillServing();
  });

  test("a frame announcing 100 bytes that carries 2 gets a non-OK grpc-status", async () => {
    const answer = await rawCall(server.omiPort, "/ModzyModel/Run", frame(Buffer.from([0x0a, 0x00]), 100));
    assert.notEqual(answer.grpcStatus, undefined);
    assert.notEqual(answer.grpcStatus, "0");
    await stillServing();
  });

  test("Run with no request message gets a non-OK grpc-status; Status with an empty message works", async () => {
    const run = await rawCall(server.omiPort, "/ModzyModel/Run", undefined);
    assert.notEqual(run.grpcStatus, "0");
    const status = await rawCall(server.omiPort, "/ModzyModel/Status", frame(Buffer.alloc(0)));
    assert.equal(status.grpcStatus, "0");
    assert.ok(status.body.length > 5);
    await stillServing();
  });

  test("an empty Run message (no inputs) is a valid RunRequest: 200 with 0 outputs", async () => {
    const answer = await rawCall(server.omiPort, "/ModzyModel/Run", frame(Buffer.alloc(0)));
    assert.equal(answer.grpcStatus, "0");
  });
});

/**
 * The hand-written Run codec against protobuf-es, the reference: identical
 * bytes out, the same items in, the same refusals, over random messages.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { seededRandom as random } from "../../test/helpers/random.js";
import { Code } from "../core/code.js";
import type { ChassisError } from "../core/error.js";
import { RunRequestSchema, RunResponseSchema } from "./gen/model_pb.js";
import { decodeRunRequest, encodeRunResponse, type RunReply } from "./run-codec.js";

const KEYS = ["", "input", "results.json", "error", "clé", "键", "emoji 🙂", "x".repeat(200)];

function randomBytes(next: () => number): Uint8Array {
  const length = next() < 0.1 ? 300 + Math.floor(next() * 70_000) : Math.floor(next() * 40);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

function randomMap(next: () => number): Record<string, Uint8Array> {
  const map: Record<string, Uint8Array> = {};
  const n = Math.floor(next() * 4);
  for (let i = 0; i < n; i++) map[KEYS[Math.floor(next() * KEYS.length)] as string] = randomBytes(next);
  return map;
}

function randomReply(next: () => number): RunReply {
  const codes = [0, 200, 400, 503, -1, -2147483648, 2147483647, 127, 128, 16384];
  return {
    statusCode: codes[Math.floor(next() * codes.length)] as number,
    status: next() < 0.2 ? "" : "OK",
    message: next() < 0.2 ? "" : next() < 0.5 ? "Inference executed" : "échec ✗ ".repeat(Math.floor(next() * 30)),
    outputs: Array.from({ length: Math.floor(next() * 5) }, () => ({ output: randomMap(next), success: next() < 0.5 })),
  };
}

describe("Run codec", () => {
  test("encodeRunResponse writes exactly what protobuf-es's toBinary writes (2000 random replies)", () => {
    const next = random(1);
    for (let i = 0; i < 2000; i++) {
      const reply = randomReply(next);
      const expected = toBinary(RunResponseSchema, create(RunResponseSchema, { ...reply, outputs: reply.outputs.map((o) => ({ ...o })) }));
      assert.deepEqual(Buffer.from(encodeRunResponse(reply)), Buffer.from(expected), `case ${i}`);
    }
  });

  test("decodeRunRequest reads what protobuf-es reads (2000 random requests)", () => {
    const next = random(2);
    for (let i = 0; i < 2000; i++) {
      const message = create(RunRequestSchema, {
        inputs: Array.from({ length: Math.floor(next() * 5) }, () => ({ input: randomMap(next) })),
        detectDrift: next() < 0.5,
        explain: next() < 0.5,
      });
      const bytes = toBinary(RunRequestSchema, message);
      const decoded = decodeRunRequest(bytes);
      assert.deepEqual(
        decoded.items.map((item) => ({ ...item })),
        message.inputs.map((item) => ({ ...item.input })),
        `case ${i}`,
      );
      assert.equal(decoded.detectDrift, message.detectDrift);
      assert.equal(decoded.explain, message.explain);
    }
  });

  test("unknown fields of every wire type are skipped; a repeated map key keeps the last value", () => {
    // InputItem { input: {a: 01}, input: {a: 02}, field 9 varint 300, field 10 fixed64, field 11 fixed32 } plus unknown fields at the top.
    const item = Buffer.from([
      0x0a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x01, 0x0a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x02, 0x48, 0xac, 0x02, 0x51, 1, 2, 3, 4, 5,
      6, 7, 8, 0x5d, 1, 2, 3, 4,
    ]);
    const request = new Uint8Array(
      Buffer.concat([Buffer.from([0x0a, item.length]), item, Buffer.from([0x10, 0x01, 0x62, 0x02, 0x68, 0x69])]),
    );
    const expected = fromBinary(RunRequestSchema, request);
    const decoded = decodeRunRequest(request);
    assert.deepEqual({ ...decoded.items[0] }, { ...expected.inputs[0]?.input });
    assert.deepEqual({ ...decoded.items[0] }, { a: new Uint8Array([2]) });
    assert.equal(decoded.detectDrift, true);
  });

  test("a key named __proto__ is data, not a prototype", () => {
    const bytes = toBinary(RunRequestSchema, create(RunRequestSchema, { inputs: [{ input: { ["__proto__"]: new Uint8Array([7]) } }] }));
    const item = decodeRunRequest(bytes).items[0] as Record<string, Uint8Array>;
    assert.deepEqual(Object.keys(item), ["__proto__"]);
    assert.equal(Object.getPrototypeOf(item), Object.prototype);
  });

  test("malformed input is refused where protobuf-es refuses it, with INTERNAL and a reason", () => {
    const cases: Array<[string, number[], RegExp]> = [
      ["truncated length", [0x0a, 0x05, 0x0a], /announces 5 bytes but only 1 remain/],
      ["truncated varint", [0x10, 0x80], /varint runs past the end/],
      ["group wire type", [0x0b], /wire type 3/],
      ["field 0", [0x00, 0x01], /field number 0/],
      ["bad UTF-8 key", [0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff], /not valid UTF-8/],
    ];
    for (const [name, bytes, reason] of cases) {
      const buffer = new Uint8Array(bytes);
      assert.throws(() => fromBinary(RunRequestSchema, buffer), name);
      assert.throws(
        () => decodeRunRequest(buffer),
        (error: ChassisError) => error.code === Code.INTERNAL && reason.test(error.message),
        name,
      );
    }
  });
});

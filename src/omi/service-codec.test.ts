/**
 * The hand-written StatusResponse, ShutdownResponse and health messages
 * against protobuf-es, the reference: identical bytes out over random
 * metadata, and for health requests the same service name in or both refused.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { seededRandom as random } from "../../test/helpers/random.js";
import type { ModelMetadata } from "../model/metadata.js";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "./gen/grpc/health/v1/health_pb.js";
import { ShutdownResponseSchema, StatusResponseSchema } from "./gen/model_pb.js";
import { decodeHealthCheckRequest, encodeHealthCheckResponse, ServingStatus } from "./health.js";
import { encodeShutdownResponse, encodeStatusResponse } from "./service-codec.js";
import type { OmiStatus } from "./status.js";

const TEXTS = ["", "Digits Classifier", "1.0.0", "clé", "键", "emoji 🙂", "x".repeat(300), "application/json", "1M"];

function randomMetadata(next: () => number): ModelMetadata {
  const text = () => TEXTS[Math.floor(next() * TEXTS.length)] as string;
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)] as T;
  const count = () => Math.floor(next() * 4);
  return {
    name: text(),
    version: text(),
    author: text(),
    modelType: text(),
    source: text(),
    description: { summary: text(), details: text(), technical: text(), performance: text() },
    inputs: Array.from({ length: count() }, () => ({
      key: text(),
      mediaTypes: Array.from({ length: count() }, text),
      maxSize: text(),
      maxBytes: 1,
      description: text(),
      required: true,
    })),
    outputs: Array.from({ length: count() }, () => ({ key: text(), mediaType: text(), maxSize: text(), maxBytes: 1, description: text() })),
    resources: { ram: text(), cpus: pick([0, 0.5, 1, 2, 0.001, 1e6]), gpus: pick([0, 1, 8, 300]) },
    timeout: { status: text(), run: text(), statusMs: 1, runMs: 1 },
    features: {
      adversarialDefense: next() < 0.5,
      batchSize: pick([0, 1, 16, 4096, 2 ** 31 - 1]),
      retrainable: next() < 0.5,
      resultsFormat: text(),
      driftFormat: text(),
      explanationFormat: text(),
    },
  };
}

/** What service.ts built with protobuf-es before the hand-written codec. */
function reference(metadata: ModelMetadata, { statusCode, status }: OmiStatus, message: string): Uint8Array {
  return toBinary(
    StatusResponseSchema,
    create(StatusResponseSchema, {
      statusCode,
      status,
      message,
      modelInfo: {
        modelName: metadata.name,
        modelVersion: metadata.version,
        modelAuthor: metadata.author,
        modelType: metadata.modelType,
        source: metadata.source,
      },
      description: { ...metadata.description },
      inputs: metadata.inputs.map((input) => ({
        filename: input.key,
        acceptedMediaTypes: [...input.mediaTypes],
        maxSize: input.maxSize,
        description: input.description,
      })),
      outputs: metadata.outputs.map((output) => ({
        filename: output.key,
        mediaType: output.mediaType,
        maxSize: output.maxSize,
        description: output.description,
      })),
      resources: { requiredRam: metadata.resources.ram, numCpus: metadata.resources.cpus, numGpus: metadata.resources.gpus },
      timeout: { status: metadata.timeout.status, run: metadata.timeout.run },
      features: { ...metadata.features },
    }),
  );
}

const STATUSES: OmiStatus[] = [
  { statusCode: 200, status: "OK" },
  { statusCode: 500, status: "Internal Server Error" },
  { statusCode: 0, status: "" },
  { statusCode: -1, status: "negative" },
];

describe("OMI answers written by hand", () => {
  test("StatusResponse: the bytes of protobuf-es's toBinary over 2,000 random metadata", () => {
    const next = random(7);
    for (let i = 0; i < 2000; i++) {
      const metadata = randomMetadata(next);
      const status = STATUSES[i % STATUSES.length] as OmiStatus;
      const message = i % 3 === 0 ? "" : "Model Initialized Successfully.";
      assert.deepEqual(
        Buffer.from(encodeStatusResponse(metadata, status, message)),
        Buffer.from(reference(metadata, status, message)),
        `case ${i}`,
      );
    }
  });

  test("ShutdownResponse: the bytes of protobuf-es's toBinary", () => {
    for (const status of STATUSES) {
      for (const message of ["", "Model Shutdown Successfully.", "键 🙂"]) {
        assert.deepEqual(
          Buffer.from(encodeShutdownResponse(status, message)),
          Buffer.from(toBinary(ShutdownResponseSchema, create(ShutdownResponseSchema, { ...status, message }))),
        );
      }
    }
  });

  test("HealthCheckResponse: the generated enum's values, and the bytes of protobuf-es's toBinary for every status", () => {
    const numeric = (e: object) => Object.entries(e).filter(([, v]) => typeof v === "number");
    assert.deepEqual(numeric(ServingStatus), numeric(HealthCheckResponse_ServingStatus));
    for (const [, status] of numeric(HealthCheckResponse_ServingStatus) as Array<[string, HealthCheckResponse_ServingStatus]>) {
      assert.deepEqual(
        Buffer.from(encodeHealthCheckResponse(status as number as ServingStatus)),
        Buffer.from(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status }))),
      );
    }
  });

  test("HealthCheckRequest: the service protobuf-es reads, or a refusal where it refuses", () => {
    const cases: number[][] = [
      [],
      [0x0a, 0x00],
      [0x0a, 0x02, 0x61, 0x62],
      [0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62], // the last one wins
      [0x12, 0x01, 0x00, 0x0a, 0x01, 0x61], // an unknown field is skipped
      [0x18, 0x96, 0x01, 0x0a, 0x01, 0x61],
      [0x0a, 0x02, 0xff, 0xfe], // not UTF-8
      [0x08, 0x05], // field 1 with the varint wire type: read as a string anyway
      [0x08, 0x00],
      [0x00], // field 0
      [0x0a, 0x05, 0x61], // runs past the end
      [0x0f], // wire type 7
      [0x0a, 0x0a, ...Buffer.from("ModzyModel")],
    ];
    const next = random(11);
    for (let i = 0; i < 2000; i++) cases.push(Array.from({ length: Math.floor(next() * 8) }, () => Math.floor(next() * 256)));
    for (const bytes of cases) {
      const input = new Uint8Array(bytes);
      let expected: string | undefined;
      try {
        expected = fromBinary(HealthCheckRequestSchema, input).service;
      } catch {
        expected = undefined;
      }
      let actual: string | undefined;
      try {
        actual = decodeHealthCheckRequest(input);
      } catch (error) {
        assert.match((error as Error).message, /^cannot decode the request as grpc\.health\.v1\.HealthCheckRequest: /);
        actual = undefined;
      }
      assert.equal(actual, expected, JSON.stringify(bytes));
    }
  });
});

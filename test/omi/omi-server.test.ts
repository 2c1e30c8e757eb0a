/**
 * The OMI contract (SPEC.md section 2) over real sockets with the real
 * grpc-js client: Status, Run, Shutdown, health, limits, timeouts, load
 * failures, and the places where chassis-ts departs from Chassis on purpose.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, status as GrpcStatus } from "@grpc/grpc-js";
import { grpcServiceDefinition } from "../../src/client/grpc-service.js";
import { OmiClient } from "../../src/client/omi-client.js";
import { Code } from "../../src/core/code.js";
import type { ChassisError } from "../../src/core/error.js";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus } from "../../src/omi/gen/grpc/health/v1/health_pb.js";
import type { RunningServer } from "../../src/server/serve.js";
import { fixture, ROOT, seriesValue, startInProcess } from "../helpers/server.js";

const decode = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const ECHO = `${ROOT}/examples/echo`;

async function withServer<T>(
  model: string,
  flags: Parameters<typeof startInProcess>[1],
  body: (client: OmiClient, server: RunningServer) => Promise<T>,
) {
  const server = await startInProcess(model, flags);
  const client = new OmiClient({ address: `127.0.0.1:${server.omiPort}` });
  try {
    return await body(client, server);
  } finally {
    client.close();
    server.forceClose();
  }
}

async function healthCheck(port: number, service = ""): Promise<HealthCheckResponse_ServingStatus> {
  const def = grpcServiceDefinition(Health).Check as NonNullable<ReturnType<typeof grpcServiceDefinition>[string]>;
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        create(HealthCheckRequestSchema, { service }),
        (error, response) => {
          if (error) reject(error);
          else resolve((response as { status: HealthCheckResponse_ServingStatus }).status);
        },
      );
    });
  } finally {
    client.close();
  }
}

describe("OMI with the echo model", () => {
  let server: RunningServer;
  let client: OmiClient;
  before(async () => {
    server = await startInProcess(ECHO);
    client = new OmiClient({ address: `127.0.0.1:${server.omiPort}` });
  });
  after(() => {
    client.close();
    server.forceClose();
  });

  test("first Status says Initialized with all metadata and Chassis's defaults, later ones Already Initialized", async () => {
    const first = await client.status();
    assert.equal(first.statusCode, 200);
    assert.equal(first.status, "OK");
    assert.equal(first.message, "Model Initialized Successfully.");
    assert.deepEqual(
      { ...first.modelInfo, $typeName: undefined },
      {
        $typeName: undefined,
        modelName: "Echo",
        modelVersion: "1.0.0",
        modelAuthor: "chassis-ts",
        modelType: "grpc",
        source: "chassis-ts",
      },
    );
    assert.equal(first.description?.summary, "Returns its input unchanged.");
    assert.deepEqual(
      first.inputs.map((i) => [i.filename, i.acceptedMediaTypes, i.maxSize]),
      [
        ["input", ["application/octet-stream"], "1M"],
        ["raise", ["text/plain"], "1K"],
      ],
    );
    assert.deepEqual(
      first.outputs.map((o) => [o.filename, o.mediaType, o.maxSize]),
      [["results.json", "application/json", "1M"]],
    );
    assert.equal(first.resources?.requiredRam, "512M");
    assert.equal(first.resources?.numCpus, 1);
    assert.equal(first.resources?.numGpus, 0);
    assert.equal(first.timeout?.status, "60s");
    assert.equal(first.timeout?.run, "60s");
    assert.equal(first.features?.batchSize, 1);
    const second = await client.status();
    assert.equal(second.message, "Model Already Initialized.");
    assert.equal(second.statusCode, 200);
  });

  test("Run of a batch of 3 answers 3 outputs in input order", async () => {
    const response = await client.run([{ input: "one" }, { input: "two" }, { input: "three" }]);
    assert.equal(response.statusCode, 200);
    assert.equal(response.status, "OK");
    assert.equal(response.message, "Inference executed");
    assert.deepEqual(
      response.outputs.map((o) => [o.success, decode(o.output["results.json"])]),
      [
        [true, "one"],
        [true, "two"],
        [true, "three"],
      ],
    );
  });

  test("predict that throws fails its item only, with success=false (Chassis said true)", async () => {
    const response = await client.run([{ input: "a" }, { input: "b", raise: "requested failure" }, { input: "c" }]);
    assert.equal(response.statusCode, 200);
    assert.deepEqual(
      response.outputs.map((o) => [o.success, Object.keys(o.output), decode(o.output["results.json"] ?? o.output.error)]),
      [
        [true, ["results.json"], "a"],
        [false, ["error"], "requested failure"],
        [true, ["results.json"], "c"],
      ],
    );
  });

  test("empty inputs give 200 with 0 outputs; detect_drift and explain are accepted", async () => {
    const response = await client.run([], { detectDrift: true, explain: true });
    assert.equal(response.statusCode, 200);
    assert.equal(response.message, "Inference executed");
    assert.equal(response.outputs.length, 0);
  });

  test("an unknown input key is a per-item error naming it and the declared inputs", async () => {
    const response = await client.run([{ unknown_key: "x" }]);
    const [item] = response.outputs;
    assert.equal(item?.success, false);
    const error = decode(item?.output.error);
    assert.match(error, /unknown input "unknown_key"/);
    assert.match(error, /"input" \(optional\), "raise" \(optional\)/);
  });

  test("an input over its max_size is a per-item error naming the key and the limit", async () => {
    const big = new Uint8Array(1024 * 1024 + 1);
    const response = await client.run([{ input: big }, { input: "fine" }]);
    assert.equal(response.outputs[0]?.success, false);
    assert.match(decode(response.outputs[0]?.output.error), /input "input" is .* over its max_size of 1M \(1048576 bytes\)/);
    assert.equal(response.outputs[1]?.success, true);
  });

  test("inputs of 5 MiB pass the server's default 64 MiB message limit (grpc-js's own default is 4 MiB)", async () => {
    // The echo input allows 1M, so the item fails validation, but the 5 MiB message itself is received.
    const response = await client.run([{ input: new Uint8Array(5 * 1024 * 1024) }]);
    assert.equal(response.statusCode, 200);
    assert.match(decode(response.outputs[0]?.output.error), /over its max_size/);
  });

  test("health is SERVING for the server and for ModzyModel, NOT_FOUND for other services", async () => {
    assert.equal(await healthCheck(server.omiPort), HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await healthCheck(server.omiPort, "ModzyModel"), HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(healthCheck(server.omiPort, "Nope"), (error: { code: number }) => error.code === GrpcStatus.NOT_FOUND);
  });

  test("an unknown method is UNIMPLEMENTED", async () => {
    const raw = new Client(`127.0.0.1:${server.omiPort}`, credentials.createInsecure());
    try {
      await assert.rejects(
        new Promise((resolve, reject) =>
          raw.makeUnaryRequest(
            "/ModzyModel/Nope",
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            (e, r) => (e ? reject(e) : resolve(r)),
          ),
        ),
        (error: { code: number }) => error.code === GrpcStatus.UNIMPLEMENTED,
      );
    } finally {
      raw.close();
    }
  });
});

describe("OMI message size limit", () => {
  test("a message over --max-message-size is refused with RESOURCE_EXHAUSTED and the server keeps serving", async () => {
    await withServer(ECHO, { "max-message-size": "64K" }, async (client) => {
      await assert.rejects(
        client.run([{ input: new Uint8Array(100 * 1024) }]),
        (error: ChassisError) => error.code === Code.RESOURCE_EXHAUSTED,
      );
      const after = await client.run([{ input: "still here" }]);
      assert.equal(decode(after.outputs[0]?.output["results.json"]), "still here");
    });
  });
});

describe("OMI with a batch model", () => {
  test("items are split into batches of batchSize; a bad item fails alone; a throwing batch fails only its items", async () => {
    await withServer(fixture("batch.ts"), {}, async (client) => {
      const response = await client.run([{ input: "a" }, { input: "bad" }, { input: "c" }, { input: "fail-batch" }, { input: "e" }]);
      assert.equal(response.statusCode, 200);
      assert.deepEqual(
        response.outputs.map((o) => [o.success, decode(o.output["results.txt"] ?? o.output.error)]),
        [
          [true, "A"],
          [false, "bad item"],
          [false, "batch exploded"],
          [false, "batch exploded"],
          [true, "E"],
        ],
      );
      const status = await client.status();
      assert.equal(status.features?.batchSize, 2);
    });
  });

  test("/metrics shows the size of each predictBatch call that batching made (chassis_batch_items)", async () => {
    await withServer(fixture("batch.ts"), {}, async (client, server) => {
      const replies = await Promise.all(["a", "b", "c", "d", "e", "f"].map((input) => client.run([{ input }])));
      assert.deepEqual(
        replies.map((r) => decode(r.outputs[0]?.output["results.txt"])),
        ["A", "B", "C", "D", "E", "F"],
      );
      const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
      assert.match(text, /^# TYPE chassis_batch_items histogram$/m);
      const value = (series: string) => seriesValue(text, series);
      // Every item went through a predictBatch call: six in all, at most batchSize (2) per call. How many calls
      // depends on how the Runs arrive (all in one read: 1 + 2 + 2 + 1); merging itself is batcher.test.ts's.
      assert.equal(value('chassis_batch_items_sum{model_name="batch-upper"}'), 6);
      const calls = value('chassis_batch_items_count{model_name="batch-upper"}');
      assert.ok(calls >= 3 && calls <= 6, `${calls} predictBatch calls for 6 concurrent items of batchSize 2`);
      assert.equal(value('chassis_batch_items_bucket{model_name="batch-upper",le="2"}'), calls, "no call above batchSize");
    });
  });

  test("a missing required input is a per-item error that does not reach the batch", async () => {
    await withServer(fixture("batch.ts"), {}, async (client) => {
      const response = await client.run([{ input: "a" }, { other: "x" }, { input: "b" }]);
      assert.deepEqual(
        response.outputs.map((o) => o.success),
        [true, false, true],
      );
      const error = decode(response.outputs[1]?.output.error);
      assert.match(error, /missing input "input"/);
      assert.match(error, /unknown input "other"/);
      assert.match(error, /the model's inputs are "input"/);
    });
  });
});

describe("OMI timeouts", () => {
  test("a predict that hangs past timeout.run gets a per-item deadline error and the server keeps serving", async () => {
    await withServer(fixture("slow.ts"), {}, async (client) => {
      const started = Date.now();
      const response = await client.run([{ hang: "1" }, { input: "quick" }]);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 900 && elapsed < 5_000, `took ${elapsed} ms`);
      assert.equal(response.outputs[0]?.success, false);
      assert.match(decode(response.outputs[0]?.output.error), /did not finish within the run timeout of 1s/);
      assert.equal(decode(response.outputs[1]?.output["results.json"]), "quick");
      const next = await client.run([{ input: "next" }]);
      assert.equal(decode(next.outputs[0]?.output["results.json"]), "next");
    });
  });
});

describe("OMI load failures", () => {
  test("load fails: Status answers 500 'Model Failed to Initialize.' with metadata; Run gives per-item errors; health NOT_SERVING", async () => {
    await withServer(fixture("broken-load.ts"), {}, async (client, server) => {
      const status = await client.status();
      assert.equal(status.statusCode, 500);
      assert.equal(status.status, "Internal Server Error");
      assert.equal(status.message, "Model Failed to Initialize.");
      assert.equal(status.modelInfo?.modelName, "Broken");
      const run = await client.run([{ input: "a" }, { input: "b" }]);
      assert.equal(run.outputs.length, 2);
      for (const output of run.outputs) {
        assert.equal(output.success, false);
        assert.match(decode(output.output.error), /^Model has not been initialized.*weights file missing/);
      }
      assert.equal(run.statusCode, 503);
      assert.equal(await healthCheck(server.omiPort), HealthCheckResponse_ServingStatus.NOT_SERVING);
    });
  });

  test("a Status after a failed load retries it, as Chassis does", async () => {
    await withServer(fixture("flaky-load.ts"), {}, async (client, server) => {
      assert.equal(server.runtime.state, "failed");
      const retried = await client.status();
      assert.equal(retried.statusCode, 200);
      assert.equal(retried.message, "Model Initialized Successfully.");
      const run = await client.run([{ input: "x" }]);
      assert.deepEqual(JSON.parse(decode(run.outputs[0]?.output["results.json"])), { input: "x", loads: 2 });
      assert.equal(await healthCheck(server.omiPort), HealthCheckResponse_ServingStatus.SERVING);
    });
  });

  test("with --load status (Chassis style), Run before the first Status gets per-item 'not initialized' errors (Chassis: gRPC UNKNOWN)", async () => {
    await withServer(ECHO, { load: "status" }, async (client, server) => {
      assert.equal(await healthCheck(server.omiPort), HealthCheckResponse_ServingStatus.NOT_SERVING);
      const early = await client.run([{ input: "a" }]);
      assert.equal(early.outputs[0]?.success, false);
      assert.match(decode(early.outputs[0]?.output.error), /^Model has not been initialized/);
      const status = await client.status();
      assert.equal(status.message, "Model Initialized Successfully.");
      const later = await client.run([{ input: "a" }]);
      assert.equal(later.outputs[0]?.success, true);
      assert.equal(await healthCheck(server.omiPort), HealthCheckResponse_ServingStatus.SERVING);
    });
  });
});

describe("OMI Shutdown", () => {
  test("Shutdown answers, then the server drains: calls in flight finish, new connections are refused", async () => {
    const server = await startInProcess(fixture("slow.ts"));
    const client = new OmiClient({ address: `127.0.0.1:${server.omiPort}` });
    try {
      const inFlight = client.run([{ input: "late", sleep: "400" }]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const reply = await client.shutdown();
      assert.equal(reply.statusCode, 200);
      assert.equal(reply.status, "OK");
      assert.equal(reply.message, "Model Shutdown Successfully.");
      // Run during drain, from a new client: the listener is closed, so UNAVAILABLE (retryable) at once.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const other = new OmiClient({ address: `127.0.0.1:${server.omiPort}`, timeoutMs: 2_000 });
      await assert.rejects(other.run([{ input: "too late" }]), (error: ChassisError) => error.code === Code.UNAVAILABLE);
      other.close();
      const answered = await inFlight;
      assert.equal(decode(answered.outputs[0]?.output["results.json"]), "late");
      await server.closed;
      assert.equal(server.runtime.state, "stopped");
    } finally {
      client.close();
    }
  });
});

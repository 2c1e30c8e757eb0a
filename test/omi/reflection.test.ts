/**
 * Server reflection (v1 and v1alpha) with a grpc-js client: the services are
 * listed by their real names, symbols resolve with or without a leading dot,
 * and the served descriptors build a complete registry (what grpcurl and
 * Python's DescriptorPool need). The Python interop test checks the latter
 * with protobuf's own DescriptorPool.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { grpcServiceDefinition } from "../../src/client/grpc-service.js";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../src/omi/gen/grpc/reflection/v1/reflection_pb.js";
import type { RunningServer } from "../../src/server/serve.js";
import { ROOT, startInProcess } from "../helpers/server.js";

type Request = Parameters<typeof create<typeof ServerReflectionRequestSchema>>[1];

function reflect(port: number, version: "v1" | "v1alpha", requests: Request[]): Promise<ServerReflectionResponse[]> {
  const def = grpcServiceDefinition(ServerReflection, `grpc.reflection.${version}.ServerReflection`).ServerReflectionInfo;
  assert.ok(def);
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize);
    const answers: ServerReflectionResponse[] = [];
    call.on("data", (answer: ServerReflectionResponse) => answers.push(answer));
    call.on("end", () => {
      client.close();
      resolve(answers);
    });
    call.on("error", reject);
    for (const request of requests) call.write(create(ServerReflectionRequestSchema, request) satisfies ServerReflectionRequest);
    call.end();
  });
}

function fileNames(answer: ServerReflectionResponse | undefined): string[] {
  assert.equal(answer?.messageResponse.case, "fileDescriptorResponse");
  const files = answer.messageResponse.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  // The files must form a complete, consistent set.
  createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  return files.map((f) => f.name);
}

describe("server reflection", () => {
  let server: RunningServer;
  before(async () => {
    server = await startInProcess(`${ROOT}/examples/echo`);
  });
  after(() => server.forceClose());

  for (const version of ["v1", "v1alpha"] as const) {
    test(`${version}: list_services names ModzyModel without a leading dot, and Health`, async () => {
      const [answer] = await reflect(server.omiPort, version, [{ messageRequest: { case: "listServices", value: "*" } }]);
      assert.equal(answer?.messageResponse.case, "listServicesResponse");
      const names = answer.messageResponse.value.service.map((s) => s.name);
      assert.ok(names.includes("ModzyModel"), names.join());
      assert.ok(names.includes("grpc.health.v1.Health"), names.join());
      assert.ok(!names.some((n) => n.startsWith(".")));
    });

    test(`${version}: file_containing_symbol finds services, methods, messages and map entries`, async () => {
      const answers = await reflect(server.omiPort, version, [
        { messageRequest: { case: "fileContainingSymbol", value: "ModzyModel" } },
        { messageRequest: { case: "fileContainingSymbol", value: ".ModzyModel" } },
        { messageRequest: { case: "fileContainingSymbol", value: "ModzyModel.Run" } },
        { messageRequest: { case: "fileContainingSymbol", value: "InputItem.InputEntry" } },
        { messageRequest: { case: "fileContainingSymbol", value: "grpc.health.v1.Health" } },
        { messageRequest: { case: "fileContainingSymbol", value: `grpc.reflection.${version}.ServerReflection` } },
      ]);
      assert.equal(answers.length, 6);
      for (const answer of answers.slice(0, 4)) assert.deepEqual(fileNames(answer), ["model.proto"]);
      assert.deepEqual(fileNames(answers[4]), ["grpc/health/v1/health.proto"]);
      assert.deepEqual(fileNames(answers[5]), [`grpc/reflection/${version}/reflection.proto`]);
    });

    test(`${version}: unknown symbols and files get NOT_FOUND error responses on the same stream`, async () => {
      const answers = await reflect(server.omiPort, version, [
        { messageRequest: { case: "fileContainingSymbol", value: "Nope" } },
        { messageRequest: { case: "fileByFilename", value: "nope.proto" } },
        { messageRequest: { case: "fileByFilename", value: "model.proto" } },
      ]);
      for (const answer of answers.slice(0, 2)) {
        assert.equal(answer?.messageResponse.case, "errorResponse");
        assert.equal(answer.messageResponse.value.errorCode, 5);
      }
      assert.deepEqual(fileNames(answers[2]), ["model.proto"]);
    });
  }

  test("a request that is not a ServerReflectionRequest ends the stream with INTERNAL, after the answers before it", async () => {
    const def = grpcServiceDefinition(ServerReflection).ServerReflectionInfo;
    assert.ok(def);
    const client = new Client(`127.0.0.1:${server.omiPort}`, credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(def.path, (bytes: Buffer) => bytes, def.responseDeserialize);
      const answers: ServerReflectionResponse[] = [];
      call.on("data", (answer: ServerReflectionResponse) => answers.push(answer));
      const ended = new Promise<ServiceError>((resolve, reject) => {
        call.on("error", resolve);
        call.on("end", () => reject(new Error("the stream ended without an error")));
      });
      const list = create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      call.write(Buffer.from(toBinary(ServerReflectionRequestSchema, list)));
      call.write(Buffer.from([0x0a, 0x05, 0x61])); // field 1 announces 5 bytes; 1 follows
      call.end();
      const error = await ended;
      assert.equal(error.code, 13);
      assert.match(
        error.details,
        /^cannot decode the request of \/grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo as grpc\.reflection\.v1\.ServerReflectionRequest: /,
      );
      assert.equal(answers.length, 1);
      assert.equal(answers[0]?.messageResponse.case, "listServicesResponse");
    } finally {
      client.close();
    }
  });

  test("the served model.proto keeps the protofile's options and field numbers", async () => {
    const [answer] = await reflect(server.omiPort, "v1", [{ messageRequest: { case: "fileByFilename", value: "model.proto" } }]);
    assert.equal(answer?.messageResponse.case, "fileDescriptorResponse");
    const [bytes] = answer.messageResponse.value.fileDescriptorProto;
    assert.ok(bytes);
    const file = fromBinary(FileDescriptorProtoSchema, bytes);
    assert.equal(file.package, "");
    assert.equal(file.options?.javaPackage, "com.modzy.model.grpc");
    assert.equal(file.options?.javaMultipleFiles, true);
    const status = file.messageType.find((m) => m.name === "StatusResponse");
    assert.deepEqual(
      status?.field.map((f) => [f.number, f.name]),
      [
        [1, "status_code"],
        [2, "status"],
        [3, "message"],
        [4, "model_info"],
        [5, "description"],
        [6, "inputs"],
        [7, "outputs"],
        [8, "resources"],
        [9, "timeout"],
        [10, "features"],
      ],
    );
    assert.deepEqual(
      file.service[0]?.method.map((m) => m.name),
      ["Status", "Run", "Shutdown"],
    );
  });
});

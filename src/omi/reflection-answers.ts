/**
 * @module omi/reflection-answers
 * The answers of gRPC server reflection, v1 and v1alpha (same messages, two
 * paths), loaded by omi/reflection on the first reflection call. It serves
 * the compiled FileDescriptorProtos embedded in the generated code (what
 * protoc emits), so reflection clients such as grpcurl and Python's
 * DescriptorPool accept them. Written here because @grpc/reflection 1.0.4
 * lists the package-less service as ".ModzyModel", cannot find the symbol
 * "ModzyModel", and serves map entries that DescriptorPool rejects (SPEC.md 6).
 */
import { clone, create, type DescFile, toBinary } from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "../core/code.js";
import {
  file_grpc_reflection_v1_reflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "./gen/grpc/reflection/v1/reflection_pb.js";
import { decodeRequest, encodeResponse } from "./grpc/codec.js";
import { REFLECTION_SERVICES, V1, V1ALPHA } from "./reflection.js";

/** The v1alpha file: the v1 file under another package (the protocol is identical). */
function v1alphaFile(): FileDescriptorProto {
  const file = clone(FileDescriptorProtoSchema, file_grpc_reflection_v1_reflection.proto);
  file.name = "grpc/reflection/v1alpha/reflection.proto";
  file.package = V1ALPHA;
  for (const message of file.messageType) {
    for (const field of message.field) field.typeName = field.typeName.replace(`.${V1}.`, `.${V1ALPHA}.`);
  }
  for (const service of file.service) {
    for (const method of service.method) {
      method.inputType = method.inputType.replace(`.${V1}.`, `.${V1ALPHA}.`);
      method.outputType = method.outputType.replace(`.${V1}.`, `.${V1ALPHA}.`);
    }
  }
  return file;
}

interface IndexedFile {
  readonly proto: FileDescriptorProto;
  readonly bytes: Uint8Array;
}

export class ReflectionService {
  readonly #files = new Map<string, IndexedFile>();
  readonly #symbols = new Map<string, string>();
  readonly #services: string[];

  /** `files`: the descriptors of every service served; `services`: their full names, as listed. */
  constructor(files: DescFile[], services: readonly string[]) {
    this.#services = [...services, ...REFLECTION_SERVICES];
    const protos = [...files.map((f) => f.proto), file_grpc_reflection_v1_reflection.proto, v1alphaFile()];
    for (const proto of protos) this.#index(proto);
  }

  #index(proto: FileDescriptorProto): void {
    if (this.#files.has(proto.name)) return;
    this.#files.set(proto.name, { proto, bytes: toBinary(FileDescriptorProtoSchema, proto) });
    const prefix = proto.package ? `${proto.package}.` : "";
    const addMessages = (messages: FileDescriptorProto["messageType"], scope: string) => {
      for (const message of messages) {
        const name = `${scope}${message.name}`;
        this.#symbols.set(name, proto.name);
        for (const field of message.field) this.#symbols.set(`${name}.${field.name}`, proto.name);
        for (const e of message.enumType) this.#symbols.set(`${name}.${e.name}`, proto.name);
        addMessages(message.nestedType, `${name}.`);
      }
    };
    addMessages(proto.messageType, prefix);
    for (const e of proto.enumType) this.#symbols.set(`${prefix}${e.name}`, proto.name);
    for (const service of proto.service) {
      const name = `${prefix}${service.name}`;
      this.#symbols.set(name, proto.name);
      for (const method of service.method) this.#symbols.set(`${name}.${method.name}`, proto.name);
    }
  }

  /** The named file and everything it imports, the file itself first. */
  #withDependencies(fileName: string): Uint8Array[] | undefined {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (name: string): boolean => {
      if (seen.has(name)) return true;
      const file = this.#files.get(name);
      if (!file) return false;
      seen.add(name);
      out.push(file.bytes);
      return file.proto.dependency.every(visit);
    };
    return visit(fileName) ? out : undefined;
  }

  answer(request: ServerReflectionRequest): ServerReflectionResponse {
    const base = { validHost: request.host, originalRequest: request };
    const notFound = (message: string) =>
      create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "errorResponse", value: { errorCode: Code.NOT_FOUND, errorMessage: message } },
      });
    const files = (list: Uint8Array[]) =>
      create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: list } },
      });
    const req = request.messageRequest;
    switch (req.case) {
      case "listServices":
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "listServicesResponse", value: { service: this.#services.map((name) => ({ name })) } },
        });
      case "fileByFilename": {
        const list = this.#withDependencies(req.value);
        return list ? files(list) : notFound(`file "${req.value}" not found`);
      }
      case "fileContainingSymbol": {
        // Tolerate a leading dot (".ModzyModel"), which some clients send.
        const symbol = req.value.replace(/^\./, "");
        const fileName = this.#symbols.get(symbol);
        const list = fileName ? this.#withDependencies(fileName) : undefined;
        return list ? files(list) : notFound(`symbol "${req.value}" not found`);
      }
      case "allExtensionNumbersOfType": {
        const type = req.value.replace(/^\./, "");
        if (!this.#symbols.has(type)) return notFound(`type "${req.value}" not found`);
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: type, extensionNumber: [] } },
        });
      }
      case "fileContainingExtension":
        return notFound(`no extension ${req.value.extensionNumber} of "${req.value.containingType}" (this server declares no extensions)`);
      default:
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: {
            case: "errorResponse",
            value: { errorCode: Code.INVALID_ARGUMENT, errorMessage: "empty reflection request" },
          },
        });
    }
  }

  /** One reflection request's bytes -> its answer's bytes. */
  answerBytes(bytes: Uint8Array, path: string): Uint8Array {
    return encodeResponse(ServerReflectionResponseSchema, this.answer(decodeRequest(ServerReflectionRequestSchema, bytes, path)));
  }
}

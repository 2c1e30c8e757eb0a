/**
 * @module client/grpc-service
 * Turns a protobuf-es service descriptor into a @grpc/grpc-js
 * ServiceDefinition for OmiClient (and tests), from one source of truth:
 * the generated code from proto/ (no proto-loader or protobufjs at run time).
 * Only the client uses grpc-js; the server has its own transport (omi/grpc).
 */
import type { DescMessage, DescService, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

export function grpcServiceDefinition(
  service: DescService,
  typeName: string = service.typeName,
): ServiceDefinition<Record<string, MethodDefinition<unknown, unknown>>> {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      ...codec(method.input, "request"),
      ...codec(method.output, "response"),
      originalName: method.localName,
    } as MethodDefinition<unknown, unknown>;
  }
  return definition;
}

function codec<Desc extends DescMessage>(schema: Desc, side: "request" | "response") {
  const serialize = (message: MessageShape<Desc>) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  const deserialize = (bytes: Buffer) => fromBinary(schema, bytes);
  return side === "request"
    ? { requestSerialize: serialize, requestDeserialize: deserialize }
    : { responseSerialize: serialize, responseDeserialize: deserialize };
}

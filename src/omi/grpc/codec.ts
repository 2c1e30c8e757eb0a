/**
 * @module omi/grpc/codec
 * protobuf-es messages to and from the bytes the transport carries, with a
 * decode failure reported as gRPC INTERNAL naming the method and the type.
 */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";

export function decodeRequest<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, path: string): MessageShape<Desc> {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    throw new ChassisError(
      Code.INTERNAL,
      `cannot decode the request of ${path} as ${schema.typeName}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

export function encodeResponse<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  return toBinary(schema, message);
}

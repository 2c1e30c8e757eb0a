/**
 * @module client/omi-wire
 * The OMI messages and grpc-js method definitions OmiClient sends with, on
 * protobuf-es. Loaded with grpc-js on the client's first call: models import
 * chassis-ts, whose entry exports OmiClient, and serving a model should not
 * load protobuf-es and the generated descriptors (~40 ms) for a client it
 * never uses.
 */
import { create } from "@bufbuild/protobuf";
import { ModzyModel, RunRequestSchema, ShutdownRequestSchema, StatusRequestSchema } from "../omi/gen/model_pb.js";
import { grpcServiceDefinition } from "./grpc-service.js";

export const definition = grpcServiceDefinition(ModzyModel);

const encoder = new TextEncoder();

export function statusRequest(): unknown {
  return create(StatusRequestSchema);
}

export function shutdownRequest(): unknown {
  return create(ShutdownRequestSchema);
}

/** Items (input key -> bytes, or a string sent as UTF-8) as a RunRequest. */
export function runRequest(
  items: ReadonlyArray<Readonly<Record<string, Uint8Array | string>>>,
  options: { detectDrift?: boolean; explain?: boolean },
): unknown {
  return create(RunRequestSchema, {
    inputs: items.map((item) => ({
      input: Object.fromEntries(Object.entries(item).map(([k, v]) => [k, typeof v === "string" ? encoder.encode(v) : v])),
    })),
    detectDrift: options.detectDrift ?? false,
    explain: options.explain ?? false,
  });
}

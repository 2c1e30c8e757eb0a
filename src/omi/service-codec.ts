/**
 * @module omi/service-codec
 * StatusResponse and ShutdownResponse (proto/model.proto) written by hand, so
 * serving never loads protobuf-es (see omi/wire). The bytes are those of
 * protobuf-es's toBinary for the same message (service-codec.test.ts).
 */
import type { ModelMetadata } from "../model/metadata.js";
import type { OmiStatus } from "./status.js";
import { WireWriter } from "./wire.js";

/** StatusResponse: the OMI status, a message, and everything the metadata says, by field number. */
export function encodeStatusResponse(metadata: ModelMetadata, { statusCode, status }: OmiStatus, message: string): Uint8Array {
  const { description: d, resources: r, timeout: t, features: f } = metadata;
  const out = new WireWriter().int32(1, statusCode).string(2, status).string(3, message);
  out.message(
    4,
    new WireWriter()
      .string(1, metadata.name)
      .string(2, metadata.version)
      .string(3, metadata.author)
      .string(4, metadata.modelType)
      .string(5, metadata.source),
  );
  out.message(5, new WireWriter().string(1, d.summary).string(2, d.details).string(3, d.technical).string(4, d.performance));
  for (const input of metadata.inputs) {
    const entry = new WireWriter().string(1, input.key);
    for (const mediaType of input.mediaTypes) entry.stringElement(2, mediaType);
    out.message(6, entry.string(3, input.maxSize).string(4, input.description));
  }
  for (const output of metadata.outputs) {
    out.message(
      7,
      new WireWriter().string(1, output.key).string(2, output.mediaType).string(3, output.maxSize).string(4, output.description),
    );
  }
  out.message(8, new WireWriter().string(1, r.ram).float(2, r.cpus).int32(3, r.gpus));
  out.message(9, new WireWriter().string(1, t.status).string(2, t.run));
  out.message(
    10,
    new WireWriter()
      .bool(1, f.adversarialDefense)
      .int32(2, f.batchSize)
      .bool(3, f.retrainable)
      .string(4, f.resultsFormat)
      .string(5, f.driftFormat)
      .string(6, f.explanationFormat),
  );
  return out.finish();
}

export function encodeShutdownResponse({ statusCode, status }: OmiStatus, message: string): Uint8Array {
  return new WireWriter().int32(1, statusCode).string(2, status).string(3, message).finish();
}

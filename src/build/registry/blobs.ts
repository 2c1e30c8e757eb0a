/**
 * @module build/registry/blobs
 * Where the bytes of a blob come from when it is uploaded. A BlobSource can
 * produce its body again for every attempt (a retry after a 5xx or a reset
 * must resend the same bytes), and optionally a slice of it (chunked uploads
 * then send disk-backed slices; without `slice` they read `body()` once, in
 * order, holding one chunk in memory at a time).
 *
 * Disk files go through `fs.openAsBlob`: a disk-backed Blob that fetch sends
 * with a Content-Length and without reading it into memory (oci-build.md §4.4).
 */
import { openAsBlob } from "node:fs";
import { join } from "node:path";
import { ToolError } from "../../core/tool-error.js";
import { sha256Digest } from "./digest.js";
import type { Descriptor } from "./media-types.js";
import { validateDigest } from "./reference.js";

/** A request body fetch can send with a known Content-Length. */
export type BlobBody = Uint8Array | Blob | AsyncIterable<Uint8Array>;

export interface BlobSource {
  readonly digest: string;
  readonly size: number;
  /** The whole blob, fresh on every call (called again for each retry). */
  body(): BlobBody | Promise<BlobBody>;
  /** Bytes [start, end), for chunked uploads; optional. */
  slice?(start: number, end: number): Uint8Array | Blob | Promise<Uint8Array | Blob>;
}

/** Gives the bytes for a descriptor of the image being pushed. */
export interface BlobReader {
  open(descriptor: Descriptor): BlobSource | Promise<BlobSource>;
}

/** A blob held in memory; the digest is computed unless given. */
export function bytesSource(bytes: Uint8Array | string, digest?: string): BlobSource {
  const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  return {
    digest: digest ?? sha256Digest(data),
    size: data.byteLength,
    body: () => data,
    slice: (start, end) => data.subarray(start, end),
  };
}

/** A blob in a file whose digest is known (computing it would read the file twice). */
export async function fileSource(path: string, digest: string): Promise<BlobSource> {
  validateDigest(digest);
  const blob = await openAsBlob(path);
  return { digest, size: blob.size, body: () => blob, slice: (start, end) => blob.slice(start, end) };
}

/** Reads blobs from an OCI image layout folder (`blobs/<algorithm>/<hex>`). */
export function layoutBlobReader(dir: string): BlobReader {
  return {
    async open(descriptor) {
      validateDigest(descriptor.digest);
      const [algorithm = "", hex = ""] = descriptor.digest.split(":");
      const path = join(dir, "blobs", algorithm, hex);
      try {
        return await fileSource(path, descriptor.digest);
      } catch (error) {
        throw new ToolError("CHASSIS_USAGE", `OCI layout ${dir} has no readable blob ${descriptor.digest} (${(error as Error).message})`, {
          cause: error,
        });
      }
    },
  };
}

/** Serves blobs from a map of digest -> bytes (tests, freshly built configs). */
export function memoryBlobReader(blobs: Iterable<Uint8Array | string>): BlobReader {
  const byDigest = new Map<string, BlobSource>();
  for (const bytes of blobs) {
    const source = bytesSource(bytes);
    byDigest.set(source.digest, source);
  }
  return {
    open(descriptor) {
      const source = byDigest.get(descriptor.digest);
      if (!source) throw new ToolError("CHASSIS_USAGE", `blob ${descriptor.digest} is referenced but was not among the blobs given`);
      return source;
    },
  };
}

/**
 * @module build/oci/digest
 * sha256 content digests (image-spec `descriptor.md` "Digests"): computing
 * them over bytes, files and streams, and checking the `sha256:<64 hex>` form.
 * Only sha256 is produced or accepted: it is what every registry and engine
 * uses, and the layout stores blobs under `blobs/sha256/`.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, type TransformCallback } from "node:stream";
import { ToolError } from "../../core/tool-error.js";

/** `sha256:` followed by 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/** Returns the digest unchanged, or throws CHASSIS_IMAGE_INVALID naming where it came from. */
export function assertDigest(value: unknown, where: string): Digest {
  if (isDigest(value)) return value;
  throw new ToolError(
    "CHASSIS_IMAGE_INVALID",
    `${where}: ${JSON.stringify(value)} is not a sha256 digest (expected sha256:<64 lowercase hex digits>)`,
  );
}

/** The 64 hex digits of a digest (the blob's file name in a layout). */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Digest and size of a file, read as a stream (never held in memory). */
export async function digestFile(path: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/**
 * A pass-through stream that hashes and counts what flows through it: the
 * tee(1) of a pipeline (tar -> hash = diff_id -> gzip -> hash = digest).
 * `digest` and `size` are final once the stream has ended.
 */
export class DigestStream extends Transform {
  #hash: Hash = createHash("sha256");
  #digest: Digest | undefined;
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.byteLength;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = `sha256:${this.#hash.digest("hex")}`;
    callback();
  }

  get digest(): Digest {
    if (this.#digest === undefined) throw new ToolError("CHASSIS_INTERNAL", "DigestStream.digest read before the stream ended");
    return this.#digest;
  }
}

/** Throws CHASSIS_DIGEST_MISMATCH unless the content's digest and size are the expected ones. */
export function verifyContent(what: string, actual: { digest: Digest; size: number }, expected: { digest: Digest; size?: number }): void {
  if (actual.digest !== expected.digest) {
    throw new ToolError("CHASSIS_DIGEST_MISMATCH", `${what}: content hashes to ${actual.digest}, expected ${expected.digest}`);
  }
  if (expected.size !== undefined && actual.size !== expected.size) {
    throw new ToolError("CHASSIS_DIGEST_MISMATCH", `${what}: content is ${actual.size} bytes, expected ${expected.size}`);
  }
}

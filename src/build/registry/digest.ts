/**
 * @module build/registry/digest
 * Content digests: computing them, and checking bytes against one while they
 * stream past. Only sha256 (what every registry uses) and sha512 are
 * verified; any other algorithm is refused rather than trusted blindly.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { ToolError } from "../../core/tool-error.js";
import { sha256 } from "../oci/digest.js";
import { validateDigest } from "./reference.js";

const ALGORITHMS = new Set(["sha256", "sha512"]);

/** `sha256:<hex>` of some bytes (build/oci's digest, as a plain string). */
export function sha256Digest(bytes: Uint8Array | string): string {
  return sha256(bytes);
}

/** A hash for the digest's algorithm; a CHASSIS_USAGE error for a malformed or unsupported one. */
export function hasherFor(digest: string): Hash {
  validateDigest(digest);
  const algorithm = digest.slice(0, digest.indexOf(":"));
  if (!ALGORITHMS.has(algorithm)) {
    throw new ToolError("CHASSIS_USAGE", `digest ${digest} uses ${algorithm}, which cannot be verified (expected sha256 or sha512)`);
  }
  return createHash(algorithm);
}

/** The digest of `bytes` computed with `expected`'s algorithm. */
export function digestLike(expected: string, bytes: Uint8Array): string {
  const algorithm = expected.slice(0, expected.indexOf(":"));
  return `${algorithm}:${hasherFor(expected).update(bytes).digest("hex")}`;
}

export function mismatch(what: string, expected: string, actual: string, hint?: string): ToolError {
  return new ToolError("CHASSIS_DIGEST_MISMATCH", `${what}: expected digest ${expected} but the content hashes to ${actual}`, {
    hint:
      hint ??
      "the content was corrupted in transit or the registry holds different bytes under this digest; retry, and report it if it persists",
  });
}

/**
 * A pass-through stream that hashes what flows through it and, at the end,
 * fails with CHASSIS_DIGEST_MISMATCH (so the consumer's pipeline rejects)
 * when the bytes do not match `expected`, or their count differs from
 * `expectedSize` when given.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash;
  private bytes = 0;

  constructor(
    private readonly expected: string,
    private readonly what: string,
    private readonly expectedSize?: number,
  ) {
    super();
    this.hash = hasherFor(expected);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const actual = `${this.expected.slice(0, this.expected.indexOf(":"))}:${this.hash.digest("hex")}`;
    if (actual !== this.expected) callback(mismatch(this.what, this.expected, actual));
    else if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      callback(new ToolError("CHASSIS_DIGEST_MISMATCH", `${this.what}: expected ${this.expectedSize} bytes but received ${this.bytes}`));
    } else callback();
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.bytes;
  }
}

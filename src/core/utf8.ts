/**
 * @module core/utf8
 * UTF-8 encoding of strings on the hot path (outputs from json()/text() and
 * string outputs, v1 and v2 JSON instances). Node 20's TextEncoder.encode
 * allocates through a slow native path: 0.4–1.1 µs for a 50-character result
 * against ~80 ns for encodeInto a scratch buffer and a copy (docs/performance.md,
 * "UTF-8 encoding"). Same bytes as TextEncoder.encode, lone surrogates
 * included (U+FFFD), and every result owns its memory.
 */
const encoder = new TextEncoder();
// Any string of up to a third of this many UTF-16 units fits: a unit encodes to at most 3 bytes.
const scratch = new Uint8Array(24 * 1024);
const SCRATCH_UNITS = scratch.length / 3;

/** The UTF-8 bytes of `text`, in a Uint8Array of their own. */
export function utf8Encode(text: string): Uint8Array {
  if (text.length <= SCRATCH_UNITS) {
    const { written } = encoder.encodeInto(text, scratch);
    return scratch.slice(0, written);
  }
  // Large: Buffer.from (about twice TextEncoder's speed here) gives a buffer of its own above 4 KiB, never a pool slice.
  const bytes = Buffer.from(text, "utf8");
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * @module kserve/base64
 * Strict base64 decoding in one pass: the same texts as the pattern
 * `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$`
 * (standard alphabet, padding optional, none in the middle) and the same
 * bytes as `Buffer.from(text, "base64")`. It replaces that pattern plus
 * Buffer.from: about 150 ns against 770 ns for a short v1 instance, and
 * faster at every size measured up to 10 kB (scratch benchmark, node 20).
 */

/** Character code -> 6-bit value; -1 outside the alphabet. */
const VALUES = new Int8Array(128).fill(-1);
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;
const EQUALS = 61;
/** Set in `bad` by a character code >= 128 or by a -1 from VALUES (its 0x80 bit). */
const NOT_BASE64 = ~0x7f;

/** The bytes of `text`, or undefined when it is not strict base64 (whitespace included). */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  const n = text.length;
  let length = n;
  if (n % 4 === 0 && n > 0 && text.charCodeAt(n - 1) === EQUALS) length = text.charCodeAt(n - 2) === EQUALS ? n - 2 : n - 1;
  const rest = length & 3;
  if (rest === 1) return undefined;
  const out = new Uint8Array((length >> 2) * 3 + (rest === 0 ? 0 : rest - 1));
  const whole = length - rest;
  // Invalid characters are collected in `bad` and checked once at the end: no branch per character.
  let bad = 0;
  let o = 0;
  let i = 0;
  for (; i < whole; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    const va = VALUES[a & 0x7f] as number;
    const vb = VALUES[b & 0x7f] as number;
    const vc = VALUES[c & 0x7f] as number;
    const vd = VALUES[d & 0x7f] as number;
    bad |= a | b | c | d | ((va | vb | vc | vd) & 0x80);
    const v = (va << 18) | (vb << 12) | (vc << 6) | vd;
    out[o++] = v >> 16;
    out[o++] = v >> 8;
    out[o++] = v;
  }
  if (rest >= 2) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const va = VALUES[a & 0x7f] as number;
    const vb = VALUES[b & 0x7f] as number;
    bad |= a | b | ((va | vb) & 0x80);
    out[o++] = (va << 2) | (vb >> 4);
    if (rest === 3) {
      const c = text.charCodeAt(i + 2);
      const vc = VALUES[c & 0x7f] as number;
      bad |= c | (vc & 0x80);
      out[o] = (vb << 4) | (vc >> 2);
    }
  }
  return (bad & NOT_BASE64) === 0 ? out : undefined;
}

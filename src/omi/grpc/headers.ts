/**
 * @module omi/grpc/headers
 * Header values of the gRPC over HTTP/2 protocol: the grpc-timeout format and
 * the percent-encoding of grpc-message.
 */

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * Milliseconds from a grpc-timeout value ("1 to 8 digits then H, M, S, m, u
 * or n"), or undefined when the value is malformed.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

/** grpc-message is percent-encoded UTF-8: bytes outside printable ASCII, and "%", are escaped. */
export function encodeGrpcMessage(message: string): string {
  // Fast path: most messages are plain ASCII.
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

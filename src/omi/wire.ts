/**
 * @module omi/wire
 * Protobuf wire primitives shared by the hand-written codecs: a bounds-checked
 * reader (RunRequest, grpc.health.v1 requests) and a writer for the small
 * answers outside the Run hot path (StatusResponse, ShutdownResponse, health).
 * With them, serving does not load protobuf-es at start-up: importing it and
 * the generated descriptors took about 40 ms of a 350 ms cold start. Only
 * reflection, the first time it is called, and the client load it.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** INTERNAL, as grpc-js and Chassis answer a request that is not a valid message. */
export function malformed(typeName: string, detail: string): ChassisError {
  return new ChassisError(Code.INTERNAL, `cannot decode the request as ${typeName}: ${detail}`);
}

export class WireReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    /** The message being read, named in errors. */
    readonly typeName: string,
  ) {
    this.pos = start;
  }

  varint(): number {
    // Up to 10 bytes; values above 2^53 lose precision, which only matters for skipped fields.
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed(this.typeName, "a varint runs past the end of its message");
      const byte = this.buf[this.pos++] as number;
      result += (byte & 0x7f) * shift;
      if (byte < 0x80) return result;
      shift *= 128;
    }
    throw malformed(this.typeName, "a varint is longer than 10 bytes");
  }

  /** The bounds of a length-delimited field's payload; advances past it. */
  lengthDelimited(): number {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) {
      throw malformed(this.typeName, `a field announces ${length} bytes but only ${this.end - start} remain`);
    }
    this.pos = start + length;
    return start;
  }

  /** A length-delimited field read as UTF-8; `what` names it in the error when it is not valid UTF-8. */
  string(what: string): string {
    const start = this.lengthDelimited();
    try {
      return utf8.decode(this.buf.subarray(start, this.pos));
    } catch {
      throw malformed(this.typeName, `${what} is not valid UTF-8`);
    }
  }

  skip(wireType: number, field: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        throw malformed(this.typeName, `field ${field} has wire type ${wireType}, which proto3 does not use`);
    }
  }

  advance(n: number): void {
    if (this.end - this.pos < n) throw malformed(this.typeName, "a fixed-width field runs past the end of its message");
    this.pos += n;
  }
}

/**
 * Writes `value` as a varint at out[pos]; returns the position after it. A
 * negative int32 is sign-extended to 64 bits: ten bytes, as protobuf-es writes it.
 */
export function writeVarint(out: Uint8Array, pos: number, value: number): number {
  if (value < 0) {
    let low = value >>> 0;
    for (let i = 0; i < 4; i++) {
      out[pos++] = (low & 0x7f) | 0x80;
      low >>>= 7;
    }
    out[pos++] = (low & 0x0f) | 0x70 | 0x80;
    for (let i = 0; i < 4; i++) out[pos++] = 0xff;
    out[pos++] = 0x01;
    return pos;
  }
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/** The ten bytes of the longest varint, for WireWriter. */
const VARINT_SCRATCH = new Uint8Array(10);

/**
 * Writes one message the way protobuf-es's toBinary does for proto3: fields in
 * the order they are added (callers add them by field number), scalars left
 * out when they hold their default, a set sub-message always written.
 */
export class WireWriter {
  readonly #bytes: number[] = [];
  readonly #parts: Uint8Array[] = [];

  int32(field: number, value: number): this {
    if (value === 0) return this;
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  bool(field: number, value: boolean): this {
    if (!value) return this;
    this.#tag(field, WIRE_VARINT);
    this.#bytes.push(1);
    return this;
  }

  float(field: number, value: number): this {
    if (value === 0) return this;
    this.#tag(field, WIRE_I32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.#bytes.push(...bytes);
    return this;
  }

  string(field: number, value: string): this {
    if (value === "") return this;
    return this.#lengthDelimited(field, Buffer.from(value, "utf8"));
  }

  /** An element of a repeated string field: written even when empty. */
  stringElement(field: number, value: string): this {
    return this.#lengthDelimited(field, Buffer.from(value, "utf8"));
  }

  message(field: number, message: WireWriter): this {
    return this.#lengthDelimited(field, message.finish());
  }

  finish(): Uint8Array {
    this.#flush();
    return Buffer.concat(this.#parts);
  }

  #lengthDelimited(field: number, payload: Uint8Array): this {
    this.#tag(field, WIRE_LEN);
    this.#varint(payload.length);
    this.#flush();
    this.#parts.push(payload);
    return this;
  }

  #tag(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  #varint(value: number): void {
    const end = writeVarint(VARINT_SCRATCH, 0, value);
    for (let i = 0; i < end; i++) this.#bytes.push(VARINT_SCRATCH[i] as number);
  }

  #flush(): void {
    if (this.#bytes.length === 0) return;
    this.#parts.push(Uint8Array.from(this.#bytes));
    this.#bytes.length = 0;
  }
}

/**
 * @module omi/run-codec
 * A hand-written protobuf codec for the hot pair, RunRequest and RunResponse
 * (proto/model.proto), straight to and from the runtime's items. Status,
 * Shutdown and health are written by hand too (omi/service-codec, omi/health);
 * only reflection uses protobuf-es. Measured on the echo model, protobuf-es's
 * reflective fromBinary/create/toBinary took about 10% of the server's main
 * thread. The output is byte-identical to protobuf-es's toBinary and the
 * decoder accepts what it accepts (run-codec.test.ts checks both against it).
 */
import type { RawItem } from "../runtime/outcome.js";
import { malformed as malformedMessage, WIRE_LEN, WIRE_VARINT, WireReader, writeVarint } from "./wire.js";

export interface DecodedRunRequest {
  /** One map of input key to bytes per InputItem; the bytes are views of the request buffer. */
  readonly items: RawItem[];
  readonly detectDrift: boolean;
  readonly explain: boolean;
}

/** What RunResponse carries (the generated RunResponse without protobuf-es's $typeName). */
export interface RunReply {
  readonly statusCode: number;
  readonly status: string;
  readonly message: string;
  readonly outputs: ReadonlyArray<{ readonly output: Readonly<Record<string, Uint8Array>>; readonly success: boolean }>;
}

const RUN_REQUEST = "RunRequest";

function malformed(detail: string) {
  return malformedMessage(RUN_REQUEST, detail);
}

export function decodeRunRequest(buf: Uint8Array): DecodedRunRequest {
  const reader = new WireReader(buf, 0, buf.length, RUN_REQUEST);
  const items: RawItem[] = [];
  let detectDrift = false;
  let explain = false;
  while (reader.pos < reader.end) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 1 && wireType === WIRE_LEN) {
      const start = reader.lengthDelimited();
      items.push(decodeInputItem(buf, start, reader.pos));
    } else if (field === 2 && wireType === WIRE_VARINT) detectDrift = reader.varint() !== 0;
    else if (field === 3 && wireType === WIRE_VARINT) explain = reader.varint() !== 0;
    else if (field === 0) throw malformed("field number 0 is not allowed");
    else reader.skip(wireType, field);
  }
  return { items, detectDrift, explain };
}

function decodeInputItem(buf: Uint8Array, start: number, end: number): RawItem {
  const item: Record<string, Uint8Array> = {};
  const reader = new WireReader(buf, start, end, RUN_REQUEST);
  while (reader.pos < end) {
    const tag = reader.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const entryStart = reader.lengthDelimited();
      decodeMapEntry(buf, entryStart, reader.pos, item);
    } else if (tag >>> 3 === 0) throw malformed("field number 0 is not allowed");
    else reader.skip(tag & 7, Math.floor(tag / 8));
  }
  return item;
}

const EMPTY = new Uint8Array(0);

function decodeMapEntry(buf: Uint8Array, start: number, end: number, into: Record<string, Uint8Array>): void {
  const reader = new WireReader(buf, start, end, RUN_REQUEST);
  let key = "";
  let value: Uint8Array = EMPTY;
  while (reader.pos < end) {
    const tag = reader.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      key = reader.string("an input key");
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      const valueStart = reader.lengthDelimited();
      value = buf.subarray(valueStart, reader.pos);
    } else if (tag >>> 3 === 0) throw malformed("field number 0 is not allowed");
    else reader.skip(tag & 7, Math.floor(tag / 8));
  }
  // A key named __proto__ must be data, not the object's prototype.
  if (key === "__proto__") Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  else into[key] = value;
}

function varintSize(value: number): number {
  if (value < 0) return 10; // a negative int32 is sign-extended to 64 bits
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Length of a string's UTF-8 encoding (what Buffer.byteLength computes, inlined for ASCII). */
function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Encodes a RunResponse; `prefix` bytes are left free in front (5 for a gRPC frame header, which the caller writes). */
export function encodeRunResponse(reply: RunReply, prefix = 0): Buffer {
  const statusCode = reply.statusCode | 0;
  const statusBytes = utf8Length(reply.status);
  const messageBytes = utf8Length(reply.message);
  // First pass: sizes of each output item and of its map entries.
  const itemSizes: number[] = [];
  const entrySizes: number[] = [];
  let size = 0;
  if (statusCode !== 0) size += 1 + varintSize(statusCode);
  if (statusBytes > 0) size += 1 + varintSize(statusBytes) + statusBytes;
  if (messageBytes > 0) size += 1 + varintSize(messageBytes) + messageBytes;
  for (const item of reply.outputs) {
    let itemSize = 0;
    for (const key in item.output) {
      const keyBytes = utf8Length(key);
      const valueBytes = (item.output[key] as Uint8Array).byteLength;
      const entry = 1 + varintSize(keyBytes) + keyBytes + 1 + varintSize(valueBytes) + valueBytes;
      entrySizes.push(keyBytes, valueBytes, entry);
      itemSize += 1 + varintSize(entry) + entry;
    }
    if (item.success) itemSize += 2;
    itemSizes.push(itemSize);
    size += 1 + varintSize(itemSize) + itemSize;
  }
  // Second pass: write.
  const out = Buffer.allocUnsafe(prefix + size);
  let pos = prefix;
  const writeString = (tag: number, text: string, bytes: number) => {
    out[pos++] = tag;
    pos = writeVarint(out, pos, bytes);
    pos += out.write(text, pos, bytes, "utf8");
  };
  if (statusCode !== 0) {
    out[pos++] = (1 << 3) | WIRE_VARINT;
    pos = writeVarint(out, pos, statusCode);
  }
  if (statusBytes > 0) writeString((2 << 3) | WIRE_LEN, reply.status, statusBytes);
  if (messageBytes > 0) writeString((3 << 3) | WIRE_LEN, reply.message, messageBytes);
  let entry = 0;
  reply.outputs.forEach((item, i) => {
    out[pos++] = (4 << 3) | WIRE_LEN;
    pos = writeVarint(out, pos, itemSizes[i] as number);
    for (const key in item.output) {
      const keyBytes = entrySizes[entry++] as number;
      const valueBytes = entrySizes[entry++] as number;
      const entrySize = entrySizes[entry++] as number;
      out[pos++] = (1 << 3) | WIRE_LEN;
      pos = writeVarint(out, pos, entrySize);
      writeString((1 << 3) | WIRE_LEN, key, keyBytes);
      out[pos++] = (2 << 3) | WIRE_LEN;
      pos = writeVarint(out, pos, valueBytes);
      out.set(item.output[key] as Uint8Array, pos);
      pos += valueBytes;
    }
    if (item.success) {
      out[pos++] = (2 << 3) | WIRE_VARINT;
      out[pos++] = 1;
    }
  });
  return out;
}

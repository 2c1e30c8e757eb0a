/**
 * @module omi/grpc/frame
 * gRPC's length-prefixed messages (1 byte compressed flag, 4 bytes big-endian
 * length, the message): an incremental reader that enforces the size limit as
 * soon as a prefix announces a length, and the writer of one frame.
 */
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";

export const PREFIX_BYTES = 5;

export interface RawMessage {
  readonly compressed: boolean;
  readonly bytes: Buffer;
}

/**
 * Collects DATA chunks and yields whole messages. Keeps chunks as they come
 * and copies only when a message spans chunks (the common one-chunk request
 * is a view, not a copy).
 */
export class MessageReader {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly messages: RawMessage[] = [];

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Adds a chunk; throws RESOURCE_EXHAUSTED as soon as a prefix announces more than the limit. */
  push(chunk: Buffer): void {
    if (this.#buffered === 0) this.#chunks = [chunk];
    else this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#drain();
  }

  #drain(): void {
    while (this.#buffered >= PREFIX_BYTES) {
      const head = this.#peek(PREFIX_BYTES);
      const length = head.readUInt32BE(1);
      if (length > this.#maxBytes) {
        throw new ChassisError(
          Code.RESOURCE_EXHAUSTED,
          `received a message of ${length} bytes, over the limit of ${this.#maxBytes} bytes (MAX_MESSAGE_SIZE)`,
        );
      }
      if (this.#buffered < PREFIX_BYTES + length) return;
      const whole = this.#take(PREFIX_BYTES + length);
      this.messages.push({ compressed: whole[0] !== 0, bytes: whole.subarray(PREFIX_BYTES) });
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) return first;
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] as Buffer;
  }

  #take(n: number): Buffer {
    const joined = this.#peek(n);
    this.#buffered -= n;
    if (joined.length === n) this.#chunks = [];
    else this.#chunks[0] = joined.subarray(n);
    return joined.subarray(0, n);
  }

  /** Bytes of an unfinished message (non-zero at the end of a request means it was cut short). */
  get pendingBytes(): number {
    return this.#buffered;
  }

  /** The length the unfinished message announced, when its prefix arrived. */
  get pendingAnnounced(): number | undefined {
    return this.#buffered >= PREFIX_BYTES ? this.#peek(PREFIX_BYTES).readUInt32BE(1) : undefined;
  }
}

/** One uncompressed frame: prefix and message in one buffer, so it goes out as one DATA write. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + message.byteLength);
  out[0] = 0;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, PREFIX_BYTES);
  return out;
}

/**
 * A message its encoder wrote with the 5-byte prefix already in front (see
 * run-codec), so the transport sends it without copying it into a frame.
 */
export class FramedMessage {
  constructor(readonly frame: Buffer) {}

  get messageBytes(): number {
    return this.frame.length - PREFIX_BYTES;
  }
}

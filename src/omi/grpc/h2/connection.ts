/**
 * @module omi/grpc/h2/connection
 * The server side of one HTTP/2 connection (RFC 9113; cleartext, prior
 * knowledge, as gRPC clients speak it), written in plain TypeScript on a
 * net.Socket: frames, stream states, flow control both ways, HPACK
 * (./hpack), SETTINGS, PING, RST_STREAM and GOAWAY.
 *
 * Why not node:http2: each of its requests builds a Duplex stream, converts
 * headers twice and crosses into C++ and back several times. Measured with
 * h2load at 16x16 on the same machine, a JS server answering a canned gRPC
 * reply did about 7x the requests per second of a node:http2 server doing the
 * same (docs/performance.md). Here all frames of one socket read are handled
 * in one pass, and the answers of one tick leave in one write.
 *
 * It serves what a gRPC server needs and refuses the rest with the error
 * codes the RFC names: no server push, no PRIORITY scheduling (PRIORITY is
 * read and ignored), no TLS (ALPN), no HTTP/1.1 upgrade.
 */
import type { Socket } from "node:net";
import { IdTable } from "../../../core/id-table.js";
import { HeaderListTooLarge, HpackDecoder, HpackError, ResponseEncoder, SharedHeaderBlock } from "./hpack.js";

/** A response header block: encoded by the caller, or shared and indexed by the connection (hpack.ResponseEncoder). */
export type HeaderBlock = Buffer | SharedHeaderBlock;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER_BYTES = 9;

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** RFC 9113 section 7. */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_MAX_FRAME = 16_384;
/** Our receive window on the connection: large, so many streams upload at once without waiting for us. */
const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Output of one tick up to this size is joined into one buffer; beyond it, written as a vector of its pieces. */
const COPY_LIMIT = 64 * 1024;
/** Past this much unsent output, stop reading the socket until it drains. */
const OUTPUT_HIGH_WATER = 4 * 1024 * 1024;
/** A client may reset this many streams at once, then about RESET_REFILL_PER_S a second (CVE-2023-44487, "rapid reset"). */
const RESET_BURST = 1000;
const RESET_REFILL_PER_S = 100;
/** Stream ids of our own resets remembered, to ignore the client's frames still in flight for them. */
const RECENT_RESETS = 1000;

/** Request headers: lowercase names, pseudo-headers included; a repeated field's values joined with ", ". */
export type RequestHeaders = Record<string, string>;

/** What a stream tells the code that serves it. */
export interface StreamListener {
  data(chunk: Buffer): void;
  /** The client sent END_STREAM (its request is complete). */
  requestEnded(): void;
  /** The stream is closed: answered and ended both ways, reset by either side, or its connection is gone. Called once. */
  streamClosed(): void;
}

export interface H2ConnectionOptions {
  /** A new request stream; set `stream.listener` before returning to receive its body. */
  onStream(stream: H2Stream, headers: RequestHeaders): void;
  /** @default 256 */
  maxConcurrentStreams?: number;
  /** Largest decoded request header list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE). @default 65536 */
  maxHeaderListBytes?: number;
  /** Each stream's receive window. @default 1 MiB */
  streamWindowBytes?: number;
  /** Request body bytes a connection may hold for streams still uploading; past it, the stream that goes over is refused. @default 64 MiB */
  maxBufferedBytes?: number;
  /** A connection that has not sent the HTTP/2 preface within this time is closed (port scanners, stuck clients). @default 10000 */
  prefaceTimeoutMs?: number;
}

/** Protocol trouble that ends the connection with GOAWAY (RFC 9113 5.4.1). */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One request/response exchange. */
export class H2Stream {
  readonly id: number;
  listener: StreamListener | undefined;
  readonly #connection: H2Connection;
  #remoteEnded = false;
  #localEnded = false;
  #headersSent = false;
  #closed = false;
  sendWindow: number;
  receiveWindow: number;
  /** Received bytes not yet handed back to the client as window. */
  receiveUnacked = 0;
  /** Bytes counted in the connection's buffered budget (released when the upload ends). */
  buffered = 0;
  /** DATA waiting for flow-control window; when the stream has ended locally, its trailers (or END_STREAM) follow it. */
  pending: Buffer[] | undefined;
  pendingTrailers: HeaderBlock | undefined;

  constructor(connection: H2Connection, id: number, sendWindow: number, receiveWindow: number) {
    this.#connection = connection;
    this.id = id;
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
  }

  /** Gone: closed both ways or reset; writes are ignored. */
  get destroyed(): boolean {
    return this.#closed;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  /** The client has sent END_STREAM. */
  get readableEnded(): boolean {
    return this.#remoteEnded;
  }

  /** Sends a HEADERS block (see hpack.encodeHeaderBlock); with endStream, the answer is complete (a trailers-only answer). */
  respond(block: HeaderBlock, endStream: boolean): void {
    if (this.#closed || this.#headersSent) return;
    this.#headersSent = true;
    this.#connection.sendHeaders(this.id, block, endStream);
    if (endStream) this.#endLocal();
  }

  /** Sends DATA, within flow control (queued when the client's window is exhausted). */
  write(data: Buffer): void {
    if (this.#closed || this.#localEnded || data.length === 0) return;
    if (this.pending) this.pending.push(data);
    else this.#connection.sendData(this, data);
  }

  /** Sends the last DATA (if any), then the trailers block, or END_STREAM on an empty DATA frame when there are none. */
  end(data: Buffer | undefined, trailers: HeaderBlock | undefined): void {
    if (this.#closed || this.#localEnded) return;
    if (data && data.length > 0) this.write(data);
    this.#localEnded = true;
    if (this.pending) {
      this.pendingTrailers = trailers;
      return;
    }
    this.#connection.finishStream(this.id, trailers);
    this.#endLocal();
  }

  /** RST_STREAM with `code`: NO_ERROR after a complete answer tells a client still sending to stop. */
  reset(code: number): void {
    if (this.#closed) return;
    this.#connection.sendReset(this.id, code);
    this.close();
  }

  /** Called by the connection when the queued DATA has been sent: an ended stream sends its trailers now. */
  drained(): void {
    if (!this.#localEnded) return;
    this.#connection.finishStream(this.id, this.pendingTrailers);
    this.pendingTrailers = undefined;
    this.#endLocal();
  }

  /** Called by the connection: the client sent END_STREAM. */
  remoteEnded(): void {
    this.#remoteEnded = true;
    this.#connection.releaseBuffered(this);
    this.listener?.requestEnded();
    if (this.#localEnded && !this.pending) this.close();
  }

  #endLocal(): void {
    this.#localEnded = true;
    if (this.#remoteEnded) this.close();
  }

  /** Closed for good: told to the listener once, forgotten by the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.pending = undefined;
    this.#connection.forget(this);
    this.listener?.streamClosed();
  }
}

/** The server side of one HTTP/2 connection. */
export class H2Connection {
  readonly #socket: Socket;
  readonly #options: Required<H2ConnectionOptions>;
  readonly #decoder = new HpackDecoder(4096);
  /** Open streams by id: an IdTable, not a Map (core/id-table says why). */
  readonly #streams = new IdTable<H2Stream>();
  #input: Buffer | undefined;
  #prefaceSeen = false;
  #settingsSeen = false;
  /** Encodes our header blocks in wire order, indexing the shared ones in the client's dynamic table. */
  readonly #encoder = new ResponseEncoder();
  #lastStreamId = 0;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #sendWindow = DEFAULT_WINDOW;
  #receiveWindow = CONNECTION_WINDOW;
  #receiveUnacked = 0;
  #buffered = 0;
  /** Streams with DATA waiting for window, in the order they blocked (an array: see core/id-table for what a churning Set costs). */
  readonly #blocked: H2Stream[] = [];
  /** Streams we reset lately, whose frames may still be on their way (oldest first, bounded). */
  readonly #recentlyReset = new Set<number>();
  /** A header block split over CONTINUATION frames, while it is being collected. */
  #headerBlock: { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number } | undefined;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #paused = false;
  #goingAway = false;
  #goawayLastId = MAX_WINDOW;
  #dead = false;
  #resetTokens = RESET_BURST;
  #resetRefilledAt = Date.now();
  #prefaceTimer: NodeJS.Timeout | undefined;
  /** Called once when the connection is gone. */
  onClose: (() => void) | undefined;

  constructor(socket: Socket, options: H2ConnectionOptions) {
    this.#socket = socket;
    this.#options = {
      maxConcurrentStreams: 256,
      maxHeaderListBytes: 65_536,
      streamWindowBytes: 1024 * 1024,
      maxBufferedBytes: 64 * 1024 * 1024,
      prefaceTimeoutMs: 10_000,
      ...options,
    };
    socket.setNoDelay(true);
    // The kernel's keep-alive probes find peers that vanished without a FIN (a NAT that dropped the connection).
    socket.setKeepAlive(true, 60_000);
    this.#prefaceTimer = setTimeout(() => socket.destroy(), this.#options.prefaceTimeoutMs);
    this.#prefaceTimer.unref();
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("end", () => socket.destroy());
    socket.on("close", () => this.#onSocketClose());
    socket.on("drain", () => this.#resume());
  }

  /** Our half of the preface, sent once the client's has arrived (so an HTTP/1.1 client gets plain text, not frames). */
  #sendPreface(): void {
    const { maxConcurrentStreams, maxHeaderListBytes, streamWindowBytes } = this.#options;
    this.#queue(
      settingsFrame([
        [SETTINGS_ENABLE_PUSH, 0],
        [SETTINGS_MAX_CONCURRENT_STREAMS, maxConcurrentStreams],
        [SETTINGS_INITIAL_WINDOW_SIZE, streamWindowBytes],
        [SETTINGS_MAX_HEADER_LIST_SIZE, maxHeaderListBytes],
      ]),
    );
    this.#queue(windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW));
  }

  /**
   * Graceful close: GOAWAY naming the last stream we took; streams the client
   * opens after it are ignored, the ones we took run to their end, then the
   * connection closes.
   */
  close(): void {
    if (this.#dead || this.#goingAway) return;
    if (!this.#prefaceSeen) {
      // Nothing taken yet, and a GOAWAY may not come before our SETTINGS: just close.
      this.#dead = true;
      this.#socket.end();
      return;
    }
    this.#goingAway = true;
    this.#goawayLastId = this.#lastStreamId;
    this.#queue(goawayFrame(this.#lastStreamId, H2Error.NO_ERROR, ""));
    this.#endIfIdle();
  }

  /** Closes the socket at once: streams in flight see streamClosed. */
  destroy(): void {
    this.#socket.destroy();
  }

  // ---- output, used by H2Stream ----

  sendHeaders(streamId: number, block: HeaderBlock, endStream: boolean): void {
    this.#queueHeaderBlock(streamId, block, endStream ? END_STREAM : 0);
  }

  sendData(stream: H2Stream, data: Buffer): void {
    let offset = 0;
    while (offset < data.length) {
      const allowed = Math.min(stream.sendWindow, this.#sendWindow, this.#peerMaxFrame, data.length - offset);
      if (allowed <= 0) {
        stream.pending = [offset === 0 ? data : data.subarray(offset)];
        this.#blocked.push(stream);
        return;
      }
      const chunk = offset === 0 && allowed === data.length ? data : data.subarray(offset, offset + allowed);
      this.#queue(frameHeader(allowed, DATA, 0, stream.id));
      this.#queue(chunk);
      stream.sendWindow -= allowed;
      this.#sendWindow -= allowed;
      offset += allowed;
    }
  }

  /** The stream's last frame: its trailers with END_STREAM, or an empty DATA frame with END_STREAM. */
  finishStream(streamId: number, trailers: HeaderBlock | undefined): void {
    if (trailers) this.#queueHeaderBlock(streamId, trailers, END_STREAM);
    else this.#queue(frameHeader(0, DATA, END_STREAM, streamId));
  }

  sendReset(streamId: number, code: number): void {
    this.#recentlyReset.add(streamId);
    if (this.#recentlyReset.size > RECENT_RESETS) this.#recentlyReset.delete(this.#recentlyReset.values().next().value as number);
    const frame = frameHeader(4, RST_STREAM, 0, streamId, 4);
    frame.writeUInt32BE(code, FRAME_HEADER_BYTES);
    this.#queue(frame);
  }

  forget(stream: H2Stream): void {
    this.#streams.delete(stream.id);
    this.#unblock(stream);
    this.releaseBuffered(stream);
    this.#endIfIdle();
  }

  releaseBuffered(stream: H2Stream): void {
    this.#buffered -= stream.buffered;
    stream.buffered = 0;
  }

  // ---- input ----

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    let buf = chunk;
    if (this.#input) {
      buf = Buffer.concat([this.#input, chunk]);
      this.#input = undefined;
    }
    let pos = 0;
    try {
      if (!this.#prefaceSeen) {
        const have = Math.min(buf.length, PREFACE.length);
        if (buf.compare(PREFACE, 0, have, 0, have) !== 0) {
          this.#notHttp2(buf);
          return;
        }
        if (buf.length < PREFACE.length) {
          this.#input = buf;
          return;
        }
        this.#prefaceSeen = true;
        clearTimeout(this.#prefaceTimer);
        this.#sendPreface();
        pos = PREFACE.length;
      }
      while (buf.length - pos >= FRAME_HEADER_BYTES && !this.#dead) {
        const length = (buf[pos] as number) * 65536 + (buf[pos + 1] as number) * 256 + (buf[pos + 2] as number);
        if (length > DEFAULT_MAX_FRAME) {
          throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, `a frame of ${length} bytes is over the maximum of ${DEFAULT_MAX_FRAME}`);
        }
        if (buf.length - pos < FRAME_HEADER_BYTES + length) break;
        const type = buf[pos + 3] as number;
        const flags = buf[pos + 4] as number;
        const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
        const start = pos + FRAME_HEADER_BYTES;
        pos = start + length;
        this.#onFrame(type, flags, streamId, buf, start, pos);
      }
    } catch (error) {
      if (error instanceof ConnectionError) this.#fail(error.code, error.message);
      else {
        // A bug of ours, not the client's: this connection cannot go on, the others can.
        process.emitWarning(error as Error);
        this.#fail(H2Error.INTERNAL_ERROR, "internal error");
      }
      return;
    }
    if (pos < buf.length && !this.#dead) this.#input = buf.subarray(pos);
    if (this.#receiveUnacked >= CONNECTION_WINDOW / 2) {
      this.#queue(windowUpdateFrame(0, this.#receiveUnacked));
      this.#receiveWindow += this.#receiveUnacked;
      this.#receiveUnacked = 0;
    }
  }

  #onFrame(type: number, flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (this.#headerBlock && type !== CONTINUATION) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, "a header block was interrupted by another frame before END_HEADERS");
    }
    if (!this.#settingsSeen) {
      if (type !== SETTINGS || (flags & ACK) !== 0) {
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, "the connection preface must be followed by a SETTINGS frame");
      }
      this.#settingsSeen = true;
    }
    switch (type) {
      case DATA:
        this.#onDataFrame(flags, streamId, buf, start, end);
        return;
      case HEADERS:
        this.#onHeadersFrame(flags, streamId, buf, start, end);
        return;
      case PRIORITY:
        if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (end - start !== 5) this.#streamError(streamId, H2Error.FRAME_SIZE_ERROR);
        return;
      case RST_STREAM:
        this.#onReset(streamId, start, end);
        return;
      case SETTINGS:
        this.#onSettings(flags, streamId, buf, start, end);
        return;
      case PUSH_PROMISE:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, "a client must not send PUSH_PROMISE");
      case PING:
        if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "PING on a stream other than 0");
        if (end - start !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "a PING payload must be 8 bytes");
        if ((flags & ACK) === 0) {
          const pong = frameHeader(8, PING, ACK, 0, 8);
          buf.copy(pong, FRAME_HEADER_BYTES, start, end);
          this.#queue(pong);
        }
        return;
      case GOAWAY:
        if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "GOAWAY on a stream other than 0");
        // The client opens no more streams: finish the ones in flight, then close.
        this.#goingAway = true;
        this.#endIfIdle();
        return;
      case WINDOW_UPDATE:
        this.#onWindowUpdate(streamId, buf, start, end);
        return;
      case CONTINUATION:
        this.#onContinuation(flags, streamId, buf, start, end);
        return;
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  #onDataFrame(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "DATA on stream 0");
    const length = end - start;
    // Flow control counts the whole payload, padding included.
    if (length > this.#receiveWindow) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "DATA beyond the connection's window");
    this.#receiveWindow -= length;
    this.#receiveUnacked += length;
    let dataStart = start;
    let dataEnd = end;
    if (flags & PADDED) {
      const padding = length > 0 ? (buf[start] as number) : 256;
      if (padding >= length) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "DATA padding is as long as the frame");
      dataStart = start + 1;
      dataEnd = end - padding;
    }
    const stream = this.#streams.get(streamId);
    if (!stream) {
      if (streamId > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      // A stream we closed (say, reset) may still have DATA in flight: drop it, the window above is returned.
      return;
    }
    if (stream.readableEnded) {
      this.#streamError(streamId, H2Error.STREAM_CLOSED);
      return;
    }
    if (length > stream.receiveWindow) {
      this.#streamError(streamId, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    stream.receiveWindow -= length;
    const endStream = (flags & END_STREAM) !== 0;
    if (dataEnd > dataStart) {
      const size = dataEnd - dataStart;
      stream.buffered += size;
      this.#buffered += size;
      if (this.#buffered > this.#options.maxBufferedBytes) {
        this.#streamError(streamId, H2Error.ENHANCE_YOUR_CALM);
        return;
      }
      stream.listener?.data(buf.subarray(dataStart, dataEnd));
      if (stream.destroyed) return;
    }
    if (endStream) {
      stream.remoteEnded();
      return;
    }
    stream.receiveUnacked += length;
    if (stream.receiveUnacked >= this.#options.streamWindowBytes / 2) {
      this.#queue(windowUpdateFrame(streamId, stream.receiveUnacked));
      stream.receiveWindow += stream.receiveUnacked;
      stream.receiveUnacked = 0;
    }
  }

  #onHeadersFrame(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "HEADERS on stream 0");
    let blockStart = start;
    let blockEnd = end;
    if (flags & PADDED) {
      const padding = end > start ? (buf[start] as number) : 256;
      blockStart++;
      blockEnd -= padding;
    }
    if (flags & PRIORITY_FLAG) blockStart += 5;
    if (blockEnd < blockStart) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "HEADERS padding or priority longer than the frame");
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) {
      this.#onHeaderBlock(streamId, endStream, buf, blockStart, blockEnd);
      return;
    }
    const fragment = buf.subarray(blockStart, blockEnd);
    this.#headerBlock = { streamId, endStream, fragments: [fragment], bytes: fragment.length };
  }

  #onContinuation(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    const block = this.#headerBlock;
    if (!block || block.streamId !== streamId) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, "CONTINUATION that does not follow HEADERS on the same stream");
    }
    block.fragments.push(buf.subarray(start, end));
    block.bytes += end - start;
    if (block.bytes > this.#options.maxHeaderListBytes + 1024) {
      throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `a header block of over ${block.bytes} bytes`);
    }
    if ((flags & END_HEADERS) === 0) return;
    this.#headerBlock = undefined;
    const whole = Buffer.concat(block.fragments, block.bytes);
    this.#onHeaderBlock(streamId, block.endStream, whole, 0, whole.length);
  }

  #onHeaderBlock(streamId: number, endStream: boolean, buf: Buffer, start: number, end: number): void {
    const existing = this.#streams.get(streamId);
    const fields = new HeaderCollector();
    let tooLarge = false;
    try {
      this.#decoder.decode(buf, start, end, fields.add, this.#options.maxHeaderListBytes);
    } catch (error) {
      if (error instanceof HpackError) throw new ConnectionError(H2Error.COMPRESSION_ERROR, error.message);
      if (!(error instanceof HeaderListTooLarge)) throw error;
      tooLarge = true;
    }
    if (existing) {
      // Trailers from the client: they must end the stream; gRPC servers ignore their content.
      if (!endStream || existing.readableEnded) {
        this.#streamError(streamId, existing.readableEnded ? H2Error.STREAM_CLOSED : H2Error.PROTOCOL_ERROR);
        return;
      }
      existing.remoteEnded();
      return;
    }
    if (streamId % 2 === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `a client stream id must be odd (got ${streamId})`);
    if (streamId <= this.#lastStreamId) {
      // Frames the client sent before it saw our RST_STREAM are ignored (RFC 9113 5.1); its header block was decoded above.
      if (this.#recentlyReset.has(streamId)) return;
      throw new ConnectionError(H2Error.STREAM_CLOSED, `HEADERS on stream ${streamId}, which is closed or was skipped`);
    }
    this.#lastStreamId = streamId;
    // After our GOAWAY, new streams are ignored: the client knows from its last-stream-id that they were not processed.
    if (this.#goingAway && streamId > this.#goawayLastId) return;
    if (tooLarge || fields.problem) {
      this.#streamError(streamId, H2Error.PROTOCOL_ERROR);
      return;
    }
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      this.#streamError(streamId, H2Error.REFUSED_STREAM);
      return;
    }
    const headers = fields.headers;
    if (headers[":method"] === undefined || headers[":path"] === undefined || headers[":scheme"] === undefined) {
      this.#streamError(streamId, H2Error.PROTOCOL_ERROR);
      return;
    }
    const stream = new H2Stream(this, streamId, this.#peerInitialWindow, this.#options.streamWindowBytes);
    this.#streams.set(streamId, stream);
    this.#options.onStream(stream, headers);
    if (endStream && !stream.destroyed) stream.remoteEnded();
  }

  #onReset(streamId: number, start: number, end: number): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (end - start !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "an RST_STREAM payload must be 4 bytes");
    if (streamId > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    const now = Date.now();
    this.#resetTokens = Math.min(RESET_BURST, this.#resetTokens + ((now - this.#resetRefilledAt) / 1000) * RESET_REFILL_PER_S);
    this.#resetRefilledAt = now;
    if (--this.#resetTokens < 0) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, "too many streams reset by the client");
    stream.close();
  }

  #onSettings(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "SETTINGS on a stream other than 0");
    if (flags & ACK) {
      if (end !== start) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "a SETTINGS acknowledgement must be empty");
      return;
    }
    if ((end - start) % 6 !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "a SETTINGS payload must be a multiple of 6 bytes");
    for (let at = start; at < end; at += 6) {
      const id = buf.readUInt16BE(at);
      const value = buf.readUInt32BE(at + 2);
      switch (id) {
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH must be 0 or 1 (got ${value})`);
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW)
            throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31-1`);
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const stream of this.#streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "a stream window grew over 2^31-1");
          }
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 16_777_215) {
            throw new ConnectionError(H2Error.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} is outside 16384..16777215`);
          }
          this.#peerMaxFrame = value;
          break;
        case SETTINGS_HEADER_TABLE_SIZE:
          // A decoder that lowered its table expects the next header block to say it heard (RFC 7541 4.2).
          this.#encoder.setPeerTableSize(value);
          break;
        default:
          // Unknown settings are ignored.
          break;
      }
    }
    this.#queue(frameHeader(0, SETTINGS, ACK, 0));
    this.#flushBlocked();
  }

  #onWindowUpdate(streamId: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, "a WINDOW_UPDATE payload must be 4 bytes");
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0 on the connection");
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, "the connection window grew over 2^31-1");
      this.#flushBlocked();
      return;
    }
    const stream = this.#streams.get(streamId);
    if (!stream) {
      if (streamId > this.#lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) {
      this.#streamError(streamId, H2Error.PROTOCOL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      this.#streamError(streamId, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    if (stream.pending) this.#flushBlocked();
  }

  /** Sends what flow control now allows of the streams that were waiting. */
  #flushBlocked(): void {
    if (this.#blocked.length === 0) return;
    for (const stream of [...this.#blocked]) {
      if (this.#sendWindow <= 0) return;
      if (stream.sendWindow <= 0) continue;
      const pending = stream.pending as Buffer[];
      stream.pending = undefined;
      this.#unblock(stream);
      let i = 0;
      for (; i < pending.length && !stream.pending; i++) this.sendData(stream, pending[i] as Buffer);
      if (stream.pending) (stream.pending as Buffer[]).push(...pending.slice(i));
      else stream.drained();
    }
  }

  #unblock(stream: H2Stream): void {
    const at = this.#blocked.indexOf(stream);
    if (at !== -1) this.#blocked.splice(at, 1);
  }

  /** A stream error (RFC 9113 5.4.2): RST_STREAM, and the stream is closed. */
  #streamError(streamId: number, code: number): void {
    const stream = this.#streams.get(streamId);
    if (stream) stream.reset(code);
    else this.sendReset(streamId, code);
  }

  /** A connection error: GOAWAY with the code and reason, then close. */
  #fail(code: number, reason: string): void {
    if (this.#dead) return;
    this.#queue(goawayFrame(this.#lastStreamId, code, reason));
    this.#flush();
    this.#dead = true;
    this.#socket.end();
    this.#closeStreams();
  }

  /** Not HTTP/2 at all. An HTTP/1.x request gets a readable answer; anything else, just the close. */
  #notHttp2(buf: Buffer): void {
    this.#dead = true;
    if (/^[A-Z]{3,10} \S+ HTTP\/1\.[01]\r?\n/.test(buf.toString("latin1", 0, Math.min(buf.length, 256)))) {
      const body =
        "This port serves gRPC (HTTP/2 with prior knowledge); an HTTP/1.1 request cannot be served here. " +
        "Use a gRPC client, or the KServe REST port for HTTP/1.1.\n";
      this.#socket.end(
        `HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    } else {
      this.#socket.end(goawayFrame(0, H2Error.PROTOCOL_ERROR, "expected the HTTP/2 connection preface"));
    }
  }

  #onSocketClose(): void {
    clearTimeout(this.#prefaceTimer);
    this.#dead = true;
    this.#closeStreams();
    this.onClose?.();
  }

  #closeStreams(): void {
    for (const stream of this.#streams.values()) stream.close();
  }

  #endIfIdle(): void {
    if (this.#goingAway && this.#streams.size === 0 && !this.#dead) {
      this.#flush();
      this.#dead = true;
      this.#socket.end();
    }
  }

  // ---- writing ----

  #queueHeaderBlock(streamId: number, header: HeaderBlock, flags: number): void {
    // Encoded here, as the block joins the output: HPACK's table follows the order blocks go on the wire.
    const block = header instanceof SharedHeaderBlock ? this.#encoder.shared(header) : this.#encoder.plain(header);
    if (block.length <= this.#peerMaxFrame) {
      const frame = frameHeader(block.length, HEADERS, flags | END_HEADERS, streamId, block.length);
      block.copy(frame, FRAME_HEADER_BYTES);
      this.#queue(frame);
      return;
    }
    // A block larger than a frame goes on in CONTINUATION frames, with nothing in between.
    const size = this.#peerMaxFrame;
    this.#queue(frameHeader(size, HEADERS, flags, streamId));
    this.#queue(block.subarray(0, size));
    for (let at = size; at < block.length; at += size) {
      const part = block.subarray(at, Math.min(at + size, block.length));
      this.#queue(frameHeader(part.length, CONTINUATION, at + size >= block.length ? END_HEADERS : 0, streamId));
      this.#queue(part);
    }
  }

  #queue(bytes: Buffer): void {
    if (this.#dead) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Everything answered while the event loop handles the ready sockets leaves in one write once it has read
      // them all (setImmediate runs after the poll phase): 55 -> 43 µs of CPU per call and p99 2.1 -> 1.3 ms at
      // h2load 16x1 against process.nextTick, which wrote between the reads.
      setImmediate(flushConnection, this);
    }
  }

  /** Writes the queued frames. Public for the setImmediate callback only. */
  flush(): void {
    this.#flush();
  }

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#socket.destroyed) return;
    this.#out = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    const socket = this.#socket;
    if (out.length === 1) socket.write(out[0] as Buffer);
    else if (bytes <= COPY_LIMIT) socket.write(Buffer.concat(out, bytes));
    else {
      // Large DATA: one writev of the pieces rather than one more copy of every byte.
      socket.cork();
      for (const piece of out) socket.write(piece);
      socket.uncork();
    }
    if (this.#socket.writableLength > OUTPUT_HIGH_WATER && !this.#paused) {
      // The client reads slower than we answer: stop taking requests until it catches up.
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#socket.resume();
  }
}

function flushConnection(connection: H2Connection): void {
  connection.flush();
}

/**
 * Collects one header block's fields into an object and notes the first
 * reason the request is malformed (RFC 9113 8.2-8.3).
 */
class HeaderCollector {
  readonly headers: RequestHeaders = Object.create(null) as RequestHeaders;
  problem: string | undefined;
  #regularSeen = false;

  readonly add = (name: string, value: string): void => {
    const headers = this.headers;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (this.#regularSeen) this.problem ??= `pseudo-header ${name} after a regular header`;
      else if (name !== ":method" && name !== ":path" && name !== ":scheme" && name !== ":authority") {
        this.problem ??= `pseudo-header ${name} is not allowed in a request`;
      } else if (headers[name] !== undefined) this.problem ??= `pseudo-header ${name} is repeated`;
      headers[name] = value;
      return;
    }
    this.#regularSeen = true;
    if (name !== name.toLowerCase()) this.problem ??= `header name ${name} has uppercase letters`;
    else if (
      name === "connection" ||
      name === "keep-alive" ||
      name === "proxy-connection" ||
      name === "transfer-encoding" ||
      name === "upgrade"
    ) {
      this.problem ??= `connection-specific header ${name}`;
    } else if (name === "te" && value !== "trailers") this.problem ??= `te: ${value} (only "trailers" is allowed)`;
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}, ${value}`;
  };
}

function frameHeader(length: number, type: number, flags: number, streamId: number, payloadRoom = 0): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadRoom);
  frame[0] = length >>> 16;
  frame[1] = (length >>> 8) & 0xff;
  frame[2] = length & 0xff;
  frame[3] = type;
  frame[4] = flags;
  frame.writeUInt32BE(streamId, 5);
  return frame;
}

function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const frame = frameHeader(settings.length * 6, SETTINGS, 0, 0, settings.length * 6);
  settings.forEach(([id, value], i) => {
    frame.writeUInt16BE(id, FRAME_HEADER_BYTES + i * 6);
    frame.writeUInt32BE(value, FRAME_HEADER_BYTES + i * 6 + 2);
  });
  return frame;
}

function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const frame = frameHeader(4, WINDOW_UPDATE, 0, streamId, 4);
  frame.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return frame;
}

function goawayFrame(lastStreamId: number, code: number, debug: string): Buffer {
  const text = Buffer.from(debug.slice(0, 200), "utf8");
  const frame = frameHeader(8 + text.length, GOAWAY, 0, 0, 8 + text.length);
  frame.writeUInt32BE(lastStreamId, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  text.copy(frame, FRAME_HEADER_BYTES + 8);
  return frame;
}

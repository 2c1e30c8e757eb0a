/**
 * @module kserve/h1/connection
 * The server side of one HTTP/1.1 connection (RFC 9112), written in plain
 * TypeScript on a net.Socket: request heads and bodies (Content-Length or
 * chunked, ./head), pipelining with answers in request order, Expect:
 * 100-continue, keep-alive, a body-size limit that keeps the connection
 * usable, and backpressure both ways.
 *
 * Why not node:http: each of its requests builds an IncomingMessage and a
 * ServerResponse (two streams), crosses into llhttp's C and back per header
 * callback, and formats headers again per answer. With h2load --h1 at 16x16,
 * a server on this file answered a canned body at ~1.6x the requests per
 * second of a node:http server doing the same, on one core
 * (docs/performance.md). Here all requests of one socket read are parsed in
 * one pass, and the answers of one tick leave in one write.
 */
import type { Socket } from "node:net";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import { LazyAbortSource } from "../../core/lazy-abort.js";
import { formatBytes } from "../../model/units.js";
import { ChunkedDecoder, HeadError, parseHead, type RequestHead } from "./head.js";

/** What a handler reads of a request. */
export interface H1Request {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  /** Lowercase names; a repeated field's values joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  /** Calls `done` once with the whole body, or with RESOURCE_EXHAUSTED (over the limit) or CANCELLED (connection lost). */
  readBody(done: (error: ChassisError | undefined, body: Buffer) => void): void;
}

/** How a handler answers. */
export interface H1Response {
  /**
   * Sends the answer: status, header names and values as a flat list (no
   * content-length: it is added), and the body. Once; later calls are ignored.
   */
  respond(status: number, headers: ReadonlyArray<string>, body: string | Uint8Array): void;
  /** True once respond was called. */
  readonly responded: boolean;
  /** Aborted when the connection is lost before the answer was written. Its signal is made only if read. */
  readonly cancellation: LazyAbortSource;
}

export interface H1ConnectionOptions {
  onRequest(request: H1Request, response: H1Response): void;
  /** The largest body kept; a larger one is read past and its request told RESOURCE_EXHAUSTED. */
  maxBodyBytes: number;
  /** Named in the over-limit error, e.g. "MAX_BODY_SIZE". */
  maxBodyName: string;
  /** Advertised in `keep-alive: timeout=N`. */
  keepAliveTimeoutMs: number;
}

/** node:http's default maxHeaderSize. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Requests one connection may have waiting for answers; beyond, reading stops until answers leave. */
const MAX_PIPELINED = 128;
/**
 * Body bytes the unanswered requests of one connection may hold before it
 * reads no new request (at least one whole body at the limit): pipelining must
 * not let one client hold 128 bodies.
 */
const MIN_HELD_BYTES = 16 * 1024 * 1024;
/** Past this many bytes beyond the body limit, stop reading past an oversized body and close after the answer. */
export const DRAIN_SLACK = 16 * 1024 * 1024;
/** Past this much unsent output, stop reading requests until the client has read some. */
const OUTPUT_HIGH_WATER = 4 * 1024 * 1024;
/** Output of one tick up to this size is joined into one write; beyond it, written as a vector of its pieces. */
const COPY_LIMIT = 64 * 1024;

const HEAD_END = Buffer.from("\r\n\r\n", "latin1");
const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1");

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  204: "No Content",
  307: "Temporary Redirect",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Payload Too Large",
  417: "Expectation Failed",
  422: "Unprocessable Entity",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** The `date` header's value, formatted once a second (RFC 9110 section 6.6.1: an origin server with a clock sends it). */
let dateSecond = -1;
let dateValue = "";
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** One request and its answer; the handler sees it as an H1Request and an H1Response. */
class Exchange implements H1Request, H1Response {
  readonly method: string;
  readonly url: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly cancellation = new LazyAbortSource();
  /** The answer, serialized, once respond was called. */
  wire: Array<string | Uint8Array> | undefined;
  closing = false;
  #connection: H1Connection;
  #minor: 0 | 1;
  #chunks: Buffer[] = [];
  #size = 0;
  #bodyError: ChassisError | undefined;
  #bodyDone = false;
  #reader: ((error: ChassisError | undefined, body: Buffer) => void) | undefined;
  #ended = false;

  constructor(connection: H1Connection, head: RequestHead) {
    this.#connection = connection;
    this.method = head.method;
    this.url = head.url;
    this.headers = head.headers;
    this.#minor = head.minor;
    this.closing = !head.keepAlive;
  }

  get responded(): boolean {
    return this.wire !== undefined;
  }

  readBody(done: (error: ChassisError | undefined, body: Buffer) => void): void {
    if (this.#reader) throw new Error("readBody called twice");
    this.#reader = done;
    if (this.#bodyDone || this.#bodyError) this.#deliver();
  }

  /** Body bytes as they arrive; past the limit, counted and dropped. */
  addBody(bytes: Buffer, limit: number): void {
    this.#size += bytes.length;
    if (this.#size <= limit && this.wire === undefined) this.#chunks.push(bytes);
  }

  bodyEnded(): void {
    this.#bodyDone = true;
    if (this.#reader) this.#deliver();
  }

  /** The body will not be kept (over the limit, or the connection lost): tells a reader now, or when it asks. */
  bodyFailed(error: ChassisError): void {
    if (this.#bodyError || this.#bodyDone) return;
    this.#bodyError = error;
    this.#chunks = [];
    if (this.#reader) this.#deliver();
  }

  get bodySize(): number {
    return this.#size;
  }

  /** Body bytes this request holds until it is answered: its whole body once read (0 over the limit or after). */
  get heldBytes(): number {
    return this.#bodyDone && this.wire === undefined ? this.#size : 0;
  }

  #deliver(): void {
    const reader = this.#reader as (error: ChassisError | undefined, body: Buffer) => void;
    this.#reader = () => {};
    const chunks = this.#chunks;
    this.#chunks = [];
    if (this.#bodyError) reader(this.#bodyError, EMPTY);
    else reader(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#size));
  }

  respond(status: number, headers: ReadonlyArray<string>, body: string | Uint8Array): void {
    if (this.wire !== undefined || this.#ended) return;
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\ncontent-length: ${length}\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const field = `${headers[i]}: ${headers[i + 1]}`;
      // A CR or LF would let a value (say, a redirect's location) write headers of its own: refused, as node:http does.
      if (LINE_BREAK.test(field)) throw new Error(`header ${JSON.stringify(headers[i])} holds a line break`);
      head += `${field}\r\n`;
    }
    head += `date: ${httpDate()}\r\n`;
    // The connection header is written when the answer leaves (H1Connection.answered): a later request may close it.
    // A HEAD answer states the length of the body a GET would get, and sends none (RFC 9110 section 9.3.2).
    this.wire = this.method === "HEAD" || length === 0 ? [head] : [head, body];
    this.#chunks = [];
    this.#connection.answered();
  }

  /** The answer's last header and blank line: how the connection goes on after it. */
  connectionHeader(closing: boolean, keepAliveSeconds: number): string {
    if (closing) return "connection: close\r\n\r\n";
    return this.#minor === 0
      ? `connection: keep-alive\r\nkeep-alive: timeout=${keepAliveSeconds}\r\n\r\n`
      : `keep-alive: timeout=${keepAliveSeconds}\r\n\r\n`;
  }

  /** Written (`delivered`), or dropped with the connection: ends the exchange once. */
  end(delivered: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!delivered) {
      this.cancellation.abort();
      this.bodyFailed(new ChassisError(Code.CANCELLED, "the client closed the connection before the request was answered"));
    }
  }
}

const EMPTY = Buffer.alloc(0);
const LINE_BREAK = /[\r\n]/;

/** How the body of the request being read is framed, and how much of it is left. */
interface BodyReader {
  readonly exchange: Exchange;
  /** Bytes left of a Content-Length body; unused when chunked. */
  remaining: number;
  readonly chunked: ChunkedDecoder | undefined;
}

export class H1Connection {
  readonly #socket: Socket;
  readonly #options: H1ConnectionOptions;
  readonly #keepAliveSeconds: number;
  /** Requests in order, answered or not; the first leaves first. */
  readonly #queue: Exchange[] = [];
  /** Bytes read and not yet parsed. */
  #pending: Buffer | undefined;
  /** How many bytes of #pending were searched for the head's end, so a head sent a byte at a time is not searched again. */
  #scanned = 0;
  #body: BodyReader | undefined;
  #out: Array<string | Uint8Array> = [];
  #outBytes = 0;
  /** Exchanges whose answers are in #out, ended when it is written. */
  #written: Exchange[] = [];
  #flushScheduled = false;
  #paused = false;
  /** No more requests are read: the last answer closes the connection. */
  #closing = false;
  #dead = false;
  /** When the connection last became idle, or when the request being read began: for the server's timeouts. */
  since = performance.now();
  onClose: (() => void) | undefined;

  constructor(socket: Socket, options: H1ConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#keepAliveSeconds = Math.round(options.keepAliveTimeoutMs / 1000);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => this.destroy());
    socket.on("end", () => this.#onEnd());
    socket.on("close", () => this.destroy());
    socket.on("drain", () => this.#resumeIfRoom());
  }

  /** Nothing in flight and nothing half-read: the keep-alive timeout applies. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#pending === undefined && this.#body === undefined;
  }

  /** A request head or body is being read: the header or request timeout applies (not while we hold off reading). */
  get reading(): boolean {
    return !this.#paused && (this.#body !== undefined || this.#pending !== undefined);
  }

  get readingBody(): boolean {
    return this.#body !== undefined;
  }

  /** Reads no more requests; closes once those already read are answered (graceful shutdown). */
  close(): void {
    this.#closing = true;
    this.#pending = undefined;
    this.#endIfDone();
  }

  destroy(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#socket.destroy();
    // Answered but not yet written, then not yet answered: none will reach the client.
    for (const exchange of this.#written.splice(0)) exchange.end(false);
    for (const exchange of this.#queue.splice(0)) exchange.end(false);
    this.onClose?.();
  }

  /**
   * Refuses what could not be read (a bad head or chunk, a timeout) with a
   * JSON error body, after the answers due before it, then closes. A request
   * whose body was being read gets the refusal as its own answer.
   */
  refuse(error: HeadError): void {
    if (this.#closing || this.#dead) return;
    this.#closing = true;
    this.#pending = undefined;
    this.#socket.pause();
    const reading = this.#body?.exchange;
    this.#body = undefined;
    const answer = JSON.stringify({ error: error.message });
    if (reading) {
      reading.closing = true;
      // Answered first, so that the handler, told CANCELLED next, cannot answer in its place.
      reading.respond(error.status, ["content-type", "application/json"], answer);
      reading.bodyFailed(new ChassisError(Code.CANCELLED, error.message));
      this.#endIfDone();
      return;
    }
    const refusal = new Exchange(this, REFUSED_HEAD);
    refusal.closing = true;
    this.#queue.push(refusal);
    refusal.respond(error.status, ["content-type", "application/json"], answer);
  }

  #onData(chunk: Buffer): void {
    // Closing, a body being read is still read to its end (its request is answered); no new request is.
    if (this.#dead || (this.#closing && this.#body === undefined)) return;
    if (this.#pending === undefined && this.#body === undefined) this.since = performance.now();
    this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#parse();
  }

  #onEnd(): void {
    // The client will send no more. As node:http (without httpAllowHalfOpen), that cancels what it has not been
    // answered: a client that goes away must not keep its predicts running. Answers already made still leave.
    this.#closing = true;
    this.#pending = undefined;
    this.#body = undefined;
    for (const exchange of this.#queue.splice(0)) exchange.end(false);
    this.#endIfDone();
  }

  #parse(): void {
    const buffer = this.#pending;
    if (buffer === undefined) return;
    let pos = 0;
    try {
      while (pos < buffer.length && (this.#body !== undefined || !this.#closing)) {
        if (this.#body) {
          pos += this.#readBody(buffer, pos);
          continue;
        }
        if (this.#full || this.#paused) break;
        // RFC 9112 section 2.2: empty lines before a request line are ignored.
        while (pos + 1 < buffer.length && buffer[pos] === 0x0d && buffer[pos + 1] === 0x0a) pos += 2;
        // A partial head is always at the start of #pending, and its first #scanned bytes were searched already.
        const end = buffer.indexOf(HEAD_END, pos === 0 ? Math.max(0, this.#scanned - 3) : pos);
        if (end === -1) {
          if (buffer.length - pos > MAX_HEAD_BYTES) throw new HeadError(431, `the request head is over ${MAX_HEAD_BYTES} bytes`);
          this.#scanned = buffer.length - pos;
          break;
        }
        this.#scanned = 0;
        if (end - pos > MAX_HEAD_BYTES) throw new HeadError(431, `the request head is over ${MAX_HEAD_BYTES} bytes`);
        const head = parseHead(buffer.toString("latin1", pos, end));
        pos = end + 4;
        this.#start(head);
      }
    } catch (error) {
      if (!(error instanceof HeadError)) throw error;
      this.refuse(error);
      return;
    }
    if (this.#closing || this.#dead) {
      this.#pending = undefined;
      return;
    }
    this.#pending = pos >= buffer.length ? undefined : buffer.subarray(pos);
    if (this.#pending && this.#body === undefined && pos > 0) this.since = performance.now();
    if (this.#pending && (this.#full || this.#paused)) this.#pause();
  }

  /** Enough requests (or body bytes) wait for answers: no new request is read until some leave. */
  get #full(): boolean {
    const queue = this.#queue;
    if (queue.length >= MAX_PIPELINED) return true;
    if (queue.length < 2) return false;
    let held = 0;
    for (const exchange of queue) held += exchange.heldBytes;
    return held > Math.max(MIN_HELD_BYTES, this.#options.maxBodyBytes);
  }

  /** A head was read: the exchange starts, and the handler sees it now; its body, if any, is read next. */
  #start(head: RequestHead): void {
    const exchange = new Exchange(this, head);
    this.#queue.push(exchange);
    const { maxBodyBytes } = this.#options;
    const length = head.contentLength;
    if (length === undefined || length > 0) {
      this.#body = {
        exchange,
        remaining: length ?? 0,
        chunked: length === undefined ? new ChunkedDecoder((bytes) => this.#bodyBytes(exchange, bytes)) : undefined,
      };
      if (length !== undefined && length > maxBodyBytes) {
        // Reading past a huge body costs more than a new connection: answer, then close.
        if (length > maxBodyBytes + DRAIN_SLACK) this.#closeAfterBody(exchange);
        exchange.bodyFailed(this.#tooLarge(length));
      } else if (head.expectContinue && this.#queue.length === 1) {
        // Only when no earlier answer is due, and queued behind any already made: an interim answer must not
        // overtake the final answer of an earlier request.
        this.#queueOut(CONTINUE);
      }
    } else {
      exchange.bodyEnded();
    }
    try {
      this.#options.onRequest(exchange, exchange);
    } catch (error) {
      // A throwing handler must not take the connection (or, from a socket event, the process) down with it.
      if (!exchange.responded)
        exchange.respond(500, ["content-type", "application/json"], JSON.stringify({ error: `request handler failed: ${String(error)}` }));
    }
  }

  /** Reads body bytes from buffer[pos...]; returns how many it used. */
  #readBody(buffer: Buffer, pos: number): number {
    const body = this.#body as BodyReader;
    let used: number;
    if (body.chunked) {
      used = body.chunked.push(buffer, pos);
      if (!body.chunked.done) return used;
    } else {
      used = Math.min(body.remaining, buffer.length - pos);
      this.#bodyBytes(body.exchange, buffer.subarray(pos, pos + used));
      body.remaining -= used;
      if (body.remaining > 0) return used;
    }
    this.#body = undefined;
    const { exchange } = body;
    if (exchange.bodySize > this.#options.maxBodyBytes) exchange.bodyFailed(this.#tooLarge(exchange.bodySize));
    else exchange.bodyEnded();
    // Closing, and this request was answered before its body ended: nothing may be left to answer.
    this.#endIfDone();
    return used;
  }

  #bodyBytes(exchange: Exchange, bytes: Buffer): void {
    // Past a body given up on (#closeAfterBody), the decoder may still hand over the rest of the buffer it has.
    if (this.#body?.exchange !== exchange) return;
    const limit = this.#options.maxBodyBytes;
    exchange.addBody(bytes, limit);
    if (exchange.bodySize > limit + DRAIN_SLACK) {
      // A chunked body far over the limit: read no further, and say so now (closing first: a reader waiting for
      // the body answers at once, and that answer must carry `connection: close`).
      this.#closeAfterBody(exchange);
      exchange.bodyFailed(this.#tooLarge(exchange.bodySize));
    }
  }

  #closeAfterBody(exchange: Exchange): void {
    exchange.closing = true;
    this.#closing = true;
    this.#body = undefined;
    this.#pending = undefined;
    this.#socket.pause();
  }

  #tooLarge(size: number): ChassisError {
    const limit = this.#options.maxBodyBytes;
    return new ChassisError(
      Code.RESOURCE_EXHAUSTED,
      `request body is ${formatBytes(size)} (${size} bytes), over the limit of ${formatBytes(limit)} (${this.#options.maxBodyName})`,
    );
  }

  /** An exchange was answered: answers at the head of the queue are written, in request order. */
  answered(): void {
    const queue = this.#queue;
    let first = queue[0];
    while (first?.wire !== undefined) {
      queue.shift();
      const last = first.closing || (this.#closing && queue.length === 0 && this.#body === undefined);
      const wire = first.wire;
      wire[0] = (wire[0] as string) + first.connectionHeader(last, this.#keepAliveSeconds);
      for (const piece of wire) this.#queueOut(piece);
      this.#written.push(first);
      if (last) {
        this.#closing = true;
        this.#pending = undefined;
        this.#body = undefined;
        // Requests read after this one will not be answered: the client learns it from `connection: close`.
        for (const dropped of queue.splice(0)) dropped.end(false);
        break;
      }
      first = queue[0];
    }
    if (queue.length === 0 && !this.#closing) this.since = performance.now();
  }

  #queueOut(piece: string | Uint8Array): void {
    if (this.#dead) return;
    this.#out.push(piece);
    this.#outBytes += typeof piece === "string" ? piece.length : piece.byteLength;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Answers made while the event loop handles the ready sockets leave in one write once it has read them all
      // (setImmediate runs after the poll phase), as in omi/grpc/h2/connection.
      setImmediate(flushConnection, this);
    }
  }

  /** Writes the queued answers. Public for the setImmediate callback only. */
  flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    const written = this.#written;
    this.#out = [];
    this.#written = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    if (this.#dead) return;
    const socket = this.#socket;
    if (out.length > 0) {
      if (bytes <= COPY_LIMIT && out.every((piece) => typeof piece === "string")) socket.write(out.join(""));
      else {
        socket.cork();
        for (const piece of out) socket.write(piece);
        socket.uncork();
      }
    }
    for (const exchange of written) exchange.end(true);
    if (this.#endIfDone()) return;
    if (socket.writableLength > OUTPUT_HIGH_WATER) this.#pause();
    else this.#resumeIfRoom();
  }

  /**
   * Closing, with nothing left to answer, read or write: ends our side, then
   * destroys the socket once that is flushed. The one place that decides it,
   * so no path ends the socket while answers still wait for the next flush
   * (they would be written after the end, and lost). True if it ended.
   */
  #endIfDone(): boolean {
    if (!this.#closing || this.#dead || this.#socket.writableEnded) return false;
    if (this.#queue.length > 0 || this.#body !== undefined || this.#flushScheduled) return false;
    this.#socket.destroySoon();
    return true;
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
  }

  /** Reads again once the answers waiting are few enough and the socket's buffer has drained. */
  #resumeIfRoom(): void {
    if (!this.#paused || this.#closing || this.#dead) return;
    if (this.#full || this.#socket.writableLength > OUTPUT_HIGH_WATER) return;
    this.#paused = false;
    this.#socket.resume();
    this.#parse();
  }
}

/** The head given to a refusal, which answers no request the client managed to send. */
const REFUSED_HEAD: RequestHead = {
  method: "",
  url: "",
  minor: 1,
  headers: new Map(),
  contentLength: 0,
  keepAlive: false,
  expectContinue: false,
};

function flushConnection(connection: H1Connection): void {
  connection.flush();
}

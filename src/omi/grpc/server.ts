/**
 * @module omi/grpc/server
 * A gRPC server on our own HTTP/2 connection (./h2; h2c, prior knowledge):
 * unary, server-streaming and bidirectional methods, deadlines
 * (grpc-timeout), cancellation, gzip/deflate requests, size limits and a
 * graceful drain. It moves bytes and statuses only: handlers decode and
 * encode their own messages, so the hot path can use a hand-written codec.
 *
 * Why not @grpc/grpc-js, nor node:http2: measured at 16x16 on the echo model,
 * grpc-js's per-call machinery held throughput near 0.3 of what node:http2
 * itself does on this machine, and node:http2's per-stream objects cost more
 * than everything else a Run call does (docs/performance.md). The client side
 * still uses grpc-js.
 */
import net from "node:net";
import { zlibModule } from "../../core/builtins.js";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import { LazyAbortSource } from "../../core/lazy-abort.js";
import { listen } from "../../core/listen.js";
import { FramedMessage, frameMessage, MessageReader } from "./frame.js";
import { H2Connection, H2Error, type H2Stream, type RequestHeaders, type StreamListener } from "./h2/connection.js";
import { encodeHeaderBlock, SharedHeaderBlock } from "./h2/hpack.js";
import { encodeGrpcMessage, parseGrpcTimeout } from "./headers.js";

/** What every handler can see of its call. */
export interface CallContext {
  readonly path: string;
  /** The request's headers: lowercase names, pseudo-headers included. */
  readonly headers: Readonly<RequestHeaders>;
  /** Aborted when the client cancels, the deadline passes or the server closes by force. Created on first use. */
  readonly signal: AbortSignal;
  /** Whether `signal` is (or would be born) aborted, without creating it. */
  readonly aborted: boolean;
  /** Calls `listener` on abort without creating the signal; returns the unsubscribe function. */
  onAbort(listener: () => void): () => void;
}

/** Decoded request bytes in, encoded response bytes out; a thrown ChassisError becomes the gRPC status. */
export type UnaryHandler = (request: Uint8Array, call: CallContext) => Uint8Array | FramedMessage | Promise<Uint8Array | FramedMessage>;

export interface StreamWriter extends CallContext {
  write(message: Uint8Array): void;
  /** Ends the call: OK without an error, else the error's status. */
  end(error?: unknown): void;
  /** Called once when the call ends for any reason (end, cancel, deadline, server close). */
  onClose(listener: () => void): void;
}

export type ServerStreamHandler = (request: Uint8Array, call: StreamWriter) => void;

export interface BidiCall extends StreamWriter {
  onMessage(listener: (message: Uint8Array) => void): void;
  /** The client has sent its last message. */
  onEnd(listener: () => void): void;
}

export type BidiHandler = (call: BidiCall) => void;

type Route =
  | { kind: "unary"; handler: UnaryHandler; emptyRequestOk: boolean }
  | { kind: "server-stream"; handler: ServerStreamHandler; emptyRequestOk: boolean }
  | { kind: "bidi"; handler: BidiHandler };

export interface GrpcServerOptions {
  /** Largest message each way, in bytes. */
  maxMessageBytes: number;
  /** Called with each error a handler threw that is not a client error, for logging. */
  onHandlerError?: (path: string, error: ChassisError) => void;
}

export interface RouteOptions {
  /**
   * A request with no message counts as an empty message. Only for request
   * types with no fields (StatusRequest): grpclib serves Chassis's Status that way.
   */
  emptyRequestOk?: boolean;
}

const ACCEPT_ENCODING = "identity,deflate,gzip";
const CONTENT_TYPE = "application/grpc+proto";
// The answers every call shares: each connection indexes them in its client's HPACK table (4 octets a call, not ~80).
const RESPONSE_HEADERS = new SharedHeaderBlock([
  [":status", "200"],
  ["content-type", CONTENT_TYPE],
  ["grpc-accept-encoding", ACCEPT_ENCODING],
]);
const OK_TRAILERS = new SharedHeaderBlock([["grpc-status", "0"]]);
const MAX_TIMER_MS = 2 ** 31 - 1;

export class GrpcServer {
  readonly #routes = new Map<string, Route>();
  readonly #connections = new Set<H2Connection>();
  readonly #server: net.Server;
  readonly maxMessageBytes: number;
  readonly onHandlerError: (path: string, error: ChassisError) => void;

  constructor(options: GrpcServerOptions) {
    this.maxMessageBytes = options.maxMessageBytes;
    this.onHandlerError = options.onHandlerError ?? (() => {});
    const onStream = (stream: H2Stream, headers: RequestHeaders) => this.#onStream(stream, headers);
    // Request bytes a connection may hold while uploading: a few messages at the limit.
    const maxBufferedBytes = Math.max(16 * 1024 * 1024, 4 * options.maxMessageBytes);
    this.#server = net.createServer((socket) => {
      const connection = new H2Connection(socket, { onStream, maxBufferedBytes });
      this.#connections.add(connection);
      connection.onClose = () => this.#connections.delete(connection);
    });
  }

  unary(path: string, handler: UnaryHandler, options: RouteOptions = {}): void {
    this.#routes.set(path, { kind: "unary", handler, emptyRequestOk: options.emptyRequestOk ?? false });
  }

  serverStream(path: string, handler: ServerStreamHandler, options: RouteOptions = {}): void {
    this.#routes.set(path, { kind: "server-stream", handler, emptyRequestOk: options.emptyRequestOk ?? false });
  }

  bidi(path: string, handler: BidiHandler): void {
    this.#routes.set(path, { kind: "bidi", handler });
  }

  get methods(): string[] {
    return [...this.#routes.keys()];
  }

  /** Binds host:port; resolves with the port bound (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return listen(this.#server, host, port);
  }

  /**
   * Stops accepting connections, sends GOAWAY on each open one and waits for
   * accepted calls to finish; after graceMs, destroys what is left.
   */
  close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const connection of this.#connections) connection.close();
    const force = setTimeout(() => this.forceClose(), graceMs);
    force.unref();
    return closed.finally(() => clearTimeout(force));
  }

  /** Destroys every connection: calls in flight are cancelled. */
  forceClose(): void {
    this.#server.close();
    for (const connection of this.#connections) connection.destroy();
  }

  #onStream(stream: H2Stream, headers: RequestHeaders): void {
    if (headers[":method"] !== "POST") {
      respondHttpError(stream, 405, `gRPC calls are POST requests (got ${String(headers[":method"])})`, [["allow", "POST"]]);
      return;
    }
    const contentType = headers["content-type"];
    if (!isGrpcProto(contentType)) {
      respondHttpError(
        stream,
        415,
        `content-type ${contentType === undefined ? "is missing" : `"${contentType}" is not supported`}; expected application/grpc or application/grpc+proto`,
      );
      return;
    }
    const path = headers[":path"] ?? "";
    const route = this.#routes.get(path);
    if (!route) {
      respondTrailersOnly(stream, Code.UNIMPLEMENTED, `method ${path} not found on this server`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity" && encoding !== "gzip" && encoding !== "deflate") {
      respondTrailersOnly(stream, Code.UNIMPLEMENTED, `grpc-encoding "${encoding}" is not supported; use ${ACCEPT_ENCODING}`);
      return;
    }
    let deadlineMs: number | undefined;
    const timeout = headers["grpc-timeout"];
    if (timeout !== undefined) {
      deadlineMs = parseGrpcTimeout(String(timeout));
      if (deadlineMs === undefined) {
        respondTrailersOnly(
          stream,
          Code.INTERNAL,
          `malformed grpc-timeout "${timeout}"; expected 1-8 digits and a unit (H, M, S, m, u, n)`,
        );
        return;
      }
    }
    const call = new Call(this, stream, path, headers, route, encoding === "gzip" || encoding === "deflate" ? encoding : undefined);
    stream.listener = call;
    if (deadlineMs !== undefined) call.startDeadline(deadlineMs, String(timeout));
    if (route.kind === "bidi") call.startBidi(route.handler);
  }
}

function isGrpcProto(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  if (contentType === "application/grpc" || contentType === "application/grpc+proto") return true;
  return contentType.startsWith("application/grpc;") || contentType.startsWith("application/grpc+proto;");
}

function respondTrailersOnly(stream: H2Stream, code: Code, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    encodeHeaderBlock([
      [":status", "200"],
      ["content-type", CONTENT_TYPE],
      ["grpc-accept-encoding", ACCEPT_ENCODING],
      ["grpc-status", String(code)],
      ["grpc-message", encodeGrpcMessage(message)],
    ]),
    true,
  );
  // The client may still be sending (say, an oversized message): tell it to stop.
  if (!stream.readableEnded) stream.reset(H2Error.NO_ERROR);
}

/** Not a gRPC request at all: an HTTP error, with grpc-status for gRPC clients that look for one. */
function respondHttpError(stream: H2Stream, status: number, message: string, extra: ReadonlyArray<[string, string]> = []): void {
  if (stream.destroyed) return;
  stream.respond(
    encodeHeaderBlock([
      [":status", String(status)],
      ["content-type", "text/plain; charset=utf-8"],
      ["grpc-status", String(Code.UNKNOWN)],
      ["grpc-message", encodeGrpcMessage(message)],
      ...extra,
    ]),
    false,
  );
  stream.end(Buffer.from(`${message}\n`), undefined);
  if (!stream.readableEnded) stream.reset(H2Error.NO_ERROR);
}

/** One call: collects the request, runs the handler, answers exactly once. */
class Call implements BidiCall, StreamListener {
  readonly #server: GrpcServer;
  readonly #stream: H2Stream;
  readonly path: string;
  readonly headers: RequestHeaders;
  readonly #route: Route;
  readonly #encoding: "gzip" | "deflate" | undefined;
  readonly #reader: MessageReader;
  readonly #cancel = new LazyAbortSource();
  #timer: NodeJS.Timeout | undefined;
  #done = false;
  #onMessage: ((message: Uint8Array) => void) | undefined;
  #onEnd: (() => void) | undefined;
  #onClose: Array<() => void> | undefined;

  constructor(
    server: GrpcServer,
    stream: H2Stream,
    path: string,
    headers: RequestHeaders,
    route: Route,
    encoding: "gzip" | "deflate" | undefined,
  ) {
    this.#server = server;
    this.#stream = stream;
    this.path = path;
    this.headers = headers;
    this.#route = route;
    this.#encoding = encoding;
    this.#reader = new MessageReader(server.maxMessageBytes);
  }

  get signal(): AbortSignal {
    return this.#cancel.signal;
  }

  get aborted(): boolean {
    return this.#cancel.aborted;
  }

  onAbort(listener: () => void): () => void {
    return this.#cancel.onAbort(listener);
  }

  startDeadline(ms: number, header: string): void {
    if (ms > MAX_TIMER_MS) return;
    this.#timer = setTimeout(() => {
      this.#abort(new ChassisError(Code.DEADLINE_EXCEEDED, `deadline exceeded (the client's grpc-timeout was ${header})`));
    }, ms);
  }

  data(chunk: Buffer): void {
    if (this.#done) return;
    try {
      this.#reader.push(chunk);
      if (this.#route.kind === "bidi") this.#deliverMessages();
      // A second message already settles a one-message call: refused now, not after holding every message the client
      // sends (16 MiB of empty 5-byte messages would be 3 million objects).
      else if (this.#reader.messages.length > 1) {
        this.end(new ChassisError(Code.UNIMPLEMENTED, `${this.path} takes one request message; got ${this.#reader.messages.length}`));
      }
    } catch (error) {
      this.end(error);
    }
  }

  requestEnded(): void {
    if (this.#done) return;
    const reader = this.#reader;
    if (reader.pendingBytes > 0) {
      const announced = reader.pendingAnnounced;
      this.end(
        new ChassisError(
          Code.INTERNAL,
          announced === undefined
            ? `the request ended inside a message prefix (${reader.pendingBytes} of 5 bytes)`
            : `the request ended inside a message: ${reader.pendingBytes - 5} of the ${announced} bytes its prefix announced`,
        ),
      );
      return;
    }
    const route = this.#route;
    if (route.kind === "bidi") {
      this.#onEnd?.();
      return;
    }
    // (data() already refused a second message.)
    let request: Uint8Array;
    try {
      const message = reader.messages[0];
      if (message) request = this.#decompress(message.compressed, message.bytes);
      else if (route.emptyRequestOk) request = new Uint8Array(0);
      else throw new ChassisError(Code.INTERNAL, `${this.path} takes one request message; the request carried none`);
    } catch (error) {
      this.end(error);
      return;
    }
    if (route.kind === "server-stream") {
      this.#invokeStreaming(() => route.handler(request, this));
      return;
    }
    let result: Uint8Array | FramedMessage | Promise<Uint8Array | FramedMessage>;
    try {
      result = route.handler(request, this);
    } catch (error) {
      this.#handlerFailed(error);
      return;
    }
    if (!(result instanceof Promise)) this.#reply(result);
    else
      result.then(
        (bytes) => this.#reply(bytes),
        (error: unknown) => this.#handlerFailed(error),
      );
  }

  streamClosed(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (!this.#done) this.#abort(new ChassisError(Code.CANCELLED, "the call was cancelled by the client"));
    this.#closed();
  }

  startBidi(handler: BidiHandler): void {
    this.#invokeStreaming(() => handler(this));
  }

  onMessage(listener: (message: Uint8Array) => void): void {
    this.#onMessage = listener;
    this.#deliverMessages();
  }

  onEnd(listener: () => void): void {
    this.#onEnd = listener;
  }

  onClose(listener: () => void): void {
    this.#onClose ??= [];
    this.#onClose.push(listener);
  }

  write(message: Uint8Array): void {
    const stream = this.#stream;
    if (this.#done || stream.destroyed) return;
    if (message.byteLength > this.#server.maxMessageBytes) {
      this.end(this.#tooLarge(message.byteLength));
      return;
    }
    if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, false);
    stream.write(frameMessage(message));
  }

  end(error?: unknown): void {
    if (this.#done) return;
    const stream = this.#answering();
    if (!stream) return;
    if (error === undefined) {
      if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, false);
      stream.end(undefined, OK_TRAILERS);
      return;
    }
    const reason = ChassisError.from(error);
    if (!stream.headersSent) {
      respondTrailersOnly(stream, reason.code, reason.message);
      return;
    }
    stream.end(
      undefined,
      encodeHeaderBlock([
        ["grpc-status", String(reason.code)],
        ["grpc-message", encodeGrpcMessage(reason.message)],
      ]),
    );
  }

  /** Marks the call answered and stops its deadline; the stream to answer on, or undefined when the client is gone. */
  #answering(): H2Stream | undefined {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
    return this.#stream.destroyed ? undefined : this.#stream;
  }

  /** The unary answer: headers, one DATA frame and the OK trailers. */
  #reply(message: Uint8Array | FramedMessage): void {
    if (this.#done) return;
    const size = message instanceof FramedMessage ? message.messageBytes : message.byteLength;
    if (size > this.#server.maxMessageBytes) {
      this.end(this.#tooLarge(size));
      return;
    }
    const stream = this.#answering();
    if (!stream) return;
    stream.respond(RESPONSE_HEADERS, false);
    stream.end(message instanceof FramedMessage ? message.frame : frameMessage(message), OK_TRAILERS);
  }

  #tooLarge(size: number): ChassisError {
    return new ChassisError(
      Code.RESOURCE_EXHAUSTED,
      `the response message is ${size} bytes, over the limit of ${this.#server.maxMessageBytes} bytes (MAX_MESSAGE_SIZE)`,
    );
  }

  #handlerFailed(error: unknown): void {
    const reason = ChassisError.from(error);
    if (!this.#done) this.#server.onHandlerError(this.path, reason);
    this.end(reason);
  }

  #invokeStreaming(start: () => void): void {
    try {
      start();
    } catch (error) {
      this.#handlerFailed(error);
    }
  }

  #deliverMessages(): void {
    const listener = this.#onMessage;
    if (!listener) return;
    const messages = this.#reader.messages.splice(0);
    for (const message of messages) {
      if (this.#done) return;
      listener(this.#decompress(message.compressed, message.bytes));
    }
  }

  #decompress(compressed: boolean, bytes: Buffer): Uint8Array {
    if (!compressed) return bytes;
    if (!this.#encoding) {
      throw new ChassisError(Code.INTERNAL, "a message has the compressed flag set, but the call's grpc-encoding is identity");
    }
    const options = { maxOutputLength: this.#server.maxMessageBytes };
    // Loaded on the first compressed message, not at start-up (~4 ms): clients rarely compress.
    const zlib = zlibModule();
    try {
      return this.#encoding === "gzip" ? zlib.gunzipSync(bytes, options) : zlib.inflateSync(bytes, options);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ChassisError(
          Code.RESOURCE_EXHAUSTED,
          `a ${this.#encoding}-compressed message inflates to over the limit of ${this.#server.maxMessageBytes} bytes (MAX_MESSAGE_SIZE)`,
        );
      }
      throw new ChassisError(Code.INTERNAL, `cannot ${this.#encoding}-decompress a message: ${(error as Error).message}`);
    }
  }

  #abort(reason: ChassisError): void {
    if (reason.code === Code.DEADLINE_EXCEEDED) this.end(reason);
    this.#done = true;
    this.#cancel.abort(reason);
  }

  #closed(): void {
    const listeners = this.#onClose;
    this.#onClose = undefined;
    if (listeners) for (const listener of listeners) listener();
  }
}

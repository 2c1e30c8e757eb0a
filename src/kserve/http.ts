/**
 * @module kserve/http
 * node:http plumbing: reading a body under a size limit without dropping the
 * keep-alive connection, and writing JSON or raw answers.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { LazyAbortSource } from "../core/lazy-abort.js";
import { formatBytes } from "../model/units.js";
import type { HttpError } from "./errors.js";

/** Past this many bytes beyond the limit, stop draining an oversized body and close the connection. */
const DRAIN_SLACK = 16 * 1024 * 1024;

/**
 * Reads the whole body. Over `limit` bytes, rejects with RESOURCE_EXHAUSTED
 * after draining the rest (so the connection stays usable), or, for a huge
 * body, marks the response to close the connection.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, limitName: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    readBodyThen(req, res, limit, limitName, (error, body) => (error ? reject(error) : resolve(body))),
  );
}

/** readBody with a callback, called once, for the v1 hot path: no promise and no await per request. */
export function readBodyThen(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  limitName: string,
  done: (error: ChassisError | undefined, body: Buffer) => void,
): void {
  let settled = false;
  const settle = (error: ChassisError | undefined, body: Buffer = EMPTY) => {
    if (settled) return;
    settled = true;
    done(error, body);
  };
  const tooLarge = (size: number) =>
    new ChassisError(
      Code.RESOURCE_EXHAUSTED,
      `request body is ${formatBytes(size)} (${size} bytes), over the limit of ${formatBytes(limit)} (${limitName})`,
    );
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (declared > limit) {
    if (declared > limit + DRAIN_SLACK) res.shouldKeepAlive = false;
    else req.resume();
    settle(tooLarge(declared));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
    else if (size > limit + DRAIN_SLACK) {
      res.shouldKeepAlive = false;
      req.destroy();
      settle(tooLarge(size));
    }
  });
  req.on("end", () =>
    size > limit ? settle(tooLarge(size)) : settle(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)),
  );
  req.on("error", (error) => settle(ChassisError.from(error, Code.CANCELLED)));
}

const EMPTY = Buffer.alloc(0);

export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  sendText(res, status, JSON.stringify(body), "application/json", headers);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string | Uint8Array,
  contentType: string | undefined,
  headers?: Readonly<Record<string, string>>,
): void {
  // A flat header list, and a string body left as a string: node:http then sends head and body in one write.
  const head: Array<string | number> = ["content-length", typeof text === "string" ? Buffer.byteLength(text) : text.byteLength];
  if (headers) for (const name of Object.keys(headers)) head.push(name, headers[name] as string);
  if (contentType) head.push("content-type", contentType);
  // writeHead only stores the head (headersSent is true from here on); end() writes it with the body.
  res.writeHead(status, head as unknown as OutgoingHttpHeaders);
  endAfterReads(res, text);
}

/**
 * Answers made while the event loop handles the sockets that were ready are
 * written together once it has read them all (setImmediate runs after the
 * poll phase), in the order they were made. Writing each answer as soon as it
 * is made cost about a quarter more CPU per request at h2load --h1 16x16,
 * though the system calls are the same (one read and one writev per request);
 * docs/performance.md (item 8) has the measurement. The delay is at most one
 * pass over the ready sockets.
 */
function endAfterReads(res: ServerResponse, body: string | Uint8Array): void {
  if (pendingResponses.push(res) === 1) setImmediate(endPending);
  pendingBodies.push(body);
}

const pendingResponses: ServerResponse[] = [];
const pendingBodies: Array<string | Uint8Array> = [];

function endPending(): void {
  // The length is read on every turn, so an answer made during the loop still leaves in this pass. One answer that
  // throws must not stop the others, nor leave the lists full (no later pass would be scheduled).
  for (let i = 0; i < pendingResponses.length; i++) {
    const res = pendingResponses[i] as ServerResponse;
    try {
      res.end(pendingBodies[i]);
    } catch (error) {
      res.destroy(error as Error);
    }
  }
  pendingResponses.length = 0;
  pendingBodies.length = 0;
}

export function sendError(res: ServerResponse, error: HttpError): void {
  sendJson(res, error.status, error.body, error.headers);
}

const CANCEL = Symbol("chassis cancellation");
type WatchedResponse = ServerResponse & { [CANCEL]?: LazyAbortSource };

/**
 * The one "close" listener of a response: it aborts the request's
 * cancellation when the client went away before the answer ("close" also
 * follows every answered request), then calls `onClose`.
 */
export function watchResponse(res: ServerResponse, onClose: () => void): void {
  const cancel = new LazyAbortSource();
  (res as WatchedResponse)[CANCEL] = cancel;
  res.on("close", () => {
    if (!res.writableFinished) cancel.abort();
    onClose();
  });
}

/** The cancellation watchResponse made for this response; its signal is created only if a predict reads it. */
export function cancellationOf(res: ServerResponse): LazyAbortSource {
  return (res as WatchedResponse)[CANCEL] ?? new LazyAbortSource();
}

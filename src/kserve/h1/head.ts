/**
 * @module kserve/h1/head
 * Reading HTTP/1.1 request framing (RFC 9112), as pure functions: the request
 * head (request line and header fields) and the chunked transfer coding.
 * Strict where leniency lets two parsers disagree about where a request ends
 * (request smuggling): Content-Length and Transfer-Encoding together, repeated
 * Content-Length, obs-fold, whitespace before a colon and bare CR or LF are
 * refused with 400, as llhttp (node:http's parser) refuses them.
 */

/** What the head says: the request and how its body is framed. */
export interface RequestHead {
  readonly method: string;
  /** The request target in origin form (path and query); an absolute-form target is reduced to it. */
  readonly url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /**
   * Lowercase names; a repeated field's values joined with ", " (the first kept
   * for SINGLE_VALUED). A Map: storing fresh name strings as an object's keys
   * took ~1.2 µs a head (each key is internalized), a Map ~0.25 µs.
   */
  readonly headers: ReadonlyMap<string, string>;
  /** The declared body length; 0 without a body. Undefined for a chunked body. */
  readonly contentLength: number | undefined;
  /** Whether the client wants the connection kept after the answer. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue`: the client waits for a 100 before it sends the body. */
  readonly expectContinue: boolean;
}

/** A request the server refuses before any handler sees it: the status, and what was wrong and what was expected. */
export class HeadError extends Error {
  constructor(
    readonly status: 400 | 408 | 413 | 417 | 431 | 501 | 505,
    message: string,
  ) {
    super(message);
    this.name = "HeadError";
  }
}

/** Fields node:http keeps only the first of (its `IncomingMessage` rules), so a repeat cannot change their meaning. */
const SINGLE_VALUED = new Set([
  "authorization",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent",
]);

/** RFC 9110 tchar, as a lookup table over the byte. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) return false;
  }
  return true;
}

/** Visible ASCII only: a target with spaces, controls or raw non-ASCII bytes is malformed (RFC 9112 section 3.2). */
function isTarget(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return text.length > 0;
}

/** Shown in errors: printable, and short. */
function quote(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 60)}...` : text;
  return JSON.stringify(shown);
}

const ABSOLUTE_FORM = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/;

/**
 * Parses the head in `text` (latin1: one character per byte), which is
 * everything before the blank line that ends it. Throws HeadError. One pass
 * over the characters, slicing names and values out of `text`: a head costs
 * ~0.85 µs, against ~2.5 µs split into lines and checked line by line.
 */
export function parseHead(text: string): RequestHead {
  const n = text.length;
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd === -1) lineEnd = n;
  const requestLine = text.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(" ");
  const secondSpace = requestLine.indexOf(" ", firstSpace + 1);
  if (firstSpace === -1 || secondSpace === -1 || requestLine.indexOf(" ", secondSpace + 1) !== -1)
    throw new HeadError(400, `malformed request line ${quote(requestLine)}; expected "METHOD /path HTTP/1.1"`);
  const method = requestLine.slice(0, firstSpace);
  const target = requestLine.slice(firstSpace + 1, secondSpace);
  const version = requestLine.slice(secondSpace + 1);
  if (!isToken(method)) throw new HeadError(400, `malformed method ${quote(method)}; expected a token such as GET or POST`);
  if (!isTarget(target))
    throw new HeadError(400, `malformed request target ${quote(target)}; expected a path such as /v1/models/<name>:predict`);
  let minor: 0 | 1;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version))
    throw new HeadError(505, `HTTP version ${version} is not supported; expected HTTP/1.1 or HTTP/1.0`);
  else throw new HeadError(400, `malformed HTTP version ${quote(version)}; expected HTTP/1.1 or HTTP/1.0`);

  const headers = new Map<string, string>();
  let contentLength: string | undefined;
  let line = 0;
  for (let pos = lineEnd + 2; pos < n; ) {
    line++;
    // The name: token characters up to the colon; a line starting with whitespace is obs-fold.
    let at = pos;
    let upper = false;
    for (; at < n; at++) {
      const c = text.charCodeAt(at);
      if (c === 0x3a) break;
      if (c > 127 || TOKEN[c] === 0) {
        if (at === pos && (c === 0x20 || c === 0x09))
          throw new HeadError(
            400,
            `header line ${line} starts with whitespace (obs-fold, RFC 9112 section 5.2); expected "name: value" on one line`,
          );
        let eol = text.indexOf("\r\n", pos);
        if (eol === -1) eol = n;
        const colon = text.indexOf(":", pos);
        if (colon === -1 || colon > eol)
          throw new HeadError(400, `header line ${line} (${quote(text.slice(pos, eol))}) has no colon; expected "name: value"`);
        throw new HeadError(
          400,
          `malformed header name on line ${line}: ${quote(text.slice(pos, colon))}; expected a token with no whitespace before the colon`,
        );
      }
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    if (at === n || at === pos)
      throw new HeadError(400, `header line ${line} (${quote(text.slice(pos, at))}) has no name or no colon; expected "name: value"`);
    const name = text.slice(pos, at);
    // The value: optional whitespace around it is not part of it; CR must start the line's CRLF.
    let start = at + 1;
    for (; start < n; start++) {
      const c = text.charCodeAt(start);
      if (c !== 0x20 && c !== 0x09) break;
    }
    let end = start;
    let valueEnd = start;
    for (; end < n; end++) {
      const c = text.charCodeAt(end);
      if (c === 0x0d) break;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f)
        throw new HeadError(
          400,
          `the value of header ${quote(name)} holds a control character${c === 0x0a ? " (a bare LF)" : ""}; expected CRLF line endings`,
        );
      if (c !== 0x20 && c !== 0x09) valueEnd = end + 1;
    }
    if (end < n && text.charCodeAt(end + 1) !== 0x0a)
      throw new HeadError(400, `the value of header ${quote(name)} holds a bare CR; expected CRLF line endings`);
    const value = text.slice(start, valueEnd);
    pos = end + 2;
    const key = upper ? name.toLowerCase() : name;
    if (key === "content-length") {
      if (contentLength !== undefined && contentLength !== value)
        throw new HeadError(400, `two different content-length headers (${quote(contentLength)} and ${quote(value)}); expected one`);
      contentLength = value;
    }
    const seen = headers.get(key);
    if (seen === undefined) headers.set(key, value);
    else if (!SINGLE_VALUED.has(key) && key !== "content-length") headers.set(key, `${seen}, ${value}`);
  }

  if (minor === 1 && !headers.has("host"))
    throw new HeadError(400, "an HTTP/1.1 request without a host header; expected one (RFC 9112 section 3.2)");
  const transferEncoding = headers.get("transfer-encoding");
  let length: number | undefined = 0;
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined)
      throw new HeadError(400, "both transfer-encoding and content-length are set; expected only one (RFC 9112 section 6.3)");
    if (minor === 0) throw new HeadError(400, "transfer-encoding in an HTTP/1.0 request; expected content-length");
    const codings = transferEncoding
      .toLowerCase()
      .split(",")
      .map((coding) => coding.trim());
    if (codings[codings.length - 1] !== "chunked")
      throw new HeadError(400, `transfer-encoding ${quote(transferEncoding)} does not end in chunked; expected chunked`);
    if (codings.length > 1)
      throw new HeadError(501, `transfer-encoding ${quote(transferEncoding)} is not supported; expected chunked alone`);
    length = undefined;
  } else if (contentLength !== undefined) {
    length = decimal(contentLength);
    if (length === undefined) throw new HeadError(400, `malformed content-length ${quote(contentLength)}; expected a number of bytes`);
  }

  const connection = headers.get("connection");
  const keepAlive = minor === 1 ? connection === undefined || !hasToken(connection, "close") : hasToken(connection, "keep-alive");
  const expect = headers.get("expect");
  let expectContinue = false;
  if (expect !== undefined) {
    if (expect.toLowerCase() !== "100-continue")
      throw new HeadError(417, `expect ${quote(expect)} is not supported; expected 100-continue`);
    expectContinue = minor === 1;
  }
  let url = target;
  if (target.charCodeAt(0) !== 0x2f) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute) url = target.slice(absolute[0].length) || "/";
  }
  return { method, url, minor, headers, contentLength: length, keepAlive, expectContinue };
}

/** 1 to 15 decimal digits as a number, else undefined. */
function decimal(text: string): number | undefined {
  if (text.length === 0 || text.length > 15) return undefined;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return value;
}

/** Whether a comma-separated list (Connection) holds `token`, compared case-insensitively. */
function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  for (const item of list.split(",")) if (item.trim().toLowerCase() === token) return true;
  return false;
}

/** The longest chunk-size line (with extensions) and trailer section accepted. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;

/**
 * The chunked transfer coding (RFC 9112 section 7.1), decoded as bytes
 * arrive. `push` returns how many bytes of `bytes` (from `start`) it used;
 * the rest belongs to the next request. Throws HeadError on bad framing.
 */
export class ChunkedDecoder {
  #state: "size" | "data" | "data-end" | "trailers" | "done" = "size";
  #line = "";
  #remaining = 0;
  #trailerBytes = 0;
  readonly #onData: (bytes: Buffer) => void;

  constructor(onData: (bytes: Buffer) => void) {
    this.#onData = onData;
  }

  get done(): boolean {
    return this.#state === "done";
  }

  push(bytes: Buffer, start: number): number {
    let pos = start;
    while (pos < bytes.length && this.#state !== "done") {
      if (this.#state === "data") {
        const take = Math.min(this.#remaining, bytes.length - pos);
        this.#onData(bytes.subarray(pos, pos + take));
        pos += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = "data-end";
        continue;
      }
      // A line: the chunk size, the CRLF after a chunk's data, or a trailer field.
      const lf = bytes.indexOf(0x0a, pos);
      const end = lf === -1 ? bytes.length : lf + 1;
      this.#line += bytes.toString("latin1", pos, end);
      pos = end;
      if (lf === -1) {
        const limit = this.#state === "trailers" ? MAX_TRAILERS : MAX_CHUNK_LINE;
        if (this.#line.length + this.#trailerBytes > limit)
          throw new HeadError(400, `a chunked body's ${this.#state} line is over ${limit} bytes`);
        continue;
      }
      const line = this.#line;
      this.#line = "";
      if (!line.endsWith("\r\n") || line.indexOf("\r") !== line.length - 2)
        throw new HeadError(400, "a line of a chunked body ends in a bare LF or holds a CR; expected CRLF");
      this.#lineDone(line.slice(0, -2));
    }
    return pos - start;
  }

  #lineDone(line: string): void {
    switch (this.#state) {
      case "size": {
        if (line.length > MAX_CHUNK_LINE) throw new HeadError(400, `a chunk-size line is over ${MAX_CHUNK_LINE} bytes`);
        const semicolon = line.indexOf(";");
        const size = (semicolon === -1 ? line : line.slice(0, semicolon)).trimEnd();
        // At most 13 hex digits: 2^52, beyond any body we would keep, and exact as a number.
        if (!/^[0-9a-fA-F]{1,13}$/.test(size)) throw new HeadError(400, `malformed chunk size ${quote(size)}; expected hexadecimal digits`);
        this.#remaining = Number.parseInt(size, 16);
        this.#state = this.#remaining === 0 ? "trailers" : "data";
        return;
      }
      case "data-end":
        if (line !== "") throw new HeadError(400, "a chunk's data is longer than its size; expected CRLF after it");
        this.#state = "size";
        return;
      case "trailers":
        this.#trailerBytes += line.length + 2;
        if (this.#trailerBytes > MAX_TRAILERS) throw new HeadError(400, `a chunked body's trailers are over ${MAX_TRAILERS} bytes`);
        // Trailer fields are read past and dropped: nothing here uses them.
        if (line === "") this.#state = "done";
        return;
      default:
        return;
    }
  }
}

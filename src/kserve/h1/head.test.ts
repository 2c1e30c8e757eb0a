import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ChunkedDecoder, HeadError, parseHead } from "./head.js";

const head = (...lines: string[]) => lines.join("\r\n");

function refused(text: string, status: number, message: RegExp): void {
  assert.throws(
    () => parseHead(text),
    (error: unknown) => error instanceof HeadError && error.status === status && message.test(error.message),
    `expected ${status} ${message} for ${JSON.stringify(text)}`,
  );
}

describe("parseHead", () => {
  test("a typical POST: method, path, lowercase names, trimmed values, the body's length, keep-alive", () => {
    const parsed = parseHead(
      head("POST /v1/models/m:predict?x=1 HTTP/1.1", "Host: localhost:8080", "Content-Type:application/json  ", "Content-Length: 27"),
    );
    assert.equal(parsed.method, "POST");
    assert.equal(parsed.url, "/v1/models/m:predict?x=1");
    assert.equal(parsed.minor, 1);
    assert.deepEqual(
      [...parsed.headers],
      [
        ["host", "localhost:8080"],
        ["content-type", "application/json"],
        ["content-length", "27"],
      ],
    );
    assert.equal(parsed.contentLength, 27);
    assert.equal(parsed.keepAlive, true);
    assert.equal(parsed.expectContinue, false);
  });

  test("no content-length is an empty body; chunked is undefined; an absolute-form target is reduced to its path", () => {
    assert.equal(parseHead(head("GET / HTTP/1.1", "host: a")).contentLength, 0);
    assert.equal(parseHead(head("POST / HTTP/1.1", "host: a", "transfer-encoding: Chunked")).contentLength, undefined);
    assert.equal(parseHead(head("GET http://a:80/v2/health/ready?q HTTP/1.1", "host: a")).url, "/v2/health/ready?q");
    assert.equal(parseHead(head("GET http://a HTTP/1.1", "host: a")).url, "/");
  });

  test("keep-alive: HTTP/1.1 unless connection: close; HTTP/1.0 only with connection: keep-alive, and needs no host", () => {
    assert.equal(parseHead(head("GET / HTTP/1.1", "host: a", "connection: Keep-Alive, Close")).keepAlive, false);
    assert.equal(parseHead(head("GET / HTTP/1.0")).keepAlive, false);
    assert.equal(parseHead(head("GET / HTTP/1.0", "Connection: keep-alive")).keepAlive, true);
  });

  test("repeated fields are joined, except single-valued ones, where the first wins; an identical content-length repeat is allowed", () => {
    const parsed = parseHead(
      head("GET / HTTP/1.1", "host: a", "host: b", "accept: x", "Accept: y", "content-length: 5", "Content-Length: 5"),
    );
    assert.equal(parsed.headers.get("host"), "a");
    assert.equal(parsed.headers.get("accept"), "x, y");
    assert.equal(parsed.contentLength, 5);
  });

  test("Expect: 100-continue is noted; any other expectation is 417", () => {
    assert.equal(parseHead(head("POST / HTTP/1.1", "host: a", "expect: 100-Continue", "content-length: 1")).expectContinue, true);
    refused(head("POST / HTTP/1.1", "host: a", "expect: 200-ok"), 417, /expect "200-ok" is not supported; expected 100-continue/);
  });

  test("a malformed request line, method, target or version is 400 naming it; an unknown HTTP version is 505", () => {
    refused("GET /", 400, /malformed request line "GET \/"; expected "METHOD \/path HTTP\/1.1"/);
    refused("GET  / HTTP/1.1", 400, /malformed request line/);
    refused(head("G(T / HTTP/1.1", "host: a"), 400, /malformed method "G\(T"/);
    refused(head("GET /a\x01b HTTP/1.1", "host: a"), 400, /malformed request target/);
    refused(head("GET /caf\xe9 HTTP/1.1", "host: a"), 400, /malformed request target/);
    refused(head("GET / HTTP/2.0", "host: a"), 505, /HTTP version HTTP\/2.0 is not supported/);
    refused(head("GET / HTTPS/1.1", "host: a"), 400, /malformed HTTP version "HTTPS\/1.1"/);
  });

  test("framing a second parser could read differently is 400 (request smuggling)", () => {
    refused(head("GET / HTTP/1.1", "host: a", " folded"), 400, /line 2 starts with whitespace \(obs-fold/);
    refused(head("GET / HTTP/1.1", "host: a", "content-length : 5"), 400, /malformed header name on line 2: "content-length "/);
    refused(head("GET / HTTP/1.1", "host: a", "no colon here", "x: y"), 400, /header line 2 \("no colon here"\) has no colon/);
    refused(head("GET / HTTP/1.1", "host: a", "nocolon"), 400, /has no name or no colon/);
    refused(head("GET / HTTP/1.1", "host: a", ": empty name"), 400, /has no name or no colon/);
    refused(head("GET / HTTP/1.1", "host: a\nx-smuggled: 1"), 400, /"host" holds a control character \(a bare LF\)/);
    refused(head("GET / HTTP/1.1", "host: a\rx: 1"), 400, /"host" holds a bare CR/);
    refused(head("GET / HTTP/1.1", "host: a", "x: a\x00b"), 400, /"x" holds a control character/);
    refused(
      head("POST / HTTP/1.1", "host: a", "content-length: 5", "content-length: 6"),
      400,
      /two different content-length headers \("5" and "6"\)/,
    );
    refused(
      head("POST / HTTP/1.1", "host: a", "content-length: 5", "transfer-encoding: chunked"),
      400,
      /both transfer-encoding and content-length/,
    );
    refused(head("POST / HTTP/1.1", "host: a", "transfer-encoding: chunked, gzip"), 400, /does not end in chunked/);
    refused(
      head("POST / HTTP/1.1", "host: a", "transfer-encoding: gzip, chunked"),
      501,
      /"gzip, chunked" is not supported; expected chunked alone/,
    );
    refused(head("POST / HTTP/1.0", "transfer-encoding: chunked"), 400, /transfer-encoding in an HTTP\/1.0 request/);
    for (const bad of ["-1", "+5", "1e3", "0x10", "", "1 2", "1234567890123456"])
      refused(head("POST / HTTP/1.1", "host: a", `content-length: ${bad}`), 400, /malformed content-length/);
    refused(head("GET / HTTP/1.1", "accept: x"), 400, /an HTTP\/1.1 request without a host header/);
  });
});

/** Feeds `wire` to a decoder `step` bytes at a time; returns the body and how many bytes it left for the next request. */
function decode(wire: string, step: number): { body: string; left: number } {
  const parts: Buffer[] = [];
  const decoder = new ChunkedDecoder((bytes) => parts.push(Buffer.from(bytes)));
  const bytes = Buffer.from(wire, "latin1");
  let left = 0;
  for (let at = 0; at < bytes.length; at += step) {
    const piece = bytes.subarray(at, Math.min(at + step, bytes.length));
    if (decoder.done) {
      left += piece.length;
      continue;
    }
    const used = decoder.push(piece, 0);
    left += piece.length - used;
  }
  assert.equal(decoder.done, true, "the decoder saw the last chunk and the trailers' end");
  return { body: Buffer.concat(parts).toString("latin1"), left };
}

describe("ChunkedDecoder", () => {
  const wire = "5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nx-trailer: dropped\r\n\r\nGET / HTTP/1.1\r\n";
  test("chunks with extensions and trailers, whole or a byte at a time; bytes after the body are left for the next request", () => {
    for (const step of [wire.length, 1, 3, 7]) {
      const { body, left } = decode(wire, step);
      assert.equal(body, "hello, world!!!", `step ${step}`);
      assert.equal(left, "GET / HTTP/1.1\r\n".length, `step ${step}`);
    }
  });

  test("bad framing is 400 naming it", () => {
    const bad = (text: string, message: RegExp) =>
      assert.throws(
        () => new ChunkedDecoder(() => {}).push(Buffer.from(text, "latin1"), 0),
        (error: unknown) => error instanceof HeadError && error.status === 400 && message.test(error.message),
      );
    bad("zz\r\n", /malformed chunk size "zz"; expected hexadecimal digits/);
    bad("-1\r\n", /malformed chunk size/);
    bad("12345678901234\r\n", /malformed chunk size/);
    bad("3\r\nabcd\r\n", /longer than its size/);
    bad("3\nabc", /bare LF/);
    bad(`1;${"x".repeat(5000)}`, /chunk-size|size line is over 4096 bytes/);
    bad(`0\r\n${"x: y\r\n".repeat(3000)}`, /trailers are over 16384 bytes/);
  });
});

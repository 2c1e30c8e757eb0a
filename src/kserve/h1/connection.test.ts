/**
 * The HTTP/1.1 connection and server over real sockets: a raw client writes
 * exact bytes (pipelined, split, malformed), so nothing is well-formed by
 * accident; node:http's client checks that a strict peer reads our answers.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { after, describe, test } from "node:test";
import { seededRandom } from "../../../test/helpers/random.js";
import { Code } from "../../core/code.js";
import type { ChassisError } from "../../core/error.js";
import type { H1Request, H1Response } from "./connection.js";
import { H1Server, type H1ServerOptions } from "./server.js";

type Handler = (req: H1Request, res: H1Response) => void;

const servers: H1Server[] = [];
after(() => {
  for (const server of servers) server.forceClose();
});

async function serve(handler: Handler, options: Partial<H1ServerOptions> = {}) {
  const server = new H1Server({
    onRequest: handler,
    maxBodyBytes: 1024,
    maxBodyName: "MAX_BODY_SIZE",
    keepAliveTimeoutMs: 65_000,
    ...options,
  });
  servers.push(server);
  const port = await server.listen("127.0.0.1", 0);
  return { server, port };
}

/** Answers with the method, url and body it read: `<method> <url> <body>`, or the body error's code and message. */
const echo: Handler = (req, res) =>
  req.readBody((error, body) =>
    error
      ? res.respond(413, ["x-code", Code[error.code]], error.message)
      : res.respond(200, ["content-type", "text/plain"], `${req.method} ${req.url} ${body.toString()}`),
  );

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A raw client: writes bytes as given, and parses answers (content-length framed) as they come. */
class RawClient {
  readonly socket: net.Socket;
  #buffer = "";
  #closed = false;
  #waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setEncoding("latin1");
    this.socket.on("data", (text: string) => {
      this.#buffer += text;
      this.#wake();
    });
    this.socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    this.socket.on("error", () => {});
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get raw(): string {
    return this.#buffer;
  }

  write(text: string): void {
    this.socket.write(Buffer.from(text, "latin1"));
  }

  async #until(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!check()) {
      if (this.#closed) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.#buffer)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** The next answer; a 100 Continue is returned as an answer of its own. */
  async answer(): Promise<Answer> {
    await this.#until(() => this.#buffer.includes("\r\n\r\n"), "an answer's head");
    const end = this.#buffer.indexOf("\r\n\r\n");
    const lines = this.#buffer.slice(0, end).split("\r\n");
    const status = Number((lines[0] as string).split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = status === 100 ? 0 : Number(headers.get("content-length"));
    assert.ok(Number.isInteger(length), `every final answer states its length: ${lines.join(" | ")}`);
    await this.#until(() => this.#buffer.length >= end + 4 + length, "an answer's body");
    const body = Buffer.from(this.#buffer.slice(end + 4, end + 4 + length), "latin1").toString();
    this.#buffer = this.#buffer.slice(end + 4 + length);
    return { status, headers, body };
  }

  /** Resolves once the server has closed the connection; #until checks `closed` before it would throw for it. */
  closedByServer(): Promise<void> {
    return this.#until(() => this.#closed, "the server to close");
  }

  end(): void {
    this.socket.destroy();
  }
}

const post = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nhost: t\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe("H1Connection", () => {
  test("pipelined requests in one write are answered in request order, though answered out of order", async () => {
    const { port } = await serve((req, res) => {
      // The first request is answered last.
      const delay = req.url === "/first" ? 60 : 0;
      req.readBody((_error, body) => setTimeout(() => res.respond(200, [], `${req.url} ${body}`), delay));
    });
    const client = new RawClient(port);
    client.write(post("/first", "1") + post("/second", "22") + post("/third", "333"));
    assert.equal((await client.answer()).body, "/first 1");
    assert.equal((await client.answer()).body, "/second 22");
    const third = await client.answer();
    assert.equal(third.body, "/third 333");
    assert.equal(third.headers.get("keep-alive"), "timeout=65");
    assert.match(third.headers.get("date") ?? "", /GMT$/);
    client.end();
  });

  test("an answer header holding a line break is refused (no header injection); the handler's error leaves the exchange open", async () => {
    const thrown: string[] = [];
    const { port } = await serve((req, res) => {
      try {
        res.respond(307, ["location", `${req.url}\r\nset-cookie: x=1`], "");
      } catch (error) {
        thrown.push((error as Error).message);
        res.respond(500, [], "refused");
      }
    });
    const client = new RawClient(port);
    client.write("GET /a HTTP/1.1\r\nhost: t\r\n\r\n");
    const answer = await client.answer();
    assert.deepEqual([answer.status, answer.body, answer.headers.has("set-cookie")], [500, "refused", false]);
    assert.deepEqual(thrown, ['header "location" holds a line break']);
    client.end();
  });

  test("a head whose end arrives in a later read, after a whole request in the same read, is found", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write(`${post("/first", "1")}GET /second HTTP/1.1\r\nhost: t\r\n`);
    assert.equal((await client.answer()).body, "POST /first 1");
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.write("\r\n");
    assert.equal((await client.answer()).body, "GET /second ");
    client.end();
  });

  test("a handler that throws is answered 500 and the connection serves the next request", async () => {
    const { port } = await serve((req, res) => {
      if (req.url === "/throw") throw new Error("boom");
      res.respond(200, [], "fine");
    });
    const client = new RawClient(port);
    client.write("GET /throw HTTP/1.1\r\nhost: t\r\n\r\nGET /ok HTTP/1.1\r\nhost: t\r\n\r\n");
    const failed = await client.answer();
    assert.deepEqual([failed.status, JSON.parse(failed.body)], [500, { error: "request handler failed: Error: boom" }]);
    assert.equal((await client.answer()).body, "fine");
    client.end();
  });

  test("random pipelined requests, cut into random reads, are all answered, in order, with their bodies (seeded)", async () => {
    const { port } = await serve(echo, { maxBodyBytes: 64 * 1024 });
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = seededRandom(seed);
      const pick = (n: number) => Math.floor(random() * n);
      let wire = "";
      const expected: string[] = [];
      for (let i = 0; i < 40; i++) {
        const body = "b".repeat(pick(3) === 0 ? 0 : pick(5000));
        const extra = "x-pad: ".concat("p".repeat(pick(300)), "\r\n").repeat(pick(4));
        const leading = pick(5) === 0 ? "\r\n" : "";
        if (body === "") {
          wire += `${leading}GET /${seed}/${i} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
          expected.push(`GET /${seed}/${i} `);
        } else if (pick(2) === 0) {
          wire += `${leading}POST /${seed}/${i} HTTP/1.1\r\nhost: t\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;
          expected.push(`POST /${seed}/${i} ${body}`);
        } else {
          let chunks = "";
          for (let at = 0; at < body.length; ) {
            const size = Math.min(body.length - at, 1 + pick(2000));
            chunks += `${size.toString(16)}${pick(4) === 0 ? ";ext=1" : ""}\r\n${body.slice(at, at + size)}\r\n`;
            at += size;
          }
          wire += `${leading}POST /${seed}/${i} HTTP/1.1\r\nhost: t\r\n${extra}transfer-encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`;
          expected.push(`POST /${seed}/${i} ${body}`);
        }
      }
      const client = new RawClient(port);
      const bytes = Buffer.from(wire, "latin1");
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + pick(pick(2) === 0 ? 16 : 4000);
        client.socket.write(bytes.subarray(at, at + size));
        at += size;
        if (pick(4) === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      for (const body of expected) assert.equal((await client.answer()).body, body, `seed ${seed}`);
      client.end();
    }
  });

  test("a request split a byte at a time, and a chunked body, are read whole", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    const wire = `${post("/split", "héllo")}POST /chunked HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n`;
    for (const byte of Buffer.from(wire, "utf8")) {
      client.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal((await client.answer()).body, "POST /split héllo");
    assert.equal((await client.answer()).body, "POST /chunked abcde");
    client.end();
  });

  test("Expect: 100-continue gets a 100 before the client sends the body", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write("POST /e HTTP/1.1\r\nhost: t\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n");
    assert.equal((await client.answer()).status, 100);
    client.write("body");
    assert.equal((await client.answer()).body, "POST /e body");
    client.end();
  });

  test("a body over the limit is RESOURCE_EXHAUSTED naming the limit; it is read past, and the connection serves the next request", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    const big = "x".repeat(2000);
    client.write(post("/big", big) + post("/next", "ok"));
    const refusedAnswer = await client.answer();
    assert.equal(refusedAnswer.headers.get("x-code"), "RESOURCE_EXHAUSTED");
    assert.equal(refusedAnswer.body, "request body is 1.95K (2000 bytes), over the limit of 1K (MAX_BODY_SIZE)");
    assert.equal((await client.answer()).body, "POST /next ok");
    // Chunked: the size is known only while reading.
    client.write(`POST /c HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n7d0\r\n${big}\r\n0\r\n\r\n${post("/after", "yes")}`);
    assert.equal((await client.answer()).headers.get("x-code"), "RESOURCE_EXHAUSTED");
    assert.equal((await client.answer()).body, "POST /after yes");
    assert.equal(client.closed, false);
    client.end();
  });

  test("a chunked body far over the limit, in one read with more chunks after it, is refused and the connection closed", async () => {
    const { port } = await serve(echo, { maxBodyBytes: 1024 });
    const client = new RawClient(port);
    // The limit plus its 16 MiB slack is crossed in the chunk's last bytes, so the read that crosses it also holds
    // the chunks after it, which the decoder hands over after the body was given up on.
    const chunk = "z".repeat(1024 + 16 * 1024 * 1024 + 10);
    const after = "5\r\nabcde\r\n".repeat(100);
    client.write(
      `POST /c HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n${after}0\r\n\r\n`,
    );
    const answer = await client.answer();
    assert.equal(answer.headers.get("x-code"), "RESOURCE_EXHAUSTED");
    assert.equal(answer.headers.get("connection"), "close");
    await client.closedByServer();
  });

  test("a body far over the limit is refused at once, with connection: close, and the connection is closed", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write(`POST /huge HTTP/1.1\r\nhost: t\r\ncontent-length: ${64 * 1024 * 1024}\r\n\r\nxxxx`);
    const answer = await client.answer();
    assert.equal(answer.headers.get("x-code"), "RESOURCE_EXHAUSTED");
    assert.equal(answer.headers.get("connection"), "close");
    await client.closedByServer();
  });

  test("a malformed head is 400 with a JSON error naming it, after the answers due before it; then the connection closes", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write(`${post("/fine", "1")}GET / HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n`);
    assert.equal((await client.answer()).body, "POST /fine 1");
    const bad = await client.answer();
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("connection"), "close");
    assert.equal(bad.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(bad.body), { error: 'two different content-length headers ("1" and "2"); expected one' });
    await client.closedByServer();
  });

  test("bad chunk framing is that request's own answer: 400 naming it, then the connection closes", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write(`${post("/ok", "1")}POST /bad HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n`);
    assert.equal((await client.answer()).body, "POST /ok 1");
    const bad = await client.answer();
    assert.deepEqual([bad.status, bad.headers.get("connection")], [400, "close"]);
    assert.deepEqual(JSON.parse(bad.body), { error: 'malformed chunk size "zz"; expected hexadecimal digits' });
    await client.closedByServer();
  });

  test("a head over 16 KiB is 431", async () => {
    const { port } = await serve(echo);
    const client = new RawClient(port);
    client.write(`GET / HTTP/1.1\r\nhost: t\r\nx-big: ${"y".repeat(17 * 1024)}`);
    const answer = await client.answer();
    assert.equal(answer.status, 431);
    assert.match(JSON.parse(answer.body).error, /the request head is over 16384 bytes/);
    await client.closedByServer();
  });

  test("HEAD states the length and sends no body; HTTP/1.0 closes unless it asks for keep-alive", async () => {
    const { port } = await serve((_req, res) => res.respond(200, [], "twelve bytes"));
    const raw = new RawClient(port);
    // Pipelined behind a HEAD: its answer must start right after the HEAD answer's head.
    raw.write("HEAD / HTTP/1.1\r\nhost: t\r\n\r\nGET /after HTTP/1.1\r\nhost: t\r\n\r\n");
    while (!raw.raw.endsWith("twelve bytes")) await new Promise((resolve) => setTimeout(resolve, 10));
    const [headAnswer, getAnswer, ...rest] = raw.raw.split(/(?=HTTP\/1\.1 )/);
    assert.match(headAnswer ?? "", /^HTTP\/1.1 200 OK\r\ncontent-length: 12\r\n[\s\S]*\r\n\r\n$/);
    assert.match(getAnswer ?? "", /^HTTP\/1.1 200 OK\r\ncontent-length: 12\r\n[\s\S]*\r\n\r\ntwelve bytes$/);
    assert.equal(rest.length, 0);
    raw.end();
    const old = new RawClient(port);
    old.write("GET / HTTP/1.0\r\n\r\n");
    const closing = await old.answer();
    assert.equal(closing.headers.get("connection"), "close");
    await old.closedByServer();
    const kept = new RawClient(port);
    kept.write("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
    assert.equal((await kept.answer()).headers.get("connection"), "keep-alive");
    kept.write("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
    assert.equal((await kept.answer()).body, "twelve bytes");
    kept.end();
  });

  test("a client that goes away cancels what it has not been answered, and a body it was sending fails CANCELLED", async () => {
    const seen: Array<{ res: H1Response; bodyError?: ChassisError }> = [];
    const { port } = await serve((req, res) => {
      const entry: (typeof seen)[number] = { res };
      seen.push(entry);
      req.readBody((error) => {
        if (error) entry.bodyError = error;
      });
    });
    const client = new RawClient(port);
    client.write(`${post("/a", "1")}POST /b HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nhalf`);
    while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      seen.map((entry) => entry.res.cancellation.aborted),
      [false, false],
    );
    client.end();
    while (!seen.every((entry) => entry.res.cancellation.aborted)) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(seen[0]?.bodyError, undefined, "the whole body had arrived");
    assert.equal(seen[1]?.bodyError?.code, Code.CANCELLED, "the half-read body is CANCELLED");
  });

  test("a client that ends its side (half-close) cancels its unanswered requests, as node:http does", async () => {
    let cancelled = false;
    const { port } = await serve((_req, res) => {
      res.cancellation.onAbort(() => {
        cancelled = true;
      });
    });
    const client = new RawClient(port);
    client.write("GET /wait HTTP/1.1\r\nhost: t\r\n\r\n");
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.socket.end();
    await client.closedByServer();
    assert.equal(cancelled, true);
  });

  test("at most 128 requests wait for answers; reading resumes as answers leave, and none is lost", async () => {
    const waiting: Array<() => void> = [];
    const { port } = await serve((req, res) => waiting.push(() => res.respond(200, [], req.url)));
    const client = new RawClient(port);
    let wire = "";
    for (let i = 0; i < 300; i++) wire += `GET /${i} HTTP/1.1\r\nhost: t\r\n\r\n`;
    client.write(wire);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const read = waiting.length;
    assert.equal(read, 128, "reading stopped at 128 unanswered requests");
    for (let answered = 0; answered < 300; ) {
      const batch = waiting.splice(0);
      for (const answer of batch) answer();
      for (const _ of batch) assert.equal((await client.answer()).body, `/${answered++}`);
      while (answered < 300 && waiting.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    client.end();
  });

  test("past 16 MiB of bodies waiting for answers, no new request is read until answers leave", async () => {
    const waiting: Array<() => void> = [];
    const { port } = await serve(
      (req, res) => req.readBody((_error, body) => waiting.push(() => res.respond(200, [], `${req.url} ${body.length}`))),
      { maxBodyBytes: 10 * 1024 * 1024 },
    );
    const client = new RawClient(port);
    const body = "q".repeat(9 * 1024 * 1024);
    client.write(post("/1", body) + post("/2", body) + post("/3", body) + post("/4", "small"));
    while (waiting.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const read = waiting.length;
    assert.equal(read, 2, "two 9 MiB bodies (18 MiB) held: the third request waits");
    waiting.splice(0, 1)[0]?.();
    assert.equal((await client.answer()).body, `/1 ${body.length}`);
    // /2 still waits; /3 was read once /1 left.
    while (waiting.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const answer of waiting.splice(0)) answer();
    assert.equal((await client.answer()).body, `/2 ${body.length}`);
    assert.equal((await client.answer()).body, `/3 ${body.length}`);
    while (waiting.length < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    waiting.splice(0)[0]?.();
    assert.equal((await client.answer()).body, "/4 5");
    client.end();
  });

  test("node:http's client (llhttp) reads our answers: keep-alive reuse, chunked upload, HEAD, errors", async () => {
    const { port } = await serve(echo);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const call = (method: string, path: string, body?: string, chunked = false) =>
      new Promise<{ status: number; body: string; socket: unknown }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, method, path, agent }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (piece: string) => {
            text += piece;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, socket: req.socket }));
        });
        req.on("error", reject);
        if (chunked && body) {
          req.write(body.slice(0, 3));
          req.end(body.slice(3));
        } else req.end(body);
      });
    try {
      const first = await call("POST", "/one", "abc");
      assert.deepEqual([first.status, first.body], [200, "POST /one abc"]);
      const second = await call("POST", "/two", "chunked body", true);
      assert.deepEqual([second.status, second.body], [200, "POST /two chunked body"]);
      assert.equal(second.socket, first.socket, "the keep-alive connection was reused");
      const head = await call("HEAD", "/three");
      assert.deepEqual([head.status, head.body], [200, ""]);
      const big = await call("POST", "/four", "z".repeat(5000));
      assert.equal(big.status, 413);
      const after = await call("GET", "/five");
      assert.deepEqual([after.status, after.body], [200, "GET /five "]);
    } finally {
      agent.destroy();
    }
  });
});

describe("H1Server", () => {
  test("close(): an idle connection closes at once; a busy one answers with connection: close, then closes", async () => {
    let release: (() => void) | undefined;
    const { server, port } = await serve((_req, res) => {
      release = () => res.respond(200, [], "late");
    });
    const idle = new RawClient(port);
    const busy = new RawClient(port);
    busy.write("GET / HTTP/1.1\r\nhost: t\r\n\r\n");
    await once(idle.socket, "connect");
    while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
    const closed = server.close(30_000);
    await idle.closedByServer();
    assert.equal(busy.closed, false);
    release();
    const answer = await busy.answer();
    assert.deepEqual([answer.body, answer.headers.get("connection")], ["late", "close"]);
    await busy.closedByServer();
    await closed;
  });

  test("close(graceMs): a request still unanswered when the grace ends is cancelled and its connection destroyed", async () => {
    let cancelled = false;
    const { server, port } = await serve((_req, res) => {
      res.cancellation.onAbort(() => {
        cancelled = true;
      });
    });
    const client = new RawClient(port);
    client.write("GET /never HTTP/1.1\r\nhost: t\r\n\r\n");
    await new Promise((resolve) => setTimeout(resolve, 30));
    const started = Date.now();
    await server.close(100);
    assert.ok(Date.now() - started >= 90, "close waited for the grace");
    await client.closedByServer();
    assert.equal(cancelled, true);
  });

  test("close() in the same tick as an answer: the answer is written, then the connection closes", async () => {
    const holder: { server?: H1Server; closed?: Promise<void> } = {};
    const { server, port } = await serve((_req, res) => {
      res.respond(200, [], "just in time");
      holder.closed = holder.server?.close(30_000);
    });
    holder.server = server;
    const client = new RawClient(port);
    client.write("GET / HTTP/1.1\r\nhost: t\r\n\r\n");
    // The answer was made before close(), so it went out as keep-alive; the connection closes right after it.
    assert.equal((await client.answer()).body, "just in time");
    await client.closedByServer();
    await holder.closed;
  });

  test("close() while a body is on its way: the body is read to its end and its request answered, then the connection closes", async () => {
    const { server, port } = await serve(echo);
    const client = new RawClient(port);
    client.write("POST /up HTTP/1.1\r\nhost: t\r\ncontent-length: 6\r\n\r\nabc");
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = server.close(30_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.write("def");
    const answer = await client.answer();
    assert.deepEqual([answer.body, answer.headers.get("connection")], ["POST /up abcdef", "close"]);
    await client.closedByServer();
    await closed;
  });

  test("the keep-alive timeout closes an idle connection; the headers timeout answers a slow head with 408", async () => {
    const { port } = await serve(echo, { keepAliveTimeoutMs: 150, headersTimeoutMs: 300 });
    const idle = new RawClient(port);
    idle.write(post("/x", "1"));
    await idle.answer();
    const started = Date.now();
    await idle.closedByServer();
    assert.ok(Date.now() - started < 2000);
    const slow = new RawClient(port);
    slow.write("GET / HTTP/1.1\r\nhost:");
    const answer = await slow.answer();
    assert.equal(answer.status, 408);
    assert.match(JSON.parse(answer.body).error, /did not arrive within 0.3 s \(headers timeout\)/);
    await slow.closedByServer();
  });

  test("the request timeout answers a body that stops arriving with 408, and its reader is told CANCELLED", async () => {
    let bodyError: ChassisError | undefined;
    const { port } = await serve(
      (req, res) =>
        req.readBody((error) => {
          bodyError = error;
          if (!error) res.respond(200, [], "unexpected");
        }),
      { requestTimeoutMs: 300 },
    );
    const client = new RawClient(port);
    client.write("POST /slow HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc");
    const answer = await client.answer();
    assert.equal(answer.status, 408);
    assert.match(JSON.parse(answer.body).error, /did not arrive within 0.3 s \(request timeout\)/);
    assert.equal(bodyError?.code, Code.CANCELLED);
    await client.closedByServer();
  });
});

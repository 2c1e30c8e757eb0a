/**
 * The HTTP/2 connection on its own, over real sockets: protocol errors and
 * limits seen through a raw frame client (so nothing is well-formed by
 * accident), flow control, CONTINUATION and large bodies through node:http2's
 * client (nghttp2, a strict peer), and the graceful GOAWAY.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { after, describe, test } from "node:test";
import { H2Connection, type H2ConnectionOptions, H2Error, type H2Stream, type RequestHeaders } from "./connection.js";
import { encodeHeaderBlock } from "./hpack.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const END_STREAM = 1;
const END_HEADERS = 4;

type Handler = (stream: H2Stream, headers: RequestHeaders) => void;

/** A server whose requests go to `handler`; closed after the suite. */
async function serve(handler: Handler, options: Partial<H2ConnectionOptions> = {}) {
  const connections = new Set<H2Connection>();
  const server = net.createServer((socket) => {
    const connection = new H2Connection(socket, { ...options, onStream: handler });
    connections.add(connection);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  servers.push(server);
  return { port: (server.address() as net.AddressInfo).port, connections };
}
const servers: net.Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** Collects a request's body, then answers 200 with `reply(body)` and a trailer. */
function echoHandler(reply: (body: Buffer, headers: RequestHeaders) => Buffer = (body) => body): Handler {
  return (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.listener = {
      data: (chunk) => chunks.push(Buffer.from(chunk)),
      requestEnded: () => {
        stream.respond(encodeHeaderBlock([[":status", "200"]]), false);
        stream.end(reply(Buffer.concat(chunks), headers), encodeHeaderBlock([["x-done", "yes"]]));
      },
      streamClosed: () => {},
    };
  };
}

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A client that writes frames byte by byte as told and records every frame it receives. */
class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #text = "";
  #waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#text += chunk.toString("latin1");
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        this.frames.push({
          type: this.#buffer[3] as number,
          flags: this.#buffer[4] as number,
          streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
          payload: this.#buffer.subarray(9, 9 + length),
        });
        this.#buffer = this.#buffer.subarray(9 + length);
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("error", () => {});
    this.closed = once(socket, "close").then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async connect(port: number, { preface = true } = {}): Promise<RawClient> {
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    const client = new RawClient(socket);
    if (preface) {
      socket.write(PREFACE);
      client.send(SETTINGS, 0, 0, Buffer.alloc(0));
    }
    return client;
  }

  /** Everything received, as text (for an HTTP/1.1 answer). */
  get text(): string {
    return this.#text;
  }

  send(type: number, flags: number, streamId: number, payload: Buffer): void {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(streamId, 5);
    this.socket.write(Buffer.concat([header, payload]));
  }

  request(streamId: number, fields: Array<[string, string]>, flags = END_HEADERS): void {
    const base: Array<[string, string]> = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/test"],
      [":authority", "localhost"],
    ];
    this.send(HEADERS, flags, streamId, encodeHeaderBlock([...base, ...fields]));
  }

  /** Waits for a frame matching `match` (or the close), at most 3 s. */
  async waitFor(match: (frame: Frame) => boolean): Promise<Frame | undefined> {
    const deadline = Date.now() + 3000;
    for (;;) {
      const found = this.frames.find(match);
      if (found || this.socket.destroyed || Date.now() > deadline) return found;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async goaway(): Promise<{ lastStreamId: number; code: number; debug: string } | undefined> {
    const frame = await this.waitFor((f) => f.type === GOAWAY);
    if (!frame) return undefined;
    return {
      lastStreamId: frame.payload.readUInt32BE(0),
      code: frame.payload.readUInt32BE(4),
      debug: frame.payload.subarray(8).toString(),
    };
  }

  async reset(streamId: number): Promise<number | undefined> {
    const frame = await this.waitFor((f) => f.type === RST_STREAM && f.streamId === streamId);
    return frame?.payload.readUInt32BE(0);
  }
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

describe("H2Connection: connection set-up", () => {
  test("sends its SETTINGS, acknowledges the client's and answers PING with the same payload", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port);
    client.send(PING, 0, 0, Buffer.from("12345678"));
    const pong = await client.waitFor((f) => f.type === PING);
    assert.equal(pong?.flags, 1);
    assert.equal(pong?.payload.toString(), "12345678");
    assert.ok(client.frames.some((f) => f.type === SETTINGS && f.flags === 0 && f.payload.length > 0));
    assert.ok(client.frames.some((f) => f.type === SETTINGS && f.flags === 1));
    client.socket.destroy();
  });

  test("an HTTP/1.1 request gets a readable 505 naming what the port serves", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port, { preface: false });
    client.socket.write("POST /ModzyModel/Run HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n");
    await client.closed;
    assert.match(client.text, /^HTTP\/1\.1 505 /);
    assert.match(client.text, /serves gRPC \(HTTP\/2 with prior knowledge\)/);
  });

  test("a connection that sends no preface in time is closed; one that sent it stays open", async () => {
    const { port } = await serve(echoHandler(), { prefaceTimeoutMs: 200 });
    const silent = await RawClient.connect(port, { preface: false });
    const talked = await RawClient.connect(port);
    const closedInTime = await Promise.race([
      silent.closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    assert.ok(closedInTime, "closed after the preface timeout");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(talked.socket.destroyed, false);
    talked.socket.destroy();
  });

  test("other bytes instead of the preface get GOAWAY PROTOCOL_ERROR", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port, { preface: false });
    client.socket.write(Buffer.from("\x16\x03\x01 not a preface at all"));
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.PROTOCOL_ERROR);
    await client.closed;
  });

  test("a first frame other than SETTINGS is a PROTOCOL_ERROR", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port, { preface: false });
    client.socket.write(PREFACE);
    client.send(PING, 0, 0, Buffer.alloc(8));
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.PROTOCOL_ERROR);
    assert.match(goaway?.debug ?? "", /must be followed by a SETTINGS frame/);
  });
});

describe("H2Connection: protocol errors", () => {
  test("an undecodable header block is a COMPRESSION_ERROR", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port);
    client.send(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from([0x80])); // indexed field 0
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.COMPRESSION_ERROR);
  });

  test("a malformed request resets its stream with PROTOCOL_ERROR and the connection goes on", async () => {
    const seen: string[] = [];
    const { port } = await serve((stream, headers) => {
      seen.push(headers[":path"] as string);
      echoHandler()(stream, headers);
    });
    const client = await RawClient.connect(port);
    client.request(1, [["Content-Type", "x"]], END_HEADERS | END_STREAM); // uppercase name
    client.send(HEADERS, END_HEADERS | END_STREAM, 3, encodeHeaderBlock([[":method", "POST"]])); // no :path, :scheme
    client.request(5, [["connection", "keep-alive"]], END_HEADERS | END_STREAM);
    client.request(7, [["te", "gzip"]], END_HEADERS | END_STREAM);
    client.request(9, [], END_HEADERS | END_STREAM);
    for (const id of [1, 3, 5, 7]) assert.equal(await client.reset(id), H2Error.PROTOCOL_ERROR, `stream ${id}`);
    const answer = await client.waitFor((f) => f.type === HEADERS && f.streamId === 9 && (f.flags & END_STREAM) !== 0);
    assert.ok(answer, "stream 9 is answered");
    assert.deepEqual(seen, ["/test"]);
    client.socket.destroy();
  });

  test("DATA on a stream never opened is a connection PROTOCOL_ERROR", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port);
    client.send(DATA, 0, 7, Buffer.from("x"));
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.PROTOCOL_ERROR);
    assert.match(goaway?.debug ?? "", /idle stream 7/);
  });

  test("streams beyond MAX_CONCURRENT_STREAMS are refused", async () => {
    const { port } = await serve(
      (stream) => {
        stream.listener = { data() {}, requestEnded() {}, streamClosed() {} }; // never answers
      },
      { maxConcurrentStreams: 2 },
    );
    const client = await RawClient.connect(port);
    for (const id of [1, 3, 5]) client.request(id, [], END_HEADERS | END_STREAM);
    assert.equal(await client.reset(5), H2Error.REFUSED_STREAM);
    assert.equal(
      client.frames.some((f) => f.type === RST_STREAM && f.streamId !== 5),
      false,
    );
    client.socket.destroy();
  });

  test("a client resetting streams faster than the budget gets GOAWAY ENHANCE_YOUR_CALM (rapid reset)", async () => {
    let started = 0;
    const { port } = await serve((stream) => {
      started++;
      stream.listener = { data() {}, requestEnded() {}, streamClosed() {} };
    });
    const client = await RawClient.connect(port);
    for (let id = 1; id < 2 * 1200; id += 2) {
      client.request(id, []);
      client.send(RST_STREAM, 0, id, u32(H2Error.CANCEL));
    }
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.ENHANCE_YOUR_CALM);
    // The budget: 1000 at once, refilled at 100 a second (a few more during the test).
    assert.ok(started <= 1100, `${started} streams started`);
  });

  test("sends no more DATA than the client's stream window, and the rest after its WINDOW_UPDATE", async () => {
    const { port } = await serve(echoHandler(() => Buffer.alloc(1000, 1)));
    const client = await RawClient.connect(port);
    const setting = Buffer.alloc(6);
    setting.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
    setting.writeUInt32BE(100, 2);
    client.send(SETTINGS, 0, 0, setting);
    client.request(1, [], END_HEADERS | END_STREAM);
    const dataBytes = () => client.frames.filter((f) => f.type === DATA && f.streamId === 1).reduce((n, f) => n + f.payload.length, 0);
    await client.waitFor((f) => f.type === DATA && f.streamId === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(dataBytes(), 100);
    assert.equal(
      client.frames.some((f) => f.streamId === 1 && (f.flags & END_STREAM) !== 0),
      false,
    );
    client.send(WINDOW_UPDATE, 0, 1, u32(900));
    const last = await client.waitFor((f) => f.type === HEADERS && f.streamId === 1 && (f.flags & END_STREAM) !== 0);
    assert.ok(last, "the trailers follow the rest of the DATA");
    assert.equal(dataBytes(), 1000);
    client.socket.destroy();
  });

  test("the client's frames still in flight for a stream we reset are ignored; the connection goes on", async () => {
    const { port } = await serve((stream) => {
      // Answers at once, before the request has ended, and tells the client to stop sending.
      stream.respond(encodeHeaderBlock([[":status", "200"]]), true);
      stream.reset(H2Error.NO_ERROR);
    });
    const client = await RawClient.connect(port);
    client.request(1, []);
    assert.equal(await client.reset(1), H2Error.NO_ERROR);
    client.send(DATA, 0, 1, Buffer.from("late"));
    client.send(HEADERS, END_HEADERS | END_STREAM, 1, encodeHeaderBlock([["x-trailer", "1"]]));
    client.send(PING, 0, 0, Buffer.from("stillok!"));
    const pong = await client.waitFor((f) => f.type === PING);
    assert.equal(pong?.payload.toString(), "stillok!");
    assert.equal(
      client.frames.some((f) => f.type === GOAWAY),
      false,
    );
    // A HEADERS frame on a lower stream that was never opened still ends the connection.
    client.request(3, [], END_HEADERS | END_STREAM);
    client.send(HEADERS, END_HEADERS | END_STREAM, 3, encodeHeaderBlock([["x-trailer", "1"]]));
    client.send(HEADERS, END_HEADERS | END_STREAM, 1, encodeHeaderBlock([["x", "y"]]));
    client.request(7, [], END_HEADERS | END_STREAM);
    client.request(5, [], END_HEADERS | END_STREAM);
    const goaway = await client.goaway();
    assert.equal(goaway?.code, H2Error.STREAM_CLOSED);
  });

  test("request trailers end the request; its content reaches the handler", async () => {
    const { port } = await serve(echoHandler());
    const client = await RawClient.connect(port);
    client.request(1, []);
    client.send(DATA, 0, 1, Buffer.from("hello"));
    client.send(HEADERS, END_HEADERS | END_STREAM, 1, encodeHeaderBlock([["x-trailer", "1"]]));
    const data = await client.waitFor((f) => f.type === DATA && f.streamId === 1 && f.payload.length > 0);
    assert.equal(data?.payload.toString(), "hello");
    client.socket.destroy();
  });
});

describe("H2Connection: through node:http2's client", () => {
  function post(
    session: http2.ClientHttp2Session,
    body: Buffer,
    headers: http2.OutgoingHttpHeaders = {},
  ): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/x", ...headers });
      const chunks: Buffer[] = [];
      let status = 0;
      let trailers: http2.IncomingHttpHeaders = {};
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.on("trailers", (t) => {
        trailers = t;
      });
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve({ status, body: Buffer.concat(chunks), trailers }));
      req.on("error", reject);
      req.end(body);
    });
  }

  test("a reply larger than the client's window waits for its WINDOW_UPDATEs and arrives whole", async () => {
    const big = Buffer.alloc(300_000, 7);
    const { port } = await serve(echoHandler(() => big));
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1000 } });
    const answer = await post(session, Buffer.from("x"));
    assert.equal(answer.status, 200);
    assert.equal(Buffer.compare(answer.body, big), 0);
    assert.equal(answer.trailers["x-done"], "yes");
    session.close();
  });

  test("a client with a header table smaller than 4096 gets the table size update HPACK requires (RFC 7541 4.2)", {
    timeout: 10_000,
  }, async () => {
    const { port } = await serve(echoHandler());
    for (const headerTableSize of [0, 1024, 4095]) {
      // nghttp2 refuses a response block without the update (COMPRESSION_ERROR), as h2load --header-table-size did.
      const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { headerTableSize } });
      for (const text of ["first", "second"]) {
        const answer = await post(session, Buffer.from(text));
        assert.equal(answer.status, 200, `table size ${headerTableSize}`);
        assert.equal(answer.body.toString(), text);
        assert.equal(answer.trailers["x-done"], "yes");
      }
      session.close();
    }
  });

  test("a 5 MiB upload gets the WINDOW_UPDATEs it needs, many streams at once", async () => {
    const { port } = await serve(echoHandler((body) => Buffer.from(String(body.length))));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const body = Buffer.alloc(5 * 1024 * 1024, 1);
    const answers = await Promise.all([post(session, body), post(session, body), post(session, body)]);
    for (const answer of answers) assert.equal(answer.body.toString(), String(body.length));
    session.close();
  });

  test("a header block too big for one frame arrives through CONTINUATION frames", async () => {
    const { port } = await serve(echoHandler((_body, headers) => Buffer.from(headers["x-big"] ?? "")));
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const value = "v".repeat(40_000);
    const answer = await post(session, Buffer.alloc(0), { "x-big": value });
    assert.equal(answer.body.toString(), value);
    session.close();
  });

  test("a header list over the limit resets the stream; the connection serves the next request", async () => {
    const { port } = await serve(echoHandler(), { maxHeaderListBytes: 1000 });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    await assert.rejects(post(session, Buffer.alloc(0), { "x-big": "v".repeat(2000) }));
    const answer = await post(session, Buffer.from("ok"));
    assert.equal(answer.body.toString(), "ok");
    session.close();
  });

  test("close(): GOAWAY with the last stream taken, the stream in flight is answered, then the socket closes", async () => {
    let finish: (() => void) | undefined;
    const { port, connections } = await serve((stream) => {
      stream.listener = {
        data() {},
        requestEnded() {
          finish = () => {
            stream.respond(encodeHeaderBlock([[":status", "200"]]), false);
            stream.end(Buffer.from("late"), undefined);
          };
        },
        streamClosed() {},
      };
    });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const pending = post(session, Buffer.from("x"));
    const goaway = once(session, "goaway");
    while (!finish) await new Promise((resolve) => setTimeout(resolve, 10));
    for (const connection of connections) connection.close();
    const [code, lastStreamId] = await goaway;
    assert.equal(code, H2Error.NO_ERROR);
    assert.equal(lastStreamId, 1);
    finish();
    assert.equal((await pending).body.toString(), "late");
    await once(session, "close");
  });
});

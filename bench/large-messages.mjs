#!/usr/bin/env node
/**
 * Large gRPC messages, which the h2load runs of serve.mjs do not cover: a
 * grpc-js client (this process) asks for a big reply and sends a big
 * request, against our GrpcServer (dist/, in its own process) and against a
 * minimal node:http2 server doing the same (in another), rounds alternating.
 *
 *   npm run build && node bench/large-messages.mjs [--reply-mib 60] [--upload-mib 30] [--calls 5] [--rounds 2]
 *
 * Both servers answer /t.T/Big with a reply of the size asked for (built
 * once, then reused) and /t.T/Len with the byte length of the request
 * message. Prints the median time of --calls calls per round, and checks
 * every reply's size.
 */
import { once } from "node:events";
import { join } from "node:path";
import { Client, credentials } from "@grpc/grpc-js";
import { median, ROOT, spawnNode } from "./lib.mjs";
import { count, positive, readArgs } from "./lib-args.mjs";

const args = readArgs({ "reply-mib": positive(60), "upload-mib": positive(30), calls: count(5), rounds: count(2) });
const replyBytes = Math.round(args["reply-mib"] * 1024 * 1024);
const uploadBytes = Math.round(args["upload-mib"] * 1024 * 1024);
const { calls, rounds } = args;

// Each server prints "listening PORT". Sizes come as decimal text in the request message.
const ours = `
import { GrpcServer } from ${JSON.stringify(join(ROOT, "dist/omi/grpc/server.js"))};
import { FramedMessage, frameMessage } from ${JSON.stringify(join(ROOT, "dist/omi/grpc/frame.js"))};
const server = new GrpcServer({ maxMessageBytes: 128 * 1024 * 1024 });
const replies = new Map();
// Framed once and reused, as the baseline does (the Run path encodes straight into its frame).
server.unary("/t.T/Big", (bytes) => {
  const size = Number(Buffer.from(bytes).toString());
  if (!replies.has(size)) replies.set(size, new FramedMessage(frameMessage(Buffer.alloc(size, 7))));
  return replies.get(size);
});
server.unary("/t.T/Len", (bytes) => Buffer.from(String(bytes.byteLength)));
console.log("listening", await server.listen("127.0.0.1", 0));
`;
const baseline = `
import http2 from "node:http2";
const frame = (message) => { const out = Buffer.alloc(5 + message.length); out.writeUInt32BE(message.length, 1); message.copy(out, 5); return out; };
const replies = new Map();
const server = http2.createServer({ maxSessionMemory: 1000 });
server.on("stream", (stream, headers) => {
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  stream.on("end", () => {
    const message = Buffer.concat(chunks).subarray(5);
    let reply;
    if (headers[":path"] === "/t.T/Big") {
      const size = Number(message.toString());
      if (!replies.has(size)) replies.set(size, frame(Buffer.alloc(size, 7)));
      reply = replies.get(size);
    } else reply = frame(Buffer.from(String(message.length)));
    stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(reply);
  });
  stream.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => console.log("listening", server.address().port));
`;

async function start(source) {
  const proc = spawnNode(["--input-type=module", "-e", source]);
  const [line] = await Promise.race([
    once(proc.child.stdout, "data"),
    proc.exited.then(() => {
      throw new Error(`server exited: ${proc.output()}`);
    }),
  ]);
  const port = Number(/listening (\d+)/.exec(String(line))?.[1]);
  if (!port) throw new Error(`no port in ${line}`);
  return { proc, port };
}

async function measure(port) {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
  });
  const id = (b) => b;
  const call = (path, body) =>
    new Promise((resolve, reject) => client.makeUnaryRequest(path, id, id, body, (e, v) => (e ? reject(e) : resolve(v))));
  await call("/t.T/Big", Buffer.from("1")); // connect and warm up
  const reply = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    const got = await call("/t.T/Big", Buffer.from(String(replyBytes)));
    reply.push(performance.now() - t);
    if (got.length !== replyBytes) throw new Error(`a reply of ${got.length} bytes, expected ${replyBytes}`);
  }
  const upload = [];
  const body = Buffer.alloc(uploadBytes, 1);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    const got = await call("/t.T/Len", body);
    upload.push(performance.now() - t);
    if (got.toString() !== String(uploadBytes)) throw new Error(`the server counted ${got} bytes, expected ${uploadBytes}`);
  }
  client.close();
  return { reply: median(reply), upload: median(upload) };
}

const servers = [
  { label: "node:http2 ", proc: await start(baseline) },
  { label: "chassis-ts ", proc: await start(ours) },
];
try {
  console.log(`# ${replyBytes / 1048576} MiB replies and ${uploadBytes / 1048576} MiB requests, grpc-js client, median of ${calls} calls`);
  for (let round = 1; round <= rounds; round++) {
    for (const server of servers) {
      const { reply, upload } = await measure(server.proc.port);
      console.log(
        `round ${round} ${server.label} reply ${reply.toFixed(0)} ms (${(replyBytes / 1048576 / (reply / 1000)).toFixed(0)} MiB/s)  upload ${upload.toFixed(0)} ms`,
      );
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.proc.proc.stop()));
}

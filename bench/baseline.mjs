#!/usr/bin/env node
/**
 * The baseline: the Node transport's limit on this machine. One process with
 *  - a minimal node:http2 server answering every POST with a canned gRPC reply
 *    (the headers, DATA bytes and trailers chassis-ts sent for the same request,
 *    captured by bench/serve.mjs), after reading the request body; and
 *  - a minimal node:http server answering every POST with the canned KServe v1
 *    response (same headers and body bytes), after reading the request body.
 * No protobuf, no JSON, no routing: what is left is Node's HTTP/2 and HTTP/1.1.
 *
 *   node bench/baseline.mjs --canned FILE [--port 0] [--http-port 0]
 *
 * FILE (JSON): {"grpc": {"headers": {...}, "body": base64, "trailers": {...}},
 *               "rest": {"headers": [[name, value], ...], "body": base64, "keepAliveTimeoutMs": n}}
 * Listens on 127.0.0.1 only; exits on SIGTERM/SIGINT.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { readArgs, text, usageError, whole } from "./lib-args.mjs";

const args = readArgs({
  canned: text("the JSON file of canned answers (bench/serve.mjs writes it)"),
  port: whole(0),
  "http-port": whole(0),
});
if (!args.canned) usageError("--canned FILE is needed");
const canned = JSON.parse(readFileSync(args.canned, "utf8"));

// gRPC over HTTP/2
const grpcHeaders = { ...canned.grpc.headers, ":status": 200 };
delete grpcHeaders.date; // node:http2 adds its own date header, as the captured response had
const grpcBody = Buffer.from(canned.grpc.body, "base64");
const grpcTrailers = canned.grpc.trailers;
const h2 = http2.createServer();
h2.on("stream", (stream, headers) => {
  if (headers[":method"] !== "POST") {
    stream.respond({ ":status": 405 }, { endStream: true });
    return;
  }
  stream.on("data", () => {});
  stream.on("end", () => {
    if (stream.destroyed) return;
    stream.respond(grpcHeaders, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(grpcTrailers));
    stream.end(grpcBody);
  });
  stream.on("error", () => {});
});
h2.on("sessionError", () => {});

// KServe v1 over HTTP/1.1
const restBody = Buffer.from(canned.rest.body, "base64");
const restHeaders = canned.rest.headers.filter(([name]) => !/^(date|connection|keep-alive)$/i.test(name)).flat();
const h1 = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    res.writeHead(200, restHeaders);
    res.end(restBody);
  });
});
h1.keepAliveTimeout = canned.rest.keepAliveTimeoutMs ?? 5000;

h2.listen(args.port, "127.0.0.1", () => {
  process.stdout.write(`baseline gRPC listening on 127.0.0.1:${h2.address().port}\n`);
  h1.listen(args["http-port"], "127.0.0.1", () => {
    process.stdout.write(`baseline REST listening on 127.0.0.1:${h1.address().port}\n`);
  });
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    h1.closeAllConnections();
    h1.close();
    h2.close();
    setTimeout(() => process.exit(0), 200).unref();
  });
}

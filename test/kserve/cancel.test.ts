/**
 * A REST client that goes away before its answer cancels the predict: the
 * model's ctx.signal aborts (its sleep ends early and the item counts as
 * failed), while an answered request never aborts anything.
 */
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { after, before, describe, test } from "node:test";
import type { RunningServer } from "../../src/server/serve.js";
import { fixture, startInProcess } from "../helpers/server.js";

function post(port: number, body: string, abortAfterMs?: number): Promise<number | "aborted"> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/v1/models/slow:predict", method: "POST", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", (error) => (abortAfterMs === undefined ? reject(error) : resolve("aborted")));
    req.end(body);
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs);
  });
}

describe("KServe: a client that leaves cancels its predict", () => {
  let server: RunningServer;
  before(async () => {
    server = await startInProcess(fixture("slow.ts"), { interface: "kserve" });
  });
  after(() => server.forceClose());

  const sleep = (ms: number) => JSON.stringify({ instances: [{ sleep: Buffer.from(String(ms)).toString("base64") }] });
  const items = (outcome: string) => server.metrics.items.get({ interface: "v1", outcome });

  test("v1: the client disconnects at 100 ms of a 900 ms predict; the predict is aborted, not finished", async () => {
    assert.equal(await post(server.httpPort, sleep(900), 100), "aborted");
    // Well before the predict's 900 ms, and before the model's 1 s run timeout.
    for (let i = 0; i < 50 && items("failed") === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(items("failed"), 1, "the aborted predict counts as a failed item");
    assert.equal(items("ok"), 0);
  });

  test("v1: an answered request is not cancelled afterwards", async () => {
    assert.equal(await post(server.httpPort, sleep(10)), 200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(items("ok"), 1);
    assert.equal(items("failed"), 1, "unchanged");
  });
});

describe("KServe: a drain lets a predict in flight finish", () => {
  test("shutdown during a 300 ms predict: the answer is 200 with connection: close, new connections are refused, then the drain ends", async () => {
    const server = await startInProcess(fixture("slow.ts"), { interface: "kserve" });
    const agent = new Agent({ keepAlive: true });
    try {
      const body = JSON.stringify({ instances: [{ sleep: Buffer.from("300").toString("base64") }] });
      const answer = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        // A keep-alive agent: the request does not ask for the connection to close, so `connection: close` is the drain's.
        const req = request({ host: "127.0.0.1", port: server.httpPort, path: "/v1/models/slow:predict", method: "POST", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        });
        req.on("error", reject);
        req.end(body);
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const drained = server.shutdown("test");
      await new Promise((resolve) => setTimeout(resolve, 20));
      await assert.rejects(fetch(`http://127.0.0.1:${server.httpPort}/v2/health/live`), "the listener is closed");
      assert.deepEqual(await answer, { status: 200, connection: "close" });
      await drained;
    } finally {
      agent.destroy();
      server.forceClose();
    }
  });
});

/**
 * Graceful drain of a real `chassis serve` process: with 100 calls in flight,
 * a Shutdown call or a SIGTERM lets every accepted call finish with its
 * answer, and the process exits 0 (Chassis exits 143 after Shutdown).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { OmiClient } from "../../src/client/omi-client.js";
import { Code } from "../../src/core/code.js";
import type { ChassisError } from "../../src/core/error.js";
import { CHASSIS_BIN, fixture, ROOT, spawnServer } from "../helpers/server.js";

const decode = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

async function hundredInFlight(stop: (client: OmiClient, kill: (s: NodeJS.Signals) => void) => Promise<void>) {
  const server = await spawnServer([fixture("slow.ts"), "--host", "127.0.0.1", "--log-level", "info"]);
  const client = new OmiClient({ address: `127.0.0.1:${server.port}`, timeoutMs: 10_000 });
  try {
    await client.waitUntilReady({ timeoutMs: 5_000 });
    const calls = Array.from({ length: 100 }, (_, i) => client.run([{ input: `call ${i}`, sleep: "600" }]));
    // Let the 100 streams reach the server before stopping it.
    await new Promise((resolve) => setTimeout(resolve, 250));
    await stop(client, server.kill);
    const answers = await Promise.allSettled(calls);
    const failures = answers.filter((a) => a.status === "rejected");
    assert.equal(failures.length, 0, `rejected: ${failures.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 3)}`);
    answers.forEach((answer, i) => {
      const response = (answer as PromiseFulfilledResult<Awaited<(typeof calls)[number]>>).value;
      assert.equal(response.outputs[0]?.success, true);
      assert.equal(decode(response.outputs[0]?.output["results.json"]), `call ${i}`);
    });
    assert.equal(await server.exited, 0, server.stderr());
    assert.match(server.stderr(), /shut down cleanly/);
    // After the drain nothing listens: a new call fails fast with UNAVAILABLE.
    const late = new OmiClient({ address: `127.0.0.1:${server.port}`, timeoutMs: 2_000 });
    await assert.rejects(late.status(), (error: ChassisError) => error.code === Code.UNAVAILABLE);
    late.close();
  } finally {
    client.close();
    server.kill("SIGKILL");
  }
}

describe("graceful drain of chassis serve", () => {
  test("SIGTERM while 100 calls are in flight: every call is answered, exit status 0", async () => {
    await hundredInFlight(async (_client, kill) => kill("SIGTERM"));
  });

  test("Shutdown while 100 calls are in flight: the reply arrives, every call is answered, exit status 0", async () => {
    await hundredInFlight(async (client) => {
      const reply = await client.shutdown();
      assert.equal(reply.message, "Model Shutdown Successfully.");
    });
  });

  test("SIGTERM when idle exits 0 promptly", async () => {
    const server = await spawnServer(["examples/echo", "--host", "127.0.0.1"]);
    const started = Date.now();
    server.kill("SIGTERM");
    assert.equal(await server.exited, 0);
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  test("SIGTERM during a slow load: the port never opens and the exit status is 0", async () => {
    const child = spawn(process.execPath, [CHASSIS_BIN, "serve", fixture("slow-load.ts"), "--host", "127.0.0.1", "--port", "0"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    while (!stderr.includes("model Slow Load 0.1.0 from")) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.doesNotMatch(stderr, /listening/);
    assert.match(stderr, /shutting down \(SIGTERM\)/);
    assert.ok(Date.now() - started < 5_000);
  });
});

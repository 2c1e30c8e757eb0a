/**
 * What `chassis serve` loads: the Node built-ins that only some calls need
 * (node:zlib for compressed gRPC messages, node:crypto for v2 answer ids,
 * node:http and node:http2, which the server does not use: both protocols
 * run on its own HTTP code over node:net) stay unloaded through start-up
 * and a first Status, Run and v1 predict; perf_hooks (the `performance`
 * global, for call timings) through start-up and the first Status, what a
 * cold start measures (docs/performance.md).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { OmiClient } from "../../src/client/omi-client.js";
import { type ChildServer, ROOT, spawnServer } from "../helpers/server.js";

/** The built-in modules the server has loaded so far (its preload writes them on SIGUSR2). */
async function builtinsOf(server: ChildServer, listFile: string): Promise<Set<string>> {
  rmSync(listFile, { force: true });
  server.kill("SIGUSR2");
  let list: string[] = [];
  for (let i = 0; i < 100 && list.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      list = JSON.parse(readFileSync(listFile, "utf8")) as string[];
    } catch {
      list = [];
    }
  }
  assert.ok(list.length > 0, "the server wrote its module list");
  return new Set(list.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length)));
}

describe("start-up modules", () => {
  test("zlib, crypto, http and http2 stay unloaded through the first calls; perf_hooks through start-up and a Status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chassis-modules-"));
    const listFile = join(dir, "modules.json");
    const preload = join(dir, "preload.mjs");
    writeFileSync(
      preload,
      `import { writeFileSync } from "node:fs";\nprocess.on("SIGUSR2", () => writeFileSync(${JSON.stringify(listFile)}, JSON.stringify(process.moduleLoadList)));\n`,
    );
    const server = await spawnServer([join(ROOT, "examples/echo"), "--host", "127.0.0.1"], {
      NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
    });
    const client = new OmiClient({ address: `127.0.0.1:${server.port}` });
    try {
      // Longer than the REST server's timeout check (1 s): an idle server's timer must not load perf_hooks either
      // (it did, and a slow CI run's Status came after it).
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await client.status()).statusCode, 200);
      const afterStatus = await builtinsOf(server, listFile);
      for (const loaded of ["net", "fs"]) assert.ok(afterStatus.has(loaded), `${loaded} is in the list, so the list is real`);
      for (const unloaded of ["zlib", "crypto", "http", "http2", "perf_hooks"]) {
        assert.ok(!afterStatus.has(unloaded), `${unloaded} was loaded by start-up and a Status`);
      }

      assert.equal((await client.run([{ input: "hi" }])).statusCode, 200);
      const reply = await fetch(`http://127.0.0.1:${server.httpPort}/v1/models/echo:predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ instances: [Buffer.from("hi").toString("base64")] }),
      });
      assert.deepEqual(await reply.json(), { predictions: ["hi"] });
      const afterCalls = await builtinsOf(server, listFile);
      for (const unloaded of ["zlib", "crypto", "http", "http2"])
        assert.ok(!afterCalls.has(unloaded), `${unloaded} was loaded by the calls`);
    } finally {
      client.close();
      server.kill();
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

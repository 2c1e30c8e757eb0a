/**
 * What `chassis serve` loads: the Node built-ins that only some calls need
 * (node:zlib for compressed gRPC messages, node:crypto for v2 answer ids,
 * node:http2, which the server does not use) stay unloaded through start-up
 * and a first Status, Run and v1 predict (docs/performance.md, cold start).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { OmiClient } from "../../src/client/omi-client.js";
import { ROOT, spawnServer } from "../helpers/server.js";

describe("start-up modules", () => {
  test("node:zlib, node:crypto and node:http2 are not loaded by start-up and the first calls; node:http and node:net are", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chassis-modules-"));
    const listFile = join(dir, "modules.json");
    // Preloaded into the server: on SIGUSR2, write the built-ins loaded so far.
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
      assert.equal((await client.status()).statusCode, 200);
      assert.equal((await client.run([{ input: "hi" }])).statusCode, 200);
      const reply = await fetch(`http://127.0.0.1:${server.httpPort}/v1/models/echo:predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ instances: [Buffer.from("hi").toString("base64")] }),
      });
      assert.deepEqual(await reply.json(), { predictions: ["hi"] });
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
      const builtins = new Set(list.filter((m) => m.startsWith("NativeModule ")).map((m) => m.slice("NativeModule ".length)));
      for (const loaded of ["http", "net"]) assert.ok(builtins.has(loaded), `${loaded} is in the list, so the list is real`);
      for (const unloaded of ["zlib", "crypto", "http2"]) assert.ok(!builtins.has(unloaded), `${unloaded} was loaded`);
    } finally {
      client.close();
      server.kill();
      await server.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

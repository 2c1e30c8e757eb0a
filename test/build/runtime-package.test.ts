/**
 * The runtime package as bin/chassis.js and images run it
 * (src/build/image/runtime-package.ts), written to a folder inside the
 * repository so that esbuild, which it leaves out, resolves as it does from
 * dist/bundle/. Its code cache is checked across processes: a served start
 * writes it, the next process runs from it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { bundleRuntimePackage } from "../../src/build/image/runtime-package.js";
import { VERSION } from "../../src/core/version.js";
import { ROOT, spawnServer } from "../helpers/server.js";

const dir = join(ROOT, "node_modules", ".cache", "chassis-ts-runtime-package-test");
const cacheDir = join(dir, ".code-cache");

/** Runs an ES module's text in a new node; returns its stdout. */
function runModule(source: string): string {
  return execFileSync(process.execPath, ["--input-type=module", "-e", source], { encoding: "utf8", cwd: ROOT });
}

describe("the runtime package", () => {
  before(async () => {
    rmSync(dir, { recursive: true, force: true });
    const { files } = await bundleRuntimePackage({ minify: false });
    for (const file of files) {
      mkdirSync(dirname(join(dir, file.path)), { recursive: true });
      writeFileSync(join(dir, file.path), file.contents);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("its entry exports what dist/index.js does; the library is ASCII, its vendored packages beside it", () => {
    const keys = (url: string) => `Object.keys(await import(${JSON.stringify(url)})).sort()`;
    const both = runModule(
      `console.log(JSON.stringify([${keys(pathToFileURL(join(dir, "index.mjs")).href)}, ${keys(pathToFileURL(join(ROOT, "dist/index.js")).href)}]))`,
    );
    const [packaged, built] = JSON.parse(both) as [string[], string[]];
    assert.ok(built.includes("defineModel") && built.includes("OmiClient"));
    assert.deepEqual(packaged, built);
    const library = readFileSync(join(dir, "lib/chassis.cjs"));
    // Otherwise V8 holds the whole source as UTF-16, twice the bytes to scan.
    assert.equal(
      library.findIndex((byte) => byte > 0x7f),
      -1,
      "lib/chassis.cjs is ASCII",
    );
    for (const vendored of ["grpc-js.cjs", "protobuf.cjs"]) {
      assert.ok(existsSync(join(dir, "lib", vendored)), vendored);
      assert.ok(library.includes(`require("./${vendored}")`), `chassis.cjs requires ./${vendored}`);
    }
    assert.equal(execFileSync(process.execPath, [join(dir, "cli.mjs"), "--version"], { encoding: "utf8" }).trim(), VERSION);
  });

  test("a served start writes the code cache; the next process runs from it; the client's vendored grpc-js answers", async () => {
    assert.equal(existsSync(cacheDir), false, "--version writes no cache: only a server's start does");
    const server = await spawnServer(["examples/echo", "--host", "127.0.0.1"], {}, 20_000, join(dir, "cli.mjs"));
    try {
      const status = runModule(
        `import { OmiClient } from ${JSON.stringify(pathToFileURL(join(dir, "index.mjs")).href)};\n` +
          `const client = new OmiClient({ address: "127.0.0.1:${server.port}" });\n` +
          "const status = await client.status();\nclient.close();\nconsole.log(status.statusCode);",
      );
      assert.equal(status.trim(), "200");
      for (let i = 0; i < 100 && !existsSync(cacheDir); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const written = readdirSync(cacheDir);
      assert.equal(written.length, 1);
      assert.match(written[0] as string, new RegExp(`^chassis-[0-9a-f]{16}-${process.version}-${process.arch}\\.bin$`));
    } finally {
      server.kill();
      await server.exited;
    }
    const loaded = runModule(
      `import { loadRuntime } from ${JSON.stringify(pathToFileURL(join(dir, "load.mjs")).href)};\nconsole.log(loadRuntime().cache);`,
    );
    assert.equal(loaded.trim(), "accepted");
  });
});

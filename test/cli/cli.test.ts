/**
 * The `chassis` command as users run it: real processes, real ports, and the
 * exit statuses of the tool error catalog (src/core/tool-error.ts).
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { TOOL_ERRORS } from "../../src/core/tool-error.js";
import { CHASSIS_BIN, fixture, ROOT, runCli, runProcess, spawnServer } from "../helpers/server.js";

const exit = (id: keyof typeof TOOL_ERRORS) => TOOL_ERRORS[id].exit;
const scratch = mkdtempSync(join(tmpdir(), "chassis-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Writes files (path -> text) into a new folder under the scratch folder and returns it. */
function scratchFolder(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe("chassis (usage)", () => {
  test("--help prints usage and exits 0; no command exits 2; an unknown command names itself", async () => {
    const help = await runCli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /chassis serve <model>/);
    assert.equal((await runCli([])).code, exit("CHASSIS_USAGE"));
    const unknown = await runCli(["frobnicate"]);
    assert.equal(unknown.code, exit("CHASSIS_USAGE"));
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  test("unknown flags are ignored with a warning, as KServe's ModelServer does; KServe's spellings work", async () => {
    const server = await spawnServer([
      "examples/echo",
      "--host",
      "127.0.0.1",
      "--enable_docs_url",
      "true",
      "--max_threads=4",
      "--model_name",
      "echo-x",
    ]);
    try {
      assert.match(server.stderr(), /ignoring unknown flags: --enable_docs_url, --max_threads/);
      const models = await fetch(`http://127.0.0.1:${server.httpPort}/v1/models`).then((r) => r.json());
      assert.deepEqual(models, { models: ["echo-x"] });
    } finally {
      server.kill("SIGKILL");
    }
  });

  test("a bad port or an unknown interface is a usage error naming the setting", async () => {
    const port = await runCli(["serve", "examples/echo"], { PSC_MODEL_PORT: "http" });
    assert.equal(port.code, exit("CHASSIS_USAGE"));
    assert.match(port.stderr, /PSC_MODEL_PORT="http" is not a port/);
    const iface = await runCli(["serve", "examples/echo", "--interface", "rest"]);
    assert.equal(iface.code, exit("CHASSIS_USAGE"));
    assert.match(iface.stderr, /--interface="rest" is not valid \(expected "omi" or "kserve" or "both"\)/);
  });
});

describe("chassis serve (start-up failures)", () => {
  test("a missing module exits 3 with CHASSIS_MODULE_NOT_FOUND", async () => {
    const result = await runCli(["serve", "examples/nope"]);
    assert.equal(result.code, exit("CHASSIS_MODULE_NOT_FOUND"));
    assert.match(result.stderr, /\[CHASSIS_MODULE_NOT_FOUND\]: model not found: examples\/nope does not exist/);
  });

  test("a folder without a model file exits 3 and lists what it looked for", async () => {
    const result = await runCli(["serve", "docs"]);
    assert.equal(result.code, exit("CHASSIS_MODULE_NOT_FOUND"));
    assert.match(result.stderr, /has none of model\.ts, model\.mts/);
  });

  test("invalid metadata exits 4 naming every problem", async () => {
    const result = await runCli(["serve", fixture("invalid-metadata.ts")]);
    assert.equal(result.code, exit("CHASSIS_INVALID_MODEL"));
    assert.match(result.stderr, /version must not be empty/);
    assert.match(result.stderr, /inputs must list at least one input/);
    assert.match(result.stderr, /outputs\[0\]\.maxSize "lots" is not a size/);
  });

  test("a TypeScript model that does not compile exits 3 naming the file, line and column", async () => {
    const dir = scratchFolder("broken", {
      "syntax.ts": 'import { defineModel } from "chassis-ts";\nconst x: number = ;\n',
      "missing.ts": 'import { defineModel } from "chassis-ts";\nimport { nope } from "no-such-package";\nexport default nope;\n',
    });
    const syntax = await runCli(["serve", join(dir, "syntax.ts")]);
    assert.equal(syntax.code, exit("CHASSIS_MODULE_FAILED"));
    assert.match(syntax.stderr, /\[CHASSIS_MODULE_FAILED\]: importing .*syntax\.ts failed: .*syntax\.ts:2:18: Unexpected ";"/);
    const missing = await runCli(["serve", join(dir, "missing.ts")]);
    assert.equal(missing.code, exit("CHASSIS_MODULE_FAILED"));
    assert.match(missing.stderr, /missing\.ts failed: .*missing\.ts:2:21: Cannot find package "no-such-package"/);
  });

  test("where the compiled-model cache cannot be written, tsx compiles the model instead, with a warning", async () => {
    const chassis = pathToFileURL(join(ROOT, "dist/index.js")).href;
    const dir = scratchFolder("read-only-cache", {
      "model.ts": `import { defineModel, type ModelItem } from "${chassis}";\nexport default defineModel({ name: "Echo", version: "1.0.0", inputs: [{ key: "input" }], outputs: [{ key: "results.json" }], predict: (item: ModelItem) => ({ "results.json": item.get("input") }) });\n`,
      "package.json": '{ "type": "module" }',
      node_modules: "a file where the cache folder would go",
    });
    const result = await runCli(["test", dir, "--input", "input=hi"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "item 0: ok\n  results.json: hi\n");
    assert.match(result.stderr, /cannot cache the compiled model \(.*\); compiling it with tsx instead/);
  });

  test("a module without a model export exits 4 and says what to export", async () => {
    const result = await runCli(["serve", fixture("no-model.ts")]);
    assert.equal(result.code, exit("CHASSIS_INVALID_MODEL"));
    assert.match(result.stderr, /exports no model \(found answer\)/);
    assert.match(result.stderr, /export default defineModel/);
  });

  test("a busy port exits 6 with CHASSIS_PORT_IN_USE", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const result = await runCli(["serve", "examples/echo", "--host", "127.0.0.1", "--port", String(port)]);
      assert.equal(result.code, exit("CHASSIS_PORT_IN_USE"));
      assert.match(result.stderr, new RegExp(`port ${port} on 127.0.0.1 is already in use`));
    } finally {
      blocker.close();
    }
  });
});

describe("chassis test", () => {
  test("prints each output, JSON pretty-printed", async () => {
    const result = await runCli(["test", "examples/echo", "--input", 'input={"a":[1,2]}']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'item 0: ok\n  results.json:\n    {\n      "a": [\n        1,\n        2\n      ]\n    }\n');
  });

  test("a failing item prints its error and exits 10", async () => {
    const result = await runCli(["test", "examples/echo", "--input", "raise=requested failure"]);
    assert.equal(result.code, exit("CHASSIS_ITEM_FAILED"));
    assert.equal(result.stdout, "item 0: failed\n  error: requested failure\n");
  });

  test("reads --input key=@file and runs the digits model", async () => {
    const result = await runCli(["test", "examples/digits", "--input", "input=@examples/digits/sample.json", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const [item] = JSON.parse(result.stdout) as Array<{ success: boolean; outputs: Record<string, string> }>;
    assert.equal(item?.success, true);
    const prediction = JSON.parse(item?.outputs["results.json"] ?? "") as { classPredictions: Array<{ class: number }> };
    assert.equal(prediction.classPredictions[0]?.class, 1);
  });

  test("an unreadable input file or a malformed --input exits 7", async () => {
    const missing = await runCli(["test", "examples/echo", "--input", "input=@nowhere.bin"]);
    assert.equal(missing.code, exit("CHASSIS_BAD_INPUT"));
    assert.match(missing.stderr, /--input input=@nowhere\.bin: cannot read the file \(no such file\)/);
    const malformed = await runCli(["test", "examples/echo", "--input", "novalue"]);
    assert.equal(malformed.code, exit("CHASSIS_BAD_INPUT"));
    assert.match(malformed.stderr, /"novalue" is not key=value/);
  });
});

describe("chassis client", () => {
  test("status, run and shutdown against chassis serve examples/digits", async () => {
    const server = await spawnServer(["examples/digits", "--host", "127.0.0.1"]);
    try {
      const port = String(server.port);
      const status = await runCli(["client", "status", "--port", port, "--wait", "10s"]);
      assert.equal(status.code, 0, status.stderr);
      const parsed = JSON.parse(status.stdout) as { statusCode: number; modelInfo: { modelName: string } };
      assert.equal(parsed.statusCode, 200);
      assert.equal(parsed.modelInfo.modelName, "Digits Classifier");

      const run = await runCli(["client", "run", "--port", port, "--input", "input=@examples/digits/sample.json"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^200 OK: Inference executed\nitem 0: ok\n {2}results\.json:\n/);
      assert.match(run.stdout, /"class": 1,/);
      // onnxruntime 1.30's telemetry leaves this file behind each process it starts in; chassis-ts turns it off.
      const telemetryLog = `/tmp/mat-debug-${server.process.pid}.log`;
      assert.ok(!existsSync(telemetryLog), `${telemetryLog} exists: onnxruntime's telemetry ran`);

      const bad = await runCli(["client", "run", "--port", port, "--input", "input=[1,2,3]"]);
      assert.equal(bad.code, exit("CHASSIS_ITEM_FAILED"));
      assert.match(bad.stdout, /error: input must be a JSON array of 64 numbers/);

      const shutdown = await runCli(["client", "shutdown", "--port", port]);
      assert.equal(shutdown.code, 0);
      assert.match(shutdown.stdout, /"message":"Model Shutdown Successfully\."/);
      assert.equal(await server.exited, 0);
    } finally {
      server.kill("SIGKILL");
    }
  });

  test("a server that is not there exits 8 (CHASSIS_UNREACHABLE)", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const result = await runCli(["client", "status", "--port", String(port), "--timeout", "2s"]);
    assert.equal(result.code, exit("CHASSIS_UNREACHABLE"));
    assert.match(result.stderr, /\[CHASSIS_UNREACHABLE\]: Status at localhost:\d+ failed: UNAVAILABLE/);
  });
});

describe("bin/chassis.js", () => {
  test("runs dist/bundle/cli.mjs while no file it was made from is newer, else dist/cli/run.js", async () => {
    const dir = scratchFolder("bin", {
      "package.json": '{ "type": "module" }',
      "dist/cli/run.js": 'process.stdout.write("dist\\n");\n',
      "dist/other.js": "",
      "dist/bundle/cli.mjs": 'process.stdout.write("bundle\\n");\n',
    });
    mkdirSync(join(dir, "bin"));
    copyFileSync(CHASSIS_BIN, join(dir, "bin/chassis.js"));
    const builtAt = Date.now();
    const past = new Date(builtAt - 60_000);
    for (const file of ["dist/cli/run.js", "dist/other.js"]) utimesSync(join(dir, file), past, past);
    const sources = (list: string[]) => writeFileSync(join(dir, "dist/bundle/sources.json"), JSON.stringify({ builtAt, sources: list }));
    const which = async () => (await runProcess(process.execPath, [join(dir, "bin/chassis.js")], { timeoutMs: 10_000 })).stdout;

    sources(["cli/run.js", "other.js"]);
    assert.equal(await which(), "bundle\n");
    const later = new Date(builtAt + 60_000);
    utimesSync(join(dir, "dist/other.js"), later, later); // rebuilt by tsc after the bundle
    assert.equal(await which(), "dist\n");
    sources(["cli/run.js", "gone.js"]); // a source the bundle holds no longer exists
    assert.equal(await which(), "dist\n");
    rmSync(join(dir, "dist/bundle/sources.json"));
    assert.equal(await which(), "dist\n");
  });
});

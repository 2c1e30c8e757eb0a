/**
 * The README's snippets work as written: its model compiles and predicts
 * through `chassis-ts`, and its CLI lines run against a real server.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModelModule } from "../src/server/load-module.js";
import { ROOT, runCli, spawnServer } from "./helpers/server.js";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const blocks = (lang: string) => [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1] ?? "");

test("the README's model runs through the published entry point and echoes its input", async () => {
  const [source] = blocks("ts");
  assert.ok(source?.includes("defineModel"), "the README has a ts block with a model");
  const dir = join(ROOT, "test", ".tmp-readme");
  mkdirSync(dir, { recursive: true });
  try {
    const file = join(dir, "model.ts");
    writeFileSync(file, source ?? "");
    const { model } = await loadModelModule(file);
    const [outcome] = await model.test([{ input: "hi" }]);
    assert.ok(outcome?.ok);
    assert.equal(new TextDecoder().decode(outcome.outputs["results.json"]), "hi");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the README's CLI lines work (test, serve, client status/run/shutdown)", async () => {
  const lines = blocks("sh")
    .flatMap((block) => block.split("\n"))
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line.startsWith("npx chassis "))
    .map((line) => line.slice("npx chassis ".length).split(/\s+/));
  const testLine = lines.find((args) => args[0] === "test");
  assert.ok(testLine);
  const tested = await runCli(testLine);
  assert.equal(tested.code, 0, tested.stderr);
  assert.match(tested.stdout, /"class": 1/);

  const serveLine = lines.find((args) => args[0] === "serve");
  assert.ok(serveLine);
  const server = await spawnServer([...serveLine.slice(1), "--host", "127.0.0.1"]);
  try {
    const port = ["--port", String(server.port)];
    for (const action of ["status", "run", "shutdown"]) {
      const line = lines.find((args) => args[0] === "client" && args[1] === action);
      assert.ok(line, `README shows chassis client ${action}`);
      const result = await runCli([...line, ...port]);
      assert.equal(result.code, 0, `${line.join(" ")}: ${result.stderr}`);
    }
    assert.equal(await server.exited, 0);
  } finally {
    server.kill("SIGKILL");
  }
});

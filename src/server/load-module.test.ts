/**
 * Runs in a child `node` (no tsx, whose loader turns source maps on for the
 * whole test process) against dist/: the build is current under `npm test`.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = mkdtempSync(join(tmpdir(), "chassis-load-"));
after(() => rmSync(root, { recursive: true, force: true }));
const distLoadModule = new URL("../../dist/server/load-module.js", import.meta.url).href;

describe("loadModelModule", () => {
  test("a TypeScript model's stack traces name its .ts lines; its packages load first, once, without their source maps", () => {
    const files: Record<string, string> = {
      "model.ts": [
        'import { defineModel } from "chassis-ts";',
        'import { loaded } from "counted-pkg";',
        "",
        "function fail(): never {",
        '  throw new Error("boom");',
        "}",
        "",
        "export default defineModel({",
        '  name: "Stack", version: "1.0.0", inputs: [{ key: "input" }], outputs: [{ key: "out" }],',
        "  predict: () => (loaded > 0 ? fail() : {}),",
        "});",
        "",
      ].join("\n"),
      "node_modules/counted-pkg/package.json": '{ "name": "counted-pkg", "type": "module", "exports": "./index.js" }',
      "node_modules/counted-pkg/index.js":
        "globalThis.chassisCountedLoads = (globalThis.chassisCountedLoads ?? 0) + 1;\nexport const loaded = globalThis.chassisCountedLoads;\n//# sourceMappingURL=index.js.map\n",
      "node_modules/counted-pkg/index.js.map": '{"version":3,"sources":["index.ts"],"names":[],"mappings":"AAAA"}',
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const script = `
      import { findSourceMap } from "node:module";
      import { loadModelModule } from ${JSON.stringify(distLoadModule)};
      const { model } = await loadModelModule(${JSON.stringify(root)});
      let stack = "";
      try { model.definition.predict(); } catch (error) { stack = error.stack; }
      const packageMap = findSourceMap(${JSON.stringify(join(root, "node_modules/counted-pkg/index.js"))});
      console.log(JSON.stringify({ loads: globalThis.chassisCountedLoads, stack, packageMap: packageMap !== undefined }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
    });
    const result = JSON.parse(out) as { loads: number; stack: string; packageMap: boolean };
    assert.equal(result.loads, 1);
    assert.match(result.stack, /^Error: boom\n/);
    assert.ok(result.stack.includes(`${join(root, "model.ts")}:5:`), result.stack);
    assert.equal(result.packageMap, false, "the package's .map was not read");
  });
});

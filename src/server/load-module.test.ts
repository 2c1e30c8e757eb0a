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

  test("the model's packages load with ORT_DISABLE_TELEMETRY=1 unless the user set it", () => {
    const dir = join(root, "telemetry");
    const files: Record<string, string> = {
      "model.mjs": [
        `import { defineModel } from ${JSON.stringify(new URL("../../dist/index.js", import.meta.url).href)};`,
        'import { seen } from "env-pkg";',
        "export default defineModel({",
        '  name: "Env", version: "1.0.0", inputs: [{ key: "input" }], outputs: [{ key: "out" }],',
        "  predict: () => ({ out: seen }),",
        "});",
        "",
      ].join("\n"),
      // As a native package does, it reads the variable when it loads.
      "node_modules/env-pkg/package.json": '{ "name": "env-pkg", "type": "module", "exports": "./index.js" }',
      "node_modules/env-pkg/index.js": "export const seen = String(process.env.ORT_DISABLE_TELEMETRY);\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const seenWith = (value: string | undefined): string => {
      const env = { ...process.env };
      delete env.ORT_DISABLE_TELEMETRY;
      if (value !== undefined) env.ORT_DISABLE_TELEMETRY = value;
      const script = `
        import { loadModelModule } from ${JSON.stringify(distLoadModule)};
        const { model } = await loadModelModule(${JSON.stringify(dir)});
        console.log(model.definition.predict().out);
      `;
      return execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        encoding: "utf8",
        env,
        cwd: fileURLToPath(new URL("../..", import.meta.url)),
      }).trim();
    };
    assert.equal(seenWith(undefined), "1");
    assert.equal(seenWith(""), "1", "empty counts as unset, as for chassis-ts's own variables");
    assert.equal(seenWith("0"), "0", "the user's own setting wins");
  });
});

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { compileModel, contentHash, MODEL_CACHE_DIR, ModelCompileError } from "./compile-model.js";

const root = mkdtempSync(join(tmpdir(), "chassis-compile-"));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;

/** A fresh model folder holding `files` (path -> text). */
function folder(files: Record<string, string>): string {
  const dir = join(root, `m${folders++}`);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** Imports a compiled module under a new query, so an edit shows even if its URL was imported before. */
async function load(url: string): Promise<Record<string, unknown>> {
  return (await import(`${url}?${Math.random()}`)) as Record<string, unknown>;
}

const compiledFiles = (dir: string) => readdirSync(join(dir, MODEL_CACHE_DIR)).filter((name) => name.endsWith(".mjs"));

describe("compileModel", () => {
  test("compiles TypeScript into the model folder's node_modules/.cache, then reuses it while the sources are unchanged", async () => {
    const dir = folder({ "model.ts": 'const answer: number = 42;\nexport default { answer, label: "a" as const };\n' });
    const first = await compileModel(join(dir, "model.ts"), { chassisUrl: undefined });
    assert.equal(first.cached, false);
    assert.ok(fileURLToPath(first.url).startsWith(join(dir, MODEL_CACHE_DIR)));
    assert.deepEqual((await load(first.url)).default, { answer: 42, label: "a" });
    const second = await compileModel(join(dir, "model.ts"), { chassisUrl: undefined });
    assert.deepEqual(second, { url: first.url, packagesUrl: first.packagesUrl, cached: true });
  });

  test("an edit to the entry, to a file it imports, or a new tsconfig.json compiles again and drops the stale module", async () => {
    const dir = folder({
      "model.ts": 'import { word } from "./lib/word.js";\nexport default word;\n',
      "lib/word.ts": 'export const word: string = "one";\n',
    });
    const entry = join(dir, "model.ts");
    const one = await compileModel(entry, { chassisUrl: undefined });
    assert.equal((await load(one.url)).default, "one");

    writeFileSync(join(dir, "lib/word.ts"), 'export const word: string = "two";\n');
    const two = await compileModel(entry, { chassisUrl: undefined });
    assert.equal(two.cached, false);
    assert.notEqual(two.url, one.url);
    assert.equal((await load(two.url)).default, "two");
    const name = (url: string) => fileURLToPath(url).split("/").pop();
    assert.deepEqual(compiledFiles(dir).sort(), [name(two.url), name(two.packagesUrl)].sort());

    writeFileSync(entry, 'import { word } from "./lib/word.js";\nexport default word + "!";\n');
    const three = await compileModel(entry, { chassisUrl: undefined });
    assert.equal(three.cached, false);
    assert.equal((await load(three.url)).default, "two!");

    // tsconfig.json changes how TypeScript compiles, so it is an input too.
    writeFileSync(join(dir, "tsconfig.json"), '{ "compilerOptions": { "useDefineForClassFields": false } }\n');
    assert.equal((await compileModel(entry, { chassisUrl: undefined })).cached, false);
    assert.equal((await compileModel(entry, { chassisUrl: undefined })).cached, true);
  });

  test("import.meta.url, .filename and .dirname are the entry's in every bundled file, so data files beside it are found", async () => {
    const dir = folder({
      "model.ts": [
        'import { readFileSync } from "node:fs";',
        'import { subUrl } from "./sub/where.js";',
        'const data = JSON.parse(readFileSync(new URL("./data.json", import.meta.url), "utf8"));',
        "export default { url: import.meta.url, filename: import.meta.filename, dirname: import.meta.dirname, subUrl, data };",
        "",
      ].join("\n"),
      "sub/where.ts": "export const subUrl = import.meta.url;\n",
      "data.json": '{"weights":[1,2]}',
    });
    const entry = join(dir, "model.ts");
    const exported = (await load((await compileModel(entry, { chassisUrl: undefined })).url)).default;
    const url = pathToFileURL(entry).href;
    assert.deepEqual(exported, { url, filename: entry, dirname: dir, subUrl: url, data: { weights: [1, 2] } });
  });

  test('"chassis-ts" becomes the running chassis-ts; packages, built-ins and URLs stay imports; TypeScript packages are bundled', async () => {
    writeFileSync(join(root, "by-url.mjs"), "export const answer = 42;\n");
    const dir = folder({
      "model.ts": [
        'import { Code } from "chassis-ts";',
        'import { shout } from "plain-pkg";',
        'import { whisper } from "ts-pkg";',
        'import { sep } from "node:path";',
        'import { EOL } from "os";',
        `import { answer } from "${pathToFileURL(join(root, "by-url.mjs")).href}";`,
        'export default { code: Code.NOT_FOUND, said: shout("hi"), quiet: whisper("HI"), builtins: sep + EOL, answer };',
        "",
      ].join("\n"),
      "node_modules/plain-pkg/package.json": '{ "name": "plain-pkg", "type": "module", "exports": "./index.js" }',
      "node_modules/plain-pkg/index.js": "export const shout = (s) => s.toUpperCase();\n",
      "node_modules/ts-pkg/package.json": '{ "name": "ts-pkg", "type": "module", "exports": "./index.ts" }',
      "node_modules/ts-pkg/index.ts": "export const whisper = (s: string): string => s.toLowerCase();\n",
    });
    const chassisUrl = pathToFileURL(fileURLToPath(new URL("../core/code.ts", import.meta.url))).href;
    const { url } = await compileModel(join(dir, "model.ts"), { chassisUrl });
    const code = readFileSync(fileURLToPath(url), "utf8");
    assert.match(code, new RegExp(`from "${chassisUrl}"`));
    assert.match(code, /from "plain-pkg"/);
    assert.doesNotMatch(code, /from "ts-pkg"/);
    assert.deepEqual((await load(url)).default, { code: 5, said: "HI", quiet: "hi", builtins: "/\n", answer: 42 });
  });

  test("the packages module imports what the compiled module imports from packages and URLs, in its order, and nothing else", async () => {
    writeFileSync(join(root, "side-effect.mjs"), "globalThis.chassisSideEffects = [...(globalThis.chassisSideEffects ?? []), 'url'];\n");
    const byUrl = pathToFileURL(join(root, "side-effect.mjs")).href;
    const dir = folder({
      "model.ts": [
        'import "b-pkg";',
        'import { sep } from "node:path";',
        `import "${byUrl}";`,
        'import { a } from "a-pkg";',
        'import { local } from "./local.js";',
        "export default { sep, a, local };",
        "",
      ].join("\n"),
      "local.ts": 'import "a-pkg";\nimport table from "a-pkg/table.json" with { type: "json" };\nexport const local = table.one;\n',
      "node_modules/a-pkg/package.json":
        '{ "name": "a-pkg", "type": "module", "exports": { ".": "./index.js", "./table.json": "./table.json" } }',
      "node_modules/a-pkg/table.json": '{ "one": 1 }',
      "node_modules/a-pkg/index.js":
        "globalThis.chassisSideEffects = [...(globalThis.chassisSideEffects ?? []), 'a'];\nexport const a = 1;\n",
      "node_modules/b-pkg/package.json": '{ "name": "b-pkg", "type": "module", "exports": "./index.js" }',
      "node_modules/b-pkg/index.js": "globalThis.chassisSideEffects = [...(globalThis.chassisSideEffects ?? []), 'b'];\n",
    });
    const { url, packagesUrl } = await compileModel(join(dir, "model.ts"), { chassisUrl: undefined });
    const imports = [...readFileSync(fileURLToPath(packagesUrl), "utf8").matchAll(/^import "([^"]+)";$/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ["b-pkg", byUrl, "a-pkg"]);
    // Evaluated in the same order as by the model itself, and only once.
    const effects = globalThis as { chassisSideEffects?: string[] };
    effects.chassisSideEffects = [];
    await import(packagesUrl);
    assert.deepEqual(effects.chassisSideEffects, ["b", "url", "a"]);
    // A JSON import keeps its attributes in the model and is not in the packages module (it could not be imported there).
    assert.equal(((await import(url)) as { default: { local: number } }).default.local, 1);
    assert.deepEqual(effects.chassisSideEffects, ["b", "url", "a"]);
  });

  test("a syntax error, a missing package and a missing file throw ModelCompileError naming file:line:column", async () => {
    const dir = folder({
      "syntax.ts": "export const x: number = ;\n",
      "package.ts": 'import { nope } from "no-such-package";\nexport default nope;\n',
      "relative.ts": 'export { nope } from "./nope.js";\n',
    });
    const failure = async (name: string) => {
      const error = await compileModel(join(dir, name), { chassisUrl: undefined }).then(
        () => assert.fail(`${name} compiled`),
        (e: unknown) => e,
      );
      assert.ok(error instanceof ModelCompileError, String(error));
      return error.message;
    };
    assert.match(await failure("syntax.ts"), /syntax\.ts:1:25: Unexpected ";"/);
    assert.match(await failure("package.ts"), /package\.ts:1:21: Cannot find package "no-such-package"/);
    assert.match(await failure("relative.ts"), /relative\.ts:1:21: Could not resolve "\.\/nope\.js"/);
    assert.equal(existsSync(join(dir, MODEL_CACHE_DIR)) ? compiledFiles(dir).length : 0, 0, "nothing compiled is left behind");
  });

  test("a folder where the cache cannot be made throws the file system's error (the loader then falls back to tsx)", async () => {
    const dir = folder({ "model.ts": "export default 1;\n", node_modules: "not a folder" });
    await assert.rejects(compileModel(join(dir, "model.ts"), { chassisUrl: undefined }), (error: NodeJS.ErrnoException) => {
      assert.ok(error.code === "ENOTDIR" || error.code === "EEXIST", String(error));
      return true;
    });
  });

  test("contentHash: 28 hex digits, the same for the same bytes, different after any one-byte edit of a source-sized text", () => {
    const text = Buffer.from(readFileSync(fileURLToPath(import.meta.url)));
    const hash = contentHash(text);
    assert.match(hash, /^[0-9a-f]{28}$/);
    assert.equal(contentHash(Buffer.from(text)), hash);
    const seen = new Set([hash]);
    // Every position, changed by one bit, and a byte appended or removed: all distinct.
    for (let i = 0; i < text.length; i++) {
      const edited = Buffer.from(text);
      edited[i] = (edited[i] as number) ^ (1 << (i % 8));
      seen.add(contentHash(edited));
    }
    seen.add(contentHash(Buffer.concat([text, Buffer.from(" ")])));
    seen.add(contentHash(text.subarray(0, -1)));
    assert.equal(seen.size, text.length + 3);
  });

  test("contentHash: the bytes decide, not where they sit in memory; trailing zero bytes and short inputs count", () => {
    const text = Buffer.from("export default defineModel({ name: 'x' });\n");
    const expected = contentHash(text);
    // The same bytes at every offset of a larger buffer: 32-bit words are read from an aligned copy when needed.
    for (let offset = 1; offset < 8; offset++) {
      const backing = new Uint8Array(text.length + 16).fill(0xff);
      backing.set(text, offset);
      assert.equal(contentHash(backing.subarray(offset, offset + text.length)), expected, `offset ${offset}`);
      // A Buffer's slice() is a view, not a copy: the unaligned path must not read from the start of its memory.
      const buffer = Buffer.alloc(text.length + 16, 0xff);
      buffer.set(text, offset);
      assert.equal(contentHash(buffer.subarray(offset, offset + text.length)), expected, `Buffer offset ${offset}`);
    }
    const seen = new Set<string>();
    for (const bytes of [[], [0], [0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0, 0], [1], [1, 0, 0, 0], [0, 0, 0, 1]]) {
      seen.add(contentHash(Uint8Array.from(bytes)));
    }
    assert.equal(seen.size, 9, "inputs of 0-5 zero bytes and words differing in one byte hash apart");
  });
});

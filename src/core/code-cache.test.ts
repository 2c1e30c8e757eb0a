/**
 * A code cache is per process, so most cases run a child `node` against
 * dist/core/code-cache.js (the build is current under `npm test`) twice: the
 * first writes the cache, the second runs from it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { requireWithCodeCache } from "./code-cache.js";

const root = mkdtempSync(join(tmpdir(), "chassis-code-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));
const distCodeCache = new URL("../../dist/core/code-cache.js", import.meta.url).href;

const LIBRARY = [
  "exports.twice = (n) => n * 2;",
  "exports.load = (specifier) => __chassisImport(specifier);",
  "exports.self = () => require(__filename) === module.exports && __dirname.length > 0;",
  "exports.where = () => new Error('here').stack.split('\\n')[1];",
  "",
].join("\n");

interface ChildReport {
  cache: string;
  twice: number;
  imported: string;
  self: boolean;
  where: string;
  saved: boolean;
  savedAgain: boolean;
}

/** Loads `file` with `cacheFile` in a new process; calls everything it exports, then save() twice. */
function runChild(file: string, cacheFile: string): ChildReport {
  const script = [
    `import { requireWithCodeCache } from ${JSON.stringify(distCodeCache)};`,
    `const loaded = requireWithCodeCache(${JSON.stringify(file)}, ${JSON.stringify(cacheFile)}, (s) => import(s));`,
    "const os = await loaded.exports.load('node:os');",
    "const report = { cache: loaded.cache, twice: loaded.exports.twice(21), imported: typeof os.cpus, self: loaded.exports.self(), where: loaded.exports.where() };",
    "console.log(JSON.stringify({ ...report, saved: loaded.save(), savedAgain: loaded.save() }));",
  ].join("\n");
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) as ChildReport;
}

function libraryIn(name: string, source = LIBRARY): { file: string; cacheFile: string; dir: string } {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "lib.cjs");
  writeFileSync(file, source);
  return { file, cacheFile: join(dir, "cache", "lib.bin"), dir };
}

describe("requireWithCodeCache", () => {
  test("the first process writes the cache; the next runs from it, import() and line numbers included", () => {
    const { file, cacheFile, dir } = libraryIn("accepted");
    const first = runChild(file, cacheFile);
    assert.deepEqual(
      { cache: first.cache, twice: first.twice, imported: first.imported, self: first.self, saved: first.saved, again: first.savedAgain },
      { cache: "absent", twice: 42, imported: "function", self: true, saved: true, again: false },
    );
    assert.ok(existsSync(cacheFile));
    assert.deepEqual(readdirSync(join(dir, "cache")), ["lib.bin"], "no temporary file is left");
    const second = runChild(file, cacheFile);
    // import() is what code run from a V8 cache cannot do by itself on Node 20: it goes through __chassisImport.
    assert.deepEqual(
      { cache: second.cache, twice: second.twice, imported: second.imported, self: second.self, saved: second.saved },
      { cache: "accepted", twice: 42, imported: "function", self: true, saved: false },
    );
    assert.match(second.where, /lib\.cjs:4:/, "the wrapper keeps the file's line numbers");
  });

  test("a cache of another source, or of garbage, is rejected: the file still runs, and save() replaces it", () => {
    const { file, cacheFile } = libraryIn("rejected");
    runChild(file, cacheFile);
    writeFileSync(file, `${LIBRARY}exports.more = 1;\n`);
    const edited = runChild(file, cacheFile);
    assert.deepEqual([edited.cache, edited.twice, edited.saved], ["rejected", 42, true]);
    assert.equal(runChild(file, cacheFile).cache, "accepted");
    writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    const garbage = runChild(file, cacheFile);
    assert.deepEqual([garbage.cache, garbage.twice, garbage.saved], ["rejected", 42, true]);
  });

  test("save() where no folder can be made returns false and throws nothing", () => {
    const { file, dir } = libraryIn("unwritable");
    writeFileSync(join(dir, "not-a-folder"), "");
    const report = runChild(file, join(dir, "not-a-folder", "lib.bin"));
    assert.deepEqual([report.cache, report.twice, report.saved], ["absent", 42, false]);
  });

  test("in one process the file loads once; a file that throws is not kept half-loaded", () => {
    const { file, cacheFile } = libraryIn("in-process");
    const importModule = (specifier: string) => import(specifier);
    const first = requireWithCodeCache<{ twice(n: number): number }>(file, cacheFile, importModule);
    const again = requireWithCodeCache<{ twice(n: number): number }>(file, cacheFile, importModule);
    assert.equal(again.exports, first.exports);
    assert.deepEqual([first.cache, again.cache, again.save()], ["absent", "loaded", false]);

    const broken = libraryIn("throws", "exports.early = 1;\nthrow new Error('top-level failure');\n");
    for (let i = 0; i < 2; i++) {
      assert.throws(() => requireWithCodeCache(broken.file, broken.cacheFile, importModule), /top-level failure/);
    }
  });
});

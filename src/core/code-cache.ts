/**
 * @module core/code-cache
 * Runs one CommonJS file with V8's code cache: the compiled code of a
 * previous run, read from a file, so V8 neither parses nor compiles what that
 * run compiled. Node 20 has no compile cache of its own (`module.enableCompileCache`
 * is Node 22) and none for ES modules, so the runtime bundle is CommonJS and
 * comes through here (build/image/bundle.ts writes the entry that calls this;
 * docs/performance.md has the figures).
 *
 * V8 checks a cache against its own version, its flags and the source's
 * length, not the source's content: the cache file's name must carry a hash
 * of the content (the bundler's job). A rejected or missing cache costs only
 * a normal compile; `save()` then writes a new one.
 *
 * Code V8 ran from a cache cannot call import() on Node 20 (it fails with
 * "A dynamic import callback was not specified", whatever the vm.Script's
 * importModuleDynamically): the file gets an import function from its caller
 * instead, as the wrapper parameter `__chassisImport` (core/dynamic-import.ts).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import vm from "node:vm";

/** What became of the cache file when the module was loaded ("loaded": the module was loaded already, without this call). */
export type CodeCacheState = "accepted" | "rejected" | "absent" | "loaded";

export interface CodeCachedModule<T> {
  readonly exports: T;
  readonly cache: CodeCacheState;
  /**
   * Writes V8's code for every function of the file compiled so far (call it
   * once the program has done what it starts to do), unless the cache it was
   * loaded with was accepted. Atomic (a temporary file renamed); never throws:
   * a folder it cannot write, e.g. an image's read-only package, only means
   * no cache. Returns whether it wrote.
   */
  save(): boolean;
}

interface ModuleRecord {
  id: string;
  filename: string;
  loaded: boolean;
  exports: unknown;
  children: unknown[];
  paths: string[];
  require: NodeJS.Require;
}

/**
 * Loads `file` (a CommonJS module) once per process, with `cacheFile` as its
 * code cache and `importModule` as its `__chassisImport`. It is put in
 * require's cache, so a `require(file)` elsewhere gets these same exports.
 */
export function requireWithCodeCache<T>(
  file: string,
  cacheFile: string,
  importModule: (specifier: string) => Promise<unknown>,
): CodeCachedModule<T> {
  const require = createRequire(file);
  const known = require.cache[file];
  if (known) return { exports: known.exports as T, cache: "loaded", save: () => false };
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // Node's own wrapper (one more parameter), so line numbers in stack traces stay the file's.
  const source = `(function (exports, require, module, __filename, __dirname, __chassisImport) { ${readFileSync(file, "utf8")}\n})`;
  const script = new vm.Script(source, { filename: file, cachedData });
  const cache: CodeCacheState = cachedData === undefined ? "absent" : script.cachedDataRejected ? "rejected" : "accepted";
  const module: ModuleRecord = { id: file, filename: file, loaded: false, exports: {}, children: [], paths: [], require };
  // Before it runs, as Node does: a cycle back to this file gets the exports made so far.
  require.cache[file] = module as unknown as NodeJS.Module;
  try {
    const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
    wrapper.call(module.exports, module.exports, require, module, file, dirname(file), importModule);
  } catch (error) {
    delete require.cache[file];
    throw error;
  }
  module.loaded = true;
  let saved = cache === "accepted";
  return {
    exports: module.exports as T,
    cache,
    save() {
      if (saved) return false;
      saved = true;
      const temporary = `${cacheFile}.${process.pid}.tmp`;
      try {
        mkdirSync(dirname(cacheFile), { recursive: true });
        writeFileSync(temporary, script.createCachedData());
        renameSync(temporary, cacheFile);
        return true;
      } catch {
        try {
          rmSync(temporary, { force: true });
        } catch {
          // no folder to write in (the error above): nothing was written
        }
        return false;
      }
    },
  };
}

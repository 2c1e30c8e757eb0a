/**
 * @module server/compile-model
 * Compiles a TypeScript model module with esbuild into one ES module, cached
 * beside the model, so `chassis serve model.ts` needs no build step and no
 * loader hooks. (tsx's hooks, registered before, cost ~0.3 s of start-up:
 * they run on a separate thread that every later import waited for.)
 *
 * - What is bundled: the model's own files, with the image builder's settings
 *   (build/esbuild.ts). Packages stay imports that Node resolves when the
 *   module runs, except packages whose entry is TypeScript, which are bundled.
 *   `chassis-ts` becomes the URL of the running chassis-ts, so the model and
 *   the server share one copy.
 * - Where: `node_modules/.cache/chassis-ts/` in the model's folder, so a
 *   package import resolves from there exactly as from the model's folder.
 * - `import.meta.url`, `.filename` and `.dirname` are the entry file's, in
 *   every bundled file: `new URL("./model.onnx", import.meta.url)` finds the
 *   file beside the entry, as in an image, where the model's code becomes
 *   `/app/model/model.mjs` with its data files beside it.
 * - Reuse: `<key>.json` lists every file the compile read (from esbuild's
 *   metafile) and each tsconfig.json, jsconfig.json and package.json from
 *   those folders up, with a hash of their contents; the compiled module is
 *   reused while that hash holds. A start-up with a valid cache reads and
 *   hashes those files and imports the module; esbuild is not even imported.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Metafile, Plugin } from "esbuild";
import { buildFailureDetail, CHASSIS_PACKAGE, modelBuildOptions } from "../build/esbuild.js";
import { importModule } from "../core/dynamic-import.js";

/** Changes whenever the compile's settings or contentHash do, so entries made otherwise are not reused. */
const CACHE_FORMAT = "4";

/** Where compiled models go, relative to the model's folder. */
export const MODEL_CACHE_DIR = join("node_modules", ".cache", "chassis-ts");

/** File names that a TypeScript model module may have. */
export const TYPESCRIPT_FILE = /\.[mc]?tsx?$/;

/** Files beside the model's sources that change how they compile or resolve. */
const CONFIG_FILES = ["tsconfig.json", "jsconfig.json", "package.json"];

export interface CompiledModel {
  /** The compiled module, for import(). */
  readonly url: string;
  /**
   * A module beside it that imports the packages the compiled module imports,
   * in the same order, resolved from the same folder: importing it first
   * evaluates them exactly as the model's own import would, and lets the
   * loader turn source maps on for the model alone (server/load-module.ts).
   */
  readonly packagesUrl: string;
  /** Whether an earlier compile was reused. */
  readonly cached: boolean;
}

export interface CompileOptions {
  /** What `import "chassis-ts"` becomes. @default the chassis-ts this module belongs to */
  chassisUrl?: string | undefined;
}

/** The model's code does not compile: a syntax error, or an import that does not resolve. The message says where. */
export class ModelCompileError extends Error {
  override readonly name = "ModelCompileError";
}

interface Manifest {
  readonly format: string;
  /** Absolute paths of every file the compile depends on, sorted. */
  readonly inputs: string[];
  /** inputsHash(inputs) when the module was compiled. */
  readonly hash: string;
  /** The compiled module's file name, in the cache folder (its packages module: packagesFile(output)). */
  readonly output: string;
}

/**
 * Returns the compiled module for a TypeScript model file, compiling it if
 * no valid one is cached. Throws ModelCompileError when the code does not
 * compile, and the file system's error when the cache folder cannot be written.
 */
export async function compileModel(file: string, options: CompileOptions = {}): Promise<CompiledModel> {
  const entry = resolve(file);
  const cacheDir = join(dirname(entry), MODEL_CACHE_DIR);
  const chassisUrl = "chassisUrl" in options ? options.chassisUrl : chassisEntryUrl();
  const key = contentHash(Buffer.from(`${CACHE_FORMAT}\0${entry}\0${chassisUrl ?? ""}`)).slice(0, 16);
  const manifestFile = join(cacheDir, `${key}.json`);

  const manifest = readManifest(manifestFile);
  if (
    manifest &&
    existsSync(join(cacheDir, manifest.output)) &&
    existsSync(join(cacheDir, packagesFile(manifest.output))) &&
    inputsHash(manifest.inputs) === manifest.hash
  ) {
    return compiled(cacheDir, manifest.output, true);
  }

  mkdirSync(cacheDir, { recursive: true });
  const { build } = await importModule<typeof import("esbuild")>("esbuild");
  const outfile = join(cacheDir, `${key}.mjs`);
  let result: Awaited<ReturnType<typeof build<ReturnType<typeof modelBuildOptions> & { metafile: true }>>>;
  try {
    result = await build({
      ...modelBuildOptions(entry, outfile),
      metafile: true,
      // Stack traces point into the model's sources (load-module turns source maps on).
      sourcemap: "inline",
      sourcesContent: false,
      define: {
        "import.meta.url": JSON.stringify(pathToFileURL(entry).href),
        "import.meta.filename": JSON.stringify(entry),
        "import.meta.dirname": JSON.stringify(dirname(entry)),
      },
      plugins: [packagesStayImports(chassisUrl)],
    });
  } catch (error) {
    throw new ModelCompileError(buildFailureDetail(error), { cause: error });
  }
  const code = result.outputFiles.find((out) => out.path === outfile)?.contents;
  if (!code) throw new Error(`esbuild wrote no ${outfile}`);

  // Paths in the metafile are relative to esbuild's working directory (the process's).
  const sources = Object.keys(result.metafile.inputs).map((path) => resolve(path));
  const inputs = [...new Set([...sources, ...configFiles(sources)])].sort();
  const hash = inputsHash(inputs);
  const output = `${key}-${hash.slice(0, 16)}.mjs`;
  const packages = packagesFile(output);
  writeAtomically(join(cacheDir, output), code);
  writeAtomically(join(cacheDir, packages), packageImports(result.metafile, outfile));
  writeAtomically(manifestFile, `${JSON.stringify({ format: CACHE_FORMAT, inputs, hash, output } satisfies Manifest)}\n`);
  // Earlier compiles of this model are stale now.
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(`${key}-`) && name.endsWith(".mjs") && name !== output && name !== packages)
      rmSync(join(cacheDir, name), { force: true });
  }
  return compiled(cacheDir, output, false);
}

/** The packages module beside a compiled module (CompiledModel.packagesUrl). */
function packagesFile(output: string): string {
  return output.replace(/\.mjs$/, ".packages.mjs");
}

function compiled(cacheDir: string, output: string, cached: boolean): CompiledModel {
  return {
    url: pathToFileURL(join(cacheDir, output)).href,
    packagesUrl: pathToFileURL(join(cacheDir, packagesFile(output))).href,
    cached,
  };
}

/**
 * The source of a module importing, for their effects only, the packages and
 * URLs that the compiled module imports statically, in its order (Node's
 * built-ins left out: they have no source maps to read).
 */
function packageImports(metafile: Metafile, outfile: string): string {
  const output = Object.entries(metafile.outputs).find(([path]) => resolve(path) === outfile)?.[1];
  // An import with attributes (`with { type: "json" }`) would need them here too, and the output's list does not
  // carry them: such imports are left to the model (a JSON module has no source map anyway).
  const withAttributes = new Set(
    Object.values(metafile.inputs).flatMap((input) => input.imports.filter((entry) => entry.with !== undefined).map((entry) => entry.path)),
  );
  const specifiers = (output?.imports ?? [])
    .filter((entry) => entry.external && entry.kind === "import-statement" && !isBuiltin(entry.path) && !withAttributes.has(entry.path))
    .map((entry) => entry.path);
  const lines = [...new Set(specifiers)].map((specifier) => `import ${JSON.stringify(specifier)};\n`);
  return `// The packages of the model compiled beside this file, in its import order (chassis-ts's server/compile-model.ts).\n${lines.join("")}`;
}

/** The entry of the chassis-ts this module belongs to (its package's own name resolves to it). */
function chassisEntryUrl(): string | undefined {
  try {
    // require's resolver, not import.meta.resolve: the bundled runtime is CommonJS (build/image/runtime-package.ts).
    return pathToFileURL(createRequire(import.meta.url).resolve(CHASSIS_PACKAGE)).href;
  } catch {
    return undefined; // then the model's folder must provide chassis-ts, as for any package
  }
}

const CHECKING = Symbol("chassis-resolve-check");

/**
 * Leaves package imports to Node, after checking with esbuild that they
 * resolve, so a missing package fails here with the importing line rather
 * than at run time. `chassis-ts` becomes chassisUrl; a package whose entry
 * is TypeScript is bundled, since Node cannot run it.
 */
function packagesStayImports(chassisUrl: string | undefined): Plugin {
  return {
    name: "chassis-packages-stay-imports",
    setup(esbuild) {
      // Not relative, not absolute, not a package.json "imports" alias (#name): a package, a built-in or a URL.
      esbuild.onResolve({ filter: /^[^./#]/ }, async (args) => {
        if (args.pluginData === CHECKING) return undefined;
        // node:fs, fs; and URLs (file:///..., data:...), which Node imports as they are.
        if (isBuiltin(args.path) || /^[a-z][a-z\d+.-]*:/i.test(args.path)) return { path: args.path, external: true };
        if (args.path === CHASSIS_PACKAGE && chassisUrl) return { path: chassisUrl, external: true };
        const found = await esbuild.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: CHECKING,
        });
        if (found.errors.length > 0) return { errors: [{ text: `Cannot find package "${args.path}"` }] };
        if (TYPESCRIPT_FILE.test(found.path)) return { path: found.path };
        return { path: args.path, external: true };
      });
    },
  };
}

/** tsconfig.json, jsconfig.json and package.json paths from each source's folder up to the root (present or not). */
function configFiles(sources: string[]): string[] {
  const dirs = new Set<string>();
  for (const source of sources) {
    for (let dir = dirname(source); !dirs.has(dir); dir = dirname(dir)) {
      dirs.add(dir);
      if (dirname(dir) === dir) break;
    }
  }
  return [...dirs].flatMap((dir) => CONFIG_FILES.map((name) => join(dir, name)));
}

/** One hash over every input's path and contents ("-" for a file that does not exist). */
function inputsHash(inputs: readonly string[]): string {
  let text = "";
  for (const path of inputs) text += `${path}\0${fileHash(path)}\n`;
  return contentHash(Buffer.from(text));
}

/**
 * A file's contentHash, or "-" when it cannot be read. Most inputs are config
 * files that do not exist; a stat says so without a thrown error, which cost
 * ~50 µs each at start-up.
 */
function fileHash(path: string): string {
  if (!statSync(path, { throwIfNoEntry: false })?.isFile()) return "-";
  try {
    return contentHash(readFileSync(path));
  } catch {
    return "-";
  }
}

function readManifest(path: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(path, "utf8")) as Partial<Manifest>;
    if (manifest.format !== CACHE_FORMAT || !Array.isArray(manifest.inputs)) return undefined;
    if (typeof manifest.hash !== "string" || typeof manifest.output !== "string") return undefined;
    return manifest as Manifest;
  } catch {
    return undefined;
  }
}

/** Write, then rename: a process starting at the same time reads the old file or the new one, never half of one. */
function writeAtomically(path: string, data: string | Uint8Array): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, data);
  renameSync(temporary, path);
}

/**
 * A 106-bit hash of bytes, as hex (two 53-bit lanes of the cyrb53 mix, with
 * different seeds). Not node:crypto's sha256: loading node:crypto took ~8 ms
 * of every start, and this only tells a model's edited sources from
 * unchanged ones (no adversary; an accidental collision is a 1 in 2^100
 * event). One pass over 32-bit words, then the last 0-3 bytes: at start-up
 * it runs in V8's interpreter, where two passes byte by byte took ~2 ms for
 * a model's ~8 KB of sources and configs.
 */
export function contentHash(data: Uint8Array): string {
  const wordCount = data.length >>> 2;
  // An Int32Array needs an offset that is a multiple of 4; a subarray may not have one. Then a copy (new
  // Uint8Array copies; Buffer#slice would not).
  const words =
    data.byteOffset % 4 === 0
      ? new Int32Array(data.buffer, data.byteOffset, wordCount)
      : new Int32Array(new Uint8Array(data.subarray(0, wordCount * 4)).buffer, 0, wordCount);
  let a1 = 0xdeadbeef ^ 0x9e3779b9;
  let a2 = 0x41c6ce57 ^ 0x9e3779b9;
  let b1 = 0xdeadbeef ^ 0x85ebca6b;
  let b2 = 0x41c6ce57 ^ 0x85ebca6b;
  for (let i = 0; i < wordCount; i++) {
    const word = words[i] as number;
    // A multiply carries a difference only upwards; the shift brings a word's high bytes down into the next round.
    a1 = Math.imul(a1 ^ word, 2654435761);
    a1 ^= a1 >>> 15;
    a2 = Math.imul(a2 ^ word, 1597334677);
    a2 ^= a2 >>> 15;
    b1 = Math.imul(b1 ^ word, 2654435761);
    b1 ^= b1 >>> 15;
    b2 = Math.imul(b2 ^ word, 1597334677);
    b2 ^= b2 >>> 15;
  }
  for (let i = wordCount * 4; i < data.length; i++) {
    const byte = data[i] as number;
    a1 = Math.imul(a1 ^ byte, 2654435761);
    a2 = Math.imul(a2 ^ byte, 1597334677);
    b1 = Math.imul(b1 ^ byte, 2654435761);
    b2 = Math.imul(b2 ^ byte, 1597334677);
  }
  // The length too: otherwise a text and the same text with a trailing zero word could end alike.
  return finish(a1 ^ data.length, a2) + finish(b1 ^ data.length, b2);
}

/** cyrb53's final mix of one lane: 53 bits as 14 hex digits. */
function finish(h1: number, h2: number): string {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const value = 4294967296 * (2097151 & h2) + (h1 >>> 0);
  return value.toString(16).padStart(14, "0");
}

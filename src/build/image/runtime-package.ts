/**
 * @module build/image/runtime-package
 * chassis-ts bundled as the package that runs it: in `dist/bundle/`
 * (bin/chassis.js, scripts/bundle.mjs) and in an image's runtime layer
 * (bundle.ts). The library is CommonJS so that it can run from V8's code
 * cache (core/code-cache.ts): Node 20 caches compiled code for nothing else.
 *
 *   lib/chassis.cjs    the library and the CLI, every dependency but tsx, esbuild
 *                      and the vendored packages below inlined
 *   lib/grpc-js.cjs    the vendored packages (VENDORED): code a start never runs
 *   lib/protobuf.cjs   stays out of chassis.cjs, whose every byte V8 parses when
 *                      it has no cache (an image: its cache could not be reproducible)
 *   load.mjs           loads lib/chassis.cjs once per process, with its cache
 *   index.mjs          the package entry, a model's `import "chassis-ts"`
 *   cli.mjs            the command
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build, type Plugin } from "esbuild";
import { ToolError } from "../../core/tool-error.js";
import { VERSION } from "../../core/version.js";
import { packageName } from "../esbuild.js";

/** A bundled chassis-ts: files by path relative to the package folder, and the files it was made from. */
export interface RuntimePackage {
  readonly files: ReadonlyArray<{ readonly path: string; readonly contents: Uint8Array }>;
  /** Absolute paths of every file esbuild read (chassis-ts's dist/ and the packages it bundles). */
  readonly inputs: readonly string[];
}

const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

const FILES = Object.freeze({
  // Two folders below the package, as dist/'s modules are: their `new URL("../../../", import.meta.url)` keeps working.
  library: "lib/chassis.cjs",
  loader: "load.mjs",
  index: "index.mjs",
  cli: "cli.mjs",
  /** Where the loader keeps V8's code cache, when it can write there. */
  codeCacheDir: ".code-cache",
});

/** Packages bundled into files of their own, which the library requires on first use. */
const VENDORED: ReadonlyArray<{ readonly file: string; readonly name: string }> = [
  { file: "lib/grpc-js.cjs", name: "@grpc/grpc-js" }, // the OMI client's transport, with protobufjs
  { file: "lib/protobuf.cjs", name: "@bufbuild/protobuf" }, // reflection and the clients
];

const LIBRARY_ENTRY_NAME = "runtime-entry.js";
/** The package's exports, what cli.mjs runs, and what a predict thread runs (server/threads/pool.ts). */
const LIBRARY_ENTRY =
  'export * from "./index.js";\nexport { runCommand } from "./cli/main.js";\nexport { runPredictThread } from "./server/threads/thread.js";\n';
/** Exports of the library that are not the package's. */
const INTERNAL_EXPORTS = new Set(["runCommand", "runPredictThread"]);

/** What every file of the package is built with. */
function common(minify: boolean): BuildOptions & { write: false } {
  return { bundle: true, platform: "node", target: "node20", write: false, minify, legalComments: "linked", logLevel: "silent" };
}

/** Builds the runtime package from dist/ (minified for images). */
export async function bundleRuntimePackage(options: { minify: boolean }): Promise<RuntimePackage> {
  const dist = join(PACKAGE_ROOT, "dist");
  for (const name of ["index.js", "cli/main.js", "core/code-cache.js", "core/dynamic-import.js"]) {
    if (!existsSync(join(dist, name)))
      throw new ToolError("CHASSIS_INTERNAL", `${join(dist, name)} is missing: build chassis-ts first (npm run build)`);
  }
  const vendored = new Map<string, Set<string>>(VENDORED.map((v) => [v.file, new Set()]));
  const library = await build({
    ...common(options.minify),
    stdin: { contents: LIBRARY_ENTRY, resolveDir: dist, sourcefile: LIBRARY_ENTRY_NAME },
    format: "cjs",
    outfile: `/out/${FILES.library}`,
    metafile: true,
    // A TypeScript model is compiled with esbuild (tsx if that fails); an image holds a bundled model, so neither is loaded there.
    external: ["tsx", "tsx/*", "esbuild"],
    // CommonJS has no import.meta: the file's own URL, as in the ES modules it was made from.
    define: { "import.meta.url": "__chassisImportMetaUrl" },
    banner: { js: 'var __chassisImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [importThroughLoader(join(dist, "core", "dynamic-import.js")), requireVendored(vendored)],
  });
  const escaping = Object.values(library.metafile.outputs).flatMap((out) => out.imports.filter((i) => i.kind === "dynamic-import"));
  if (escaping.length > 0) {
    const names = escaping.map((i) => i.path).join(", ");
    throw new ToolError("CHASSIS_INTERNAL", `the runtime bundle calls import() (${names}): use core/dynamic-import.ts's importModule`);
  }
  const libraryFile = library.outputFiles.find((out) => out.path.endsWith(".cjs"));
  if (!libraryFile) throw new ToolError("CHASSIS_INTERNAL", "esbuild wrote no runtime library");
  const names = exportNames(libraryFile.text).filter((name) => !INTERNAL_EXPORTS.has(name));
  const vendors = await Promise.all(
    [...vendored]
      .filter(([, specifiers]) => specifiers.size > 0)
      .map(([file, specifiers]) => bundleVendored(file, specifiers, options.minify)),
  );
  const libraryBytes = new TextEncoder().encode(escapeNonAscii(libraryFile.text));
  // The cache file's name carries the library's hash: V8 checks a cache against the source's length only.
  const hash = createHash("sha256").update(libraryBytes).digest("hex").slice(0, 16);
  const loader = await build({
    ...common(options.minify),
    stdin: { contents: loaderSource(hash), resolveDir: dist, sourcefile: "runtime-loader.js" },
    format: "esm",
    outfile: `/out/${FILES.loader}`,
  });
  const text = (path: string, contents: string) => ({ path, contents: new TextEncoder().encode(contents) });
  const outputs = [library, loader, ...vendors].flatMap((result) => result.outputFiles);
  const files = [
    ...outputs.map((out) => ({
      path: relative("/out", out.path).split(sep).join("/"),
      contents: out === libraryFile ? libraryBytes : out.contents,
    })),
    text(
      FILES.index,
      `// chassis-ts (${FILES.library}, loaded once per process by ${FILES.loader}).\n` +
        `import { loadRuntime } from "./${FILES.loader}";\nexport const { ${names.join(", ")} } = loadRuntime().exports;\n`,
    ),
    text(
      FILES.cli,
      "// The `chassis` command. Its code cache is written once a server is up, so that it holds the code a start runs.\n" +
        `import { loadRuntime } from "./${FILES.loader}";\nconst runtime = loadRuntime();\n` +
        "await runtime.exports.runCommand(process.argv.slice(2), { onServing: () => setImmediate(runtime.save) });\n",
    ),
    text(
      "package.json",
      `${JSON.stringify({ name: "chassis-ts", version: VERSION, type: "module", exports: { ".": `./${FILES.index}` } })}\n`,
    ),
  ];
  // Metafile paths are relative to esbuild's working directory, the process's; the entry is text, not a file.
  const inputs = [library, ...vendors].flatMap((result) => Object.keys(result.metafile.inputs).map((path) => resolve(path)));
  const texts = new Set([join(dist, LIBRARY_ENTRY_NAME), ...VENDORED.map((v) => join(PACKAGE_ROOT, vendoredEntryName(v.file)))]);
  return { files, inputs: [...new Set(inputs)].filter((path) => !texts.has(path)) };
}

/** The names a CommonJS bundle of esbuild exports: it lists them for Node's ESM interop, `0 && (module.exports = { a, b })`. */
function exportNames(text: string): string[] {
  const annotated = text.match(/0\s*&&\s*\(module\.exports\s*=\s*\{([^}]*)\}\)/);
  if (!annotated) throw new ToolError("CHASSIS_INTERNAL", "esbuild did not name the runtime bundle's exports");
  return (annotated[1] as string)
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
}

/**
 * esbuild escapes what is not ASCII in code, not in the comments it keeps: one
 * "§" made V8 hold the whole source as UTF-16 (twice the bytes to scan).
 * Escaped as in code, it is the same program.
 */
function escapeNonAscii(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * core/dynamic-import.js, whose import() the library cannot call once V8 runs
 * it from its code cache, becomes a call of the loader's (core/code-cache.ts).
 */
function importThroughLoader(file: string): Plugin {
  return {
    name: "chassis-import-through-loader",
    setup(esbuild) {
      esbuild.onLoad({ filter: /dynamic-import\.js$/ }, (args) =>
        args.path === file
          ? { contents: "export const importModule = (specifier) => __chassisImport(specifier);\n", loader: "js" }
          : undefined,
      );
    },
  };
}

/** The vendored packages' imports become requires of their files (each specifier used is recorded in `used`). */
function requireVendored(used: Map<string, Set<string>>): Plugin {
  const byName = new Map(VENDORED.map((v) => [v.name, v.file]));
  // A vendored package, or a file of it: `@grpc/grpc-js`, `@bufbuild/protobuf/wkt`.
  const filter = new RegExp(`^(?:${VENDORED.map((v) => v.name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|")})(?:/|$)`);
  return {
    name: "chassis-require-vendored",
    setup(esbuild) {
      esbuild.onResolve({ filter }, (args) => {
        const file = byName.get(packageName(args.path));
        if (!file || args.namespace === "vendored") return undefined;
        used.get(file)?.add(args.path);
        return { path: args.path, namespace: "vendored", pluginData: file };
      });
      // `require` here is the library file's own: the vendored file is its neighbour in lib/.
      esbuild.onLoad({ filter: /.*/, namespace: "vendored" }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(`./${(args.pluginData as string).split("/").pop()}`)})[${JSON.stringify(args.path)}];\n`,
        loader: "js",
      }));
      esbuild.onResolve({ filter: /^\.\/[\w-]+\.cjs$/, namespace: "vendored" }, (args) => ({ path: args.path, external: true }));
    },
  };
}

const vendoredEntryName = (file: string) => `${file}.entry.js`;

/** A vendored file: an object of the package's specifiers the library uses, each its module's exports. */
async function bundleVendored(file: string, specifiers: Set<string>, minify: boolean) {
  const entries = [...specifiers].sort().map((specifier) => `  ${JSON.stringify(specifier)}: require(${JSON.stringify(specifier)}),`);
  return build({
    ...common(minify),
    stdin: { contents: `module.exports = {\n${entries.join("\n")}\n};\n`, resolveDir: PACKAGE_ROOT, sourcefile: vendoredEntryName(file) },
    format: "cjs",
    outfile: `/out/${file}`,
    metafile: true,
  });
}

/** load.mjs: loads lib/chassis.cjs with the code cache of this Node version and library hash. */
function loaderSource(hash: string): string {
  return `import { fileURLToPath } from "node:url";
import { requireWithCodeCache } from "./core/code-cache.js";
let runtime;
export function loadRuntime() {
  runtime ??= requireWithCodeCache(
    fileURLToPath(new URL("./${FILES.library}", import.meta.url)),
    fileURLToPath(new URL(\`./${FILES.codeCacheDir}/chassis-${hash}-\${process.version}-\${process.arch}.bin\`, import.meta.url)),
    (specifier) => import(specifier),
  );
  return runtime;
}
`;
}

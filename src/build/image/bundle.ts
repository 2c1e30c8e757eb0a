/**
 * @module build/image/bundle
 * Turns chassis-ts and a model folder into the files of an image's layers,
 * with esbuild: the runtime (our server and CLI, runtime-package.ts), the
 * model (its code bundled, its data files copied beside it, so `import.meta.url`
 * paths keep working), and the packages the model needs that cannot be
 * bundled (native modules such as onnxruntime-node), with only the target
 * platform's binaries.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, sep } from "node:path";
import { build, type Plugin } from "esbuild";
import { ToolError } from "../../core/tool-error.js";
import { buildFailureDetail, CHASSIS_PACKAGE, modelBuildOptions, packageName } from "../esbuild.js";
import { bundleRuntimePackage } from "./runtime-package.js";

/** An entry to put in a layer, at an absolute path inside the image. */
export interface LayerFile {
  readonly path: string;
  /** @default "file" */
  readonly type?: "file" | "dir" | "symlink";
  readonly data?: Uint8Array;
  /** A file on this machine to copy (read when the layer is written). */
  readonly source?: string;
  /** For symlinks. */
  readonly linkTarget?: string;
  readonly mode: number;
  readonly size: number;
  /** @default 0 (root) */
  readonly uid?: number;
  readonly gid?: number;
}

export interface Platform {
  readonly os: "linux";
  readonly architecture: "amd64" | "arm64";
}

/** Node's names for a platform (what native packages use in their paths). */
export function nodeArch(platform: Platform): string {
  return platform.architecture === "amd64" ? "x64" : "arm64";
}

/** Where things live in the image. */
export const IMAGE_PATHS = Object.freeze({
  app: "/app",
  runtime: "/app/node_modules/chassis-ts",
  model: "/app/model",
  modelEntry: "/app/model/model.mjs",
  cli: "/app/node_modules/chassis-ts/cli.mjs",
});

function fileOf(path: string, data: Uint8Array, mode = 0o644): LayerFile {
  return { path, data, mode, size: data.byteLength };
}

function copyOf(path: string, source: string): LayerFile {
  const stat = statSync(source);
  return { path, source, mode: stat.mode & 0o111 ? 0o755 : 0o644, size: stat.size };
}

/**
 * The runtime layer: chassis-ts bundled and minified as
 * `/app/node_modules/chassis-ts` (so a model's `import "chassis-ts"` resolves
 * to it), plus the Swagger UI assets that /docs serves.
 */
export async function bundleRuntime(): Promise<LayerFile[]> {
  const { files: bundled } = await bundleRuntimePackage({ minify: true });
  const files = bundled.map((file) => fileOf(`${IMAGE_PATHS.runtime}/${file.path}`, file.contents));
  const swagger = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  for (const name of ["package.json", "swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "LICENSE"]) {
    if (existsSync(join(swagger, name))) files.push(copyOf(`/app/node_modules/swagger-ui-dist/${name}`, join(swagger, name)));
  }
  return files;
}

/** True for a package that ships compiled code (.node files) and so cannot be bundled. */
function isNativePackage(dir: string): boolean {
  const walk = (path: string, depth: number): boolean => {
    if (depth > 6) return false;
    for (const name of readdirSync(path)) {
      if (name === "node_modules") continue;
      const child = join(path, name);
      const stat = statSync(child);
      if (stat.isDirectory() ? walk(child, depth + 1) : name.endsWith(".node")) return true;
    }
    return false;
  };
  return existsSync(join(dir, "binding.gyp")) || walk(dir, 0);
}

function packageDir(name: string, from: string): string | undefined {
  try {
    return dirname(createRequire(join(from, "noop.js")).resolve(`${name}/package.json`));
  } catch {
    // a package without package.json in its exports: walk up node_modules
    for (let dir = from; ; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", name);
      if (existsSync(join(candidate, "package.json"))) return candidate;
      if (dirname(dir) === dir) return undefined;
    }
  }
}

export interface ModelBundle {
  /** The model layer: `/app/model/model.mjs` and the model's data files. */
  readonly model: LayerFile[];
  /** The dependency layer: native packages and what they require, in `/app/model/node_modules`. */
  readonly dependencies: LayerFile[];
  /** Names of the native packages found. */
  readonly nativePackages: string[];
}

const SOURCE_FILE = /\.(?:[cm]?[jt]sx?|d\.ts|map)$/;
const SKIPPED = new Set(["node_modules", ".git", "dist", "test", "tests", "__tests__"]);

/**
 * Bundles a model module. chassis-ts itself stays external (the runtime layer
 * provides it); native packages stay external and are copied with their
 * dependencies, keeping only `platform`'s binaries; every other file in the
 * model's folder (weights, JSON, data) is copied beside the bundle.
 */
export async function bundleModel(modelFile: string, platform: Platform): Promise<ModelBundle> {
  const modelDir = dirname(modelFile);
  const native = new Map<string, string>();
  const findNative: Plugin = {
    name: "chassis-native-packages",
    setup(esbuild) {
      esbuild.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith("node:")) return undefined;
        const name = packageName(args.path);
        if (name === CHASSIS_PACKAGE) return { path: args.path, external: true };
        const dir = packageDir(name, args.resolveDir);
        if (dir && isNativePackage(dir)) {
          native.set(name, dir);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
  let result: Awaited<ReturnType<typeof build>> & { outputFiles: NonNullable<Awaited<ReturnType<typeof build>>["outputFiles"]> };
  try {
    result = (await build({ ...modelBuildOptions(modelFile, "/out/model.mjs"), plugins: [findNative] })) as typeof result;
  } catch (error) {
    throw new ToolError("CHASSIS_MODULE_FAILED", `bundling ${modelFile} failed: ${buildFailureDetail(error)}`, { cause: error });
  }
  const model: LayerFile[] = result.outputFiles
    .filter((out) => out.path.endsWith(".mjs"))
    .map((out) => fileOf(IMAGE_PATHS.modelEntry, out.contents));
  const copyData = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (!SKIPPED.has(name)) copyData(path);
      } else if (!SOURCE_FILE.test(name) && !name.startsWith(".") && name !== "package-lock.json") {
        model.push(copyOf(`${IMAGE_PATHS.model}/${relative(modelDir, path).split(sep).join("/")}`, path));
      }
    }
  };
  copyData(modelDir);

  const dependencies: LayerFile[] = [];
  const copied = new Set<string>();
  const copyPackage = (name: string, dir: string) => {
    if (copied.has(name)) return;
    copied.add(name);
    const target = `${IMAGE_PATHS.model}/node_modules/${name}`;
    const walk = (path: string) => {
      for (const entry of readdirSync(path).sort()) {
        const child = join(path, entry);
        const rel = relative(dir, child).split(sep).join("/");
        if (statSync(child).isDirectory()) {
          if (entry === "node_modules") continue;
          if (skipForPlatform(rel, platform)) continue;
          walk(child);
        } else {
          dependencies.push(copyOf(`${target}/${rel}`, child));
        }
      }
    };
    walk(dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(pkg.dependencies ?? {})) {
      const depDir = packageDir(dependency, dir);
      if (depDir) copyPackage(dependency, depDir);
    }
  };
  for (const [name, dir] of native) copyPackage(name, dir);
  return { model, dependencies, nativePackages: [...native.keys()] };
}

/**
 * Drops other platforms' prebuilt binaries: folders named for another OS or
 * CPU under a `bin/`, `prebuilds/` or `napi-v*` path (onnxruntime-node's
 * bin/napi-v6/<os>/<arch>, prebuildify's prebuilds/<os>-<arch>).
 */
function skipForPlatform(rel: string, platform: Platform): boolean {
  const arch = nodeArch(platform);
  const parts = rel.split("/");
  const last = basename(rel);
  const inBinaries = parts.some((p) => p === "bin" || p === "prebuilds" || /^napi-v\d+$/.test(p));
  if (!inBinaries) return false;
  const oses = ["darwin", "win32", "linux", "freebsd", "android", "sunos", "aix", "openbsd"];
  const arches = ["x64", "arm64", "arm", "ia32", "ppc64", "s390x", "riscv64", "loong64"];
  if (oses.includes(last) && last !== platform.os) return true;
  if (arches.includes(last) && last !== arch && parts.length >= 2 && oses.includes(parts[parts.length - 2] as string)) return true;
  const combo = /^([a-z0-9]+)-([a-z0-9]+)$/.exec(last);
  if (combo && oses.includes(combo[1] as string)) return combo[1] !== platform.os || combo[2] !== arch;
  return false;
}

/**
 * @module build/esbuild
 * How a model module is bundled with esbuild, shared by the image builder
 * (build/image/bundle.ts) and the compiled-model cache of `chassis serve`
 * (server/compile-model.ts), so a model compiles the same way on a laptop and
 * in an image. Only esbuild's types are imported here: the server imports
 * esbuild itself on demand, and built images do not ship it.
 */
import { resolve } from "node:path";
import type { BuildFailure, BuildOptions } from "esbuild";

/** ESM bundles of CommonJS code (grpc-js, onnxruntime-node, a model's own require()) still need require(). */
export const REQUIRE_BANNER =
  'import { createRequire as __chassisCreateRequire } from "node:module"; const require = __chassisCreateRequire(import.meta.url);';

/** The package whose copy the runtime provides; a model never bundles it. */
export const CHASSIS_PACKAGE = "chassis-ts";

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** The options both bundle a model entry with: one ES module for Node 20, nothing written, nothing logged. */
export function modelBuildOptions(entry: string, outfile: string): BuildOptions & { write: false } {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    outfile,
    write: false,
    banner: { js: REQUIRE_BANNER },
    logLevel: "silent",
  };
}

/**
 * A failed esbuild build as one line: `file:line:column: text` for each
 * error, joined with "; ". esbuild names files relative to the working
 * directory; one outside it is named by its absolute path instead.
 */
export function buildFailureDetail(error: unknown): string {
  const errors = (error as Partial<BuildFailure>).errors ?? [];
  const where = (file: string) => (file.startsWith("../") ? resolve(file) : file);
  const detail = errors
    .map((e) => (e.location ? `${where(e.location.file)}:${e.location.line}:${e.location.column}: ${e.text}` : e.text))
    .join("; ");
  return detail || (error instanceof Error ? error.message : String(error));
}

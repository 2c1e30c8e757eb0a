/**
 * @module server/load-module
 * Finds and imports a model module (TypeScript or JavaScript) and returns the
 * Model it exports. TypeScript is compiled by esbuild into a cached ES module
 * beside the model (server/compile-model.ts), so `chassis serve model.ts`
 * needs no build step; when that cache cannot be written, tsx's loader
 * compiles it instead (slower to start).
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Code } from "../core/code.js";
import { importModule } from "../core/dynamic-import.js";
import { ChassisError, isForeignChassisError } from "../core/error.js";
import { type Logger, silentLogger } from "../core/log.js";
import { ToolError } from "../core/tool-error.js";
import { isModel, type Model } from "../model/define.js";
import { compileModel, ModelCompileError, TYPESCRIPT_FILE } from "./compile-model.js";

/** Files looked for, in order, when the model path is a folder. */
export const MODEL_FILES = ["model.ts", "model.mts", "model.js", "model.mjs", "index.ts", "index.mts", "index.js", "index.mjs"];

export interface LoadModuleOptions {
  /** Told when TypeScript falls back to tsx. @default silent */
  log?: Logger;
}

let tsLoaderRegistered = false;

/**
 * Telemetry off for the model's packages unless the user set it (empty counts as unset, as for our own variables):
 * a model server should not report to a package's vendor by default. onnxruntime 1.29+ on Linux starts Microsoft's
 * 1DS telemetry with its first session: HTTPS uploads, a SQLite file under ~/.cache/Microsoft, an empty
 * /tmp/mat-debug-<pid>.log per process, and 5-30 ms of a digits start (docs/performance.md). Set before the model's
 * packages load: native code reads the environment once, at its first use. ORT_DISABLE_TELEMETRY=0 turns it back on.
 */
function turnOffPackageTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY ||= "1";
}

export function resolveModelFile(path: string): string {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new ToolError("CHASSIS_MODULE_NOT_FOUND", `model not found: ${path} does not exist`, {
      hint: "pass a model file (model.ts) or a folder holding one, e.g. examples/echo",
    });
  }
  if (!statSync(absolute).isDirectory()) return absolute;
  const found = MODEL_FILES.map((name) => join(absolute, name)).find((file) => existsSync(file));
  if (!found) {
    throw new ToolError("CHASSIS_MODULE_NOT_FOUND", `model not found: folder ${path} has none of ${MODEL_FILES.join(", ")}`);
  }
  return found;
}

export async function loadModelModule(path: string, options: LoadModuleOptions = {}): Promise<{ model: Model; file: string }> {
  const file = resolveModelFile(path);
  turnOffPackageTelemetry();
  const compiled = TYPESCRIPT_FILE.test(file) ? await typeScriptUrl(file, path, options.log ?? silentLogger) : undefined;
  const url = compiled?.url ?? pathToFileURL(file).href;
  let exports: Record<string, unknown>;
  try {
    if (compiled?.packagesUrl) {
      // The model's packages first, then source maps on, then the model: stack traces name the model's .ts lines,
      // and Node does not read the .map files of every package module loaded after (~10 ms of a digits start).
      await importModule(compiled.packagesUrl);
      process.setSourceMapsEnabled(true);
    }
    exports = await importModule(url);
  } catch (error) {
    // By name, not instanceof: a model may import another copy of chassis-ts (src/ under tsx, or its own node_modules).
    if ((error instanceof ChassisError || isForeignChassisError(error)) && error.code === Code.INVALID_ARGUMENT) {
      throw new ToolError("CHASSIS_INVALID_MODEL", `${path}: ${error.message}`, { cause: error });
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new ToolError("CHASSIS_MODULE_FAILED", `importing ${path} failed: ${reason}`, { cause: error });
  }
  const model = [exports.default, exports.model].find(isModel);
  if (!model) {
    const names = Object.keys(exports);
    throw new ToolError("CHASSIS_INVALID_MODEL", `${path} exports no model (found ${names.length ? names.join(", ") : "no exports"})`, {
      hint: "end the module with: export default defineModel({ ... })",
    });
  }
  return { model, file };
}

/**
 * What to import for a TypeScript model: its compiled module and the module of
 * its packages, or (if compiling fails for want of a cache) the file under tsx.
 */
async function typeScriptUrl(file: string, path: string, log: Logger): Promise<{ url: string; packagesUrl?: string }> {
  try {
    // As tsx did, stack traces name the model's .ts lines (source maps are turned on before the model is imported).
    return await compileModel(file);
  } catch (error) {
    if (error instanceof ModelCompileError) {
      throw new ToolError("CHASSIS_MODULE_FAILED", `importing ${path} failed: ${error.message}`, { cause: error });
    }
    log.warn(`cannot cache the compiled model (${error instanceof Error ? error.message : String(error)}); compiling it with tsx instead`);
  }
  if (!tsLoaderRegistered) {
    // Both hooks: a .ts file in a package without "type": "module" is loaded through require.
    const [esm, cjs] = await Promise.all([
      importModule<typeof import("tsx/esm/api")>("tsx/esm/api"),
      importModule<typeof import("tsx/cjs/api")>("tsx/cjs/api"),
    ]);
    esm.register();
    cjs.register();
    tsLoaderRegistered = true;
  }
  return { url: pathToFileURL(file).href };
}

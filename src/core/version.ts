/**
 * @module core/version
 * The chassis-ts version, read from the nearest package.json named
 * chassis-ts above this module: `../../` in src/ and dist/, `./` inside the
 * bundled runtime layer of a built image.
 */
import { readFileSync } from "node:fs";

function findVersion(): string {
  for (const candidate of ["./package.json", "../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "chassis-ts" && pkg.version) return pkg.version;
    } catch {
      // not here: try the next one
    }
  }
  return "0.0.0-unknown";
}

export const VERSION = findVersion();

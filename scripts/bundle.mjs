// The second step of `npm run build`, after tsc: bundles dist/ into dist/bundle/
// (chassis-ts's CLI and package entry, dependencies inlined: build/image/runtime-package.ts),
// which bin/chassis.js runs because it loads faster than dist/'s ~200 modules
// (docs/performance.md). It is the image's runtime layer, unminified.
// dist/bundle/sources.json lists the dist/ files it was made from: bin/chassis.js
// falls back to dist/ when one of them is newer (e.g. after a bare `tsc`).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const out = join(dist, "bundle");
const builtAt = Date.now();
const { bundleRuntimePackage } = await import(new URL("../dist/build/image/runtime-package.js", import.meta.url).href);
const { files, inputs } = await bundleRuntimePackage({ minify: false });
rmSync(out, { recursive: true, force: true });
for (const file of files) {
  const path = join(out, file.path);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, file.contents);
}
const sources = inputs
  .filter((path) => path.startsWith(`${dist}${sep}`))
  .map((path) => relative(dist, path).split(sep).join("/"))
  .sort();
writeFileSync(join(out, "sources.json"), `${JSON.stringify({ builtAt, sources })}\n`);
process.stdout.write(`bundled dist/ into dist/bundle/ (${files.length} files from ${sources.length} modules of dist/)\n`);

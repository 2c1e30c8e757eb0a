// `npm test`: every check CI runs, in order, stopping at the first failure:
// build, type-check, lint+format, import direction, generated code up to
// date, then all tests (unit, OMI over real sockets, CLI, Python interop).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve } from "node:path";

const bin = (name) => join("node_modules", ".bin", name);

function run(title, command, args) {
  process.stdout.write(`\n== ${title}: ${command} ${args.join(" ")}\n`);
  const started = Date.now();
  const result = spawnSync(command, args, { stdio: "inherit" });
  if (result.status !== 0) {
    process.stdout.write(`\n== FAILED: ${title} (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status || 1);
  }
  process.stdout.write(`== ok: ${title} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

function checkGenerated() {
  process.stdout.write("\n== generated code: buf generate into a temporary folder and compare with src/omi/gen\n");
  const out = mkdtempSync(join(tmpdir(), "chassis-gen-"));
  try {
    // buf finds the protoc-gen-es plugin on PATH, as under `npm run`.
    const env = { ...process.env, PATH: `${resolve("node_modules/.bin")}${delimiter}${process.env.PATH ?? ""}` };
    const result = spawnSync(bin("buf"), ["generate", "-o", out], { stdio: "inherit", env });
    if (result.status !== 0) process.exit(result.status || 1);
    const fresh = join(out, "src/omi/gen");
    const want = files(fresh)
      .map((f) => relative(fresh, f))
      .sort();
    const have = files("src/omi/gen")
      .map((f) => relative("src/omi/gen", f))
      .sort();
    const stale = want.filter(
      (f) => !have.includes(f) || readFileSync(join(fresh, f), "utf8") !== readFileSync(join("src/omi/gen", f), "utf8"),
    );
    const extra = have.filter((f) => !want.includes(f));
    if (stale.length + extra.length > 0) {
      process.stdout.write(
        `== FAILED: generated code is out of date (${[...stale, ...extra].join(", ")}); run npm run generate and commit\n`,
      );
      process.exit(1);
    }
    process.stdout.write(`== ok: generated code matches proto/ (${want.length} files)\n`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

run("build", bin("tsc"), ["-p", "tsconfig.build.json"]);
run("bundle (the CLI that bin/chassis.js runs)", process.execPath, ["scripts/bundle.mjs"]);
run("type-check (src, tests, examples)", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
run("lint and format", bin("biome"), ["check", "."]);
run("import direction", bin("depcruise"), ["src", "--config", ".dependency-cruiser.cjs"]);
checkGenerated();
run("tests", process.execPath, ["scripts/test.mjs"]);

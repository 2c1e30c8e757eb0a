// Runs every *.test.ts under src/, test/ and examples/ with Node's test
// runner (TypeScript through tsx). Extra arguments are passed to `node --test`
// (e.g. --test-name-pattern=reflection) or, if they are files, replace the list.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith(".ts"));
const flags = args.filter((a) => !a.endsWith(".ts"));
const list = files.length > 0 ? files : ["src", "test", "examples"].flatMap(find).sort();
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=600000", ...flags, ...list],
  {
    stdio: "inherit",
  },
);
process.exit(result.status ?? 1);

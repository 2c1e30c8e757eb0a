/**
 * The docs keep up with the code: every tool error id is in the error
 * catalog, every serve flag and CLI command is in the CLI reference, and
 * every relative link between docs resolves, to a heading where it names one.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { test } from "node:test";
import { TOOL_ERRORS } from "../src/core/tool-error.js";
import { SERVER_FLAGS } from "../src/server/config.js";
import { ROOT } from "./helpers/server.js";

const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

test("docs/errors.md lists every tool error id with its exit status", () => {
  const catalog = read("docs/errors.md");
  for (const [id, { exit }] of Object.entries(TOOL_ERRORS)) {
    assert.ok(catalog.includes(`\`${id}\``), `docs/errors.md does not mention \`${id}\``);
    const row = catalog.split("\n").find((line) => line.includes(`\`${id}\``) && line.trimStart().startsWith("|"));
    assert.ok(row, `docs/errors.md has no table row for ${id}`);
    assert.match(row, new RegExp(`\\|\\s*${exit}\\s*\\|`), `the row for ${id} does not give exit status ${exit}`);
  }
});

test("docs/cli.md documents every command and every serve flag", () => {
  const cli = read("docs/cli.md");
  for (const command of [
    "chassis serve",
    "chassis test",
    "chassis client status",
    "chassis client run",
    "chassis client shutdown",
    "chassis client predict",
    "chassis deploy kserve",
  ]) {
    assert.ok(cli.includes(command), `docs/cli.md does not mention ${command}`);
  }
  for (const flag of SERVER_FLAGS) assert.ok(cli.includes(`--${flag}`), `docs/cli.md does not mention --${flag}`);
});

test("relative links between the docs and the README resolve", () => {
  const files = [
    "README.md",
    ...readdirSync(join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`),
  ];
  for (const file of files) {
    const prose = read(file)
      .replace(/```[\s\S]*?```/g, "")
      .replace(/`[^`\n]*`/g, "");
    for (const [, target] of prose.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (!target || /^[a-z]+:/.test(target)) continue;
      assert.ok(existsSync(join(ROOT, dirname(file), target)), `${file} links to ${target}, which does not exist`);
    }
  }
});

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens, -1, -2 on repeats. */
function headingAnchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading = ""] of read(file)
    .replace(/```[\s\S]*?```/g, "")
    .matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const base = heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const repeat = seen.get(base) ?? 0;
    seen.set(base, repeat + 1);
    anchors.add(repeat ? `${base}-${repeat}` : base);
  }
  return anchors;
}

test("links to a heading of the README, bench/README.md or docs/ name a heading that is there", () => {
  const files = [
    "README.md",
    "bench/README.md",
    ...readdirSync(join(ROOT, "docs")).flatMap((f) => (f.endsWith(".md") ? [`docs/${f}`] : [])),
  ];
  let checked = 0;
  for (const file of files) {
    const prose = read(file)
      .replace(/```[\s\S]*?```/g, "")
      .replace(/`[^`\n]*`/g, "");
    for (const [, target = "", fragment = ""] of prose.matchAll(/\]\(([^)#\s]*)#([^)\s]+)\)/g)) {
      const linked = target ? normalize(join(dirname(file), target)) : file;
      if (!linked.endsWith(".md") || !existsSync(join(ROOT, linked))) continue;
      assert.ok(
        headingAnchors(linked).has(decodeURIComponent(fragment)),
        `${file} links to ${target}#${fragment}: no such heading in ${linked}`,
      );
      checked++;
    }
  }
  assert.ok(checked > 100, `only ${checked} links to headings found: is the pattern still right?`);
});

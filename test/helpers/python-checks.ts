/**
 * Runs one of the independent Python clients in test/interop, which print one
 * JSON line per check ({check, ok, detail}), and asserts that every check
 * passed, in the expected order, and that the script exited 0.
 */
import assert from "node:assert/strict";
import { type ChildServer, runProcess } from "./server.js";

export const PYTHON = "/usr/bin/python3";

export interface CheckLine {
  check: string;
  ok: boolean;
  detail?: unknown;
}

export async function runPythonChecks(
  args: string[],
  expected: readonly string[],
  server: ChildServer,
  timeoutMs: number,
): Promise<{ lines: CheckLine[]; transcript: string }> {
  const result = await runProcess(PYTHON, args, { timeoutMs });
  const transcript = `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}\nserver stderr:\n${server.stderr()}`;
  const lines: CheckLine[] = result.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as CheckLine | { summary: true })
    .filter((line): line is CheckLine => "check" in line);
  assert.deepEqual(
    lines.filter((line) => !line.ok),
    [],
    `failed checks:\n${transcript}`,
  );
  assert.deepEqual(
    lines.map((line) => line.check),
    expected,
    `checks reported:\n${transcript}`,
  );
  assert.equal(result.code, 0, transcript);
  return { lines, transcript };
}

/**
 * @module cli/inputs
 * `--input key=@file` / `key=text` parsing, and printing of outputs (JSON
 * pretty, text as is, other bytes summarized or written to files).
 */
import { readFileSync } from "node:fs";
import { ToolError } from "../core/tool-error.js";

const encoder = new TextEncoder();

/** Turns `["input=@x.json", "raise=boom"]` into one item. */
export function parseInputs(values: readonly string[]): Record<string, Uint8Array> {
  const item: Record<string, Uint8Array> = {};
  for (const value of values) {
    const at = value.indexOf("=");
    if (at <= 0) {
      throw new ToolError("CHASSIS_BAD_INPUT", `--input "${value}" is not key=value`, {
        hint: "use --input key=@path/to/file for a file's bytes, or --input key=text for literal text",
      });
    }
    const key = value.slice(0, at);
    const rest = value.slice(at + 1);
    if (Object.hasOwn(item, key)) throw new ToolError("CHASSIS_BAD_INPUT", `--input "${key}" is given twice`);
    if (rest.startsWith("@")) {
      const path = rest.slice(1);
      try {
        item[key] = readFileSync(path);
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message;
        throw new ToolError("CHASSIS_BAD_INPUT", `--input ${key}=@${path}: cannot read the file (${reason})`);
      }
    } else {
      item[key] = encoder.encode(rest);
    }
  }
  return item;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** An output's bytes for a terminal: pretty JSON, plain text, or a byte summary. */
export function formatOutput(bytes: Uint8Array): string {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return `<${bytes.byteLength} bytes of binary data>`;
  }
  try {
    const trimmed = text.trim();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    // not JSON: print as text
  }
  return text;
}

export interface PrintableItem {
  success: boolean;
  outputs: Record<string, Uint8Array>;
}

/** Prints items as `item N: ok|failed` blocks; returns how many failed. */
export function printItems(items: readonly PrintableItem[], write: (text: string) => void): number {
  let failed = 0;
  items.forEach((item, i) => {
    if (!item.success) failed++;
    write(`item ${i}: ${item.success ? "ok" : "failed"}\n`);
    for (const [key, bytes] of Object.entries(item.outputs)) {
      const body = formatOutput(bytes);
      write(`  ${key}:${body.includes("\n") ? `\n${indent(body, 4)}` : ` ${body}`}\n`);
    }
  });
  return failed;
}

function indent(text: string, spaces: number): string {
  const pad = " ".repeat(spaces);
  return text
    .split("\n")
    .map((line) => pad + line)
    .join("\n");
}

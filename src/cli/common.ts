/**
 * @module cli/common
 * What every command shares: flag parsing with usage errors, durations, and
 * printing items the same way everywhere.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { TOOL_ERRORS, ToolError } from "../core/tool-error.js";
import { parseDuration } from "../model/units.js";
import { printItems } from "./inputs.js";

export const out = (text: string) => process.stdout.write(text);

type Parsed<O extends NonNullable<ParseArgsConfig["options"]>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

export function parse<const O extends NonNullable<ParseArgsConfig["options"]>>(command: string, args: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ToolError("CHASSIS_USAGE", `${command}: ${(error as Error).message}`, { hint: `see: chassis help` });
  }
}

export function duration(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new ToolError("CHASSIS_USAGE", `--${flag} "${text}" is not a duration (expected e.g. 500ms, 10s, 2m)`);
  return ms;
}

export function reportItems(items: Array<{ success: boolean; outputs: Record<string, Uint8Array> }>, asJson: boolean): number {
  let failed: number;
  if (asJson) {
    const decoder = new TextDecoder();
    out(
      `${JSON.stringify(
        items.map((item) => ({
          success: item.success,
          outputs: Object.fromEntries(Object.entries(item.outputs).map(([k, v]) => [k, decoder.decode(v)])),
        })),
        null,
        2,
      )}\n`,
    );
    failed = items.filter((item) => !item.success).length;
  } else {
    failed = printItems(items, out);
  }
  return failed > 0 ? TOOL_ERRORS.CHASSIS_ITEM_FAILED.exit : 0;
}

/**
 * @module build/oci/epoch
 * Fixed timestamps for reproducible images. The library never reads
 * `process.env`: the CLI passes `SOURCE_DATE_EPOCH` in
 * (https://reproducible-builds.org/specs/source-date-epoch/).
 */
import { ToolError } from "../../core/tool-error.js";

/**
 * Default mtime of layer entries: 1 second after the epoch, Jib's
 * `DEFAULT_MODIFICATION_TIME` (jib#1133: some software treats mtime 0 as
 * "unset"; oci-build.md section 7 item 14).
 */
export const DEFAULT_MTIME = 1;

/** Default `created` of configs and history: the epoch itself, as Jib and ko (1970-01-01T00:00:00Z). */
export const DEFAULT_CREATED = 0;

/**
 * Parses a SOURCE_DATE_EPOCH value: undefined or empty gives undefined; a
 * decimal count of seconds gives that number; anything else throws
 * CHASSIS_USAGE (the spec asks tools to fail rather than guess).
 */
export function parseSourceDateEpoch(value: string | undefined, where = "SOURCE_DATE_EPOCH"): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const text = value.trim();
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new ToolError(
      "CHASSIS_USAGE",
      `${where}=${JSON.stringify(value)} is not a Unix time (expected a whole number of seconds, e.g. 1700000000)`,
    );
  }
  return Number(text);
}

/** RFC 3339 in UTC without fractions: 0 -> "1970-01-01T00:00:00Z". */
export function rfc3339(epochSeconds: number): string {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 0) throw new ToolError("CHASSIS_USAGE", `${epochSeconds} is not a Unix time`);
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

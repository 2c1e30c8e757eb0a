/**
 * @module model/units
 * Parsing of the human sizes and durations that OMI metadata carries as
 * strings (`max_size: "1M"`, `timeout.run: "60s"`). The strings go on the
 * wire unchanged; the numbers drive the runtime's limits.
 */

const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])i?)?(b?)$/i;
const SIZE_FACTORS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Bytes in a size such as `512K`, `1M`, `1.5G`, `100`, `2MiB`, `10KB`.
 * K/M/G/T are binary multiples (1M = 1,048,576 bytes), the generous reading of
 * Chassis's sizes. Returns undefined when the text is not a size.
 */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const [, amount = "", unit = ""] = match;
  return Math.floor(Number(amount) * (SIZE_FACTORS[unit.toLowerCase()] ?? 1));
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i;
const DURATION_FACTORS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in a duration such as `60s`, `500ms`, `5m`, `1h` (a bare number is seconds). */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const [, amount = "", unit = "s"] = match;
  return Number(amount) * (DURATION_FACTORS[unit.toLowerCase()] ?? 1000);
}

/** `1048576` -> `1M`, for messages that name a limit. */
export function formatBytes(bytes: number): string {
  const units = [
    ["K", 1024],
    ["M", 1024 ** 2],
    ["G", 1024 ** 3],
  ] as const;
  for (let i = units.length - 1; i >= 0; i--) {
    const [unit, factor] = units[i] as (typeof units)[number];
    if (bytes < factor) continue;
    const value = Number((bytes / factor).toFixed(2));
    // Rounding can reach the next unit: 1048575 bytes reads 1M, not 1024K.
    const next = units[i + 1];
    return value >= 1024 && next ? `1${next[0]}` : `${value}${unit}`;
  }
  return `${bytes} bytes`;
}

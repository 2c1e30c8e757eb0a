/**
 * @module core/error
 * ChassisError: one error class for the whole runtime, carrying a Code.
 * `ChassisError.from(unknown)` turns anything thrown (by a model, by Node)
 * into one, so adapters never inspect foreign error shapes.
 */
import { Code } from "./code.js";

export class ChassisError extends Error {
  override readonly name = "ChassisError";
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /**
   * Wraps anything thrown. A model's own Error keeps its message (that text is
   * what callers see as the item's `error`); non-Error values are stringified.
   */
  static from(reason: unknown, fallback: Code = Code.UNKNOWN): ChassisError {
    if (reason instanceof ChassisError) return reason;
    if (isForeignChassisError(reason)) return new ChassisError(reason.code, reason.message, { cause: reason });
    if (reason instanceof Error) {
      if (reason.name === "AbortError") return new ChassisError(Code.CANCELLED, reason.message, { cause: reason });
      return new ChassisError(fallback, reason.message, { cause: reason });
    }
    return new ChassisError(fallback, describeThrown(reason), { cause: reason });
  }
}

/**
 * A ChassisError from another copy of this package (a model importing its own
 * chassis-ts, or src/ under tsx next to dist/): same name and a numeric code.
 */
export function isForeignChassisError(value: unknown): value is Error & { code: Code } {
  return value instanceof Error && value.name === "ChassisError" && typeof (value as { code?: unknown }).code === "number";
}

/** Text for a thrown non-Error value (`throw "x"`, `throw {a:1}`). */
function describeThrown(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

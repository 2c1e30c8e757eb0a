/**
 * @module build/registry/errors
 * RegistryError: a ToolError (so the CLI prints and exits on it like any
 * other) that also carries the HTTP status and the registry's own error codes
 * (distribution-spec "Error Codes": `{"errors":[{code,message,detail}]}`).
 */
import { ToolError, type ToolErrorId } from "../../core/tool-error.js";

/** One entry of a registry's JSON error body. */
export interface RegistryErrorEntry {
  code: string;
  message: string;
}

export class RegistryError extends ToolError {
  /** The HTTP status that caused it; undefined for network failures. */
  readonly status: number | undefined;
  /** The registry's error codes (`DIGEST_INVALID`, `MANIFEST_UNKNOWN`, ...), when it sent any. */
  readonly errors: readonly RegistryErrorEntry[];

  constructor(
    id: ToolErrorId,
    message: string,
    options: { status?: number; errors?: readonly RegistryErrorEntry[]; hint?: string; cause?: unknown } = {},
  ) {
    super(id, message, {
      ...(options.hint !== undefined ? { hint: options.hint } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.status = options.status;
    this.errors = options.errors ?? [];
  }
}

/** Parses a registry error body; tolerant of non-JSON (proxies answer HTML). */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors
      .filter((e): e is { code?: unknown; message?: unknown } => typeof e === "object" && e !== null)
      .map((e) => ({ code: String(e.code ?? "UNKNOWN"), message: typeof e.message === "string" ? e.message : "" }));
  } catch {
    return [];
  }
}

/** `401 UNAUTHORIZED: authentication required`, or `503 Service Unavailable` without a body. */
export function describeStatus(status: number, statusText: string, errors: readonly RegistryErrorEntry[]): string {
  if (errors.length === 0) return `${status}${statusText ? ` ${statusText}` : ""}`;
  return `${status} ${errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join("; ")}`;
}

/**
 * @module omi/status
 * The one place where runtime Codes meet the OMI wire: the HTTP-like
 * `status_code`/`status` pairs of OMI responses, the per-item error form
 * (success=false with an `error` key, SPEC.md section 2), and gRPC statuses.
 */
import { Code } from "../core/code.js";
import type { ChassisError } from "../core/error.js";

export interface OmiStatus {
  readonly statusCode: number;
  readonly status: string;
}

export const OMI_OK: OmiStatus = { statusCode: 200, status: "OK" };
export const OMI_INTERNAL_ERROR: OmiStatus = { statusCode: 500, status: "Internal Server Error" };

const BY_CODE: Partial<Record<Code, OmiStatus>> = {
  [Code.OK]: OMI_OK,
  [Code.INVALID_ARGUMENT]: { statusCode: 400, status: "Bad Request" },
  [Code.NOT_FOUND]: { statusCode: 404, status: "Not Found" },
  [Code.RESOURCE_EXHAUSTED]: { statusCode: 413, status: "Payload Too Large" },
  [Code.DEADLINE_EXCEEDED]: { statusCode: 504, status: "Gateway Timeout" },
  [Code.UNIMPLEMENTED]: { statusCode: 501, status: "Not Implemented" },
  // Not loaded yet, load failed, or draining: the client should retry elsewhere or later.
  [Code.FAILED_PRECONDITION]: { statusCode: 503, status: "Service Unavailable" },
  [Code.UNAVAILABLE]: { statusCode: 503, status: "Service Unavailable" },
};

export function omiStatusFor(code: Code): OmiStatus {
  return BY_CODE[code] ?? OMI_INTERNAL_ERROR;
}

const encoder = new TextEncoder();

/** The output map of a failed item: `{ error: <message> }` (success=false). */
export function errorOutput(error: ChassisError): Record<string, Uint8Array> {
  return { error: encoder.encode(error.message) };
}

/**
 * @module runtime/outcome
 * The runtime's protocol-free currency: a RawItem in (input key -> bytes, as
 * any protocol decodes it), an ItemOutcome out (outputs, or an error with a Code).
 */
import type { ChassisError } from "../core/error.js";

export type RawItem = Readonly<Record<string, Uint8Array>>;

export type Failure = { readonly ok: false; readonly error: ChassisError };

export type ItemOutcome = { readonly ok: true; readonly outputs: Readonly<Record<string, Uint8Array>> } | Failure;

export type ExplainOutcome = { readonly ok: true; readonly explanation: unknown } | Failure;

export function failure(error: ChassisError): Failure {
  return { ok: false, error };
}

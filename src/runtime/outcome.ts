/**
 * @module runtime/outcome
 * The runtime's protocol-free currency: a RawItem in (input key -> bytes, as
 * any protocol decodes it), an ItemOutcome out (outputs, or an error with a Code).
 */
import type { ChassisError } from "../core/error.js";

export type RawItem = Readonly<Record<string, Uint8Array>>;

export type ItemOutcome =
  | { readonly ok: true; readonly outputs: Readonly<Record<string, Uint8Array>> }
  | { readonly ok: false; readonly error: ChassisError };

export function failure(error: ChassisError): ItemOutcome {
  return { ok: false, error };
}

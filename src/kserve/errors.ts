/**
 * @module kserve/errors
 * The one place where runtime Codes meet KServe's REST wire: HTTP statuses
 * and `{"error": ...}` bodies with KServe ModelServer's texts
 * (reference kserve-rest.md 0.1). Framework-style errors (unknown route,
 * wrong method) use `{"detail": ...}` as FastAPI does.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

export interface HttpError {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Readonly<Record<string, string>>;
}

export const modelNotFound = (name: string): HttpError => ({ status: 404, body: { error: `Model with name ${name} does not exist.` } });
export const modelNotReady = (name: string): HttpError => ({ status: 503, body: { error: `Model with name ${name} is not ready.` } });
export const routeNotFound: HttpError = { status: 404, body: { detail: "Not Found" } };
export const methodNotAllowed = (allow: string): HttpError => ({ status: 405, body: { detail: "Method Not Allowed" }, headers: { allow } });
export const versioningNotSupported: HttpError = { status: 501, body: { error: "Model versioning not supported yet." } };

const STATUS: Partial<Record<Code, number>> = {
  [Code.INVALID_ARGUMENT]: 400,
  [Code.NOT_FOUND]: 404,
  [Code.RESOURCE_EXHAUSTED]: 413,
  [Code.CANCELLED]: 499,
  [Code.UNIMPLEMENTED]: 501,
  [Code.FAILED_PRECONDITION]: 503,
  [Code.UNAVAILABLE]: 503,
  [Code.DEADLINE_EXCEEDED]: 504,
};

/**
 * Maps an error to KServe's answer. Not-ready codes become KServe's
 * "is not ready." text; an error thrown by the model's code (UNKNOWN) becomes
 * `"<Type> : <message>"` with the thrown error's class name, as KServe's
 * generic handler prints it; `where` (e.g. "instance 2") prefixes the message.
 */
export function httpErrorFor(reason: unknown, modelName: string, where?: string): HttpError {
  const error = ChassisError.from(reason);
  const status = STATUS[error.code] ?? 500;
  if (status === 503) return { status, body: { error: `Model with name ${modelName} is not ready. ${error.message}` } };
  const message = where ? `${where}: ${error.message}` : error.message;
  if (error.code === Code.UNKNOWN) {
    const type = error.cause instanceof Error ? error.cause.constructor.name || error.cause.name : "Error";
    return { status, body: { error: `${type} : ${message}` } };
  }
  return { status, body: { error: message } };
}

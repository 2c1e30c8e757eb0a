/**
 * @module kserve/http
 * Answering on the HTTP/1.1 server (./h1): JSON or raw bodies, and reading a
 * body as a promise.
 */
import type { ChassisError } from "../core/error.js";
import type { HttpError } from "./errors.js";
import type { H1Request, H1Response } from "./h1/connection.js";

/** The whole body (under the server's limit), or a RESOURCE_EXHAUSTED / CANCELLED ChassisError. */
export function readBody(req: H1Request): Promise<Buffer> {
  return new Promise((resolve, reject) => req.readBody((error: ChassisError | undefined, body) => (error ? reject(error) : resolve(body))));
}

export function sendJson(res: H1Response, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  sendText(res, status, JSON.stringify(body), "application/json", headers);
}

export function sendText(
  res: H1Response,
  status: number,
  text: string | Uint8Array,
  contentType: string | undefined,
  headers?: Readonly<Record<string, string>>,
): void {
  const head: string[] = [];
  if (headers) for (const name of Object.keys(headers)) head.push(name, headers[name] as string);
  if (contentType) head.push("content-type", contentType);
  res.respond(status, head, text);
}

export function sendError(res: H1Response, error: HttpError): void {
  sendJson(res, error.status, error.body, error.headers);
}

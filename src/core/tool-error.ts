/**
 * @module core/tool-error
 * The catalog of tooling errors (CLI, module loading, server start-up): each
 * has a stable id, a process exit status and a one-line meaning. The docs'
 * error catalog lists every id, and a test checks that it does.
 */

export const TOOL_ERRORS = {
  CHASSIS_USAGE: { exit: 2, meaning: "a command, flag or argument is missing or malformed" },
  CHASSIS_MODULE_NOT_FOUND: { exit: 3, meaning: "the model module (file or folder) does not exist or has no model file" },
  CHASSIS_MODULE_FAILED: { exit: 3, meaning: "the model module threw or failed to compile while being imported" },
  CHASSIS_INVALID_MODEL: { exit: 4, meaning: "the module exports no model, or its metadata or functions are invalid" },
  CHASSIS_LOAD_FAILED: { exit: 5, meaning: "the model's load() failed or timed out" },
  CHASSIS_PORT_IN_USE: { exit: 6, meaning: "a port the server needs is taken by another process, or cannot be bound" },
  CHASSIS_BAD_INPUT: { exit: 7, meaning: "an --input value cannot be read (missing file, bad key=value form)" },
  CHASSIS_UNREACHABLE: { exit: 8, meaning: "the server could not be reached, or did not become ready in time" },
  CHASSIS_CALL_FAILED: { exit: 9, meaning: "the server answered a call with an error status" },
  CHASSIS_ITEM_FAILED: { exit: 10, meaning: "the call worked but one or more items came back with success=false" },
  CHASSIS_INTERNAL: { exit: 1, meaning: "an unexpected failure inside chassis itself (a bug: please report it with the message)" },
  CHASSIS_REGISTRY_UNAUTHORIZED: { exit: 20, meaning: "the registry answered 401: no credentials were found, or it refused the ones sent" },
  CHASSIS_REGISTRY_DENIED: {
    exit: 21,
    meaning: "the registry answered 403: the credentials work but may not pull or push this repository",
  },
  CHASSIS_REGISTRY_NOT_FOUND: { exit: 22, meaning: "the registry has no such repository, tag, manifest or blob (404)" },
  CHASSIS_REGISTRY_FAILED: {
    exit: 23,
    meaning: "the registry could not be reached, rejected a request, or kept failing (5xx, 429, reset) after the retries",
  },
  CHASSIS_DIGEST_MISMATCH: {
    exit: 24,
    meaning: "bytes read from a registry, layout or archive, or sent to a registry, do not match their sha256 digest",
  },
  CHASSIS_PLATFORM_NOT_FOUND: {
    exit: 25,
    meaning: "a multi-platform image (index or manifest list) has no manifest for the wanted platform",
  },
  CHASSIS_LAYER_INVALID: {
    exit: 30,
    meaning: "a layer's file list is invalid: a duplicate, unsafe or malformed path, a dangling hardlink, or a wrong file size",
  },
  CHASSIS_IMAGE_INVALID: {
    exit: 31,
    meaning: "an OCI layout or image archive is malformed or incomplete (oci-layout, index.json, manifest.json, manifest, config, blob)",
  },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type ToolErrorId = keyof typeof TOOL_ERRORS;

export class ToolError extends Error {
  override readonly name = "ToolError";
  readonly id: ToolErrorId;
  /** What to do about it, printed under the message. */
  readonly hint: string | undefined;

  constructor(id: ToolErrorId, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.id = id;
    this.hint = options.hint;
  }

  get exitCode(): number {
    return TOOL_ERRORS[this.id].exit;
  }
}

/**
 * @module build/registry/reference
 * Image references (`[registry/]repository[:tag][@digest]`), parsed the way
 * Docker and podman read them (distribution's `reference` grammar plus the
 * `docker.io` normalisation of `github.com/distribution/reference`
 * `normalize.go`):
 *
 * - the first `/`-separated part is a registry only if it contains `.` or `:`,
 *   is `localhost`, or has an upper-case letter; otherwise the whole name is a
 *   repository on Docker Hub (`alpine` -> `docker.io/library/alpine`);
 * - `index.docker.io` is written `docker.io`; its API host is
 *   `registry-1.docker.io` ({@link registryApiHost});
 * - neither tag nor digest means `:latest`; a tag and a digest may both be
 *   given, and the digest is what is pulled.
 *
 * A malformed reference is a `ToolError(CHASSIS_USAGE)` whose message quotes
 * it and says which part is wrong.
 */
import { ToolError } from "../../core/tool-error.js";

/** Docker Hub as written in references and auth files. */
export const DOCKER_HUB = "docker.io";
/** Docker Hub's registry API host (ggcr uses index.docker.io, which redirects). */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/** The key `docker login` writes for Docker Hub in ~/.docker/config.json. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

export interface ImageReference {
  /** Registry host with an optional port: `docker.io`, `localhost:5000`, `10.0.0.1:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/alpine`, `team/app/model`. */
  readonly repository: string;
  /** The tag, `latest` when neither a tag nor a digest was given; undefined for a digest-only reference. */
  readonly tag: string | undefined;
  /** `sha256:<64 hex>` when given with `@`. */
  readonly digest: string | undefined;
}

// distribution/reference regexp.go
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const DIGEST = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
const MAX_NAME_LENGTH = 255;

function usage(reference: string, problem: string, hint?: string): ToolError {
  return new ToolError("CHASSIS_USAGE", `invalid image reference "${reference}": ${problem}`, {
    hint: hint ?? "expected [registry[:port]/]repository[:tag][@sha256:<64 hex digits>], e.g. localhost:5000/team/model:v1",
  });
}

/**
 * Checks a digest string (`sha256:<64 lowercase hex>`, `sha512:<128>`; other
 * algorithms only by the general grammar). Returns it unchanged.
 * @throws ToolError(CHASSIS_USAGE) naming `what` when malformed.
 */
export function validateDigest(digest: string, what = "digest"): string {
  const match = DIGEST.exec(digest);
  if (!match) throw new ToolError("CHASSIS_USAGE", `${what} "${digest}" is not a digest (expected sha256:<64 hex digits>)`);
  const [, algorithm = "", hex = ""] = match;
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length !== undefined && (hex.length !== length || !/^[a-f0-9]+$/.test(hex))) {
    throw new ToolError("CHASSIS_USAGE", `${what} "${digest}" is not a digest: ${algorithm} needs ${length} lowercase hex digits`);
  }
  return digest;
}

function isRegistryHost(first: string): boolean {
  return first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase();
}

function validateHost(reference: string, host: string): void {
  let name: string;
  let port: string | undefined;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    name = close < 0 ? host : host.slice(0, close + 1);
    if (!IPV6_HOST.test(name)) throw usage(reference, `registry "${host}" is not a valid IPv6 address in brackets`);
    const after = host.slice(name.length);
    if (after.length > 0 && !after.startsWith(":")) throw usage(reference, `registry "${host}" is not a valid host`);
    port = after.length > 0 ? after.slice(1) : undefined;
  } else {
    const colon = host.indexOf(":");
    name = colon < 0 ? host : host.slice(0, colon);
    port = colon < 0 ? undefined : host.slice(colon + 1);
    if (name.split(".").some((label) => !DOMAIN_LABEL.test(label))) throw usage(reference, `registry "${host}" is not a valid host name`);
  }
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) > 65535)) {
    throw usage(reference, `registry "${host}" has an invalid port "${port}"`);
  }
}

/**
 * Parses an image reference. A leading `docker://` (skopeo's transport name)
 * is accepted and dropped; other schemes (`http://`, `oci:`) are refused.
 * @throws ToolError(CHASSIS_USAGE) for a malformed reference.
 */
export function parseReference(input: string): ImageReference {
  const reference = input.startsWith("docker://") ? input.slice("docker://".length) : input;
  if (reference.length === 0) throw usage(input, "it is empty");
  if (/\s/.test(reference)) throw usage(input, "it contains white space");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) {
    throw usage(input, "a URL scheme is not part of an image reference", "drop the scheme, e.g. localhost:5000/team/model:v1");
  }

  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw usage(input, `"@${digest}" is not a digest`);
    try {
      validateDigest(digest);
    } catch (error) {
      throw usage(input, (error as Error).message);
    }
  }

  let registry = DOCKER_HUB;
  const slash = rest.indexOf("/");
  if (slash >= 0 && isRegistryHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
    validateHost(input, registry);
    if (registry === "index.docker.io") registry = DOCKER_HUB;
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0 && !rest.slice(colon).includes("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw usage(input, `tag "${tag}" is invalid (letters, digits, _ . - only, at most 128, not starting with . or -)`);
    }
  }

  if (rest.length === 0) throw usage(input, "the repository name is missing");
  const components = rest.split("/");
  for (const component of components) {
    if (component.length === 0) throw usage(input, `repository "${rest}" has an empty path component`);
    if (!PATH_COMPONENT.test(component)) {
      const upper = component !== component.toLowerCase();
      throw usage(
        input,
        upper
          ? `repository "${rest}" must be lower case`
          : `repository path component "${component}" is invalid (lower-case letters and digits, separated by ".", "_", "__" or "-")`,
      );
    }
  }
  let repository = rest;
  if (registry === DOCKER_HUB && components.length === 1) repository = `library/${repository}`;
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw usage(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  return { registry, repository, tag, digest };
}

/** The canonical text of a reference: `docker.io/library/alpine:3.20@sha256:...`. */
export function formatReference(reference: ImageReference): string {
  return `${reference.registry}/${reference.repository}${reference.tag !== undefined ? `:${reference.tag}` : ""}${
    reference.digest !== undefined ? `@${reference.digest}` : ""
  }`;
}

/** What to ask the registry for: the digest if there is one, else the tag. */
export function manifestReference(reference: ImageReference): string {
  return reference.digest ?? reference.tag ?? "latest";
}

/** The host the API is served from: `registry-1.docker.io` for `docker.io`, else the registry itself. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/**
 * True for registries reached over plain HTTP by default: loopback hosts
 * (`localhost`, `127.0.0.0/8`, `[::1]`), which Docker and podman also treat
 * as insecure registries without configuration. Everything else is HTTPS
 * unless the caller says otherwise.
 */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith("[") ? registry.slice(0, registry.indexOf("]") + 1) : (registry.split(":")[0] ?? "");
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

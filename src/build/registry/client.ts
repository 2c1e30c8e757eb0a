/**
 * @module build/registry/client
 * A client for the OCI distribution API (opencontainers/distribution-spec
 * `spec.md`), one per registry: pull (manifests, indexes, digest-verified
 * blob streams, platform selection), push (HEAD to skip, cross-repository
 * mount, monolithic and chunked uploads, manifests), and the two flows built
 * on them, {@link RegistryClient.pushImage} and {@link copyBlob}.
 *
 * Transport: Node's global `fetch` (undici), not node:http, because
 * - blob GETs on Docker Hub, GHCR and ECR answer 307 to a CDN or S3, and
 *   fetch follows redirects and, per the Fetch standard (HTTP-redirect fetch,
 *   step "remove `Authorization` on a cross-origin redirect"), drops our
 *   `Authorization` header when the redirect leaves the registry's origin
 *   (scheme, host or port): the token never reaches the storage host, which
 *   would also reject a request carrying two auth mechanisms. With node:http
 *   we would re-implement that, and get it wrong once. A test checks it.
 * - it streams request bodies: a disk-backed `Blob` from `fs.openAsBlob` (sent
 *   with its Content-Length, never read into memory) or an async iterable
 *   (`duplex: "half"`) for registry-to-registry copies, where we set
 *   Content-Length ourselves because registries and proxies refuse chunked
 *   transfer encoding for blobs (oci-build.md §4.4).
 * - it is Web-standard, so tests can inject a fake `fetch`.
 * We send `Authorization` only to the registry's own origin: an upload
 * `Location` on another host (some registries upload straight to storage)
 * gets none.
 *
 * Retries: every request is retried on network resets (ECONNRESET, EPIPE,
 * socket closed, timeouts) and on 408, 429, 500, 502, 503, 504, with
 * exponential backoff and jitter, honouring `Retry-After` (seconds or a date;
 * capped by `retry.maxDelayMs`), up to `retry.attempts` attempts. A refused
 * connection (ECONNREFUSED) is not retried: nothing listens there. Bodies
 * come from factories, so every attempt resends the same bytes.
 *
 * Errors are {@link RegistryError}s (ToolErrors): 401 ->
 * CHASSIS_REGISTRY_UNAUTHORIZED (names the registry and the credential source
 * tried, never a secret), 403 -> CHASSIS_REGISTRY_DENIED, 404 ->
 * CHASSIS_REGISTRY_NOT_FOUND (names repository and tag or digest), content
 * not matching its digest (on GET, or the registry's DIGEST_INVALID on upload)
 * -> CHASSIS_DIGEST_MISMATCH, anything else -> CHASSIS_REGISTRY_FAILED.
 */
import { pipeline, Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { setTimeout as sleepFor } from "node:timers/promises";
import type { Logger } from "../../core/log.js";
import { silentLogger } from "../../core/log.js";
import { ToolError } from "../../core/tool-error.js";
import { type CredentialLookup, Credentials, loginHint, RegistryAuthenticator, repositoryScope } from "./auth.js";
import { type BlobBody, type BlobReader, type BlobSource, bytesSource } from "./blobs.js";
import { DigestVerifier, digestLike, mismatch, sha256Digest } from "./digest.js";
import { describeStatus, parseErrorBody, RegistryError, type RegistryErrorEntry } from "./errors.js";
import { type Descriptor, type ImageIndex, type ImageManifest, isImageManifestType, isIndexType, MANIFEST_ACCEPT } from "./media-types.js";
import { availablePlatforms, formatPlatform, type PlatformSpec, selectPlatform } from "./platform.js";
import { isLoopbackRegistry, registryApiHost, validateDigest } from "./reference.js";

export interface RetryOptions {
  /** Attempts per request, the first one included. @default 4 */
  attempts?: number;
  /** The first backoff; it doubles per attempt, with jitter. @default 200 */
  baseDelayMs?: number;
  /** The longest wait between attempts, also the cap on `Retry-After`. @default 30000 */
  maxDelayMs?: number;
}

export interface RegistryClientOptions {
  /** The registry as written in image references: `docker.io`, `localhost:5000`, `10.1.2.3:5000`. */
  registry: string;
  /**
   * Credentials, or the result of {@link findCredentials} (whose list of
   * places tried goes into 401 errors). Undefined: anonymous.
   */
  credentials?: Credentials | CredentialLookup;
  /** Use http:// instead of https://. @default true for loopback registries (localhost, 127.0.0.0/8, [::1]), else false */
  plainHttp?: boolean;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  logger?: Logger;
  /** @default "chassis-ts (node <version>)" */
  userAgent?: string;
  retry?: RetryOptions;
  /** Blobs of at least this many bytes are uploaded in PATCH chunks; smaller ones in one PUT. @default 64 MiB */
  chunkedThreshold?: number;
  /** The size of each PATCH chunk. @default 8 MiB */
  chunkSize?: number;
  /** How many blobs {@link RegistryClient.pushImage} uploads at once. @default 3 */
  concurrency?: number;
  /** Cancels every request of this client. */
  signal?: AbortSignal;
  /** For tests: how to wait between attempts. @default timers/promises setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

/** A manifest as fetched: the exact bytes (what the digest covers) and their parse. */
export interface ManifestResult {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** The parsed JSON (an {@link ImageManifest} or an {@link ImageIndex}, by mediaType). */
  json: unknown;
}

export interface PlatformResult {
  /** The image manifest for the platform. */
  manifest: ManifestResult;
  /** Its entry in the index, when the reference named an index or a manifest list. */
  descriptor?: Descriptor;
  /** The index itself, when there was one. */
  index?: ManifestResult;
}

export interface BlobDownload {
  /** Content-Length when the registry (or the storage it redirected to) sent one. */
  size: number | undefined;
  /** The bytes; the stream fails with CHASSIS_DIGEST_MISMATCH at the end if they do not match the digest. */
  stream: Readable;
}

export type BlobAction = "exists" | "mounted" | "uploaded";

export interface BlobPushResult {
  digest: string;
  size: number;
  mediaType: string;
  action: BlobAction;
}

export interface PushImageOptions {
  repository: string;
  /** The tag to push the manifest under; without one it is pushed by digest only. */
  tag?: string;
  /** The manifest's exact bytes (the digest is theirs), or a string of them. */
  manifest: Uint8Array | string;
  /** @default the manifest's own `mediaType` field */
  mediaType?: string;
  /** Where the layer (and config) bytes come from: an OCI layout, memory, ... */
  blobs: BlobReader;
  /** The config blob's bytes, when `blobs` does not hold it (a freshly built image). */
  config?: Uint8Array | string;
  /**
   * A repository on the same registry that already holds (some of) the blobs,
   * e.g. the base image's: blobs missing here are mounted from it (no bytes
   * sent) before falling back to an upload. A function picks one per blob.
   */
  mountFrom?: string | ((descriptor: Descriptor) => string | undefined);
  /** Called as each blob is done (for progress output). */
  onBlob?: (result: BlobPushResult) => void;
}

export interface PushImageResult {
  /** The manifest's digest. */
  digest: string;
  size: number;
  mediaType: string;
  /** `registry/repository:tag` (or `@digest`). */
  reference: string;
  blobs: BlobPushResult[];
}

interface Request {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: () => BlobBody | Promise<BlobBody>;
  /** The body's length; sent as Content-Length. */
  length?: number;
  scopes: readonly string[];
  /** What the request is about, for messages: `manifest team/app:v1`, `blob sha256:… in team/app`. */
  subject: string;
  action: "pull" | "push" | "ping";
  repository?: string;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_NETWORK = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const MiB = 1024 * 1024;

/** The code of a network failure inside fetch's `TypeError: fetch failed` (cause, or cause's cause). */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = current.cause;
  }
  return undefined;
}

/** The first error of class `type` in `error`'s cause chain. */
function causeOfType<T extends Error>(error: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof type) return current;
    current = current.cause;
  }
  return undefined;
}

function isAsyncIterable(body: BlobBody): body is AsyncIterable<Uint8Array> {
  return typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function" && !(body instanceof Blob);
}

/** Closes a streamed request body the registry did not read to the end (a copy's source GET). */
function discard(body: BlobBody | undefined): void {
  if (body instanceof Readable && !body.readableEnded) body.destroy();
}

/** Reads a response body to the end and drops it (frees the socket). */
async function drain(response: Response): Promise<void> {
  try {
    await response.arrayBuffer();
  } catch {
    // the body broke; nothing to free
  }
}

/** Retry-After as milliseconds (RFC 9110 §10.2.3: seconds or an HTTP date). */
function retryAfterMs(response: Response, now: number): number | undefined {
  const value = response.headers.get("retry-after");
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function isDigest(reference: string): boolean {
  return reference.includes(":");
}

/** Reads an async iterable in pieces of exactly n bytes (the last may be shorter only if the source ends). */
class ChunkReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  async read(n: number): Promise<Buffer> {
    while (this.bufferedBytes < n && !this.done) {
      const next = await this.iterator.next();
      if (next.done) this.done = true;
      else {
        this.buffered.push(Buffer.from(next.value));
        this.bufferedBytes += next.value.byteLength;
      }
    }
    const all = Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    this.buffered = all.length > n ? [all.subarray(n)] : [];
    this.bufferedBytes = all.length - out.length;
    return out;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

async function toAsyncIterable(body: BlobBody): Promise<AsyncIterable<Uint8Array>> {
  if (body instanceof Blob) return Readable.fromWeb(body.stream() as NodeReadableStream<Uint8Array>);
  if (body instanceof Uint8Array) return [body] as unknown as AsyncIterable<Uint8Array>;
  return body;
}

export class RegistryClient {
  /** The registry as written in references. */
  readonly registry: string;
  /** Where the API is: `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  readonly baseUrl: URL;
  private readonly auth: RegistryAuthenticator;
  private readonly fetchImpl: typeof fetch;
  private readonly log: Logger;
  private readonly userAgent: string;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly chunkedThreshold: number;
  private readonly chunkSize: number;
  private readonly concurrency: number;
  private readonly signal: AbortSignal | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly attemptsOf = new WeakMap<Response, number>();

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    const plain = options.plainHttp ?? isLoopbackRegistry(options.registry);
    this.baseUrl = new URL(`${plain ? "http" : "https"}://${registryApiHost(options.registry)}`);
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.log = options.logger ?? silentLogger;
    this.userAgent = options.userAgent ?? `chassis-ts (node ${process.version})`;
    this.attempts = Math.max(1, options.retry?.attempts ?? 4);
    this.baseDelayMs = options.retry?.baseDelayMs ?? 200;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
    this.chunkedThreshold = options.chunkedThreshold ?? 64 * MiB;
    this.chunkSize = Math.max(1, options.chunkSize ?? 8 * MiB);
    this.concurrency = Math.max(1, options.concurrency ?? 3);
    this.signal = options.signal;
    this.sleep = options.sleep ?? ((ms) => sleepFor(ms, undefined, this.signal ? { signal: this.signal } : {}));
    const lookup: CredentialLookup =
      options.credentials instanceof Credentials
        ? { credentials: options.credentials, tried: [`${options.credentials.source}: ${options.credentials.describe()}`] }
        : (options.credentials ?? { credentials: undefined, tried: [] });
    this.auth = new RegistryAuthenticator({
      registry: options.registry,
      baseUrl: this.baseUrl,
      lookup,
      logger: this.log,
      transport: (url, init) =>
        this.attempt(
          {
            method: init.method,
            url,
            headers: init.headers,
            scopes: [],
            subject: "a token",
            action: "ping",
            ...(init.body !== undefined ? { body: () => Buffer.from(init.body as string), length: Buffer.byteLength(init.body) } : {}),
          },
          undefined,
        ),
    });
  }

  // ---- pull ---------------------------------------------------------------

  /** `GET /v2/`: checks that the registry speaks the API and that our credentials (if any) are accepted. */
  async ping(): Promise<{ apiVersion: string | undefined }> {
    const request: Request = { method: "GET", url: this.url("/v2/"), scopes: [], subject: "the API root /v2/", action: "ping" };
    const response = await this.send(request);
    if (response.status !== 200) return this.fail(request, response);
    await drain(response);
    return { apiVersion: response.headers.get("docker-distribution-api-version") ?? undefined };
  }

  /**
   * `HEAD /v2/<repository>/blobs/<digest>`: whether this repository has the
   * blob (blobs are linked per repository: another repository's copy does not
   * count). `forPush` asks for a pull+push token, so a push that follows
   * reuses it.
   */
  async blobExists(repository: string, digest: string, options: { forPush?: boolean } = {}): Promise<boolean> {
    validateDigest(digest);
    const request: Request = {
      method: "HEAD",
      url: this.url(`/v2/${repository}/blobs/${digest}`),
      scopes: [repositoryScope(repository, options.forPush ? ["pull", "push"] : ["pull"])],
      subject: `blob ${digest} in ${repository}`,
      action: options.forPush ? "push" : "pull",
      repository,
    };
    const response = await this.send(request);
    if (response.status === 200 || response.status === 404) {
      await drain(response);
      return response.status === 200;
    }
    return this.fail(request, response);
  }

  /**
   * `GET /v2/<repository>/blobs/<digest>`, following redirects to blob
   * storage (without our Authorization header when the redirect changes
   * origin). The returned stream is verified against the digest (and against
   * `size` when given) and fails with CHASSIS_DIGEST_MISMATCH at its end.
   */
  async getBlob(repository: string, digest: string, options: { size?: number } = {}): Promise<BlobDownload> {
    const verifier = new DigestVerifier(digest, `blob ${digest} from ${this.registry}/${repository}`, options.size);
    const request: Request = {
      method: "GET",
      url: this.url(`/v2/${repository}/blobs/${digest}`),
      scopes: [repositoryScope(repository, ["pull"])],
      subject: `blob ${digest} in ${repository}`,
      action: "pull",
      repository,
    };
    const response = await this.send(request);
    if (response.status !== 200 || !response.body) return this.fail(request, response);
    const length = response.headers.get("content-length");
    const source = Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
    pipeline(source, verifier, () => {
      // errors (a broken connection, a digest mismatch) surface on `verifier`
    });
    return { size: length === null ? undefined : Number(length), stream: verifier };
  }

  /** A whole blob in memory, verified (configs, small files). */
  async getBlobBytes(repository: string, digest: string, options: { size?: number; maxBytes?: number } = {}): Promise<Buffer> {
    const { stream, size } = await this.getBlob(repository, digest, options.size !== undefined ? { size: options.size } : {});
    const max = options.maxBytes ?? 64 * MiB;
    if (size !== undefined && size > max) {
      stream.destroy();
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `blob ${digest} in ${this.registry}/${repository} is ${size} bytes, more than the ${max} allowed here`,
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      total += (chunk as Buffer).length;
      if (total > max) {
        stream.destroy();
        throw new RegistryError(
          "CHASSIS_REGISTRY_FAILED",
          `blob ${digest} in ${this.registry}/${repository} is more than the ${max} bytes allowed here`,
        );
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /**
   * `GET /v2/<repository>/manifests/<tag or digest>` with the full Accept list
   * (OCI index and manifest, Docker list and v2). The bytes are checked against
   * the digest asked for, or against `Docker-Content-Digest` for a tag.
   */
  async getManifest(repository: string, reference: string): Promise<ManifestResult> {
    if (isDigest(reference)) validateDigest(reference);
    const subject = `manifest ${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
    const request: Request = {
      method: "GET",
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [repositoryScope(repository, ["pull"])],
      subject,
      action: "pull",
      repository,
    };
    const response = await this.send(request);
    if (response.status !== 200) return this.fail(request, response);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `${subject} in ${this.registry} is ${bytes.length} bytes, over the ${MAX_MANIFEST_BYTES} a manifest may have`,
      );
    }
    const where = `${subject} from ${this.registry}`;
    let digest: string;
    if (isDigest(reference)) {
      digest = digestLike(reference, bytes);
      if (digest !== reference) throw mismatch(where, reference, digest);
    } else {
      digest = sha256Digest(bytes);
      const header = response.headers.get("docker-content-digest");
      if (header?.startsWith("sha256:") && header !== digest) throw mismatch(`${where} (Docker-Content-Digest)`, header, digest);
    }
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new RegistryError("CHASSIS_REGISTRY_FAILED", `${where} is not JSON`);
    }
    const declared = (json as { mediaType?: unknown }).mediaType;
    const contentType = response.headers.get("content-type")?.split(";")[0]?.trim();
    const mediaType = typeof declared === "string" && declared !== "" ? declared : (contentType ?? "");
    return { digest, mediaType, bytes, json };
  }

  /**
   * Resolves a tag or digest to the image manifest for `platform`: an image
   * index or a Docker manifest list is searched (first match wins, attestation
   * entries skipped), and the chosen manifest is fetched by digest and
   * verified. A plain image manifest is returned as it is.
   * @throws RegistryError(CHASSIS_PLATFORM_NOT_FOUND) listing the platforms the index has.
   */
  async resolvePlatform(repository: string, reference: string, platform: PlatformSpec): Promise<PlatformResult> {
    const top = await this.getManifest(repository, reference);
    const name = `${this.registry}/${repository}${isDigest(reference) ? "@" : ":"}${reference}`;
    if (isImageManifestType(top.mediaType)) return { manifest: top };
    if (!isIndexType(top.mediaType)) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `${name} has media type "${top.mediaType}", which is neither an image manifest nor an index`,
        {
          hint: "only OCI and Docker schema 2 images are supported (schema 1 is not)",
        },
      );
    }
    const manifests = (top.json as ImageIndex).manifests ?? [];
    const chosen = selectPlatform(manifests, platform);
    if (!chosen) {
      const available = availablePlatforms(manifests);
      throw new RegistryError(
        "CHASSIS_PLATFORM_NOT_FOUND",
        `${name} has no image for ${formatPlatform(platform)}; it has: ${available.length > 0 ? available.join(", ") : "no platform entries"}`,
        { hint: "choose one of the platforms listed, or another base image" },
      );
    }
    const manifest = await this.getManifest(repository, chosen.digest);
    if (manifest.bytes.length !== chosen.size) {
      throw new RegistryError(
        "CHASSIS_DIGEST_MISMATCH",
        `manifest ${chosen.digest} from ${name} is ${manifest.bytes.length} bytes but the index says ${chosen.size}`,
      );
    }
    if (!isImageManifestType(manifest.mediaType)) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `${name} entry for ${formatPlatform(platform)} is "${manifest.mediaType}", not an image manifest`,
      );
    }
    return { manifest, descriptor: chosen, index: top };
  }

  // ---- push ---------------------------------------------------------------

  /**
   * `POST /v2/<repository>/blobs/uploads/?mount=<digest>&from=<fromRepository>`:
   * true when the registry linked the blob (201, no bytes sent); false when it
   * offered an upload instead (202; the session is cancelled).
   */
  async mountBlob(repository: string, digest: string, fromRepository: string): Promise<boolean> {
    validateDigest(digest);
    const scopes = [repositoryScope(repository, ["pull", "push"]), repositoryScope(fromRepository, ["pull"])];
    const started = await this.startUpload(repository, { digest, fromRepository }, scopes);
    if (started === "mounted") return true;
    await this.cancelUpload(repository, started, scopes);
    return false;
  }

  /** `DELETE <session>`, best effort (the registry purges stale sessions anyway). */
  private async cancelUpload(repository: string, session: URL, scopes: readonly string[]): Promise<void> {
    const cancel: Request = { method: "DELETE", url: session, scopes, subject: `upload to ${repository}`, action: "push", repository };
    try {
      await drain(await this.send(cancel));
    } catch (error) {
      this.log.debug("cancelling an upload session failed", { registry: this.registry, reason: String(error) });
    }
  }

  /**
   * Uploads a blob unless `mountFrom` can be mounted: `POST` an upload session,
   * then one `PUT ?digest=` with the bytes (monolithic), or for blobs of at
   * least `chunkedThreshold` bytes `PATCH` chunks with `Content-Range` (each
   * answered with a new `Location`, relative or absolute) and an empty
   * `PUT ?digest=`. distribution 2.8 does not take a single-POST upload
   * (oci-build.md §4.2), so that variant is not tried. Does not HEAD first.
   * @throws RegistryError(CHASSIS_DIGEST_MISMATCH) when the registry finds the bytes do not match the digest.
   */
  async uploadBlob(
    repository: string,
    source: BlobSource,
    options: { mountFrom?: string; chunked?: boolean } = {},
  ): Promise<"mounted" | "uploaded"> {
    validateDigest(source.digest);
    const mountFrom = options.mountFrom !== undefined && options.mountFrom !== repository ? options.mountFrom : undefined;
    const scopes = pushScopes(repository, mountFrom);
    const started = await this.startUpload(
      repository,
      mountFrom ? { digest: source.digest, fromRepository: mountFrom } : undefined,
      scopes,
    );
    if (started === "mounted") return "mounted";
    try {
      await this.finishUpload(repository, started, source, scopes, options.chunked);
    } catch (error) {
      // A session the registry already closed (a rejected PUT) answers 404 here; harmless.
      await this.cancelUpload(repository, started, scopes);
      throw error;
    }
    return "uploaded";
  }

  /** Sends the bytes into an open upload session and closes it with `PUT ?digest=`. */
  private async finishUpload(
    repository: string,
    session: URL,
    source: BlobSource,
    scopes: readonly string[],
    chunked?: boolean,
  ): Promise<void> {
    const useChunks = chunked ?? (source.size > 0 && source.size >= this.chunkedThreshold);
    const location = useChunks ? await this.patchChunks(repository, session, source, scopes) : session;
    const url = new URL(location);
    url.searchParams.set("digest", source.digest);
    const request: Request = {
      method: "PUT",
      url,
      scopes,
      subject: `blob ${source.digest} (${source.size} bytes) for ${repository}`,
      action: "push",
      repository,
      ...(useChunks ? {} : { headers: { "content-type": "application/octet-stream" }, body: () => source.body(), length: source.size }),
    };
    const response = await this.send(request);
    if (response.status < 200 || response.status > 299) return this.fail(request, response);
    await drain(response);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== source.digest)
      throw mismatch(`registry ${this.registry} stored blob for ${repository}`, source.digest, stored);
  }

  /**
   * `PUT /v2/<repository>/manifests/<tag or digest>` with `Content-Type` equal
   * to the manifest's `mediaType` (distribution answers 400 MANIFEST_INVALID
   * otherwise). Pass the exact bytes whose digest you want: the registry
   * stores them as they are. An object is encoded with JSON.stringify.
   */
  async putManifest(
    repository: string,
    reference: string,
    manifest: Uint8Array | string | object,
    mediaType?: string,
  ): Promise<{ digest: string; size: number; mediaType: string }> {
    const bytes =
      typeof manifest === "string"
        ? Buffer.from(manifest)
        : manifest instanceof Uint8Array
          ? manifest
          : Buffer.from(JSON.stringify(manifest));
    let type = mediaType;
    if (type === undefined) {
      try {
        const declared = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { mediaType?: unknown }).mediaType;
        if (typeof declared === "string" && declared !== "") type = declared;
      } catch {
        throw new ToolError("CHASSIS_USAGE", `the manifest for ${repository}:${reference} is not JSON`);
      }
    }
    if (type === undefined) {
      throw new ToolError(
        "CHASSIS_USAGE",
        `the manifest for ${repository}:${reference} has no mediaType; pass one (it becomes the Content-Type)`,
      );
    }
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && reference !== digest) {
      throw new ToolError("CHASSIS_USAGE", `cannot push a manifest whose digest is ${digest} as ${repository}@${reference}`);
    }
    const request: Request = {
      method: "PUT",
      url: this.url(`/v2/${repository}/manifests/${reference}`),
      headers: { "content-type": type },
      body: () => bytes,
      length: bytes.byteLength,
      scopes: [repositoryScope(repository, ["pull", "push"])],
      subject: `manifest ${repository}${isDigest(reference) ? "@" : ":"}${reference}`,
      action: "push",
      repository,
    };
    const response = await this.send(request);
    if (response.status < 200 || response.status > 299) return this.fail(request, response);
    await drain(response);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== digest) throw mismatch(`registry ${this.registry} stored manifest ${repository}:${reference}`, digest, stored);
    return { digest, size: bytes.byteLength, mediaType: type };
  }

  /**
   * Pushes one image: for every blob the manifest references (layers, then
   * config) `HEAD` (skip when present), else mount from `mountFrom` when given
   * (same registry), else upload; then `PUT` the manifest under the tag (or its
   * digest). Blobs go `concurrency` at a time.
   */
  async pushImage(options: PushImageOptions): Promise<PushImageResult> {
    const { repository } = options;
    const bytes = typeof options.manifest === "string" ? Buffer.from(options.manifest) : options.manifest;
    let parsed: Partial<ImageManifest & ImageIndex>;
    try {
      parsed = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<ImageManifest & ImageIndex>;
    } catch {
      throw new ToolError("CHASSIS_USAGE", `the manifest to push to ${repository} is not JSON`);
    }
    const mediaType = options.mediaType ?? parsed.mediaType;
    if (isIndexType(mediaType) || parsed.manifests !== undefined) {
      throw new ToolError(
        "CHASSIS_USAGE",
        "pushImage pushes one image manifest; push an index's images first, then the index with putManifest",
      );
    }
    if (!parsed.config || !Array.isArray(parsed.layers)) {
      throw new ToolError("CHASSIS_USAGE", `the manifest to push to ${repository} has no config or no layers`);
    }
    const config = options.config !== undefined ? bytesSource(options.config) : undefined;
    const descriptors = [...parsed.layers, parsed.config].filter((d, i, all) => all.findIndex((o) => o.digest === d.digest) === i);
    const pushOne = async (descriptor: Descriptor): Promise<BlobPushResult> => {
      validateDigest(descriptor.digest, `blob digest in the manifest for ${repository}`);
      const done = (action: BlobAction): BlobPushResult => {
        const result = { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType, action };
        options.onBlob?.(result);
        return result;
      };
      if (await this.blobExists(repository, descriptor.digest, { forPush: true })) return done("exists");
      const chosen = typeof options.mountFrom === "function" ? options.mountFrom(descriptor) : options.mountFrom;
      const from = chosen !== undefined && chosen !== repository ? chosen : undefined;
      const blobScopes = pushScopes(repository, from);
      // Mount first, so a mounted blob is never even opened.
      const session = await this.startUpload(
        repository,
        from ? { digest: descriptor.digest, fromRepository: from } : undefined,
        blobScopes,
      );
      if (session === "mounted") return done("mounted");
      try {
        const source = config && config.digest === descriptor.digest ? config : await options.blobs.open(descriptor);
        if (source.digest !== descriptor.digest || source.size !== descriptor.size) {
          throw new ToolError(
            "CHASSIS_USAGE",
            `the blob given for ${descriptor.digest} (${descriptor.size} bytes) is ${source.digest} (${source.size} bytes)`,
          );
        }
        await this.finishUpload(repository, session, source, blobScopes);
      } catch (error) {
        await this.cancelUpload(repository, session, blobScopes);
        throw error;
      }
      return done("uploaded");
    };
    // The first blob alone: it meets the auth challenge once, and the rest reuse what it learned.
    const [first, ...rest] = descriptors;
    const results = first ? [await pushOne(first), ...(await mapLimit(rest, this.concurrency, pushOne))] : [];
    const reference = options.tag ?? sha256Digest(bytes);
    const put = await this.putManifest(repository, reference, bytes, mediaType);
    return {
      ...put,
      reference: `${this.registry}/${repository}${options.tag !== undefined ? `:${options.tag}` : `@${put.digest}`}`,
      blobs: results,
    };
  }

  // ---- internals ----------------------------------------------------------

  private url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  /** POST an upload session (or a mount); the session's absolute URL, or "mounted". */
  private async startUpload(
    repository: string,
    mount: { digest: string; fromRepository: string } | undefined,
    scopes: readonly string[],
  ): Promise<URL | "mounted"> {
    const url = this.url(`/v2/${repository}/blobs/uploads/`);
    if (mount) {
      url.searchParams.set("mount", mount.digest);
      url.searchParams.set("from", mount.fromRepository);
    }
    const request: Request = {
      method: "POST",
      url,
      scopes,
      subject: mount ? `mount of ${mount.digest} from ${mount.fromRepository} into ${repository}` : `upload to ${repository}`,
      action: "push",
      repository,
    };
    const response = await this.send(request);
    if (response.status !== 202 && !(mount && response.status === 201)) return this.fail(request, response);
    await drain(response);
    if (response.status === 201) return "mounted";
    return this.location(response, url, request);
  }

  /** The next upload URL: `Location` resolved against the request (it may be relative) with its `_state` query kept. */
  private location(response: Response, base: URL, request: Request): URL {
    const location = response.headers.get("location");
    if (!location) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `registry ${this.registry} answered ${request.method} for ${request.subject} with ${response.status} but no Location`,
        {
          status: response.status,
        },
      );
    }
    return new URL(location, base);
  }

  private async patchChunks(repository: string, start: URL, source: BlobSource, scopes: readonly string[]): Promise<URL> {
    let location = start;
    const reader = source.slice ? undefined : new ChunkReader(await toAsyncIterable(await source.body()));
    try {
      for (let offset = 0; offset < source.size; ) {
        const end = Math.min(offset + this.chunkSize, source.size);
        const chunk = reader ? await reader.read(end - offset) : await (source.slice as NonNullable<BlobSource["slice"]>)(offset, end);
        const length = chunk instanceof Blob ? chunk.size : chunk.byteLength;
        if (length !== end - offset) {
          throw new ToolError("CHASSIS_USAGE", `blob ${source.digest} ended after ${offset + length} bytes but its size is ${source.size}`);
        }
        const request: Request = {
          method: "PATCH",
          url: location,
          headers: { "content-type": "application/octet-stream", "content-range": `${offset}-${end - 1}` },
          body: () => chunk,
          length,
          scopes,
          subject: `bytes ${offset}-${end - 1} of blob ${source.digest} for ${repository}`,
          action: "push",
          repository,
        };
        const response = await this.send(request);
        if (response.status !== 202) return this.fail(request, response);
        await drain(response);
        location = this.location(response, location, request);
        const range = response.headers.get("range");
        if (range && range !== `0-${end - 1}`) {
          throw new RegistryError(
            "CHASSIS_REGISTRY_FAILED",
            `registry ${this.registry} acknowledged bytes ${range} of blob ${source.digest} after a chunk ending at ${end - 1}`,
          );
        }
        offset = end;
      }
    } finally {
      await reader?.close();
    }
    return location;
  }

  /** One request with authentication: a 401 is answered once from its challenge, then it is an error. */
  private async send(request: Request): Promise<Response> {
    const sent = await this.auth.authorize(request.scopes);
    let response = await this.attempt(request, sent);
    if (response.status !== 401) return response;
    const challenge = response.headers.get("www-authenticate");
    let text = await response.text();
    const retryWith = await this.auth.respond(challenge, request.scopes, sent);
    if (retryWith !== undefined) {
      response = await this.attempt(request, retryWith);
      if (response.status !== 401) return response;
      text = await response.text();
    }
    throw this.unauthorized(request, response, text, retryWith ?? sent);
  }

  /** One request with retries on transient failures; returns the last response whatever its status. */
  private async attempt(request: Request, authorization: string | undefined): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { "user-agent": this.userAgent, ...request.headers };
      // Credentials go to the registry's own origin only, never to an upload Location elsewhere.
      if (authorization !== undefined && request.url.origin === this.baseUrl.origin) headers.authorization = authorization;
      const init: RequestInit & { duplex?: "half" } = { method: request.method, headers, redirect: "follow" };
      if (this.signal) init.signal = this.signal;
      let body: BlobBody | undefined;
      if (request.body) {
        body = await request.body();
        if (request.length !== undefined) headers["content-length"] = String(request.length);
        if (isAsyncIterable(body)) init.duplex = "half";
        init.body = body;
      }
      let response: Response;
      try {
        response = await this.fetchImpl(request.url, init);
      } catch (error) {
        discard(body);
        if (this.signal?.aborted) throw error;
        // A streamed body that failed its own check (a copy whose source bytes do not match their digest).
        const own = causeOfType(error, ToolError);
        if (own) throw own;
        const code = networkCode(error);
        if (code !== undefined && TRANSIENT_NETWORK.has(code) && attempt < this.attempts) {
          const delay = this.backoff(attempt);
          this.log.debug("registry request failed; retrying", {
            registry: this.registry,
            method: request.method,
            code,
            attempt,
            delayMs: delay,
          });
          await this.sleep(delay);
          continue;
        }
        throw new RegistryError(
          "CHASSIS_REGISTRY_FAILED",
          this.auth.redact(
            `cannot reach registry ${this.registry} (${request.method} ${request.url.origin}${request.url.pathname}): ${code ?? (error as Error).message}${
              attempt > 1 ? ` after ${attempt} attempts` : ""
            }`,
          ),
          {
            cause: error,
            hint:
              code === "ECONNREFUSED"
                ? `nothing listens at ${request.url.host}: is the registry running${this.baseUrl.protocol === "https:" ? ", and does it speak https (pass plainHttp for http)" : ""}?`
                : "check the network and the registry address",
          },
        );
      }
      this.log.debug("registry request", {
        registry: this.registry,
        method: request.method,
        path: request.url.pathname,
        status: response.status,
        attempt,
      });
      if (RETRY_STATUS.has(response.status) && attempt < this.attempts) {
        discard(body);
        const delay = Math.min(this.maxDelayMs, retryAfterMs(response, Date.now()) ?? this.backoff(attempt));
        await drain(response);
        this.log.debug("registry busy or failing; retrying", { registry: this.registry, status: response.status, attempt, delayMs: delay });
        await this.sleep(delay);
        continue;
      }
      this.attemptsOf.set(response, attempt);
      return response;
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  private who(): string {
    return this.auth.credentials ? this.auth.credentials.describe() : "anonymous access";
  }

  private unauthorized(request: Request, response: Response, text: string, sent: string | undefined): RegistryError {
    const errors = parseErrorBody(text);
    const credentials = this.auth.credentials;
    const doing = request.action === "ping" ? "" : ` to ${request.action} ${request.repository ?? request.subject}`;
    const message =
      sent === undefined
        ? `registry ${this.registry} requires authentication${doing} and no credentials were found (${describeStatus(response.status, response.statusText, errors)})`
        : `registry ${this.registry} did not accept ${credentials ? `the credentials of ${credentials.describe()}` : "the anonymous token"}${doing} (${describeStatus(response.status, response.statusText, errors)})`;
    return new RegistryError("CHASSIS_REGISTRY_UNAUTHORIZED", this.auth.redact(message), {
      status: response.status,
      errors,
      hint: loginHint(this.registry, credentials, this.auth.tried),
    });
  }

  /** Turns an unexpected response into the RegistryError for its status. */
  private async fail(request: Request, response: Response): Promise<never> {
    const text = await response.text().catch(() => "");
    const errors: RegistryErrorEntry[] = parseErrorBody(text);
    const status = describeStatus(response.status, response.statusText, errors);
    const attempts = this.attemptsOf.get(response) ?? 1;
    const codes = new Set(errors.map((e) => e.code));
    const redact = (s: string) => this.auth.redact(s);
    const options = { status: response.status, errors };
    if (response.status === 401) throw this.unauthorized(request, response, text, "sent");
    if (response.status === 403) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_DENIED",
        redact(
          `registry ${this.registry} denied ${this.who()} permission to ${request.action} ${request.repository ?? request.subject} (${status})`,
        ),
        {
          ...options,
          hint: "the credentials are valid but lack access: check the account's permissions on this repository",
        },
      );
    }
    if (response.status === 404) {
      const what = codes.has("NAME_UNKNOWN") ? `repository ${request.repository ?? request.subject}` : request.subject;
      throw new RegistryError("CHASSIS_REGISTRY_NOT_FOUND", redact(`${what} not found in registry ${this.registry} (${status})`), {
        ...options,
        hint: "check the repository name, the tag or digest, and the registry address",
      });
    }
    if (codes.has("DIGEST_INVALID")) {
      throw new RegistryError(
        "CHASSIS_DIGEST_MISMATCH",
        redact(`registry ${this.registry} rejected ${request.subject}: the bytes sent do not match the digest (${status})`),
        { ...options, hint: "the local blob is corrupt or its digest was computed over other bytes; rebuild it" },
      );
    }
    const hint = codes.has("MANIFEST_BLOB_UNKNOWN")
      ? "the manifest references a blob the repository does not have: push the blobs first"
      : codes.has("MANIFEST_INVALID")
        ? "the Content-Type must equal the manifest's mediaType, and every descriptor must be valid"
        : RETRY_STATUS.has(response.status)
          ? "the registry is overloaded or failing; try again later"
          : undefined;
    const verb = RETRY_STATUS.has(response.status) ? "kept failing on" : "rejected";
    throw new RegistryError(
      "CHASSIS_REGISTRY_FAILED",
      redact(
        `registry ${this.registry} ${verb} ${request.method} of ${request.subject}: ${status}${attempts > 1 ? ` (after ${attempts} attempts)` : ""}`,
      ),
      { ...options, ...(hint !== undefined ? { hint } : {}) },
    );
  }
}

function pushScopes(repository: string, mountFrom: string | undefined): string[] {
  return [repositoryScope(repository, ["pull", "push"]), ...(mountFrom ? [repositoryScope(mountFrom, ["pull"])] : [])];
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order; the first failure rejects. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface CopyBlobOptions {
  from: RegistryClient;
  fromRepository: string;
  to: RegistryClient;
  toRepository: string;
  /** The blob (its size is needed to stream it with a Content-Length). */
  descriptor: Pick<Descriptor, "digest" | "size">;
}

/**
 * Copies one blob between repositories or registries without touching disk:
 * nothing when the destination has it (HEAD); a cross-repository mount when
 * both are on the same registry; else a streamed GET -> PUT of the compressed
 * bytes as they are (the digest does not change). Every upload attempt
 * re-reads the source, and the bytes are verified on the way.
 */
export async function copyBlob(options: CopyBlobOptions): Promise<BlobAction> {
  const { from, to, descriptor } = options;
  validateDigest(descriptor.digest);
  if (await to.blobExists(options.toRepository, descriptor.digest, { forPush: true })) return "exists";
  const sameRegistry = from.baseUrl.origin === to.baseUrl.origin;
  const source: BlobSource = {
    digest: descriptor.digest,
    size: descriptor.size,
    body: async () => (await from.getBlob(options.fromRepository, descriptor.digest, { size: descriptor.size })).stream,
  };
  return to.uploadBlob(options.toRepository, source, sameRegistry ? { mountFrom: options.fromRepository } : {});
}

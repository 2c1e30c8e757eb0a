/**
 * @module test/helpers/fake-registry
 * An in-process OCI distribution registry on node:http for the registry
 * client's edge cases, behaving like distribution 2.8 where it matters
 * (oci-build.md §4.2): upload sessions with `_state` in a Location that
 * changes after every PATCH, `Range: 0-<end>`, `DIGEST_INVALID` on a wrong
 * `?digest=`, mount only with both `mount` and `from`, manifests stored as
 * bytes with `Content-Type` checked against `mediaType`, 404 for an OCI
 * manifest asked for without OCI types in Accept.
 *
 * Knobs for the edge cases: Basic or Bearer auth (with a token endpoint on
 * the same server, scopes enforced), relative or absolute Locations, blob
 * GETs redirected to a second "storage" server (which records the headers it
 * got), corrupted blob bodies, and injected faults (a status with headers,
 * or a connection reset) for the next N matching requests.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRegistryOptions {
  auth?: { type: "basic" | "bearer"; username: string; password: string; anonymousPull?: boolean };
  /** How upload Locations are written. @default "relative" */
  location?: "relative" | "absolute";
  /** Redirect blob GETs to a second server, on this host name (`127.0.0.1` or `localhost`). */
  redirectBlobs?: "127.0.0.1" | "localhost";
  /** Seconds a token lives (`expires_in`). @default 300 */
  tokenTtl?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  contentType: string | undefined;
  contentRange: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  status: number;
}

interface Fault {
  method: string | undefined;
  path: RegExp;
  times: number;
  status?: number;
  headers?: Record<string, string>;
  reset?: boolean;
}

interface Session {
  repository: string;
  data: Buffer[];
  size: number;
}

interface Token {
  access: Map<string, Set<string>>;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

export class FakeRegistry {
  readonly requests: LoggedRequest[] = [];
  /** Requests the storage server got: the Authorization header must not be among them. */
  readonly storageRequests: { path: string; authorization: string | undefined; host: string | undefined }[] = [];
  /** Token requests: the scopes asked for and whether Basic credentials came along. */
  readonly tokenRequests: { scopes: string[]; service: string | null; basic: string | undefined }[] = [];
  /** Blobs whose GET body is altered (one byte flipped). */
  readonly corrupt = new Set<string>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly links = new Map<string, Set<string>>();
  private readonly manifests = new Map<string, Map<string, { bytes: Buffer; mediaType: string }>>();
  private readonly sessions = new Map<string, Session>();
  private readonly tokens = new Map<string, Token>();
  private readonly faults: Fault[] = [];
  private server!: Server;
  private storage: Server | undefined;
  url = "";
  host = "";
  private storageUrl = "";

  private constructor(private readonly options: FakeRegistryOptions) {}

  static async start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const registry = new FakeRegistry(options);
    await registry.listen();
    return registry;
  }

  private async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.host = `127.0.0.1:${port}`;
    if (this.options.redirectBlobs) {
      this.storage = createServer((req, res) => this.serveStorage(req, res));
      await new Promise<void>((resolve) => this.storage?.listen(0, "127.0.0.1", resolve));
      const storagePort = (this.storage.address() as AddressInfo).port;
      this.storageUrl = `http://${this.options.redirectBlobs}:${storagePort}`;
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.storage) {
      this.storage.closeAllConnections();
      await new Promise<void>((resolve) => this.storage?.close(() => resolve()));
    }
  }

  /** The next `times` requests matching method and path fail with `status` (and headers), or with a reset. */
  fail(
    method: string | undefined,
    path: RegExp,
    fault: { status?: number; headers?: Record<string, string>; reset?: boolean; times?: number },
  ): void {
    this.faults.push({ method, path, times: fault.times ?? 1, ...fault });
  }

  /** Puts a blob into a repository directly. */
  seedBlob(repository: string, bytes: Uint8Array): string {
    const digest = sha256(bytes);
    this.blobs.set(digest, Buffer.from(bytes));
    this.link(repository, digest);
    return digest;
  }

  /** Puts a manifest under a tag (and its digest) directly. */
  seedManifest(repository: string, tag: string | undefined, bytes: Uint8Array | string, mediaType: string): string {
    const data = Buffer.from(bytes);
    const digest = sha256(data);
    const map = this.manifests.get(repository) ?? new Map<string, { bytes: Buffer; mediaType: string }>();
    map.set(digest, { bytes: data, mediaType });
    if (tag) map.set(tag, { bytes: data, mediaType });
    this.manifests.set(repository, map);
    return digest;
  }

  hasBlob(repository: string, digest: string): boolean {
    return this.links.get(repository)?.has(digest) ?? false;
  }

  blob(digest: string): Buffer | undefined {
    return this.blobs.get(digest);
  }

  manifest(repository: string, reference: string): { bytes: Buffer; mediaType: string } | undefined {
    return this.manifests.get(repository)?.get(reference);
  }

  private link(repository: string, digest: string): void {
    const set = this.links.get(repository) ?? new Set<string>();
    set.add(digest);
    this.links.set(repository, set);
  }

  private serveStorage(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.storageUrl);
    this.storageRequests.push({ path: url.pathname, authorization: req.headers.authorization, host: req.headers.host });
    const digest = decodeURIComponent(url.pathname.replace(/^\/storage\//, ""));
    const bytes = this.blobs.get(digest);
    if (!bytes) {
      res.statusCode = 404;
      res.end();
      return;
    }
    // Like S3 with a presigned URL: a request carrying another auth mechanism is refused.
    if (req.headers.authorization) {
      res.statusCode = 400;
      res.end("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>");
      return;
    }
    res.setHeader("content-type", "application/octet-stream");
    res.setHeader("content-length", bytes.length);
    res.end(this.corrupt.has(digest) ? flipped(bytes) : bytes);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const body = await readBody(req);
    const entry: LoggedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      contentType: req.headers["content-type"],
      contentRange: req.headers["content-range"],
      contentLength: req.headers["content-length"],
      transferEncoding: req.headers["transfer-encoding"],
      status: 0,
    };
    this.requests.push(entry);
    const send = (status: number, headers: Record<string, string | number> = {}, data?: Buffer | string): undefined => {
      entry.status = status;
      res.statusCode = status;
      res.setHeader("docker-distribution-api-version", "registry/2.0");
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.end(data);
      return undefined;
    };
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      send(status, { "content-type": "application/json", ...headers }, JSON.stringify({ errors: [{ code, message, detail: null }] }));

    const fault = this.faults.find((f) => f.times > 0 && (f.method === undefined || f.method === req.method) && f.path.test(url.pathname));
    if (fault) {
      fault.times--;
      if (fault.reset) {
        entry.status = -1;
        req.socket.destroy();
        return;
      }
      return error(fault.status ?? 500, "UNKNOWN", "injected fault", fault.headers);
    }

    if (url.pathname === "/token") return this.issueToken(req, url, send, error);

    // Authorization: which repository and actions does this request need?
    const route = /^\/v2\/(.+?)\/(blobs\/uploads\/?(.*)|blobs\/(.+)|manifests\/(.+))$/.exec(url.pathname);
    const repository = route?.[1];
    const push = req.method !== "GET" && req.method !== "HEAD";
    const needs: [string, string][] = [];
    if (repository) needs.push([repository, push ? "push" : "pull"]);
    const from = url.searchParams.get("from");
    if (from && url.searchParams.get("mount")) needs.push([from, "pull"]);
    if (!this.authorized(req, needs)) {
      const scope = needs.length > 0 ? `repository:${repository}:${push ? "pull,push" : "pull"}` : "";
      const challenge =
        this.options.auth?.type === "bearer"
          ? `Bearer realm="${this.url}/token",service="fake-registry"${scope ? `,scope="${scope}"` : ""}`
          : 'Basic realm="fake"';
      return error(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": challenge });
    }

    if (url.pathname === "/v2/" || url.pathname === "/v2") return send(200, { "content-type": "application/json" }, "{}");
    if (!route || !repository) return error(404, "NOT_FOUND", "no route");
    const [, , , uploadId, blobDigest, manifestRef] = route;

    if (uploadId !== undefined && route[2]?.startsWith("blobs/uploads")) {
      return this.upload(req, url, repository, uploadId, body, send, error);
    }
    if (blobDigest !== undefined) {
      const linked = this.links.get(repository)?.has(blobDigest);
      const bytes = this.blobs.get(blobDigest);
      if (!linked || !bytes) return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
      if (req.method === "HEAD") return send(200, { "content-length": bytes.length, "docker-content-digest": blobDigest });
      if (this.storage) return send(307, { location: `${this.storageUrl}/storage/${encodeURIComponent(blobDigest)}` });
      return send(
        200,
        { "content-type": "application/octet-stream", "docker-content-digest": blobDigest },
        this.corrupt.has(blobDigest) ? flipped(bytes) : bytes,
      );
    }
    if (manifestRef !== undefined) {
      const map = this.manifests.get(repository) ?? new Map<string, { bytes: Buffer; mediaType: string }>();
      if (req.method === "PUT") {
        const type = req.headers["content-type"] ?? "";
        let parsed: { mediaType?: string; config?: { digest: string }; layers?: { digest: string }[] };
        try {
          parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
        } catch {
          return error(400, "MANIFEST_INVALID", "manifest invalid");
        }
        if (parsed.mediaType !== undefined && parsed.mediaType !== type) return error(400, "MANIFEST_INVALID", "manifest invalid");
        for (const d of [parsed.config, ...(parsed.layers ?? [])]) {
          if (d && !this.links.get(repository)?.has(d.digest)) return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
        }
        const digest = sha256(body);
        if (manifestRef.includes(":") && manifestRef !== digest)
          return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
        map.set(manifestRef, { bytes: body, mediaType: type });
        map.set(digest, { bytes: body, mediaType: type });
        this.manifests.set(repository, map);
        return send(201, { location: `/v2/${repository}/manifests/${digest}`, "docker-content-digest": digest });
      }
      const stored = map.get(manifestRef);
      if (!stored) return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
      const accept = req.headers.accept ?? "";
      if (stored.mediaType.startsWith("application/vnd.oci.") && !accept.includes(stored.mediaType)) {
        return error(404, "MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI manifests");
      }
      const headers = {
        "content-type": stored.mediaType,
        "docker-content-digest": sha256(stored.bytes),
        "content-length": stored.bytes.length,
      };
      return send(200, headers, req.method === "HEAD" ? undefined : stored.bytes);
    }
    return error(404, "NOT_FOUND", "no route");
  }

  private upload(
    req: IncomingMessage,
    url: URL,
    repository: string,
    uploadId: string,
    body: Buffer,
    send: (status: number, headers?: Record<string, string | number>, data?: Buffer | string) => undefined,
    error: (status: number, code: string, message: string) => undefined,
  ): undefined {
    const locationFor = (id: string) => {
      const path = `/v2/${repository}/blobs/uploads/${id}?_state=${encodeURIComponent(Buffer.from(`${id}:${Math.random()}`).toString("base64"))}`;
      return this.options.location === "absolute" ? `${this.url}${path}` : path;
    };
    if (req.method === "POST" && uploadId === "") {
      const mount = url.searchParams.get("mount");
      const from = url.searchParams.get("from");
      if (mount && from && this.links.get(from)?.has(mount)) {
        this.link(repository, mount);
        return send(201, { location: `/v2/${repository}/blobs/${mount}`, "docker-content-digest": mount, "content-length": 0 });
      }
      const id = randomUUID();
      this.sessions.set(id, { repository, data: [], size: 0 });
      return send(202, { location: locationFor(id), range: "0-0", "docker-upload-uuid": id, "content-length": 0 });
    }
    const session = this.sessions.get(uploadId);
    if (!session || session.repository !== repository || !url.searchParams.get("_state"))
      return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown");
    if (req.method === "DELETE") {
      this.sessions.delete(uploadId);
      return send(204);
    }
    if (req.method === "PATCH") {
      const range = req.headers["content-range"];
      if (range !== undefined) {
        const match = /^(\d+)-(\d+)$/.exec(range);
        if (!match || Number(match[1]) !== session.size || Number(match[2]) - Number(match[1]) + 1 !== body.length) {
          return error(416, "BLOB_UPLOAD_INVALID", "invalid content range");
        }
      }
      session.data.push(body);
      session.size += body.length;
      // A new session id each time, like a new _state: the client must use the latest Location.
      const next = randomUUID();
      this.sessions.delete(uploadId);
      this.sessions.set(next, session);
      return send(202, { location: locationFor(next), range: `0-${session.size - 1}`, "content-length": 0 });
    }
    if (req.method === "PUT") {
      const digest = url.searchParams.get("digest");
      if (!digest) return error(400, "DIGEST_INVALID", "digest missing");
      session.data.push(body);
      const all = Buffer.concat(session.data);
      this.sessions.delete(uploadId);
      if (sha256(all) !== digest) return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
      this.blobs.set(digest, all);
      this.link(repository, digest);
      return send(201, { location: `/v2/${repository}/blobs/${digest}`, "docker-content-digest": digest, "content-length": 0 });
    }
    return error(405, "UNSUPPORTED", "method not allowed");
  }

  private authorized(req: IncomingMessage, needs: [string, string][]): boolean {
    const auth = this.options.auth;
    if (!auth) return true;
    const header = req.headers.authorization ?? "";
    if (auth.type === "basic") return header === basic(auth.username, auth.password);
    if (!header.startsWith("Bearer ")) return false;
    const token = this.tokens.get(header.slice("Bearer ".length));
    if (!token) return false;
    return needs.every(([repository, action]) => token.access.get(repository)?.has(action) ?? false);
  }

  private issueToken(
    req: IncomingMessage,
    url: URL,
    send: (status: number, headers?: Record<string, string | number>, data?: Buffer | string) => undefined,
    error: (status: number, code: string, message: string) => undefined,
  ): undefined {
    const auth = this.options.auth;
    const header = req.headers.authorization;
    const scopes = url.searchParams.getAll("scope");
    this.tokenRequests.push({ scopes, service: url.searchParams.get("service"), basic: header });
    const user = auth && header === basic(auth.username, auth.password);
    if (header !== undefined && !user) return error(401, "UNAUTHORIZED", "invalid username or password");
    const access = new Map<string, Set<string>>();
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(":");
      if (type !== "repository" || !name || !actions) continue;
      const granted = actions.split(",").filter((a) => user || (a === "pull" && auth?.anonymousPull));
      access.set(name, new Set([...(access.get(name) ?? []), ...granted]));
    }
    const token = randomUUID();
    this.tokens.set(token, { access });
    send(200, { "content-type": "application/json" }, JSON.stringify({ token, expires_in: this.options.tokenTtl ?? 300 }));
  }
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

function flipped(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  if (copy.length > 0) copy[0] = (copy[0] ?? 0) ^ 0xff;
  return copy;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

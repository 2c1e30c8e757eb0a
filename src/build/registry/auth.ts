/**
 * @module build/registry/auth
 * Registry credentials and the `WWW-Authenticate` flow.
 *
 * Credentials are looked up in the order podman and Docker use (explicit
 * options first, then `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
 * `~/.config/containers/auth.json`, `~/.docker/config.json`), reading each
 * file's `auths` map (`auth` = base64 "user:pass", optional `identitytoken`).
 * Credential helpers (`credHelpers`, `credsStore`) are not run: they are
 * noted at debug level and the search goes on.
 *
 * Secrets never leave this module in readable form: {@link Credentials}
 * prints and serialises as `[redacted]`, errors name the user and the file
 * the credentials came from but never the password or a token, and
 * {@link RegistryAuthenticator.redact} scrubs them from any text (a
 * registry's error body) before it goes into a message.
 *
 * The flow (distribution `docs/content/spec/auth/token.md`, oci-build.md §4.3):
 * a request answered 401 carries a challenge. `Basic` -> send the
 * credentials. `Bearer realm,service,scope` -> GET the realm with
 * `service` and every `scope` (Basic credentials if we have any, nothing for
 * anonymous pulls; with an identity token, the OAuth2 POST instead), cache the
 * token per scope set until it expires, and retry the request once. After the
 * first challenge the scheme is known, so later requests authenticate up front
 * instead of collecting a 401 each.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import type { Logger } from "../../core/log.js";
import { silentLogger } from "../../core/log.js";
import { ToolError } from "../../core/tool-error.js";
import { describeStatus, parseErrorBody, RegistryError } from "./errors.js";
import { DOCKER_HUB } from "./reference.js";

const REDACTED = "[redacted]";

/**
 * A user name and a secret (a password, or an identity token from
 * `docker login` with a token). The secret is private: printing, logging or
 * JSON-encoding a Credentials shows `[redacted]`.
 */
export class Credentials {
  readonly username: string;
  /** Where they came from, safe to print: `--creds`, `/root/.docker/config.json (auths["localhost:5000"])`. */
  readonly source: string;
  readonly #password: string;
  readonly #identityToken: string | undefined;

  private constructor(username: string, password: string, identityToken: string | undefined, source: string) {
    this.username = username;
    this.#password = password;
    this.#identityToken = identityToken;
    this.source = source;
  }

  static basic(username: string, password: string, source = "options"): Credentials {
    return new Credentials(username, password, undefined, source);
  }

  /** An OAuth2 refresh token (`identitytoken` in config.json); username is usually `<token>`. */
  static identityToken(token: string, username = "<token>", source = "options"): Credentials {
    return new Credentials(username, "", token, source);
  }

  /** `--creds user:pass` (podman/skopeo syntax: split at the first colon). */
  static fromFlag(value: string, source = "--creds"): Credentials {
    const colon = value.indexOf(":");
    if (colon <= 0) throw new ToolError("CHASSIS_USAGE", `${source} expects USER:PASSWORD (the value given has no user name or no colon)`);
    return Credentials.basic(value.slice(0, colon), value.slice(colon + 1), source);
  }

  get hasIdentityToken(): boolean {
    return this.#identityToken !== undefined;
  }

  /** The `Authorization` header value for Basic auth. */
  basicAuthorization(): string {
    return `Basic ${Buffer.from(`${this.username}:${this.#password}`).toString("base64")}`;
  }

  /** The OAuth2 form fields that prove who we are (token spec `oauth.md`). */
  oauthFields(): Record<string, string> {
    return this.#identityToken !== undefined
      ? { grant_type: "refresh_token", refresh_token: this.#identityToken }
      : { grant_type: "password", username: this.username, password: this.#password };
  }

  /** Every secret string (and its encodings) that must never appear in output. */
  secrets(): string[] {
    const out = [this.basicAuthorization().slice("Basic ".length)];
    if (this.#password.length >= 3) out.push(this.#password, encodeURIComponent(this.#password));
    if (this.#identityToken) out.push(this.#identityToken);
    return out;
  }

  /** `user "alice" (from --creds)` */
  describe(): string {
    return `user "${this.username}" (from ${this.source})`;
  }

  toJSON(): Record<string, string> {
    return { username: this.username, source: this.source, secret: REDACTED };
  }

  toString(): string {
    return `Credentials(${this.describe()}, secret ${REDACTED})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** The result of a credential search. */
export interface CredentialLookup {
  /** What was found, or undefined (anonymous). */
  readonly credentials: Credentials | undefined;
  /** Each place looked at, in order, with what it held (no secrets): for error messages. */
  readonly tried: readonly string[];
}

export interface CredentialSearchOptions {
  /** Explicit credentials (from flags such as `--creds`); they win over every file. */
  credentials?: Credentials;
  /** An explicit auth file (`--authfile`), searched before the standard ones. */
  authFile?: string;
  /**
   * The environment to take `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR` and
   * `HOME` from. Library code never reads process.env: the CLI passes it.
   * @default {}
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** @default env.HOME, else os.homedir() */
  homeDir?: string;
  logger?: Logger;
}

/** The auth files to search, in order, each with how it was found. */
export function authFilePaths(options: CredentialSearchOptions = {}): { path: string; label: string }[] {
  const env = options.env ?? {};
  const home = options.homeDir ?? env.HOME ?? homedir();
  const files: { path: string; label: string }[] = [];
  if (options.authFile) files.push({ path: options.authFile, label: "--authfile" });
  if (env.REGISTRY_AUTH_FILE) files.push({ path: env.REGISTRY_AUTH_FILE, label: "$REGISTRY_AUTH_FILE" });
  if (env.XDG_RUNTIME_DIR) files.push({ path: join(env.XDG_RUNTIME_DIR, "containers", "auth.json"), label: "podman" });
  // Where `podman login` writes as root when XDG_RUNTIME_DIR is unset (containers-auth.json(5)).
  else if (typeof process.getuid === "function") files.push({ path: `/run/containers/${process.getuid()}/auth.json`, label: "podman" });
  files.push({ path: join(env.XDG_CONFIG_HOME || join(home, ".config"), "containers", "auth.json"), label: "podman" });
  files.push({ path: join(home, ".docker", "config.json"), label: "docker" });
  return files;
}

const HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]);

/**
 * An `auths` key as a comparable `host[/namespace]`: a key with a scheme
 * (`https://index.docker.io/v1/`, Docker's style) keeps only its host; a key
 * without one may name a namespace (`quay.io/team`, podman's style).
 */
export function normalizeAuthKey(key: string): string {
  let rest = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme) {
    rest = rest.slice(scheme[0].length);
    const slash = rest.indexOf("/");
    if (slash >= 0) rest = rest.slice(0, slash);
  }
  rest = rest.replace(/\/+$/, "");
  const slash = rest.indexOf("/");
  const host = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  return `${HUB_ALIASES.has(host.toLowerCase()) ? DOCKER_HUB : host.toLowerCase()}${path}`;
}

/** Keys to look for, most specific first: `reg/a/b/c`, `reg/a/b`, `reg/a`, `reg`. */
function candidateKeys(registry: string, repository: string | undefined): string[] {
  const host = normalizeAuthKey(registry);
  const keys: string[] = [];
  const parts = repository ? repository.split("/") : [];
  for (let n = parts.length; n > 0; n--) keys.push(`${host}/${parts.slice(0, n).join("/")}`);
  keys.push(host);
  return keys;
}

interface AuthFileEntry {
  auth?: unknown;
  identitytoken?: unknown;
}

interface AuthFile {
  auths?: Record<string, AuthFileEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

function readAuthFile(path: string): AuthFile | "missing" | string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? "missing" : `unreadable (${code ?? String(error)})`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ToolError("CHASSIS_USAGE", `auth file ${path} is not valid JSON: ${(error as Error).message}`, {
      hint: "fix or remove the file (podman login / docker login rewrite it)",
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ToolError("CHASSIS_USAGE", `auth file ${path} is not a JSON object`);
  }
  return parsed as AuthFile;
}

function entryCredentials(path: string, key: string, entry: AuthFileEntry): Credentials | undefined {
  const source = `${path} (auths[${JSON.stringify(key)}])`;
  const identityToken = typeof entry.identitytoken === "string" && entry.identitytoken !== "" ? entry.identitytoken : undefined;
  let username: string | undefined;
  let password: string | undefined;
  if (typeof entry.auth === "string" && entry.auth !== "") {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) {
      throw new ToolError("CHASSIS_USAGE", `auth file ${source}: "auth" is not base64 of "user:password"`, {
        hint: "log in again with podman login or docker login",
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (identityToken !== undefined) return Credentials.identityToken(identityToken, username ?? "<token>", source);
  if (username !== undefined && password !== undefined) return Credentials.basic(username, password, source);
  return undefined;
}

/**
 * Finds credentials for `registry` (optionally for one `repository`, since
 * podman's auth.json may hold keys per namespace), searching
 * {@link authFilePaths} in order. The first match wins.
 * @throws ToolError(CHASSIS_USAGE) for an auth file that is not JSON or holds a malformed `auth`.
 */
export function findCredentials(registry: string, repository: string | undefined, options: CredentialSearchOptions = {}): CredentialLookup {
  const log = options.logger ?? silentLogger;
  const tried: string[] = [];
  if (options.credentials) {
    tried.push(`${options.credentials.source}: ${options.credentials.describe()}`);
    return { credentials: options.credentials, tried };
  }
  tried.push("explicit credentials: none given");
  const keys = candidateKeys(registry, repository);
  for (const { path, label } of authFilePaths(options)) {
    const file = readAuthFile(path);
    if (file === "missing") {
      tried.push(`${path} (${label}): not found`);
      continue;
    }
    if (typeof file === "string") {
      tried.push(`${path} (${label}): ${file}`);
      log.debug("registry auth file cannot be read; skipped", { path, reason: file });
      continue;
    }
    const byKey = new Map<string, [string, AuthFileEntry]>();
    for (const [key, entry] of Object.entries(file.auths ?? {})) {
      const normalized = normalizeAuthKey(key);
      if (!byKey.has(normalized) && typeof entry === "object" && entry !== null) byKey.set(normalized, [key, entry]);
    }
    let found: Credentials | undefined;
    for (const want of keys) {
      const hit = byKey.get(want);
      if (!hit) continue;
      found = entryCredentials(path, hit[0], hit[1]);
      if (found) break;
    }
    if (found) {
      tried.push(`${path} (${label}): ${found.describe()}`);
      return { credentials: found, tried };
    }
    const helper = Object.entries(file.credHelpers ?? {}).find(([key]) => keys.includes(normalizeAuthKey(key)))?.[1] ?? file.credsStore;
    if (helper) {
      log.debug("registry credential helpers are not supported; ignored", { path, registry, helper: `docker-credential-${helper}` });
      tried.push(`${path} (${label}): no entry for ${registry} (credential helper docker-credential-${helper} ignored)`);
    } else {
      tried.push(`${path} (${label}): no entry for ${registry}`);
    }
  }
  return { credentials: undefined, tried };
}

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower-case: `basic`, `bearer`. */
  scheme: string;
  /** Parameter names are lower-case; values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1), including quoted
 * values that contain commas (`scope="repository:a:pull,push"`) and several
 * challenges in one header.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: string) => {
    while (i < n && chars.includes(header.charAt(i))) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header.charAt(i))) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(" \t,");
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(" \t");
      const start = i;
      const name = token();
      skip(" \t");
      if (!name || header.charAt(i) !== "=") {
        // Not a parameter: the next challenge's scheme (token68 forms are not used by registries).
        i = start;
        break;
      }
      i++; // "="
      skip(" \t");
      let value = "";
      if (header.charAt(i) === '"') {
        i++;
        while (i < n && header.charAt(i) !== '"') {
          if (header.charAt(i) === "\\" && i + 1 < n) i++;
          value += header.charAt(i);
          i++;
        }
        i++; // closing quote
      } else {
        const begin = i;
        while (i < n && header.charAt(i) !== "," && header.charAt(i) !== " ") i++;
        value = header.slice(begin, i);
      }
      challenge.params[name.toLowerCase()] = value;
      skip(" \t");
      if (header.charAt(i) !== ",") break;
      i++;
      // After a comma: another parameter, or the next challenge's scheme (a token not followed by "=").
      skip(" \t,");
      const save = i;
      token();
      skip(" \t");
      const isParam = header.charAt(i) === "=";
      i = save;
      if (!isParam) break;
    }
  }
  return challenges;
}

/** `repository:<name>:pull` / `repository:<name>:pull,push` (token spec "Scope"). */
export function repositoryScope(repository: string, actions: readonly ("pull" | "push")[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Sends one unauthenticated request with the client's retries (the token GET/POST). */
export type AuthTransport = (url: URL, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<Response>;

export interface AuthenticatorOptions {
  /** The registry as written in references (`localhost:5000`). */
  registry: string;
  /** The API base URL (`https://registry-1.docker.io`, `http://127.0.0.1:5000`). */
  baseUrl: URL;
  lookup: CredentialLookup;
  transport: AuthTransport;
  logger?: Logger;
  /** @default () => Date.now() */
  now?: () => number;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const PRIVATE_HOST =
  /^(?:localhost|127\.\d+\.\d+\.\d+|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+|169\.254\.\d+\.\d+|0\.0\.0\.0|\[(?:::1?|f[cd][0-9a-f:]*|fe[89ab][0-9a-f:]*)\])$/i;

/**
 * Holds what one registry needs to authenticate: its credentials, the scheme
 * learned from its challenges, and bearer tokens per scope set.
 */
export class RegistryAuthenticator {
  private readonly options: AuthenticatorOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private scheme: "none" | "basic" | "bearer" = "none";
  private bearer: { realm: URL; service: string | undefined } | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly issued = new Set<string>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  get credentials(): Credentials | undefined {
    return this.options.lookup.credentials;
  }

  /** Where credentials were looked for, as the lookup recorded it. */
  get tried(): readonly string[] {
    return this.options.lookup.tried;
  }

  /** Replaces every secret we hold (password, identity token, tokens) in `text` with `[redacted]`. */
  redact(text: string): string {
    const secrets = [...(this.credentials?.secrets() ?? []), ...this.issued].filter((s) => s.length >= 3);
    let out = text;
    for (const secret of secrets.sort((a, b) => b.length - a.length)) out = out.split(secret).join(REDACTED);
    return out;
  }

  /**
   * The `Authorization` value to send with a request needing `scopes`, when
   * the scheme is known already (fetching a bearer token if needed); else
   * undefined (send nothing and wait for the challenge).
   */
  async authorize(scopes: readonly string[]): Promise<string | undefined> {
    if (this.scheme === "basic") return this.credentials?.basicAuthorization();
    if (this.scheme === "bearer" && this.bearer) {
      const cached = this.tokens.get(scopeKey(scopes));
      if (cached && cached.expiresAt > this.now()) return `Bearer ${cached.token}`;
      return `Bearer ${await this.fetchToken(scopes, undefined)}`;
    }
    return undefined;
  }

  /**
   * Answers a 401: learns the scheme from `header` and returns the
   * `Authorization` value to retry with once, or undefined when retrying
   * cannot help (no credentials for Basic, or the same header was just
   * refused).
   */
  async respond(header: string | null, scopes: readonly string[], sent: string | undefined): Promise<string | undefined> {
    const challenges = parseWwwAuthenticate(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer?.params.realm) {
      this.scheme = "bearer";
      this.bearer = { realm: this.checkRealm(bearer.params.realm), service: bearer.params.service };
      this.tokens.delete(scopeKey(scopes));
      const token = `Bearer ${await this.fetchToken(scopes, bearer.params.scope)}`;
      return token === sent ? undefined : token;
    }
    if (basic) {
      this.scheme = "basic";
      const value = this.credentials?.basicAuthorization();
      return value === undefined || value === sent ? undefined : value;
    }
    return undefined;
  }

  /** Only http(s) realms; http only for a plain-HTTP registry; no private-address realm for a public registry (SSRF, ggcr bearer.go). */
  private checkRealm(realm: string): URL {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `registry ${this.options.registry} sent a bearer challenge with an invalid realm "${realm}"`,
      );
    }
    const base = this.options.baseUrl;
    if (url.protocol !== "https:" && !(url.protocol === "http:" && base.protocol === "http:")) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `registry ${this.options.registry} sent a token realm ${url.origin} that is not https; refusing to send credentials there`,
      );
    }
    if (url.hostname !== base.hostname && PRIVATE_HOST.test(url.hostname) && !PRIVATE_HOST.test(base.hostname)) {
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        `registry ${this.options.registry} sent a token realm on a private address (${url.host}); refusing it`,
      );
    }
    return url;
  }

  /** One token request per scope set at a time: concurrent requests share it. */
  private fetchToken(scopes: readonly string[], challengeScope: string | undefined): Promise<string> {
    const key = `${scopeKey(scopes)}|${challengeScope ?? ""}`;
    const pending = this.pending.get(key);
    if (pending) return pending;
    const promise = this.requestToken(scopes, challengeScope).finally(() => this.pending.delete(key));
    this.pending.set(key, promise);
    return promise;
  }

  private async requestToken(scopes: readonly string[], challengeScope: string | undefined): Promise<string> {
    const bearer = this.bearer;
    if (!bearer) throw new Error("fetchToken before a bearer challenge");
    // "Some registries only look at the first scope parameter" (ggcr): the challenge's scope first.
    const all = [...new Set([...(challengeScope ? challengeScope.split(" ") : []), ...scopes])].filter((s) => s !== "");
    const credentials = this.credentials;
    let response: Response;
    if (credentials?.hasIdentityToken) {
      const form = new URLSearchParams({ ...credentials.oauthFields(), client_id: "chassis-ts" });
      if (bearer.service) form.set("service", bearer.service);
      if (all.length > 0) form.set("scope", all.join(" "));
      response = await this.options.transport(bearer.realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      });
    } else {
      const url = new URL(bearer.realm);
      if (bearer.service) url.searchParams.set("service", bearer.service);
      for (const scope of all) url.searchParams.append("scope", scope);
      if (credentials) url.searchParams.set("account", credentials.username);
      const headers: Record<string, string> = {};
      if (credentials) headers.authorization = credentials.basicAuthorization();
      response = await this.options.transport(url, { method: "GET", headers });
    }
    const text = await response.text();
    if (response.status === 401 || response.status === 403) {
      const errors = parseErrorBody(text);
      throw new RegistryError(
        "CHASSIS_REGISTRY_UNAUTHORIZED",
        this.redact(
          `the token service ${bearer.realm.origin} of registry ${this.options.registry} refused ${
            credentials ? `the credentials of ${credentials.describe()}` : "an anonymous token request"
          } (${describeStatus(response.status, response.statusText, errors)})`,
        ),
        { status: response.status, errors, hint: loginHint(this.options.registry, credentials, this.tried) },
      );
    }
    if (!response.ok) {
      const errors = parseErrorBody(text);
      throw new RegistryError(
        "CHASSIS_REGISTRY_FAILED",
        this.redact(
          `the token service ${bearer.realm.origin} of registry ${this.options.registry} failed: ${describeStatus(response.status, response.statusText, errors)}`,
        ),
        { status: response.status, errors },
      );
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RegistryError("CHASSIS_REGISTRY_FAILED", `the token service ${bearer.realm.origin} answered something that is not JSON`);
    }
    const token = typeof body.token === "string" && body.token ? body.token : body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new RegistryError("CHASSIS_REGISTRY_FAILED", `the token service ${bearer.realm.origin} answered without a token`);
    }
    this.issued.add(token);
    // token.md: expires_in defaults to 60 s; refresh a little early.
    const seconds = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
    this.tokens.set(scopeKey(scopes), { token, expiresAt: this.now() + Math.max(0, seconds - 5) * 1000 });
    this.log.debug("registry token issued", { registry: this.options.registry, scopes: all, expiresIn: seconds });
    return token;
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(" ");
}

/** The hint under a 401: how to give credentials, and where we looked. */
export function loginHint(registry: string, credentials: Credentials | undefined, tried: readonly string[]): string {
  const where = tried.length > 0 ? `; looked in: ${tried.join("; ")}` : "";
  return credentials
    ? `check the password of ${credentials.describe()}, or log in again (podman login ${registry})${where}`
    : `log in with podman login ${registry} (or docker login), or pass credentials explicitly${where}`;
}

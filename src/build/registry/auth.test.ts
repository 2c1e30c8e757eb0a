import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect } from "node:util";
import { createLogger } from "../../core/log.js";
import { ToolError } from "../../core/tool-error.js";
import { authFilePaths, Credentials, findCredentials, normalizeAuthKey, parseWwwAuthenticate } from "./auth.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("findCredentials", () => {
  let dir: string;
  let home: string;
  let runtime: string;
  const write = (path: string, value: unknown) => {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "chassis-auth-"));
    home = join(dir, "home");
    runtime = join(dir, "run");
    mkdirSync(home, { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("searches the files in podman's order", () => {
    const paths = authFilePaths({
      authFile: "/x/flag.json",
      env: { REGISTRY_AUTH_FILE: "/x/env.json", XDG_RUNTIME_DIR: "/run/user/7" },
      homeDir: "/h",
    });
    assert.deepEqual(
      paths.map((p) => p.path),
      ["/x/flag.json", "/x/env.json", "/run/user/7/containers/auth.json", "/h/.config/containers/auth.json", "/h/.docker/config.json"],
    );
    // Without XDG_RUNTIME_DIR, podman (as root) keeps logins in /run/containers/<uid>; XDG_CONFIG_HOME moves ~/.config.
    const uid = process.getuid?.() ?? 0;
    assert.deepEqual(
      authFilePaths({ env: { HOME: "/hh", XDG_CONFIG_HOME: "/cfg" } }).map((p) => p.path),
      [`/run/containers/${uid}/auth.json`, "/cfg/containers/auth.json", "/hh/.docker/config.json"],
    );
  });

  test("explicit credentials win; nothing found is anonymous with every place listed", () => {
    const explicit = Credentials.fromFlag("bob:pa:ss");
    const found = findCredentials("r.io", "a", { credentials: explicit, env: { HOME: home } });
    assert.equal(found.credentials, explicit);
    // XDG_RUNTIME_DIR inside the temp home: the machine's own /run/containers logins stay out of this test.
    const none = findCredentials("r.io", "a", { env: { HOME: home, XDG_RUNTIME_DIR: `${home}/run` } });
    assert.equal(none.credentials, undefined);
    assert.equal(none.tried.length, 4);
    assert.match(
      none.tried.join("\n"),
      /explicit credentials: none given\n.*auth\.json \(podman\): not found\n.*auth\.json \(podman\): not found\n.*config\.json \(docker\): not found/,
    );
    assert.throws(() => Credentials.fromFlag("nocolon"), /--creds expects USER:PASSWORD/);
  });

  test("reads docker's config.json, its Docker Hub key, and notes credential helpers", () => {
    write(join(home, ".docker", "config.json"), {
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hubuser:hubpass") },
        "localhost:5000": { auth: b64("alice:s3:cret") },
        "helped.io": {},
      },
      credHelpers: { "helped.io": "ecr-login" },
    });
    const lines: string[] = [];
    const logger = createLogger("debug", (l) => lines.push(l));
    const hub = findCredentials("docker.io", "library/alpine", { env: { HOME: home }, logger });
    assert.equal(hub.credentials?.username, "hubuser");
    assert.match(hub.credentials?.source ?? "", /config\.json \(auths\["https:\/\/index\.docker\.io\/v1\/"\]\)/);
    const local = findCredentials("localhost:5000", "x", { env: { HOME: home } });
    assert.equal(local.credentials?.username, "alice");
    assert.match(local.credentials?.basicAuthorization() ?? "", new RegExp(b64("alice:s3:cret")));
    const helped = findCredentials("helped.io", "x", { env: { HOME: home }, logger });
    assert.equal(helped.credentials, undefined);
    assert.match(helped.tried.at(-1) ?? "", /credential helper docker-credential-ecr-login ignored/);
    assert.ok(lines.some((l) => /DEBUG registry credential helpers are not supported/.test(l)));
  });

  test("podman's files come first, with per-namespace keys, then $REGISTRY_AUTH_FILE above them", () => {
    write(join(home, ".config", "containers", "auth.json"), {
      auths: { "quay.io": { auth: b64("general:1") }, "quay.io/team": { auth: b64("team:2") } },
    });
    assert.equal(findCredentials("quay.io", "team/app", { env: { HOME: home } }).credentials?.username, "team");
    assert.equal(findCredentials("quay.io", "other/app", { env: { HOME: home } }).credentials?.username, "general");
    write(join(runtime, "containers", "auth.json"), { auths: { "quay.io": { auth: b64("runtime:3") } } });
    const env = { HOME: home, XDG_RUNTIME_DIR: runtime };
    assert.equal(findCredentials("quay.io", "team/app", { env }).credentials?.username, "runtime");
    const envFile = join(dir, "env-auth.json");
    write(envFile, { auths: { "http://quay.io": { auth: b64("envfile:4") } } });
    assert.equal(findCredentials("quay.io", "team/app", { env: { ...env, REGISTRY_AUTH_FILE: envFile } }).credentials?.username, "envfile");
    // Falls through a file without an entry to the next one.
    assert.equal(findCredentials("localhost:5000", "x", { env: { ...env, REGISTRY_AUTH_FILE: envFile } }).credentials?.username, "alice");
  });

  test("identity tokens, and clear errors for broken files that never show a secret", () => {
    const file = join(dir, "token.json");
    write(file, { auths: { "t.io": { auth: b64("<token>:"), identitytoken: "refresh-SECRET-1" } } });
    const found = findCredentials("t.io", undefined, { authFile: file });
    assert.ok(found.credentials?.hasIdentityToken);
    assert.deepEqual(found.credentials?.oauthFields(), { grant_type: "refresh_token", refresh_token: "refresh-SECRET-1" });
    const broken = join(dir, "broken.json");
    write(broken, "{ not json");
    assert.throws(
      () => findCredentials("t.io", undefined, { authFile: broken }),
      (e: unknown) => e instanceof ToolError && e.id === "CHASSIS_USAGE" && e.message.includes(`auth file ${broken} is not valid JSON`),
    );
    const bad = join(dir, "bad.json");
    write(bad, { auths: { "t.io": { auth: b64("no-colon-SECRET") } } });
    assert.throws(
      () => findCredentials("t.io", undefined, { authFile: bad }),
      (e: unknown) => e instanceof ToolError && /"auth" is not base64 of "user:password"/.test(e.message) && !e.message.includes("SECRET"),
    );
  });
});

test("Credentials never print their secret", () => {
  const credentials = Credentials.basic("alice", "hunter2-SECRET", "--creds");
  for (const text of [
    inspect(credentials),
    JSON.stringify(credentials),
    String(credentials),
    `${credentials}`,
    inspect({ nested: credentials }),
  ]) {
    assert.ok(!text.includes("hunter2"), text);
    assert.ok(!text.includes(b64("alice:hunter2-SECRET")), text);
    assert.match(text, /redacted/);
  }
  assert.equal(credentials.describe(), 'user "alice" (from --creds)');
});

test("normalizeAuthKey", () => {
  assert.equal(normalizeAuthKey("https://index.docker.io/v1/"), "docker.io");
  assert.equal(normalizeAuthKey("registry-1.docker.io"), "docker.io");
  assert.equal(normalizeAuthKey("http://localhost:5000/v2/"), "localhost:5000");
  assert.equal(normalizeAuthKey("Quay.io/team/"), "quay.io/team");
});

describe("parseWwwAuthenticate", () => {
  test("Docker Hub style, with commas inside quotes", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"',
      ),
      [
        {
          scheme: "bearer",
          params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull,push" },
        },
      ],
    );
  });
  test("errors, spaces, unquoted values and escapes", () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm = "https://ghcr.io/token" , service=ghcr.io, error="insufficient_scope",x="a\\"b"'),
      [{ scheme: "bearer", params: { realm: "https://ghcr.io/token", service: "ghcr.io", error: "insufficient_scope", x: 'a"b' } }],
    );
  });
  test("several challenges in one header, and Basic", () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: "basic", params: { realm: "basic-realm" } }]);
    assert.deepEqual(parseWwwAuthenticate('Basic realm="a, b", Bearer realm="https://t/token",scope="s1 s2"'), [
      { scheme: "basic", params: { realm: "a, b" } },
      { scheme: "bearer", params: { realm: "https://t/token", scope: "s1 s2" } },
    ]);
    assert.deepEqual(parseWwwAuthenticate(""), []);
  });
});

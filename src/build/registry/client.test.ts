/**
 * The registry client against an in-process fake registry
 * (test/helpers/fake-registry.ts): auth flows, redirects, chunked uploads,
 * digest mismatches, retries, manifests of both families, mounts, copies.
 * The same flows against the real Debian docker-registry are in
 * real-registry.test.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { basic, FakeRegistry, type FakeRegistryOptions } from "../../../test/helpers/fake-registry.js";
import { createLogger } from "../../core/log.js";
import { ToolError } from "../../core/tool-error.js";
import { Credentials } from "./auth.js";
import { type BlobSource, bytesSource, fileSource, memoryBlobReader } from "./blobs.js";
import { copyBlob, RegistryClient, type RegistryClientOptions } from "./client.js";
import { sha256Digest } from "./digest.js";
import { RegistryError } from "./errors.js";
import { DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from "./media-types.js";

const registries: FakeRegistry[] = [];
after(async () => {
  await Promise.all(registries.map((r) => r.stop()));
});

async function fake(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const registry = await FakeRegistry.start(options);
  registries.push(registry);
  return registry;
}

function client(registry: FakeRegistry, options: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    registry: registry.host,
    retry: { baseDelayMs: 1, maxDelayMs: 50 },
    ...(process.env.TEST_LOG === "1" ? { logger: createLogger("debug") } : {}),
    ...options,
  });
}

/** A tiny image made by hand: config + one layer + manifest, in the OCI or the Docker family. */
function tinyImage(family: "oci" | "docker" = "oci", layerBytes: Uint8Array = randomBytes(3000)) {
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: [sha256Digest(layerBytes)] },
    }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: family === "oci" ? OCI_MANIFEST : DOCKER_MANIFEST,
    config: { mediaType: family === "oci" ? OCI_CONFIG : DOCKER_CONFIG, digest: sha256Digest(config), size: config.length },
    layers: [
      {
        mediaType: family === "oci" ? "application/vnd.oci.image.layer.v1.tar" : "application/vnd.docker.image.rootfs.diff.tar.gzip",
        digest: sha256Digest(layerBytes),
        size: layerBytes.length,
      },
    ],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { config, layer: Buffer.from(layerBytes), manifest, manifestBytes, digest: sha256Digest(manifestBytes) };
}

async function rejectsWith(promise: Promise<unknown>, id: string, message: RegExp): Promise<RegistryError | ToolError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ToolError, `expected a ToolError ${id}, got ${String(caught)}`);
  assert.equal(caught.id, id, caught.message);
  assert.match(caught.message, message);
  return caught;
}

async function streamToBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("authentication", () => {
  test("401 then a bearer token: token fetched with Basic credentials and the scopes, cached, sent up front afterwards", async () => {
    const registry = await fake({ auth: { type: "bearer", username: "alice", password: "s3cret" } });
    const c = client(registry, { credentials: Credentials.basic("alice", "s3cret") });
    const image = tinyImage();
    await c.pushImage({
      repository: "team/app",
      tag: "v1",
      manifest: image.manifestBytes,
      blobs: memoryBlobReader([image.config, image.layer]),
    });
    const got = await c.getManifest("team/app", "v1");
    assert.equal(got.digest, image.digest);

    const unauthorized = registry.requests.filter((r) => r.status === 401);
    assert.equal(unauthorized.length, 1, "one challenge; later scopes get their token before the request");
    assert.equal(registry.tokenRequests.length, 2);
    // The challenge's scope first (some registries read only the first), then the ones the push needs.
    assert.deepEqual(registry.tokenRequests[0]?.scopes, ["repository:team/app:pull", "repository:team/app:pull,push"]);
    assert.equal(registry.tokenRequests[0]?.service, "fake-registry");
    assert.equal(registry.tokenRequests[0]?.basic, basic("alice", "s3cret"));
    assert.deepEqual(registry.tokenRequests[1]?.scopes, ["repository:team/app:pull"]);
    const api = registry.requests.filter((r) => r.path.startsWith("/v2/") && r.status !== 401);
    assert.ok(api.length >= 6 && api.every((r) => r.authorization?.startsWith("Bearer ")));
  });

  test("anonymous pull with a bearer registry gets a token without credentials", async () => {
    const registry = await fake({ auth: { type: "bearer", username: "alice", password: "s3cret", anonymousPull: true } });
    const image = tinyImage();
    registry.seedBlob("pub/app", image.config);
    registry.seedBlob("pub/app", image.layer);
    registry.seedManifest("pub/app", "v1", image.manifestBytes, OCI_MANIFEST);
    const c = client(registry);
    assert.equal((await c.getManifest("pub/app", "v1")).digest, image.digest);
    assert.equal(registry.tokenRequests[0]?.basic, undefined);
    // Pushing anonymously is refused, clearly.
    const error = await rejectsWith(
      c.putManifest("pub/app", "v2", image.manifestBytes),
      "CHASSIS_REGISTRY_UNAUTHORIZED",
      /registry 127\.0\.0\.1:\d+ did not accept the anonymous token to push pub\/app \(401 UNAUTHORIZED: authentication required\)/,
    );
    assert.match(error.hint ?? "", /log in with podman login/);
  });

  test("a refused password at the token service is a clear 401 that never shows the password", async () => {
    const registry = await fake({ auth: { type: "bearer", username: "alice", password: "s3cret" } });
    const c = client(registry, { credentials: Credentials.basic("alice", "WRONG-pass-123", '/root/.docker/config.json (auths["x"])') });
    const error = await rejectsWith(
      c.ping(),
      "CHASSIS_REGISTRY_UNAUTHORIZED",
      /token service http:\/\/127\.0\.0\.1:\d+ of registry 127\.0\.0\.1:\d+ refused the credentials of user "alice" \(from \/root\/\.docker\/config\.json/,
    );
    const everything = `${error.message}\n${error.hint}\n${JSON.stringify(error)}`;
    assert.ok(!everything.includes("WRONG-pass-123"));
    assert.ok(!everything.includes(Buffer.from("alice:WRONG-pass-123").toString("base64")));
  });

  test("Basic auth: one challenge, then credentials sent up front", async () => {
    const registry = await fake({ auth: { type: "basic", username: "bob", password: "pw" } });
    const c = client(registry, { credentials: Credentials.basic("bob", "pw") });
    const image = tinyImage("docker");
    const result = await c.pushImage({
      repository: "b/app",
      tag: "latest",
      manifest: image.manifestBytes,
      blobs: memoryBlobReader([image.config, image.layer]),
    });
    assert.equal(result.digest, image.digest);
    assert.equal(registry.requests.filter((r) => r.status === 401).length, 1);
    assert.ok(registry.requests.slice(1).every((r) => r.authorization === basic("bob", "pw")));
  });

  test("Basic auth with a wrong password or none: 401 errors naming the registry and the source tried", async () => {
    const registry = await fake({ auth: { type: "basic", username: "bob", password: "pw" } });
    const wrong = client(registry, {
      credentials: { credentials: Credentials.basic("bob", "nope-nope", "--creds"), tried: ['--creds: user "bob"'] },
    });
    const error = await rejectsWith(
      wrong.getManifest("b/app", "v1"),
      "CHASSIS_REGISTRY_UNAUTHORIZED",
      /registry 127\.0\.0\.1:\d+ did not accept the credentials of user "bob" \(from --creds\) to pull b\/app \(401 UNAUTHORIZED: authentication required\)/,
    );
    // A HEAD has no body: the status alone.
    await rejectsWith(wrong.blobExists("b/app", sha256Digest("x")), "CHASSIS_REGISTRY_UNAUTHORIZED", /\(401 Unauthorized\)$/);
    assert.ok(error instanceof RegistryError && error.status === 401);
    assert.match(error.hint ?? "", /check the password of user "bob" \(from --creds\).*looked in: --creds/);
    assert.ok(!`${error.message}${error.hint}`.includes("nope-nope"));
    await rejectsWith(client(registry).ping(), "CHASSIS_REGISTRY_UNAUTHORIZED", /requires authentication and no credentials were found/);
  });

  test("a token realm on plain http is refused for an https registry, and a private-address realm for a public one", async () => {
    const challenge = (realm: string) =>
      new Response("{}", { status: 401, headers: { "www-authenticate": `Bearer realm="${realm}",service="s"` } });
    const https = new RegistryClient({
      registry: "registry.example.com",
      fetch: async () => challenge("http://registry.example.com/token"),
    });
    await rejectsWith(https.ping(), "CHASSIS_REGISTRY_FAILED", /token realm http:\/\/registry\.example\.com that is not https/);
    const ssrf = new RegistryClient({ registry: "registry.example.com", fetch: async () => challenge("https://169.254.169.254/token") });
    await rejectsWith(ssrf.ping(), "CHASSIS_REGISTRY_FAILED", /token realm on a private address \(169\.254\.169\.254\)/);
  });
});

describe("blobs", () => {
  for (const host of ["127.0.0.1", "localhost"] as const) {
    test(`GET follows a redirect to storage on ${host} (another origin) without the Authorization header`, async () => {
      const registry = await fake({ auth: { type: "bearer", username: "alice", password: "s3cret" }, redirectBlobs: host });
      const bytes = randomBytes(50_000);
      const digest = registry.seedBlob("r/app", bytes);
      const c = client(registry, { credentials: Credentials.basic("alice", "s3cret") });
      const { stream } = await c.getBlob("r/app", digest, { size: bytes.length });
      assert.deepEqual(await streamToBuffer(stream), bytes);
      assert.equal(registry.storageRequests.length, 1);
      assert.equal(registry.storageRequests[0]?.authorization, undefined, "the token must not reach the storage host");
      const get = registry.requests.find((r) => r.method === "GET" && r.path.includes("/blobs/") && r.status === 307);
      assert.match(get?.authorization ?? "", /^Bearer /, "the registry itself got the token");
    });
  }

  test("a corrupted blob fails the stream with CHASSIS_DIGEST_MISMATCH, after a redirect too", async () => {
    for (const options of [{}, { redirectBlobs: "127.0.0.1" as const }]) {
      const registry = await fake(options);
      const digest = registry.seedBlob("r/app", Buffer.from("the real bytes"));
      registry.corrupt.add(digest);
      const c = client(registry);
      const { stream } = await c.getBlob("r/app", digest);
      await rejectsWith(
        streamToBuffer(stream),
        "CHASSIS_DIGEST_MISMATCH",
        new RegExp(`blob ${digest} from 127\\.0\\.0\\.1:\\d+/r/app: expected digest ${digest} but the content hashes to sha256:`),
      );
      await rejectsWith(c.getBlobBytes("r/app", digest), "CHASSIS_DIGEST_MISMATCH", /expected digest/);
    }
  });

  test("uploading bytes that do not match their digest: the registry's DIGEST_INVALID becomes CHASSIS_DIGEST_MISMATCH", async () => {
    const registry = await fake();
    const c = client(registry);
    const lying: BlobSource = { ...bytesSource("actual bytes"), digest: sha256Digest("other bytes") };
    const error = await rejectsWith(
      c.uploadBlob("r/app", lying),
      "CHASSIS_DIGEST_MISMATCH",
      /registry 127\.0\.0\.1:\d+ rejected blob sha256:\w+ \(12 bytes\) for r\/app: the bytes sent do not match the digest \(400 DIGEST_INVALID/,
    );
    assert.deepEqual(
      (error as RegistryError).errors.map((e) => e.code),
      ["DIGEST_INVALID"],
    );
    // Chunked too.
    await rejectsWith(c.uploadBlob("r/app", lying, { chunked: true }), "CHASSIS_DIGEST_MISMATCH", /DIGEST_INVALID/);
  });

  for (const location of ["relative", "absolute"] as const) {
    test(`chunked upload: PATCH with Content-Range, following each new ${location} Location, then PUT ?digest=`, async () => {
      const registry = await fake({ location });
      const c = client(registry, { chunkedThreshold: 1000, chunkSize: 300 });
      const bytes = randomBytes(1000);
      const source = bytesSource(bytes);
      assert.equal(await c.uploadBlob("r/chunked", source), "uploaded");
      assert.deepEqual(registry.blob(source.digest), bytes);
      const patches = registry.requests.filter((r) => r.method === "PATCH");
      assert.deepEqual(
        patches.map((r) => r.contentRange),
        ["0-299", "300-599", "600-899", "900-999"],
      );
      assert.deepEqual(
        patches.map((r) => r.contentLength),
        ["300", "300", "300", "100"],
      );
      assert.ok(patches.every((r) => r.contentType === "application/octet-stream" && r.query._state));
      const put = registry.requests.find((r) => r.method === "PUT");
      assert.equal(put?.query.digest, source.digest);
      assert.ok(put?.query._state, "the Location's query state is kept beside ?digest=");
      assert.equal(put?.contentLength, "0");
    });
  }

  test("chunked upload from a stream (no slices) and from a file; monolithic uploads send a Content-Length, never chunked encoding", async () => {
    const registry = await fake();
    const c = client(registry, { chunkedThreshold: 10_000, chunkSize: 4096 });
    const bytes = randomBytes(10_000);
    const digest = sha256Digest(bytes);
    const streamed: BlobSource = {
      digest,
      size: bytes.length,
      body: () => Readable.from([bytes.subarray(0, 7), bytes.subarray(7, 5000), bytes.subarray(5000)]),
    };
    assert.equal(await c.uploadBlob("r/stream", streamed), "uploaded");
    assert.deepEqual(registry.blob(digest), bytes);
    assert.deepEqual(
      registry.requests.filter((r) => r.method === "PATCH").map((r) => r.contentRange),
      ["0-4095", "4096-8191", "8192-9999"],
    );

    const dir = mkdtempSync(join(tmpdir(), "chassis-blob-"));
    try {
      const small = randomBytes(5000);
      writeFileSync(join(dir, "blob"), small);
      const sources = [
        bytesSource(small),
        await fileSource(join(dir, "blob"), sha256Digest(small)),
        { ...streamed, digest: sha256Digest(small), size: small.length, body: () => Readable.from([small]) },
      ];
      for (const [i, source] of sources.entries()) {
        const before = registry.requests.length;
        await c.uploadBlob(`r/mono${i}`, source);
        const put = registry.requests.slice(before).find((r) => r.method === "PUT");
        assert.equal(put?.contentLength, "5000", `source ${i}`);
        assert.equal(put?.transferEncoding, undefined, `source ${i}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an upload Location on another origin gets no Authorization header (it is usually a signed storage URL)", async () => {
    const seen: { method: string; url: string; authorization: string | null }[] = [];
    const c = new RegistryClient({
      registry: "registry.example.com",
      credentials: Credentials.basic("u", "p"),
      fetch: async (input, init) => {
        const url = String(input);
        const authorization = new Headers(init?.headers).get("authorization");
        seen.push({ method: init?.method ?? "GET", url, authorization });
        if (!authorization && url.startsWith("https://registry.example.com")) {
          return new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        }
        if (init?.method === "POST")
          return new Response(null, { status: 202, headers: { location: "https://storage.example.net/up/1?sig=abc" } });
        return new Response(null, { status: 201 });
      },
    });
    assert.equal(await c.uploadBlob("a/b", bytesSource("data")), "uploaded");
    const put = seen.find((r) => r.method === "PUT");
    assert.match(put?.url ?? "", /^https:\/\/storage\.example\.net\/up\/1\?sig=abc&digest=sha256%3A/);
    assert.equal(put?.authorization, null);
    assert.equal(seen.find((r) => r.method === "POST" && r.authorization)?.authorization, basic("u", "p"));
  });

  test("mountBlob: 201 links the blob without sending it; 202 (not in the source repository) cancels the session", async () => {
    const registry = await fake();
    const digest = registry.seedBlob("base/image", Buffer.from("base layer"));
    const c = client(registry);
    assert.equal(await c.mountBlob("my/app", digest, "base/image"), true);
    assert.ok(registry.hasBlob("my/app", digest));
    assert.equal(await c.mountBlob("my/other", sha256Digest("absent"), "base/image"), false);
    assert.equal(registry.requests.at(-1)?.method, "DELETE");
    assert.equal(registry.requests.at(-1)?.status, 204);
  });
});

describe("retries", () => {
  test("429 honours Retry-After (seconds and HTTP date); 503 and a connection reset are retried", async () => {
    const registry = await fake();
    const delays: number[] = [];
    const c = client(registry, { sleep: async (ms) => void delays.push(ms), retry: { baseDelayMs: 10, maxDelayMs: 60_000 } });
    const digest = registry.seedBlob("r/app", Buffer.from("x"));
    registry.fail("HEAD", /\/blobs\//, { status: 429, headers: { "retry-after": "2" } });
    registry.fail("HEAD", /\/blobs\//, { status: 503 });
    registry.fail("HEAD", /\/blobs\//, { reset: true });
    assert.equal(await c.blobExists("r/app", digest), true);
    assert.equal(delays.length, 3);
    assert.equal(delays[0], 2000);
    // Exponential backoff with jitter: attempt n waits between half and all of base * 2^(n-1).
    assert.ok((delays[1] ?? 0) >= 10 && (delays[1] ?? 0) <= 20, `backoff ${delays[1]}`);
    assert.ok((delays[2] ?? 0) >= 20 && (delays[2] ?? 0) <= 40, `backoff ${delays[2]}`);

    delays.length = 0;
    const date = new Date(Date.now() + 3000).toUTCString();
    registry.fail("GET", /\/blobs\//, { status: 429, headers: { "retry-after": date } });
    assert.equal((await c.getBlobBytes("r/app", digest)).toString(), "x");
    assert.ok((delays[0] ?? 0) > 1000 && (delays[0] ?? 0) <= 3000, `Retry-After date gave ${delays[0]}`);
  });

  test("a registry that keeps failing ends in CHASSIS_REGISTRY_FAILED after the limited attempts; uploads resend the same bytes", async () => {
    const registry = await fake();
    const c = client(registry, { retry: { attempts: 3, baseDelayMs: 1 } });
    registry.fail("GET", /manifests/, { status: 503, times: 10 });
    await rejectsWith(
      c.getManifest("r/app", "v1"),
      "CHASSIS_REGISTRY_FAILED",
      /registry 127\.0\.0\.1:\d+ kept failing on GET of manifest r\/app:v1: 503 UNKNOWN: injected fault \(after 3 attempts\)/,
    );
    assert.equal(registry.requests.filter((r) => r.path.includes("manifests")).length, 3);

    const bytes = randomBytes(2000);
    registry.fail("PUT", /uploads/, { status: 500 });
    registry.fail("PATCH", /uploads/, { reset: true });
    assert.equal(await c.uploadBlob("r/app", bytesSource(bytes)), "uploaded");
    assert.equal(await c.uploadBlob("r/app2", bytesSource(bytes), { chunked: true }), "uploaded");
    assert.deepEqual(registry.blob(sha256Digest(bytes)), bytes);
  });

  test("a refused connection is not retried and says nothing listens there", async () => {
    const registry = await fake();
    const host = registry.host;
    await registry.stop();
    registries.splice(registries.indexOf(registry), 1);
    const delays: number[] = [];
    const c = new RegistryClient({ registry: host, sleep: async (ms) => void delays.push(ms) });
    const error = await rejectsWith(
      c.ping(),
      "CHASSIS_REGISTRY_FAILED",
      new RegExp(`cannot reach registry ${host} \\(GET http://${host}/v2/\\): ECONNREFUSED`),
    );
    assert.match(error.hint ?? "", /nothing listens at/);
    assert.equal(delays.length, 0);
  });
});

describe("manifests", () => {
  for (const family of ["oci", "docker"] as const) {
    test(`put and get a ${family} manifest: Content-Type is its mediaType, bytes and digest round-trip`, async () => {
      const registry = await fake();
      const c = client(registry);
      const image = tinyImage(family);
      registry.seedBlob("m/app", image.config);
      registry.seedBlob("m/app", image.layer);
      const put = await c.putManifest("m/app", "v1", image.manifestBytes);
      assert.equal(put.digest, image.digest);
      assert.equal(put.mediaType, image.manifest.mediaType);
      assert.equal(registry.requests.at(-1)?.contentType, image.manifest.mediaType);
      for (const reference of ["v1", image.digest]) {
        const got = await c.getManifest("m/app", reference);
        assert.deepEqual(got.bytes, image.manifestBytes);
        assert.equal(got.digest, image.digest);
        assert.equal(got.mediaType, image.manifest.mediaType);
        assert.deepEqual(got.json, image.manifest);
      }
      // The fake, like distribution 2.8, answers 404 to an OCI manifest GET whose Accept lacks the OCI types.
      assert.ok(registry.requests.filter((r) => r.method === "GET").every((r) => r.status === 200));
    });
  }

  test("a manifest whose blobs are missing: a clear error with a hint", async () => {
    const registry = await fake();
    const image = tinyImage();
    const error = await rejectsWith(
      client(registry).putManifest("m/app", "v1", image.manifestBytes),
      "CHASSIS_REGISTRY_FAILED",
      /rejected PUT of manifest m\/app:v1: 400 MANIFEST_BLOB_UNKNOWN/,
    );
    assert.match(error.hint ?? "", /push the blobs first/);
  });

  test("404s name the repository and the tag or digest; 403 is DENIED", async () => {
    const registry = await fake();
    const c = client(registry);
    await rejectsWith(
      c.getManifest("no/such", "v9"),
      "CHASSIS_REGISTRY_NOT_FOUND",
      /manifest no\/such:v9 not found in registry 127\.0\.0\.1:\d+ \(404 MANIFEST_UNKNOWN: manifest unknown\)/,
    );
    const digest = sha256Digest("nothing");
    await rejectsWith(c.getManifest("no/such", digest), "CHASSIS_REGISTRY_NOT_FOUND", new RegExp(`manifest no/such@${digest} not found`));
    await rejectsWith(
      c.getBlob("no/such", digest),
      "CHASSIS_REGISTRY_NOT_FOUND",
      new RegExp(`blob ${digest} in no/such not found .*BLOB_UNKNOWN`),
    );
    registry.fail("GET", /manifests/, { status: 403 });
    await rejectsWith(
      c.getManifest("locked/app", "v1"),
      "CHASSIS_REGISTRY_DENIED",
      /registry 127\.0\.0\.1:\d+ denied anonymous access permission to pull locked\/app \(403/,
    );
  });

  test("a manifest whose bytes do not match the digest asked for is refused", async () => {
    const c = new RegistryClient({
      registry: "localhost:1",
      fetch: async () => new Response('{"schemaVersion":2}', { status: 200, headers: { "content-type": OCI_MANIFEST } }),
    });
    const wanted = sha256Digest("something else");
    await rejectsWith(
      c.getManifest("a/b", wanted),
      "CHASSIS_DIGEST_MISMATCH",
      new RegExp(`manifest a/b@${wanted} from localhost:1: expected digest ${wanted}`),
    );
    const lying = new RegistryClient({
      registry: "localhost:1",
      fetch: async () => new Response("{}", { status: 200, headers: { "docker-content-digest": wanted } }),
    });
    await rejectsWith(lying.getManifest("a/b", "v1"), "CHASSIS_DIGEST_MISMATCH", /Docker-Content-Digest/);
  });

  for (const [indexType, family] of [
    [OCI_INDEX, "oci"],
    [DOCKER_MANIFEST_LIST, "docker"],
  ] as const) {
    test(`resolvePlatform picks from ${family === "oci" ? "an OCI index" : "a Docker manifest list"}, or lists what there is`, async () => {
      const registry = await fake();
      const c = client(registry);
      const amd = tinyImage(family);
      const arm = tinyImage(family);
      const entry = (image: ReturnType<typeof tinyImage>, platform: object, annotations?: object) => ({
        mediaType: image.manifest.mediaType,
        digest: image.digest,
        size: image.manifestBytes.length,
        platform,
        ...(annotations ? { annotations } : {}),
      });
      registry.seedManifest("multi/base", undefined, amd.manifestBytes, amd.manifest.mediaType);
      registry.seedManifest("multi/base", undefined, arm.manifestBytes, arm.manifest.mediaType);
      const index = {
        schemaVersion: 2,
        mediaType: indexType,
        manifests: [
          entry(arm, { os: "unknown", architecture: "unknown" }, { "vnd.docker.reference.type": "attestation-manifest" }),
          entry(arm, { os: "linux", architecture: "arm64", variant: "v8" }),
          entry(amd, { os: "linux", architecture: "amd64" }),
        ],
      };
      registry.seedManifest("multi/base", "latest", JSON.stringify(index), indexType);
      const picked = await c.resolvePlatform("multi/base", "latest", { os: "linux", architecture: "amd64" });
      assert.equal(picked.manifest.digest, amd.digest);
      assert.equal(picked.index?.mediaType, indexType);
      assert.equal(picked.descriptor?.digest, amd.digest);
      const aarch = await c.resolvePlatform("multi/base", "latest", { os: "linux", architecture: "aarch64" });
      assert.equal(aarch.manifest.digest, arm.digest);
      const error = await rejectsWith(
        c.resolvePlatform("multi/base", "latest", { os: "linux", architecture: "arm", variant: "v7" }),
        "CHASSIS_PLATFORM_NOT_FOUND",
        /127\.0\.0\.1:\d+\/multi\/base:latest has no image for linux\/arm\/v7; it has: linux\/arm64\/v8, linux\/amd64$/,
      );
      assert.equal(error.exitCode, 25);
      // A plain manifest resolves to itself.
      assert.equal((await c.resolvePlatform("multi/base", amd.digest, { os: "linux", architecture: "arm64" })).manifest.digest, amd.digest);
    });
  }
});

describe("pushImage and copyBlob", () => {
  test("HEAD skips blobs already there; mountFrom mounts the base's layers; a second push uploads nothing", async () => {
    const registry = await fake({ auth: { type: "bearer", username: "alice", password: "s3cret" } });
    const c = client(registry, { credentials: Credentials.basic("alice", "s3cret") });
    const base = tinyImage();
    const baseDigest = registry.seedBlob("library/base", base.layer);
    const image = tinyImage("oci", base.layer);
    const events: string[] = [];
    const first = await c.pushImage({
      repository: "team/app",
      tag: "v1",
      manifest: image.manifestBytes,
      config: image.config,
      blobs: { open: () => assert.fail("the layer is mounted, the config given: nothing to read") },
      mountFrom: "library/base",
      onBlob: (b) => events.push(`${b.digest === baseDigest ? "layer" : "config"} ${b.action}`),
    });
    assert.deepEqual(events.sort(), ["config uploaded", "layer mounted"]);
    assert.equal(first.digest, image.digest);
    assert.equal(first.reference, `${registry.host}/team/app:v1`);
    assert.ok(
      registry.tokenRequests.some((t) => t.scopes.includes("repository:library/base:pull")),
      "the mount asked for pull on the source",
    );
    const before = registry.requests.length;
    const second = await c.pushImage({
      repository: "team/app",
      tag: "v2",
      manifest: image.manifestBytes,
      blobs: memoryBlobReader([image.config, image.layer]),
    });
    assert.deepEqual(
      second.blobs.map((b) => b.action),
      ["exists", "exists"],
    );
    assert.deepEqual(
      registry.requests.slice(before).map((r) => r.method),
      ["HEAD", "HEAD", "PUT"],
    );
    // Pushed by digest when no tag is given.
    const byDigest = await c.pushImage({ repository: "team/app", manifest: image.manifestBytes, blobs: memoryBlobReader([]) });
    assert.equal(byDigest.reference, `${registry.host}/team/app@${image.digest}`);
  });

  test("a reader handing the wrong bytes is a usage error before anything is uploaded", async () => {
    const registry = await fake();
    const image = tinyImage();
    await rejectsWith(
      client(registry).pushImage({
        repository: "x/y",
        tag: "t",
        manifest: image.manifestBytes,
        blobs: { open: () => bytesSource("wrong") },
      }),
      "CHASSIS_USAGE",
      /the blob given for sha256:\w+ \(\d+ bytes\) is sha256:\w+ \(5 bytes\)/,
    );
    assert.ok(!registry.requests.some((r) => r.method === "PUT"));
  });

  test("copyBlob streams between registries (chunked or not), mounts within one, and verifies the bytes", async () => {
    const source = await fake({ redirectBlobs: "localhost" });
    const target = await fake({ auth: { type: "basic", username: "u", password: "p" } });
    const bytes = randomBytes(20_000);
    const digest = source.seedBlob("src/app", bytes);
    const from = client(source);
    const to = client(target, { credentials: Credentials.basic("u", "p"), chunkedThreshold: 8000, chunkSize: 8000 });
    const descriptor = { digest, size: bytes.length };
    assert.equal(await copyBlob({ from, fromRepository: "src/app", to, toRepository: "dst/app", descriptor }), "uploaded");
    assert.deepEqual(target.blob(digest), bytes);
    assert.deepEqual(
      target.requests.filter((r) => r.method === "PATCH").map((r) => r.contentRange),
      ["0-7999", "8000-15999", "16000-19999"],
    );
    assert.equal(await copyBlob({ from, fromRepository: "src/app", to, toRepository: "dst/app", descriptor }), "exists");
    assert.equal(await copyBlob({ from: to, fromRepository: "dst/app", to, toRepository: "dst/other", descriptor }), "mounted");

    const monolithic = client(target, { credentials: Credentials.basic("u", "p") });
    // A failed PUT is retried with a fresh GET of the source (a stream cannot be replayed).
    target.fail("PUT", /uploads/, { status: 503 });
    const gets = source.storageRequests.length;
    assert.equal(await copyBlob({ from, fromRepository: "src/app", to: monolithic, toRepository: "dst/mono", descriptor }), "uploaded");
    assert.equal(source.storageRequests.length - gets, 2);
    assert.deepEqual(target.blob(digest), bytes);
    const put = target.requests.filter((r) => r.method === "PUT").at(-1);
    assert.equal(put?.contentLength, String(bytes.length));
    assert.equal(put?.transferEncoding, undefined);

    source.corrupt.add(digest);
    await rejectsWith(
      copyBlob({ from, fromRepository: "src/app", to: monolithic, toRepository: "dst/bad", descriptor }),
      "CHASSIS_DIGEST_MISMATCH",
      /expected digest/,
    );
    assert.ok(!target.hasBlob("dst/bad", digest));
  });
});

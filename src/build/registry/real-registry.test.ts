/**
 * The registry client against the real Debian `docker-registry`
 * (distribution 2.8), started by test/helpers/registry.ts on 127.0.0.1: once
 * open, once behind htpasswd Basic auth. A tiny image (config + one layer +
 * manifest, made by hand here) is pushed, pulled back, pushed again (HEAD
 * skips every blob), and a wrong password gives the clear 401 error.
 *
 * If docker-registry cannot be installed, these tests fail under CI=true and
 * are skipped elsewhere.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ensureRegistryInstalled, type StartedRegistry, startRegistry } from "../../../test/helpers/registry.js";
import { ToolError } from "../../core/tool-error.js";
import { Credentials, findCredentials } from "./auth.js";
import { bytesSource, memoryBlobReader } from "./blobs.js";
import { copyBlob, RegistryClient } from "./client.js";
import { sha256Digest } from "./digest.js";
import { DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from "./media-types.js";

const missing = ensureRegistryInstalled();
if (missing !== undefined && process.env.CI === "true") {
  test("docker-registry is available (required under CI)", () => {
    assert.fail(`docker-registry cannot be used: ${missing}`);
  });
}
const skip = missing !== undefined ? `docker-registry is not available: ${missing}` : false;

function tinyImage(family: "oci" | "docker" = "oci", layer: Buffer = randomBytes(4096), architecture = "amd64") {
  const config = Buffer.from(
    JSON.stringify({ architecture, os: "linux", config: { Env: ["A=1"] }, rootfs: { type: "layers", diff_ids: [sha256Digest(layer)] } }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: family === "oci" ? OCI_MANIFEST : DOCKER_MANIFEST,
    config: { mediaType: family === "oci" ? OCI_CONFIG : DOCKER_CONFIG, digest: sha256Digest(config), size: config.length },
    layers: [
      {
        mediaType: family === "oci" ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.docker.image.rootfs.diff.tar.gzip",
        digest: sha256Digest(layer),
        size: layer.length,
      },
    ],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { config, layer, manifest, manifestBytes, digest: sha256Digest(manifestBytes), blobs: memoryBlobReader([config, layer]) };
}

async function rejectsWith(promise: Promise<unknown>, id: string, message: RegExp): Promise<ToolError> {
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

describe("distribution 2.8, open", { skip }, () => {
  let registry: StartedRegistry;
  let client: RegistryClient;
  before(async () => {
    registry = await startRegistry();
    client = new RegistryClient({ registry: registry.host, retry: { baseDelayMs: 10 } });
  });
  after(async () => {
    await registry?.stop();
  });

  test("push a tiny image, pull it back, push again: HEAD skips every blob", async () => {
    assert.deepEqual(await client.ping(), { apiVersion: "registry/2.0" });
    const image = tinyImage();
    const first = await client.pushImage({ repository: "chassis/tiny", tag: "v1", manifest: image.manifestBytes, blobs: image.blobs });
    assert.equal(first.digest, image.digest);
    assert.deepEqual(
      first.blobs.map((b) => b.action),
      ["uploaded", "uploaded"],
    );

    const got = await client.getManifest("chassis/tiny", "v1");
    assert.deepEqual(got.bytes, image.manifestBytes, "the registry stores manifest bytes exactly");
    assert.equal(got.digest, image.digest);
    assert.equal(got.mediaType, OCI_MANIFEST);
    assert.deepEqual(await client.getBlobBytes("chassis/tiny", image.manifest.config.digest), image.config);
    assert.deepEqual(await client.getBlobBytes("chassis/tiny", image.manifest.layers[0]?.digest ?? ""), image.layer);
    assert.equal(
      (await client.resolvePlatform("chassis/tiny", "v1", { os: "linux", architecture: "amd64" })).manifest.digest,
      image.digest,
    );

    const again = await client.pushImage({ repository: "chassis/tiny", tag: "v2", manifest: image.manifestBytes, blobs: image.blobs });
    assert.deepEqual(
      again.blobs.map((b) => b.action),
      ["exists", "exists"],
    );
    assert.equal(again.digest, image.digest);
    assert.equal((await client.getManifest("chassis/tiny", "v2")).digest, image.digest);
  });

  test("chunked upload, cross-repository mount, copy between repositories", async () => {
    const chunked = new RegistryClient({ registry: registry.host, chunkedThreshold: 100_000, chunkSize: 300_000 });
    const big = bytesSource(randomBytes(1_051_495));
    assert.equal(await chunked.uploadBlob("chassis/chunked", big), "uploaded");
    assert.ok(await chunked.blobExists("chassis/chunked", big.digest));
    // 1,051,495 bytes in 300,000-byte chunks: four PATCHes (the access log shows them).
    assert.equal(registry.logs().split('"PATCH /v2/chassis/chunked/blobs/uploads/').length - 1, 4);
    assert.ok(!(await client.blobExists("chassis/other", big.digest)), "blobs are linked per repository");
    assert.equal(await client.mountBlob("chassis/other", big.digest, "chassis/chunked"), true);
    assert.ok(await client.blobExists("chassis/other", big.digest));
    assert.equal(await client.mountBlob("chassis/other2", sha256Digest("absent"), "chassis/chunked"), false);
    const copied = await copyBlob({
      from: client,
      fromRepository: "chassis/chunked",
      to: chunked,
      toRepository: "chassis/copied",
      descriptor: { digest: big.digest, size: big.size },
    });
    assert.equal(copied, "mounted", "same registry: mounted, not re-sent");
  });

  test("a Docker manifest list: children by digest, the list by tag, then resolvePlatform", async () => {
    const amd = tinyImage("docker", randomBytes(100), "amd64");
    const arm = tinyImage("docker", randomBytes(100), "arm64");
    for (const image of [amd, arm]) {
      const pushed = await client.pushImage({ repository: "chassis/multi", manifest: image.manifestBytes, blobs: image.blobs });
      assert.equal(pushed.reference, `${registry.host}/chassis/multi@${image.digest}`);
    }
    for (const [type, tag] of [
      [DOCKER_MANIFEST_LIST, "list"],
      [OCI_INDEX, "index"],
    ] as const) {
      const index = {
        schemaVersion: 2,
        mediaType: type,
        manifests: [
          {
            mediaType: DOCKER_MANIFEST,
            digest: arm.digest,
            size: arm.manifestBytes.length,
            platform: { os: "linux", architecture: "arm64", variant: "v8" },
          },
          {
            mediaType: DOCKER_MANIFEST,
            digest: amd.digest,
            size: amd.manifestBytes.length,
            platform: { os: "linux", architecture: "amd64" },
          },
        ],
      };
      await client.putManifest("chassis/multi", tag, JSON.stringify(index));
      const picked = await client.resolvePlatform("chassis/multi", tag, { os: "linux", architecture: "aarch64" });
      assert.equal(picked.manifest.digest, arm.digest);
      assert.equal(picked.index?.mediaType, type);
      await rejectsWith(
        client.resolvePlatform("chassis/multi", tag, { os: "linux", architecture: "s390x" }),
        "CHASSIS_PLATFORM_NOT_FOUND",
        /has no image for linux\/s390x; it has: linux\/arm64\/v8, linux\/amd64/,
      );
    }
  });

  test("the registry's refusals become clear errors", async () => {
    await rejectsWith(
      client.getManifest("chassis/tiny", "nope"),
      "CHASSIS_REGISTRY_NOT_FOUND",
      /manifest chassis\/tiny:nope not found in registry 127\.0\.0\.1:\d+ \(404 MANIFEST_UNKNOWN/,
    );
    // distribution 2.8 says MANIFEST_UNKNOWN, not NAME_UNKNOWN, for a repository that was never pushed.
    await rejectsWith(
      client.getManifest("chassis/never-pushed", "v1"),
      "CHASSIS_REGISTRY_NOT_FOUND",
      /manifest chassis\/never-pushed:v1 not found in registry .*404 MANIFEST_UNKNOWN/,
    );
    await rejectsWith(
      client.getBlob("chassis/tiny", sha256Digest("absent")),
      "CHASSIS_REGISTRY_NOT_FOUND",
      /blob sha256:\w+ in chassis\/tiny not found .*404 BLOB_UNKNOWN/,
    );
    await rejectsWith(
      client.uploadBlob("chassis/tiny", { ...bytesSource("real"), digest: sha256Digest("claimed") }),
      "CHASSIS_DIGEST_MISMATCH",
      /rejected blob .* the bytes sent do not match the digest \(400 DIGEST_INVALID/,
    );
    const orphan = tinyImage();
    await rejectsWith(
      client.putManifest("chassis/tiny", "orphan", orphan.manifestBytes),
      "CHASSIS_REGISTRY_FAILED",
      /400 MANIFEST_BLOB_UNKNOWN/,
    );
    const image = tinyImage();
    await client.pushImage({ repository: "chassis/types", tag: "x", manifest: image.manifestBytes, blobs: image.blobs });
    const error = await rejectsWith(
      client.putManifest("chassis/types", "wrong-type", image.manifestBytes, DOCKER_MANIFEST),
      "CHASSIS_REGISTRY_FAILED",
      /400 MANIFEST_INVALID/,
    );
    assert.match(error.hint ?? "", /Content-Type must equal the manifest's mediaType/);
  });
});

describe("distribution 2.8, htpasswd basic auth", { skip }, () => {
  let registry: StartedRegistry;
  let home: string;
  const auth = { username: "alice", password: "s3cret-Pw!" };
  before(async () => {
    registry = await startRegistry({ auth });
    home = mkdtempSync(join(tmpdir(), "chassis-home-"));
  });
  after(async () => {
    await registry?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test("push and pull with credentials from ~/.docker/config.json; a second push skips the blobs", async () => {
    mkdirSync(join(home, ".docker"));
    writeFileSync(
      join(home, ".docker", "config.json"),
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64") } } }),
    );
    const lookup = findCredentials(registry.host, "chassis/private", { env: { HOME: home } });
    assert.equal(lookup.credentials?.username, "alice");
    const client = new RegistryClient({ registry: registry.host, credentials: lookup });
    await client.ping();
    const image = tinyImage();
    const first = await client.pushImage({ repository: "chassis/private", tag: "v1", manifest: image.manifestBytes, blobs: image.blobs });
    assert.deepEqual(
      first.blobs.map((b) => b.action),
      ["uploaded", "uploaded"],
    );
    const got = await client.getManifest("chassis/private", "v1");
    assert.deepEqual(got.bytes, image.manifestBytes);
    assert.deepEqual(await client.getBlobBytes("chassis/private", image.manifest.layers[0]?.digest ?? ""), image.layer);
    const again = await client.pushImage({ repository: "chassis/private", tag: "v1", manifest: image.manifestBytes, blobs: image.blobs });
    assert.deepEqual(
      again.blobs.map((b) => b.action),
      ["exists", "exists"],
    );
  });

  test("a wrong password is a clear 401 naming the registry, the user and where the password came from, never the password", async () => {
    const client = new RegistryClient({ registry: registry.host, credentials: Credentials.basic("alice", "not-the-Pw-42", "--creds") });
    const image = tinyImage();
    const error = await rejectsWith(
      client.pushImage({ repository: "chassis/private", tag: "v1", manifest: image.manifestBytes, blobs: image.blobs }),
      "CHASSIS_REGISTRY_UNAUTHORIZED",
      new RegExp(
        `registry ${registry.host.replace(/\./g, "\\.")} did not accept the credentials of user "alice" \\(from --creds\\) to push chassis/private \\(401`,
      ),
    );
    assert.equal(error.exitCode, 20);
    assert.match(error.hint ?? "", /check the password of user "alice" \(from --creds\)/);
    const shown = `${error.message}\n${error.hint}\n${JSON.stringify(error)}`;
    assert.ok(!shown.includes("not-the-Pw-42") && !shown.includes(Buffer.from("alice:not-the-Pw-42").toString("base64")));

    const anonymous = new RegistryClient({
      registry: registry.host,
      credentials: findCredentials(registry.host, "x", { env: { HOME: join(home, "nobody") } }),
    });
    const none = await rejectsWith(
      anonymous.getManifest("chassis/private", "v1"),
      "CHASSIS_REGISTRY_UNAUTHORIZED",
      /requires authentication to pull chassis\/private and no credentials were found/,
    );
    assert.match(
      none.hint ?? "",
      /looked in: explicit credentials: none given; .*nobody\/\.config\/containers\/auth\.json \(podman\): not found/,
    );
  });
});

/**
 * Canonical documents: the bytes of the reference image (oci-build.md
 * section 1.2) come out exactly, whatever order the objects were built in;
 * digests, platforms and timestamps.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ToolError } from "../../core/tool-error.js";
import { type Descriptor, descriptorJson, normalizePlatform, parsePlatform, platformMatches, selectPlatform } from "./descriptor.js";
import { assertDigest, isDigest, sha256 } from "./digest.js";
import {
  chainIds,
  encodeConfig,
  encodeIndex,
  encodeManifest,
  type ImageConfig,
  type ImageManifest,
  layerMediaType,
  MediaType,
  parseConfig,
  parseManifest,
  parseManifestOrIndex,
} from "./documents.js";
import { DEFAULT_MTIME, parseSourceDateEpoch, rfc3339 } from "./epoch.js";

/** The busybox image's config from oci-build.md section 1.2: 728 bytes, podman IMAGE ID 07817c581d17. */
const REFERENCE_CONFIG =
  '{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","MODEL_DIR=/opt/model"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hello from $(id -u):$(id -g) in $(pwd); ls /opt/model/*/"],"WorkingDir":"/workdir-that-does-not-exist","User":"1000:1000","ExposedPorts":{"8080/tcp":{}},"Labels":{"org.opencontainers.image.title":"research-busybox","org.opencontainers.image.version":"0.0.1"},"StopSignal":"SIGTERM"},"rootfs":{"type":"layers","diff_ids":["sha256:d908a7f3f8ff1ad1eabcc1e505b05d62c8d5727aaba2d87b96ad7a712417011f"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"mkbusybox.mjs","comment":"busybox-static layer"}]}';

const REFERENCE_INDEX =
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a268c98473a9aaf6f29f7e1cc665585d3cdf07d14aceb1178dbf1ede5e53dc03","size":553,"annotations":{"io.containerd.image.name":"localhost/research-bb:v1","org.opencontainers.image.ref.name":"v1"},"platform":{"architecture":"amd64","os":"linux"}}]}';

describe("canonical documents", () => {
  test("the reference config comes out byte for byte from an object built in another key order", () => {
    const config: ImageConfig = {
      history: [{ comment: "busybox-static layer", created_by: "mkbusybox.mjs", created: rfc3339(0) }],
      rootfs: { diff_ids: ["sha256:d908a7f3f8ff1ad1eabcc1e505b05d62c8d5727aaba2d87b96ad7a712417011f"], type: "layers" },
      config: {
        StopSignal: "SIGTERM",
        Labels: { "org.opencontainers.image.version": "0.0.1", "org.opencontainers.image.title": "research-busybox" },
        ExposedPorts: { "8080/tcp": {} },
        User: "1000:1000",
        WorkingDir: "/workdir-that-does-not-exist",
        Cmd: ["echo hello from $(id -u):$(id -g) in $(pwd); ls /opt/model/*/"],
        Entrypoint: ["/bin/sh", "-c"],
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "MODEL_DIR=/opt/model"],
      },
      os: "linux",
      architecture: "amd64",
      created: "1970-01-01T00:00:00Z",
    };
    const encoded = encodeConfig(config);
    assert.equal(encoded.bytes.toString("utf8"), REFERENCE_CONFIG);
    assert.equal(encoded.descriptor.size, 728);
    assert.equal(encoded.descriptor.digest, "sha256:07817c581d17cbe9627d92f7ee40cce7586f13f3682e81f186ba034d0a90c991");
    assert.equal(encoded.descriptor.mediaType, MediaType.OciConfig);
    // Parsed and written again: the same bytes.
    assert.equal(encodeConfig(parseConfig(Buffer.from(REFERENCE_CONFIG), "reference")).bytes.toString(), REFERENCE_CONFIG);
  });

  test("the reference index.json comes out byte for byte", () => {
    const entry: Descriptor = {
      platform: { os: "linux", architecture: "amd64" },
      annotations: { "org.opencontainers.image.ref.name": "v1", "io.containerd.image.name": "localhost/research-bb:v1" },
      size: 553,
      digest: "sha256:a268c98473a9aaf6f29f7e1cc665585d3cdf07d14aceb1178dbf1ede5e53dc03",
      mediaType: MediaType.OciManifest,
    };
    assert.equal(encodeIndex({ manifests: [entry], mediaType: MediaType.OciIndex, schemaVersion: 2 }).bytes.toString(), REFERENCE_INDEX);
  });

  test("manifest key order: schemaVersion, mediaType, config, layers, annotations; Docker manifests refuse annotations", () => {
    const manifest: ImageManifest = {
      annotations: { "org.opencontainers.image.title": "t", "org.opencontainers.image.created": "1970-01-01T00:00:00Z" },
      layers: [{ size: 3, digest: sha256("abc"), mediaType: MediaType.OciLayerGzip }],
      config: { size: 2, digest: sha256("{}"), mediaType: MediaType.OciConfig },
      mediaType: MediaType.OciManifest,
      schemaVersion: 2,
    };
    const text = encodeManifest(manifest).bytes.toString();
    assert.equal(
      text,
      `{"schemaVersion":2,"mediaType":"${MediaType.OciManifest}","config":{"mediaType":"${MediaType.OciConfig}","digest":"${sha256("{}")}","size":2},"layers":[{"mediaType":"${MediaType.OciLayerGzip}","digest":"${sha256("abc")}","size":3}],"annotations":{"org.opencontainers.image.created":"1970-01-01T00:00:00Z","org.opencontainers.image.title":"t"}}`,
    );
    assert.deepEqual(parseManifest(Buffer.from(text), "m"), JSON.parse(text));
    assert.throws(() => encodeManifest({ ...manifest, mediaType: MediaType.DockerManifest }), /no annotations/);
  });

  test("maps are sorted by UTF-8 bytes even with integer-like keys; unknown fields kept after known ones, sorted; null Cmd left out", () => {
    const config = {
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
      container_config: { b: 1, a: [true, null] },
      config: { Labels: { b: "2", "10": "x", a: "1", "9": "y" }, Cmd: null, Entrypoint: ["/app"], Healthcheck: { Test: ["NONE"] } },
      docker_version: "24.0.0",
    } as unknown as ImageConfig;
    assert.equal(
      encodeConfig(config).bytes.toString(),
      '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app"],"Labels":{"10":"x","9":"y","a":"1","b":"2"},"Healthcheck":{"Test":["NONE"]}},"rootfs":{"type":"layers","diff_ids":[]},"container_config":{"a":[true,null],"b":1},"docker_version":"24.0.0"}',
    );
  });

  test("parse errors name the document and the problem", () => {
    const invalid = (pattern: RegExp) => (error: unknown) =>
      error instanceof ToolError && error.id === "CHASSIS_IMAGE_INVALID" && pattern.test(error.message);
    assert.throws(() => parseManifest(Buffer.from("nope"), "m1"), invalid(/m1 is not JSON/));
    assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1}'), "m2"), invalid(/m2: schemaVersion is 1, expected 2/));
    assert.throws(
      () => parseManifest(Buffer.from('{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:abc","size":1},"layers":[]}'), "m3"),
      invalid(/m3\.config\.digest: "sha256:abc" is not a sha256 digest/),
    );
    assert.throws(() => parseConfig(Buffer.from('{"architecture":"amd64","os":"linux"}'), "c"), invalid(/c: config needs rootfs/));
    const index = parseManifestOrIndex(Buffer.from('{"schemaVersion":2,"manifests":[]}'), "i");
    assert.equal(index.kind, "index", "an index without mediaType is told apart by its manifests");
  });

  test("media types: layer types by compression and family", () => {
    assert.equal(layerMediaType(true), MediaType.OciLayerGzip);
    assert.equal(layerMediaType(false), MediaType.OciLayer);
    assert.equal(layerMediaType(true, "docker"), MediaType.DockerLayerGzip);
    assert.throws(() => layerMediaType(false, "docker"), /uncompressed layer needs an OCI manifest/);
  });

  test("chain ids, digests, descriptor key order", () => {
    const a = sha256("a");
    const b = sha256("b");
    assert.deepEqual(chainIds([a, b]), [a, sha256(`${a} ${b}`)]);
    assert.ok(isDigest(a));
    assert.ok(!isDigest(a.toUpperCase()));
    assert.throws(() => assertDigest("md5:x", "here"), /here: "md5:x" is not a sha256 digest/);
    assert.equal(
      descriptorJson({ platform: { variant: "v8", architecture: "arm64", os: "linux" }, size: 1, digest: a, mediaType: "m", urls: ["u"] }),
      `{"mediaType":"m","digest":"${a}","size":1,"urls":["u"],"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}`,
    );
  });
});

describe("time", () => {
  test("SOURCE_DATE_EPOCH parsing and RFC 3339 without fractions", () => {
    assert.equal(parseSourceDateEpoch(undefined), undefined);
    assert.equal(parseSourceDateEpoch(""), undefined);
    assert.equal(parseSourceDateEpoch("1700000000"), 1_700_000_000);
    assert.throws(
      () => parseSourceDateEpoch("-5"),
      (error: unknown) => error instanceof ToolError && error.id === "CHASSIS_USAGE",
    );
    assert.throws(() => parseSourceDateEpoch("1.5"), /not a Unix time/);
    assert.equal(rfc3339(0), "1970-01-01T00:00:00Z");
    assert.equal(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert.equal(DEFAULT_MTIME, 1);
  });
});

describe("platforms", () => {
  const entry = (platform: Descriptor["platform"], extra: Partial<Descriptor> = {}): Descriptor => ({
    mediaType: MediaType.OciManifest,
    digest: sha256(JSON.stringify(platform ?? null) + JSON.stringify(extra)),
    size: 1,
    ...(platform ? { platform } : {}),
    ...extra,
  });

  test("aliases and default variants as containerd normalizes them", () => {
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "x86_64" }), { os: "linux", architecture: "amd64" });
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "aarch64" }), { os: "linux", architecture: "arm64", variant: "v8" });
    assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm" }), { os: "linux", architecture: "arm", variant: "v7" });
    assert.ok(platformMatches({ os: "linux", architecture: "arm64", variant: "v8" }, { os: "linux", architecture: "arm64" }));
    assert.ok(!platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, { os: "linux", architecture: "arm" }));
    assert.deepEqual(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v7" });
    assert.throws(() => parsePlatform("linux"), /not os\/arch/);
  });

  test("selectPlatform: first match wins; entries without platform and attestations are skipped; a miss lists what there is", () => {
    const attestation = entry(
      { os: "unknown", architecture: "unknown" },
      { annotations: { "vnd.docker.reference.type": "attestation-manifest" } },
    );
    const arm = entry({ os: "linux", architecture: "arm64", variant: "v8" });
    const amd = entry({ os: "linux", architecture: "amd64" });
    const amd2 = entry({ os: "linux", architecture: "amd64" }, { annotations: { second: "yes" } });
    const list = [entry(undefined), attestation, arm, amd, amd2];
    assert.equal(selectPlatform(list, { os: "linux", architecture: "amd64" }), amd);
    assert.equal(selectPlatform(list, { os: "linux", architecture: "aarch64" }), arm);
    assert.throws(
      () => selectPlatform(list, { os: "linux", architecture: "s390x" }),
      (error: unknown) =>
        error instanceof ToolError &&
        error.id === "CHASSIS_PLATFORM_NOT_FOUND" &&
        /no manifest for linux\/s390x \(it has linux\/arm64\/v8, linux\/amd64, linux\/amd64\)/.test(error.message),
    );
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Descriptor } from "./media-types.js";
import { availablePlatforms, formatPlatform, nodePlatform, normalizePlatform, parsePlatform, selectPlatform } from "./platform.js";

const entry = (platform: Descriptor["platform"], digest: string, annotations?: Record<string, string>): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest,
  size: 1,
  ...(platform ? { platform } : {}),
  ...(annotations ? { annotations } : {}),
});

test("normalizePlatform follows containerd's aliases and default variants", () => {
  assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "x86_64" }), { os: "linux", architecture: "amd64", variant: "" });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "amd64", variant: "v1" }), {
    os: "linux",
    architecture: "amd64",
    variant: "",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "aarch64" }), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm64", variant: "8" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm" }), { os: "linux", architecture: "arm", variant: "v7" });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "armel" }), { os: "linux", architecture: "arm", variant: "v6" });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "i686" }), { os: "linux", architecture: "386", variant: "" });
});

test("selectPlatform: first match, attestations and platform-less entries skipped, variants respected", () => {
  const manifests = [
    entry(undefined, "none"),
    entry({ os: "unknown", architecture: "unknown" }, "att1"),
    entry({ os: "linux", architecture: "amd64" }, "att2", { "vnd.docker.reference.type": "attestation-manifest" }),
    entry({ os: "linux", architecture: "arm", variant: "v6" }, "armv6"),
    entry({ os: "linux", architecture: "arm", variant: "v7" }, "armv7"),
    entry({ os: "linux", architecture: "arm64" }, "arm64"),
    entry({ os: "linux", architecture: "amd64", variant: "v3" }, "amd64v3"),
    entry({ os: "linux", architecture: "amd64" }, "amd64"),
    entry({ os: "linux", architecture: "amd64" }, "amd64-second"),
  ];
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "amd64" })?.digest, "amd64");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "x86_64" })?.digest, "amd64");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "amd64", variant: "v3" })?.digest, "amd64v3");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "arm" })?.digest, "armv7");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "arm", variant: "v6" })?.digest, "armv6");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "arm64", variant: "v8" })?.digest, "arm64");
  assert.equal(selectPlatform(manifests, { os: "linux", architecture: "arm", variant: "v5" }), undefined);
  assert.equal(selectPlatform(manifests, { os: "windows", architecture: "amd64" }), undefined);
  // Without an exact variant, another variant of the same architecture is better than nothing.
  assert.equal(
    selectPlatform([entry({ os: "linux", architecture: "amd64", variant: "v2" }, "v2")], { os: "linux", architecture: "amd64" })?.digest,
    "v2",
  );
  assert.deepEqual(availablePlatforms(manifests), [
    "linux/arm/v6",
    "linux/arm/v7",
    "linux/arm64",
    "linux/amd64/v3",
    "linux/amd64",
    "linux/amd64",
  ]);
});

test("nodePlatform, parsePlatform and formatPlatform", () => {
  assert.deepEqual(nodePlatform("linux", "x64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(nodePlatform("linux", "arm", "7"), { os: "linux", architecture: "arm", variant: "v7" });
  assert.deepEqual(nodePlatform("linux", "ia32"), { os: "linux", architecture: "386" });
  assert.equal(nodePlatform().os, process.platform);
  assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  for (const bad of ["linux", "linux/", "/amd64", "a/b/c/d", "linux/arm/"]) assert.equal(parsePlatform(bad), undefined, bad);
  assert.equal(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
});

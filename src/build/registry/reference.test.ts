import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ToolError } from "../../core/tool-error.js";
import { formatReference, isLoopbackRegistry, manifestReference, parseReference, registryApiHost, validateDigest } from "./reference.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ["alpine", "docker.io", "library/alpine", "latest", undefined],
    ["alpine:3.20", "docker.io", "library/alpine", "3.20", undefined],
    ["team/app", "docker.io", "team/app", "latest", undefined],
    ["docker.io/alpine", "docker.io", "library/alpine", "latest", undefined],
    ["index.docker.io/team/app:v1", "docker.io", "team/app", "v1", undefined],
    ["localhost/app", "localhost", "app", "latest", undefined],
    ["localhost:5000/team/model:v1", "localhost:5000", "team/model", "v1", undefined],
    ["127.0.0.1:47301/research/bb:v1", "127.0.0.1:47301", "research/bb", "v1", undefined],
    ["10.1.2.3/a/b/c", "10.1.2.3", "a/b/c", "latest", undefined],
    ["[::1]:5000/app:x", "[::1]:5000", "app", "x", undefined],
    ["ghcr.io/org/repo/sub.name_x__y-z:1.0-rc_1", "ghcr.io", "org/repo/sub.name_x__y-z", "1.0-rc_1", undefined],
    [`ghcr.io/org/app@${DIGEST}`, "ghcr.io", "org/app", undefined, DIGEST],
    [`ghcr.io/org/app:v2@${DIGEST}`, "ghcr.io", "org/app", "v2", DIGEST],
    [`docker://quay.io/x/y:z`, "quay.io", "x/y", "z", undefined],
    ["Registry/app", "Registry", "app", "latest", undefined],
  ];
  for (const [input, registry, repository, tag, digest] of cases) {
    test(input, () => {
      assert.deepEqual(parseReference(input), { registry, repository, tag, digest });
    });
  }

  test("formats back to the canonical text, and manifestReference prefers the digest", () => {
    assert.equal(formatReference(parseReference("alpine")), "docker.io/library/alpine:latest");
    const pinned = parseReference(`localhost:5000/a:v1@${DIGEST}`);
    assert.equal(formatReference(pinned), `localhost:5000/a:v1@${DIGEST}`);
    assert.equal(manifestReference(pinned), DIGEST);
    assert.equal(manifestReference(parseReference("a:v9")), "v9");
  });

  const bad: [string, RegExp][] = [
    ["", /is empty/],
    ["Alpine", /must be lower case/],
    ["docker.io/Team/app", /must be lower case/],
    ["localhost:5000/", /repository name is missing/],
    ["localhost:5000/app:", /tag "" is invalid/],
    ["app:-bad", /tag "-bad" is invalid/],
    [`app:${"x".repeat(129)}`, /tag .* is invalid/],
    ["app@sha256:abc", /sha256 needs 64 lowercase hex digits/],
    [`app@md5:${"a".repeat(32)}x!`, /is not a digest/],
    ["localhost:99999/app", /invalid port "99999"/],
    ["localhost:abc/app", /invalid port/],
    ["bad_host.com/app", /not a valid host name/],
    ["[zz]:5000/app", /IPv6/],
    ["a//b", /empty path component/],
    ["a/b-/c", /path component "b-" is invalid/],
    ["http://localhost:5000/app", /URL scheme/],
    ["my app", /white space/],
    [`r.io/${"a/".repeat(130)}a`, /longer than 255/],
  ];
  for (const [input, message] of bad) {
    test(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}...` : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (error: unknown) => {
          assert.ok(error instanceof ToolError);
          assert.equal(error.id, "CHASSIS_USAGE");
          assert.match(error.message, /^invalid image reference "/);
          assert.match(error.message, message);
          assert.ok(error.hint);
          return true;
        },
      );
    });
  }
});

test("validateDigest accepts sha256/sha512 and names what was wrong", () => {
  assert.equal(validateDigest(DIGEST), DIGEST);
  assert.equal(validateDigest(`sha512:${"b".repeat(128)}`), `sha512:${"b".repeat(128)}`);
  assert.throws(() => validateDigest(`sha256:${"A".repeat(64)}`, "layer digest"), /layer digest "sha256:A+" is not a digest/);
  assert.throws(() => validateDigest("nope"), /expected sha256:<64 hex digits>/);
});

test("API hosts and loopback registries", () => {
  assert.equal(registryApiHost("docker.io"), "registry-1.docker.io");
  assert.equal(registryApiHost("ghcr.io"), "ghcr.io");
  for (const host of ["localhost", "localhost:5000", "127.0.0.1:5000", "127.8.9.1", "[::1]:5000"])
    assert.ok(isLoopbackRegistry(host), host);
  for (const host of ["docker.io", "10.0.0.1:5000", "localhost.example.com", "[fe80::1]:5000"]) assert.ok(!isLoopbackRegistry(host), host);
});

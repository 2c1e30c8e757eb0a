/**
 * The OCI layout store: blobs verified on the way in and out, index.json
 * naming, resolving an image (by name, tag, platform, through a nested
 * index), garbage collection.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { ToolError } from "../../core/tool-error.js";
import { sha256 } from "./digest.js";
import { encodeConfig, encodeIndex, encodeManifest, type ImageConfig, MediaType } from "./documents.js";
import { rfc3339 } from "./epoch.js";
import { Annotation, imageNameAnnotations, OciLayout } from "./layout.js";
import { writeLayer } from "./tar.js";

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), "chassis-oci-layout-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

const fresh = (name: string) => join(work, name);
const isError = (id: string, pattern: RegExp) => (error: unknown) =>
  error instanceof ToolError && error.id === id && pattern.test(error.message);

/** A one-layer image for `architecture`, added to the layout under `reference`. */
async function addImage(layout: OciLayout, reference: string | undefined, architecture = "amd64", content = "hello") {
  const layer = await writeLayer([{ path: "hello.txt", type: "file", data: new TextEncoder().encode(content) }]);
  await layout.writeLayer(layer);
  const config: ImageConfig = {
    created: rfc3339(0),
    architecture,
    os: "linux",
    config: { Entrypoint: ["/hello"] },
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
  };
  const configDescriptor = await layout.writeDocument(encodeConfig(config));
  const manifest = encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDescriptor,
    layers: [layer.descriptor],
  });
  await layout.writeDocument(manifest);
  const entry = await layout.addImage(manifest.descriptor, reference, { architecture, os: "linux" });
  return { layer, config: configDescriptor, manifest: manifest.descriptor, entry };
}

describe("OciLayout", () => {
  test("init writes oci-layout, blobs/sha256 and an empty index; open checks them", async () => {
    const dir = fresh("init");
    await OciLayout.init(dir);
    assert.equal(readFileSync(join(dir, "oci-layout"), "utf8"), '{"imageLayoutVersion":"1.0.0"}');
    assert.equal(
      readFileSync(join(dir, "index.json"), "utf8"),
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
    );
    assert.ok(existsSync(join(dir, "blobs/sha256")));
    await OciLayout.open(dir);
    await OciLayout.init(dir); // idempotent
    await assert.rejects(
      OciLayout.open(fresh("nothing")),
      isError("CHASSIS_IMAGE_INVALID", /is not an OCI image layout: it has no oci-layout file/),
    );
    const wrong = fresh("wrong-version");
    await OciLayout.init(wrong);
    writeFileSync(join(wrong, "oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(OciLayout.open(wrong), isError("CHASSIS_IMAGE_INVALID", /imageLayoutVersion "2.0.0", expected "1.0.0"/));
  });

  test("writeBlob stores bytes, streams and files under their digest, and refuses content that does not match", async () => {
    const layout = await OciLayout.init(fresh("blobs"));
    const bytes = Buffer.from("some blob");
    const digest = sha256(bytes);
    assert.deepEqual(await layout.writeBlob(bytes), { digest, size: bytes.length, created: true });
    assert.deepEqual(await layout.writeBlob(bytes), { digest, size: bytes.length, created: false });
    assert.deepEqual(readFileSync(layout.blobPath(digest)), bytes);
    const streamed = await layout.writeBlob(() => Readable.from([Buffer.from("str"), Buffer.from("eam")]), {
      digest: sha256("stream"),
      size: 6,
    });
    assert.equal(streamed.digest, sha256("stream"));
    await assert.rejects(
      layout.writeBlob(Buffer.from("other"), { digest }),
      isError("CHASSIS_DIGEST_MISMATCH", /hashes to sha256:.*, expected sha256:/),
    );
    await assert.rejects(
      layout.writeBlob(() => Readable.from([Buffer.from("tampered")]), { digest: sha256("original") }),
      isError("CHASSIS_DIGEST_MISMATCH", /expected/),
    );
    assert.deepEqual(
      readdirSync(join(layout.dir, "blobs")).filter((name) => name.startsWith(".tmp-")),
      [],
      "no temp files left behind",
    );
    const temp = join(work, "moved-blob");
    writeFileSync(temp, "moved");
    const moved = await layout.writeBlob({ path: temp, move: true }, { digest: sha256("moved"), size: 5 });
    assert.equal(moved.created, true);
    assert.ok(!existsSync(temp), "the temp file was moved into the layout");
    assert.equal(readFileSync(layout.blobPath(sha256("moved")), "utf8"), "moved");
  });

  test("readBlob and openBlob verify: a tampered blob is a CHASSIS_DIGEST_MISMATCH", async () => {
    const layout = await OciLayout.init(fresh("tamper"));
    const { digest, size } = await layout.writeBlob(Buffer.from("genuine"));
    assert.equal((await layout.readBlob(digest, size)).toString(), "genuine");
    writeFileSync(layout.blobPath(digest), "GENUINE");
    await assert.rejects(layout.readBlob(digest), isError("CHASSIS_DIGEST_MISMATCH", /content hashes to/));
    await assert.rejects(
      async () => {
        for await (const _ of layout.openBlob({ digest, size })) {
          // read it all
        }
      },
      isError("CHASSIS_DIGEST_MISMATCH", /content hashes to/),
    );
    await assert.rejects(layout.readBlob(sha256("absent")), isError("CHASSIS_IMAGE_INVALID", /has no blob/));
  });

  test("addImage names images the way podman and containerd read them, and replaces an image of the same name", async () => {
    const layout = await OciLayout.init(fresh("names"));
    const first = await addImage(layout, "localhost/chassis/digits:1.0", "amd64", "one");
    assert.deepEqual(first.entry.annotations, {
      [Annotation.ContainerdName]: "localhost/chassis/digits:1.0",
      [Annotation.RefName]: "1.0",
    });
    const second = await addImage(layout, "localhost/chassis/digits:1.0", "amd64", "two");
    await addImage(layout, "localhost/chassis/other:2", "amd64", "three");
    const index = await layout.readIndex();
    assert.equal(index.manifests.length, 2);
    assert.equal(index.manifests[0]?.digest, second.manifest.digest, "the newer image replaced the older one of the same name");
    const text = readFileSync(join(layout.dir, "index.json"), "utf8");
    assert.match(
      text,
      /^\{"schemaVersion":2,"mediaType":"application\/vnd\.oci\.image\.index\.v1\+json","manifests":\[\{"mediaType":"application\/vnd\.oci\.image\.manifest\.v1\+json","digest":"sha256:[0-9a-f]{64}","size":\d+,"annotations":\{"io\.containerd\.image\.name":"localhost\/chassis\/digits:1\.0","org\.opencontainers\.image\.ref\.name":"1\.0"\},"platform":\{"architecture":"amd64","os":"linux"\}\},/,
    );
  });

  test("imageNameAnnotations: tag defaults to latest, ports are not tags, digests have no ref.name", () => {
    assert.deepEqual(imageNameAnnotations("localhost:5000/a/b"), {
      [Annotation.ContainerdName]: "localhost:5000/a/b:latest",
      [Annotation.RefName]: "latest",
    });
    assert.deepEqual(imageNameAnnotations(`registry.example/x@${sha256("m")}`), {
      [Annotation.ContainerdName]: `registry.example/x@${sha256("m")}`,
    });
    assert.deepEqual(imageNameAnnotations(`r/x:7@${sha256("m")}`), {
      [Annotation.ContainerdName]: `r/x:7@${sha256("m")}`,
      [Annotation.RefName]: "7",
    });
    assert.throws(() => imageNameAnnotations("has space"), isError("CHASSIS_USAGE", /not an image reference/));
  });

  test("resolve: by full name or tag, the only image by default, a nested index by platform; errors list what there is", async () => {
    const layout = await OciLayout.init(fresh("resolve"));
    const amd = await addImage(layout, "localhost/app:amd", "amd64", "amd");
    const arm = await addImage(layout, "localhost/app:arm", "arm64", "arm");
    assert.equal((await layout.resolve({ ref: "localhost/app:amd" })).descriptor.digest, amd.manifest.digest);
    assert.equal((await layout.resolve({ ref: "arm" })).descriptor.digest, arm.manifest.digest);
    assert.equal((await layout.resolve({ platform: { os: "linux", architecture: "arm64" } })).descriptor.digest, arm.manifest.digest);
    await assert.rejects(
      layout.resolve(),
      isError("CHASSIS_IMAGE_INVALID", /has 2 images; choose one by name: localhost\/app:amd, localhost\/app:arm/),
    );
    await assert.rejects(
      layout.resolve({ ref: "nope" }),
      isError("CHASSIS_IMAGE_INVALID", /no image named "nope" \(it has localhost\/app:amd, localhost\/app:arm\)/),
    );
    await assert.rejects(
      layout.resolve({ ref: "amd", platform: { os: "linux", architecture: "arm64" } }),
      isError("CHASSIS_PLATFORM_NOT_FOUND", /is linux\/amd64, not linux\/arm64/),
    );

    // A nested index (index.json -> image index -> two manifests): one entry, resolved by platform.
    const nested = encodeIndex({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...amd.manifest, platform: { architecture: "amd64", os: "linux" } },
        { ...arm.manifest, platform: { architecture: "arm64", os: "linux", variant: "v8" } },
      ],
    });
    await layout.writeDocument(nested);
    await layout.writeIndex([{ ...nested.descriptor, annotations: imageNameAnnotations("localhost/app:multi") }]);
    const picked = await layout.resolve({ platform: { os: "linux", architecture: "aarch64" } });
    assert.equal(picked.descriptor.digest, arm.manifest.digest);
    assert.equal(picked.indexEntry.digest, nested.descriptor.digest);
    assert.equal(picked.config.architecture, "arm64");
    assert.equal(sha256(picked.manifestBytes), arm.manifest.digest, "the manifest's own bytes are kept");
    assert.equal(sha256(picked.configBytes), arm.config.digest);
    await assert.rejects(
      layout.resolve({ platform: { os: "linux", architecture: "riscv64" } }),
      isError("CHASSIS_PLATFORM_NOT_FOUND", /no manifest for linux\/riscv64/),
    );
  });

  test("reachable lists every blob of the images; garbageCollect removes the rest; a missing layer is reported", async () => {
    const layout = await OciLayout.init(fresh("gc"));
    const image = await addImage(layout, "localhost/app:1");
    const stray = await layout.writeBlob(Buffer.from("stray"));
    const reachable = await layout.reachable((await layout.readIndex()).manifests);
    assert.deepEqual(new Set(reachable.map((d) => d.digest)), new Set([image.manifest.digest, image.config.digest, image.layer.digest]));
    assert.deepEqual(await layout.garbageCollect(), [stray.digest]);
    assert.ok(!(await layout.hasBlob(stray.digest)));
    rmSync(layout.blobPath(image.layer.digest));
    await assert.rejects(
      layout.reachable((await layout.readIndex()).manifests),
      isError("CHASSIS_IMAGE_INVALID", /missing layer blob sha256:/),
    );
    assert.equal((await layout.reachable((await layout.readIndex()).manifests, true)).length, 2);
  });
});

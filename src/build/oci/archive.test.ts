/**
 * Archives of a tiny image (one layer holding a static file, no shell):
 * structure of the layout, the oci-archive and the dual docker-archive,
 * determinism, what skopeo makes of them, and reading archives back
 * (ours, gzipped, legacy docker-archives, skopeo's) as a base.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { ToolError } from "../../core/tool-error.js";
import { readArchive, writeDockerArchive, writeOciArchive } from "./archive.js";
import { digestHex, sha256 } from "./digest.js";
import { encodeConfig, encodeIndex, encodeManifest, type ImageConfig, MediaType } from "./documents.js";
import { rfc3339 } from "./epoch.js";
import { Annotation, imageNameAnnotations, OciLayout } from "./layout.js";
import { tarBuffer, writeLayer } from "./tar.js";
import { readTar } from "./tar-reader.js";

const REF = "localhost/chassis-test/tiny:1.0";
let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), "chassis-oci-archive-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

const isError = (id: string, pattern: RegExp) => (error: unknown) =>
  error instanceof ToolError && error.id === id && pattern.test(error.message);

function haveSkopeo(): boolean {
  return spawnSync("skopeo", ["--version"]).status === 0;
}
/** skopeo checks run when skopeo is installed; under CI=true its absence is a failure, elsewhere a skip. */
function skopeoOrSkip(t: { skip(message: string): void }): boolean {
  if (haveSkopeo()) return true;
  if (process.env.CI === "true") assert.fail("skopeo is not installed (apt-get install -y skopeo); CI must run the skopeo checks");
  t.skip("skopeo is not installed");
  return false;
}
function skopeo(...args: string[]): string {
  return execFileSync("skopeo", args, { encoding: "utf8" });
}

interface Tiny {
  layout: OciLayout;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  diffId: string;
}

/** The tiny image: one gzip layer with a static file, a config with labels, an annotated OCI manifest. */
async function buildTiny(dir: string, options: { sourceDateEpoch?: string } = {}): Promise<Tiny> {
  const layout = await OciLayout.init(dir);
  const layer = await writeLayer(
    [
      { path: "/hello", type: "file", data: new TextEncoder().encode("a static file, no shell\n"), mode: 0o755 },
      { path: "/app", type: "dir", uid: 1000, gid: 1000 },
    ],
    options,
  );
  await layout.writeLayer(layer);
  const created = rfc3339(Number(options.sourceDateEpoch ?? 0));
  const config: ImageConfig = {
    created,
    architecture: "amd64",
    os: "linux",
    config: {
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
      Entrypoint: ["/hello"],
      WorkingDir: "/app",
      User: "1000:1000",
      ExposedPorts: { "8080/tcp": {} },
      Labels: { "org.opencontainers.image.title": "tiny", "ml.openmodel.port": "45000" },
      StopSignal: "SIGTERM",
    },
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created, created_by: "archive.test.ts", comment: "static file" }],
  };
  const configDescriptor = await layout.writeDocument(encodeConfig(config));
  const manifest = encodeManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDescriptor,
    layers: [layer.descriptor],
    annotations: { [Annotation.Created]: created, [Annotation.Title]: "tiny" },
  });
  await layout.writeDocument(manifest);
  await layout.addImage(manifest.descriptor, REF, { architecture: "amd64", os: "linux" });
  return {
    layout,
    manifestDigest: manifest.descriptor.digest,
    configDigest: configDescriptor.digest,
    layerDigest: layer.digest,
    diffId: layer.diffId,
  };
}

async function listTar(
  file: string,
): Promise<Array<{ name: string; mode: number; mtime: number; uid: number; size: number; sha?: string }>> {
  const out: Array<{ name: string; mode: number; mtime: number; uid: number; size: number; sha?: string }> = [];
  for await (const entry of readTar(Readable.from([readFileSync(file)]))) {
    const item = { name: entry.name, mode: entry.mode, mtime: entry.mtime, uid: entry.uid, size: entry.size };
    out.push(entry.type === "file" ? { ...item, sha: sha256(await entry.bytes()) } : item);
  }
  return out;
}

describe("writing archives", () => {
  let tiny: Tiny;
  before(async () => {
    tiny = await buildTiny(join(work, "tiny"));
  });

  test("the layout: oci-layout, index.json naming the image, blobs under their digests", async () => {
    const index = JSON.parse(readFileSync(join(tiny.layout.dir, "index.json"), "utf8"));
    assert.deepEqual(index.manifests[0].annotations, { [Annotation.ContainerdName]: REF, [Annotation.RefName]: "1.0" });
    assert.equal(index.manifests[0].digest, tiny.manifestDigest);
    for (const digest of [tiny.manifestDigest, tiny.configDigest, tiny.layerDigest]) {
      assert.equal(sha256(readFileSync(join(tiny.layout.dir, "blobs/sha256", digest.slice(7)))), digest);
    }
  });

  test("oci-archive: the layout in a sorted tar, fixed mtime, owner 0, 0644 files; GNU tar and Python agree", async () => {
    const file = join(work, "tiny-oci.tar");
    const result = await writeOciArchive(tiny.layout, file);
    assert.equal(result.digest, sha256(readFileSync(file)));
    const entries = await listTar(file);
    assert.deepEqual(
      entries.map((e) => e.name),
      [
        "blobs/",
        "blobs/sha256/",
        ...[tiny.configDigest, tiny.layerDigest, tiny.manifestDigest].map((d) => `blobs/sha256/${d.slice(7)}`).sort(),
        "index.json",
        "oci-layout",
      ],
    );
    assert.ok(entries.every((e) => e.mtime === 1 && e.uid === 0));
    assert.ok(entries.every((e) => e.mode === (e.name.endsWith("/") ? 0o755 : 0o644)));
    for (const entry of entries.filter((e) => e.name.startsWith("blobs/sha256/") && !e.name.endsWith("/"))) {
      assert.equal(entry.sha, `sha256:${entry.name.slice("blobs/sha256/".length)}`, "each blob hashes to its name");
    }
    assert.equal(entries.find((e) => e.name === "oci-layout")?.sha, sha256('{"imageLayoutVersion":"1.0.0"}'));
    assert.equal(entries.find((e) => e.name === "index.json")?.sha, sha256(readFileSync(join(tiny.layout.dir, "index.json"))));
    const gnu = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(
      gnu,
      entries.map((e) => e.name),
    );
    const py = execFileSync(
      "/usr/bin/python3",
      ["-c", "import sys,tarfile; print(' '.join(m.name for m in tarfile.open(sys.argv[1])))", file],
      { encoding: "utf8" },
    );
    assert.equal(py.trim(), entries.map((e) => e.name.replace(/\/$/, "")).join(" "));
  });

  test("dual docker-archive: the OCI layout plus manifest.json pointing into blobs/sha256", async () => {
    const file = join(work, "tiny-docker.tar");
    await writeDockerArchive(tiny.layout, file);
    const names = (await listTar(file)).map((e) => e.name);
    assert.deepEqual(names.slice(-3), ["index.json", "manifest.json", "oci-layout"]);
    const extracted = join(work, "tiny-docker-x");
    execFileSync("mkdir", ["-p", extracted]);
    execFileSync("tar", ["-xf", file, "-C", extracted]);
    assert.equal(
      readFileSync(join(extracted, "manifest.json"), "utf8"),
      `[{"Config":"blobs/sha256/${digestHex(tiny.configDigest as `sha256:${string}`)}","RepoTags":["${REF}"],"Layers":["blobs/sha256/${digestHex(tiny.layerDigest as `sha256:${string}`)}"]}]`,
    );
    assert.equal(readFileSync(join(extracted, "index.json"), "utf8"), readFileSync(join(tiny.layout.dir, "index.json"), "utf8"));
    const overridden = await writeDockerArchive(tiny.layout, new PassThrough().resume(), { repoTags: ["docker.io/library/tiny:2"] });
    assert.ok(overridden.size > 0);
  });

  test("deterministic: the same image built twice gives cmp-identical archives; SOURCE_DATE_EPOCH changes them", async () => {
    const again = await buildTiny(join(work, "tiny-again"));
    assert.equal(again.manifestDigest, tiny.manifestDigest);
    const a = await writeDockerArchive(tiny.layout, join(work, "det-a.tar"));
    const b = await writeDockerArchive(again.layout, join(work, "det-b.tar"));
    assert.equal(a.digest, b.digest);
    assert.equal(spawnSync("cmp", [join(work, "det-a.tar"), join(work, "det-b.tar")]).status, 0, "cmp finds no difference");
    const oa = await writeOciArchive(tiny.layout, join(work, "det-oa.tar"));
    const ob = await writeOciArchive(again.layout, join(work, "det-ob.tar"));
    assert.equal(oa.digest, ob.digest);
    // A stream destination gets the same bytes as a file.
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on("data", (chunk: Buffer) => chunks.push(chunk));
    await writeOciArchive(tiny.layout, sink);
    assert.equal(sha256(Buffer.concat(chunks)), oa.digest);

    const epoch = await buildTiny(join(work, "tiny-epoch"), { sourceDateEpoch: "1700000000" });
    assert.notEqual(epoch.manifestDigest, tiny.manifestDigest, "layer mtimes and created changed");
    const c = await writeOciArchive(epoch.layout, join(work, "det-c.tar"), { sourceDateEpoch: "1700000000" });
    assert.notEqual(c.digest, oa.digest);
    assert.ok((await listTar(join(work, "det-c.tar"))).every((e) => e.mtime === 1_700_000_000));
    console.log(`# tiny image manifest ${tiny.manifestDigest}; oci-archive ${oa.digest}; dual archive ${a.digest} (both builds)`);
  });

  test("skopeo inspects the layout, the oci-archive and the docker-archive", async (t) => {
    if (!skopeoOrSkip(t)) return;
    const oci = join(work, "sk-oci.tar");
    const dual = join(work, "sk-docker.tar");
    await writeOciArchive(tiny.layout, oci);
    await writeDockerArchive(tiny.layout, dual);
    for (const source of [`oci:${tiny.layout.dir}:1.0`, `oci-archive:${oci}`, `oci-archive:${dual}`]) {
      const info = JSON.parse(skopeo("inspect", source));
      assert.equal(info.Digest, tiny.manifestDigest, source);
      assert.equal(info.Architecture, "amd64");
      assert.equal(info.Os, "linux");
      assert.deepEqual(info.Layers, [tiny.layerDigest]);
      assert.deepEqual(info.Labels, { "ml.openmodel.port": "45000", "org.opencontainers.image.title": "tiny" });
      assert.equal(sha256(skopeo("inspect", "--raw", source)), tiny.manifestDigest, "skopeo reads our exact manifest bytes");
      assert.equal(sha256(skopeo("inspect", "--config", "--raw", source)), tiny.configDigest);
    }
    // docker-archive: skopeo reads manifest.json (the legacy half) and reports layers by diff_id.
    const docker = JSON.parse(skopeo("inspect", `docker-archive:${dual}`));
    assert.deepEqual(docker.Layers, [tiny.diffId]);
    assert.equal(docker.Architecture, "amd64");
    assert.deepEqual(docker.Labels, { "ml.openmodel.port": "45000", "org.opencontainers.image.title": "tiny" });
    assert.equal(sha256(skopeo("inspect", "--config", "--raw", `docker-archive:${dual}`)), tiny.configDigest);
    // And copies it (checking the layer against its diff_id on the way).
    const copy = join(work, "sk-copy");
    skopeo("copy", "-q", `docker-archive:${dual}`, `oci:${copy}:copied`);
    assert.equal(JSON.parse(skopeo("inspect", "--config", "--raw", `oci:${copy}:copied`)).rootfs.diff_ids[0], tiny.diffId);
  });

  test("refusals: no image selected, a multi-platform index in a docker-archive, layers and diff_ids that disagree", async () => {
    await assert.rejects(
      writeOciArchive(tiny.layout, join(work, "none.tar"), { select: () => false }),
      isError("CHASSIS_IMAGE_INVALID", /no image to archive/),
    );
    const multi = await OciLayout.init(join(work, "multi"));
    const inner = await buildTiny(join(work, "multi-src"));
    for (const digest of [inner.layerDigest, inner.configDigest, inner.manifestDigest]) {
      await multi.writeBlob(readFileSync(inner.layout.blobPath(digest as `sha256:${string}`)));
    }
    const manifest = (await inner.layout.readIndex()).manifests[0];
    assert.ok(manifest);
    const nested = encodeIndex({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...manifest, annotations: undefined }] });
    await multi.writeDocument(nested);
    await multi.writeIndex([{ ...nested.descriptor, annotations: imageNameAnnotations(REF) }]);
    await assert.rejects(writeDockerArchive(multi, join(work, "multi.tar")), isError("CHASSIS_IMAGE_INVALID", /multi-platform index/));
    await writeOciArchive(multi, join(work, "multi-oci.tar")); // fine as an oci-archive

    const broken = await OciLayout.init(join(work, "broken"));
    const config = await broken.writeDocument(
      encodeConfig({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
    );
    const layer = await broken.writeLayer(await writeLayer([{ path: "x", type: "file" }]));
    const bad = encodeManifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] });
    await broken.writeDocument(bad);
    await broken.addImage(bad.descriptor, REF);
    await assert.rejects(writeDockerArchive(broken, join(work, "broken.tar")), isError("CHASSIS_IMAGE_INVALID", /1 layers but 0 diff_ids/));
  });
});

describe("reading archives as a base", () => {
  let tiny: Tiny;
  before(async () => {
    tiny = await buildTiny(join(work, "read-src"));
  });

  test("an oci-archive and a dual archive (also gzipped) unpack into a layout that resolves to the same image", async () => {
    const oci = join(work, "r-oci.tar");
    const dual = join(work, "r-dual.tar");
    await writeOciArchive(tiny.layout, oci);
    await writeDockerArchive(tiny.layout, dual);
    writeFileSync(join(work, "r-dual.tar.gz"), gzipSync(readFileSync(dual)));
    for (const [file, format] of [
      [oci, "oci"],
      [dual, "dual"],
      [join(work, "r-dual.tar.gz"), "dual"],
    ] as const) {
      const target = mkdtempSync(join(work, "r-into-"));
      const result = await readArchive(file, target);
      assert.equal(result.format, format, file);
      assert.deepEqual(
        result.images.map((d) => d.digest),
        [tiny.manifestDigest],
      );
      const image = await result.layout.resolve({ ref: REF });
      assert.equal(image.descriptor.digest, tiny.manifestDigest);
      assert.deepEqual(image.config.rootfs.diff_ids, [tiny.diffId]);
      assert.ok(await result.layout.hasBlob(tiny.layerDigest as `sha256:${string}`));
    }
  });

  test("a legacy docker-archive (<hex>.json config, <id>/layer.tar, a symlinked layer, repositories) becomes an OCI image", async () => {
    const layerA = await tarBuffer([{ path: "a.txt", type: "file", data: Buffer.from("A") }]);
    const layerB = gzipSync(await tarBuffer([{ path: "b.txt", type: "file", data: Buffer.from("B") }]));
    const diffB = sha256(await tarBuffer([{ path: "b.txt", type: "file", data: Buffer.from("B") }]));
    const config = encodeConfig({
      architecture: "arm64",
      variant: "v8",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [sha256(layerA), diffB, sha256(layerA)] },
    }).bytes;
    const configName = `${sha256(config).slice(7)}.json`;
    const archive = await tarBuffer([
      { path: configName, type: "file", data: config },
      { path: "0001/layer.tar", type: "file", data: layerA },
      { path: "0001/json", type: "file", data: Buffer.from("{}") },
      { path: "0001/VERSION", type: "file", data: Buffer.from("1.0") },
      { path: "0002/layer.tar", type: "file", data: layerB },
      { path: "0003/layer.tar", type: "symlink", linkname: "../0001/layer.tar" },
      { path: "repositories", type: "file", data: Buffer.from('{"localhost/legacy":{"v1":"0003"}}') },
      {
        path: "manifest.json",
        type: "file",
        data: Buffer.from(
          JSON.stringify([
            { Config: configName, RepoTags: ["localhost/legacy:v1"], Layers: ["0001/layer.tar", "0002/layer.tar", "0003/layer.tar"] },
          ]),
        ),
      },
    ]);
    const file = join(work, "legacy.tar");
    writeFileSync(file, archive);
    const result = await readArchive(file, join(work, "legacy-layout"));
    assert.equal(result.format, "docker");
    assert.deepEqual(result.images[0]?.annotations, { [Annotation.ContainerdName]: "localhost/legacy:v1", [Annotation.RefName]: "v1" });
    assert.deepEqual(result.images[0]?.platform, { architecture: "arm64", os: "linux", variant: "v8" });
    const image = await result.layout.resolve({ ref: "localhost/legacy:v1", platform: { os: "linux", architecture: "arm64" } });
    assert.equal(image.manifest.mediaType, MediaType.OciManifest);
    assert.deepEqual(
      image.manifest.layers.map((l) => [l.mediaType, l.digest]),
      [
        [MediaType.OciLayer, sha256(layerA)],
        [MediaType.OciLayerGzip, sha256(layerB)],
        [MediaType.OciLayer, sha256(layerA)],
      ],
    );
    assert.equal(sha256(image.configBytes), sha256(config), "the config is kept byte for byte (same image id)");
    assert.ok(!(await result.layout.hasBlob(sha256("{}"))), "unused legacy files are not kept");
    assert.ok(!(await result.layout.hasBlob(sha256("1.0"))));
  });

  test("a docker-archive written by skopeo reads back as the same config and layers", async (t) => {
    if (!skopeoOrSkip(t)) return;
    const oci = join(work, "sk-src.tar");
    await writeOciArchive(tiny.layout, oci);
    const legacy = join(work, "sk-legacy.tar");
    skopeo("copy", "-q", `oci-archive:${oci}`, `docker-archive:${legacy}:localhost/from-skopeo:1`);
    const result = await readArchive(legacy, join(work, "sk-legacy-layout"));
    assert.equal(result.format, "docker");
    const image = await result.layout.resolve();
    assert.equal(image.indexEntry.annotations?.[Annotation.ContainerdName], "localhost/from-skopeo:1");
    assert.deepEqual(image.config.rootfs.diff_ids, [tiny.diffId]);
    assert.equal(image.config.config?.Entrypoint?.[0], "/hello");
  });

  test("corrupt or foreign archives are refused with the reason", async () => {
    const hex = "0".repeat(64);
    const lying = await tarBuffer([
      { path: "oci-layout", type: "file", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { path: "index.json", type: "file", data: Buffer.from('{"schemaVersion":2,"manifests":[]}') },
      { path: `blobs/sha256/${hex}`, type: "file", data: Buffer.from("not what the name says") },
    ]);
    writeFileSync(join(work, "lying.tar"), lying);
    await assert.rejects(
      readArchive(join(work, "lying.tar"), join(work, "lying")),
      isError("CHASSIS_DIGEST_MISMATCH", /expected sha256:0{64}/),
    );

    const missing = await tarBuffer([
      { path: "oci-layout", type: "file", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      {
        path: "index.json",
        type: "file",
        data: Buffer.from(`{"schemaVersion":2,"manifests":[{"mediaType":"${MediaType.OciManifest}","digest":"sha256:${hex}","size":2}]}`),
      },
    ]);
    writeFileSync(join(work, "missing.tar"), missing);
    await assert.rejects(
      readArchive(join(work, "missing.tar"), join(work, "missing")),
      isError("CHASSIS_IMAGE_INVALID", /has no blob sha256:0{64}/),
    );

    writeFileSync(join(work, "plain.tar"), await tarBuffer([{ path: "README", type: "file", data: Buffer.from("hi") }]));
    await assert.rejects(
      readArchive(join(work, "plain.tar"), join(work, "plain")),
      isError("CHASSIS_IMAGE_INVALID", /is not an image archive/),
    );
    writeFileSync(join(work, "garbage.tar"), Buffer.alloc(1024, 0x41));
    await assert.rejects(readArchive(join(work, "garbage.tar"), join(work, "garbage")), isError("CHASSIS_IMAGE_INVALID", /checksum/));
    await assert.rejects(readArchive(join(work, "absent.tar"), join(work, "absent")), isError("CHASSIS_IMAGE_INVALID", /no such file/));
  });
});

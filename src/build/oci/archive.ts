/**
 * @module build/oci/archive
 * Image archives (oci-build.md section 2): writers for
 *
 * - `oci-archive`: a tar of an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/*`);
 * - the "dual" `docker-archive` that `docker save` writes since Docker 25:
 *   the same OCI layout plus a legacy `manifest.json` whose `Config` and
 *   `Layers` point into `blobs/sha256/<hex>`. Legacy Docker reads
 *   manifest.json, containerd and podman read index.json, so `docker load`
 *   and `podman load` both accept it. One platform per image.
 *
 * Both are deterministic (the tar writer's rules: sorted names, fixed mtime,
 * owner 0, modes 0644/0755) and stream blobs from the layout into the tar,
 * so archives of any size are written without holding blobs in memory.
 *
 * And a reader, `readArchive`, that unpacks an oci-archive, a dual archive or
 * a legacy docker-archive (`<hex>.json` configs, `<hex>.tar.gz` or
 * `<id>/layer.tar` layers, symlinked duplicate layers), gzipped or not, into a
 * layout, so any of them can serve as a base.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { ToolError } from "../../core/tool-error.js";
import type { Descriptor, Platform } from "./descriptor.js";
import { type Digest, DigestStream, digestHex } from "./digest.js";
import { encodeIndex, encodeManifest, type ImageManifest, isIndexMediaType, MediaType, parseConfig, parseIndex } from "./documents.js";
import { jsonArray, jsonObject, jsonString, jsonStrings } from "./json.js";
import { Annotation, OCI_LAYOUT_BYTES, OCI_LAYOUT_FILE, OciLayout } from "./layout.js";
import { resolveMtime, type TarEntry, type TarOptions, tarStream } from "./tar.js";
import { readTar } from "./tar-reader.js";

export interface ArchiveOptions extends Pick<TarOptions, "mtime" | "sourceDateEpoch"> {
  /** Which index.json entries go in. @default all of them (podman loads only archives with one) */
  select?: (entry: Descriptor) => boolean;
  signal?: AbortSignal;
}

export interface DockerArchiveOptions extends ArchiveOptions {
  /**
   * RepoTags of the manifest.json entry, for an archive of one image.
   * @default the entry's io.containerd.image.name, if any
   */
  repoTags?: string[];
}

export interface ArchiveResult {
  /** sha256 of the archive file itself: equal across runs for equal inputs. */
  readonly digest: Digest;
  readonly size: number;
  /** The index.json entries written. */
  readonly images: readonly Descriptor[];
}

/** The tar entries of a layout holding the selected images and every blob they reach. */
async function layoutEntries(layout: OciLayout, options: ArchiveOptions): Promise<{ entries: TarEntry[]; selected: Descriptor[] }> {
  const index = await layout.readIndex();
  const selected = options.select ? index.manifests.filter(options.select) : index.manifests;
  if (selected.length === 0)
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `layout ${layout.dir} has no image to archive (index.json lists ${index.manifests.length}, none selected)`,
    );
  const blobs = await layout.reachable(selected);
  const entries: TarEntry[] = [
    { path: OCI_LAYOUT_FILE, type: "file", data: OCI_LAYOUT_BYTES },
    { path: "index.json", type: "file", data: encodeIndex({ ...index, manifests: selected }).bytes },
  ];
  for (const blob of blobs) {
    const path = layout.blobPath(blob.digest);
    const size = (await stat(path)).size;
    if (size !== blob.size)
      throw new ToolError(
        "CHASSIS_DIGEST_MISMATCH",
        `blob ${blob.digest} in ${layout.dir} is ${size} bytes, its descriptor says ${blob.size}`,
      );
    entries.push({ path: `blobs/sha256/${digestHex(blob.digest)}`, type: "file", size, data: () => layout.openBlob(blob) });
  }
  return { entries, selected };
}

/** The legacy manifest.json (`[{"Config":…,"RepoTags":[…],"Layers":[…]}]`, keys in Docker's order). */
async function dockerManifestJson(layout: OciLayout, selected: readonly Descriptor[], repoTags: string[] | undefined): Promise<Buffer> {
  if (repoTags !== undefined && selected.length !== 1)
    throw new ToolError("CHASSIS_USAGE", "repoTags can only be given for an archive of one image");
  const items: string[] = [];
  for (const entry of selected) {
    if (isIndexMediaType(entry.mediaType)) {
      throw new ToolError(
        "CHASSIS_IMAGE_INVALID",
        `docker-archive holds single-platform images; index.json entry ${entry.digest} is a multi-platform index (choose one platform, or write an oci-archive)`,
      );
    }
    const document = await layout.readDocument(entry);
    if (document.kind !== "manifest") throw new ToolError("CHASSIS_IMAGE_INVALID", `${entry.digest} is not an image manifest`);
    const manifest = document.manifest;
    const config = parseConfig(await layout.readBlob(manifest.config.digest, manifest.config.size), `config ${manifest.config.digest}`);
    // moby's loader fails with "layers length mismatch" otherwise.
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new ToolError(
        "CHASSIS_IMAGE_INVALID",
        `image ${entry.digest}: ${manifest.layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in its config; docker load would refuse it`,
      );
    }
    const name = entry.annotations?.[Annotation.ContainerdName];
    const tags = repoTags ?? (name ? [name] : []);
    items.push(
      jsonObject([
        ["Config", jsonString(`blobs/sha256/${digestHex(manifest.config.digest)}`)],
        ["RepoTags", jsonStrings(tags)],
        ["Layers", jsonArray(manifest.layers, (layer) => jsonString(`blobs/sha256/${digestHex(layer.digest)}`))],
      ]),
    );
  }
  return Buffer.from(`[${items.join(",")}]`, "utf8");
}

async function writeArchive(
  entries: TarEntry[],
  options: ArchiveOptions,
  destination: string | Writable,
  selected: Descriptor[],
): Promise<ArchiveResult> {
  const tar = tarStream(entries, { mtime: resolveMtime(options) });
  const digest = new DigestStream();
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  if (typeof destination !== "string") {
    await pipeline(tar, digest, destination, pipelineOptions);
    return { digest: digest.digest, size: digest.size, images: selected };
  }
  // Written beside the destination, renamed when complete: a reader never sees half an archive.
  const temp = join(dirname(destination), `.${posix.basename(destination)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await pipeline(tar, digest, createWriteStream(temp, { flags: "wx", mode: 0o644 }), pipelineOptions);
    await rename(temp, destination);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return { digest: digest.digest, size: digest.size, images: selected };
}

/** Writes an oci-archive (a tar of the layout's selected images) to a file path or a stream. */
export async function writeOciArchive(
  layout: OciLayout,
  destination: string | Writable,
  options: ArchiveOptions = {},
): Promise<ArchiveResult> {
  const { entries, selected } = await layoutEntries(layout, options);
  return writeArchive(entries, options, destination, selected);
}

/**
 * Writes the dual docker-archive: the oci-archive's contents plus
 * manifest.json. RepoTags come from each entry's io.containerd.image.name
 * (set by OciLayout.addImage), or `repoTags`.
 */
export async function writeDockerArchive(
  layout: OciLayout,
  destination: string | Writable,
  options: DockerArchiveOptions = {},
): Promise<ArchiveResult> {
  const { entries, selected } = await layoutEntries(layout, options);
  entries.push({ path: "manifest.json", type: "file", data: await dockerManifestJson(layout, selected, options.repoTags) });
  return writeArchive(entries, options, destination, selected);
}

// Reading.

export interface ReadArchiveResult {
  readonly layout: OciLayout;
  /** "oci": oci-layout + index.json; "dual": those and manifest.json; "docker": manifest.json only (converted to OCI manifests). */
  readonly format: "oci" | "dual" | "docker";
  /** The index.json entries added to the layout, one per image. */
  readonly images: readonly Descriptor[];
}

/** The small metadata files of an archive, read into memory; everything else is a blob. */
const METADATA = new Set(["oci-layout", "index.json", "manifest.json", "repositories"]);
const MAX_METADATA = 16 << 20;

function archiveName(name: string): string {
  return posix.normalize(name.replace(/^(\.\/|\/)+/, "")).replace(/\/$/, "");
}

/** Sniffs a layer blob's compression from its first bytes: gzip (1f 8b), zstd (28 b5 2f fd) or a plain tar. */
async function sniffLayerMediaType(layout: OciLayout, digest: Digest): Promise<string> {
  const handle = await open(layout.blobPath(digest), "r");
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.OciLayerGzip;
    if (head.readUInt32BE(0) === 0x28b52ffd) return MediaType.OciLayerZstd;
    return MediaType.OciLayer;
  } finally {
    await handle.close();
  }
}

/** The input, un-gzipped if the whole archive is gzipped (`docker save | gzip`). */
async function openArchive(path: string): Promise<Readable> {
  const handle = await open(path, "r").catch((error: NodeJS.ErrnoException) => {
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `cannot open archive ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
      { cause: error },
    );
  });
  const head = Buffer.alloc(2);
  await handle.read(head, 0, 2, 0);
  await handle.close();
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  if (head[0] !== 0x1f || head[1] !== 0x8b) return file;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  pipeline(file, createGunzip(), out).catch((error: unknown) => out.destroy(error as Error));
  return out;
}

/**
 * Unpacks an image archive (oci-archive, dual or legacy docker-archive,
 * optionally gzipped) into a layout (created if needed): blobs are verified
 * against their names as they stream in, and the archive's images are added
 * to the layout's index.json. A legacy docker-archive's images become OCI
 * manifests (layer media types sniffed from the blobs; configs kept byte for
 * byte, so image ids do not change).
 */
export async function readArchive(path: string, into: string | OciLayout): Promise<ReadArchiveResult> {
  const layout = typeof into === "string" ? await OciLayout.init(into) : into;
  const metadata = new Map<string, Buffer>();
  /** Archive file name -> the blob stored from it. */
  const files = new Map<string, { digest: Digest; size: number }>();
  /** Archive name -> the name it links to (symlinks resolved against the link's folder; hardlinks as named). */
  const links = new Map<string, string>();
  const added = new Set<Digest>();

  for await (const entry of readTar(await openArchive(path))) {
    const name = archiveName(entry.name);
    if (entry.type === "symlink") links.set(name, posix.normalize(posix.join(posix.dirname(name), entry.linkname)));
    if (entry.type === "hardlink") links.set(name, archiveName(entry.linkname));
    if (entry.type !== "file") continue;
    if (METADATA.has(name)) {
      if (entry.size > MAX_METADATA)
        throw new ToolError("CHASSIS_IMAGE_INVALID", `archive ${path}: ${name} is ${entry.size} bytes, too large for a metadata file`);
      metadata.set(name, await entry.bytes());
      continue;
    }
    const blobName = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    const expected = blobName ? { digest: `sha256:${blobName[1]}` as Digest, size: entry.size } : undefined;
    const stored = await layout.writeBlob(() => entry.body(), expected);
    if (stored.created) added.add(stored.digest);
    files.set(name, { digest: stored.digest, size: stored.size });
  }

  const resolveFile = (name: string, what: string): { digest: Digest; size: number } => {
    let current = archiveName(name);
    for (let hops = 0; hops < 16; hops++) {
      const file = files.get(current);
      if (file) return file;
      const next = links.get(current);
      if (next === undefined) break;
      current = next;
    }
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `archive ${path}: manifest.json names ${what} ${JSON.stringify(name)}, which the archive does not contain`,
    );
  };

  const layoutFile = metadata.get("oci-layout");
  const indexFile = metadata.get("index.json");
  const manifestFile = metadata.get("manifest.json");
  let format: ReadArchiveResult["format"];
  const images: Descriptor[] = [];

  if (layoutFile && indexFile) {
    format = manifestFile ? "dual" : "oci";
    const parsed = JSON.parse(layoutFile.toString("utf8")) as { imageLayoutVersion?: unknown };
    if (parsed.imageLayoutVersion !== "1.0.0") {
      throw new ToolError(
        "CHASSIS_IMAGE_INVALID",
        `archive ${path}: oci-layout says imageLayoutVersion ${JSON.stringify(parsed.imageLayoutVersion)}, expected "1.0.0"`,
      );
    }
    const index = parseIndex(indexFile, `${path}: index.json`);
    await layout.reachable(index.manifests); // every blob present and well-formed
    const current = await layout.readIndex();
    const names = new Set(index.manifests.map((entry) => entry.annotations?.[Annotation.ContainerdName]).filter(Boolean));
    const kept = current.manifests.filter((entry) => !names.has(entry.annotations?.[Annotation.ContainerdName]));
    await layout.writeIndex([...kept, ...index.manifests], current.annotations);
    images.push(...index.manifests);
  } else if (manifestFile) {
    format = "docker";
    let items: unknown;
    try {
      items = JSON.parse(manifestFile.toString("utf8"));
    } catch (error) {
      throw new ToolError("CHASSIS_IMAGE_INVALID", `archive ${path}: manifest.json is not JSON`, { cause: error });
    }
    if (!Array.isArray(items) || items.length === 0)
      throw new ToolError("CHASSIS_IMAGE_INVALID", `archive ${path}: manifest.json lists no images`);
    for (const [i, raw] of items.entries()) {
      const item = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      if (typeof item.Config !== "string" || !Array.isArray(item.Layers)) {
        throw new ToolError("CHASSIS_IMAGE_INVALID", `archive ${path}: manifest.json[${i}] needs Config and Layers`);
      }
      const configFile = resolveFile(item.Config, "config");
      const config = parseConfig(await layout.readBlob(configFile.digest, configFile.size), `archive ${path}: ${item.Config}`);
      if (config.rootfs.diff_ids.length !== item.Layers.length) {
        throw new ToolError(
          "CHASSIS_IMAGE_INVALID",
          `archive ${path}: manifest.json[${i}] has ${item.Layers.length} layers but its config ${config.rootfs.diff_ids.length} diff_ids`,
        );
      }
      const layers: Descriptor[] = [];
      for (const layer of item.Layers) {
        if (typeof layer !== "string")
          throw new ToolError("CHASSIS_IMAGE_INVALID", `archive ${path}: manifest.json[${i}].Layers must be strings`);
        const file = resolveFile(layer, "layer");
        layers.push({ mediaType: await sniffLayerMediaType(layout, file.digest), digest: file.digest, size: file.size });
      }
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configFile.digest, size: configFile.size },
        layers,
      };
      const encoded = encodeManifest(manifest);
      if ((await layout.writeBlob(encoded.bytes, encoded.descriptor)).created) added.add(encoded.descriptor.digest);
      const descriptor = encoded.descriptor;
      const tags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((tag): tag is string => typeof tag === "string") : [];
      const platform: Platform = {
        architecture: config.architecture,
        os: config.os,
        ...(config.variant ? { variant: config.variant } : {}),
      };
      const entry = await layout.addImage(descriptor, tags[0], platform);
      images.push(entry);
    }
  } else {
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `${path} is not an image archive: it has neither oci-layout + index.json nor manifest.json`,
    );
  }

  // Files the archive carried that no image uses (legacy `<id>/json`, `VERSION`): not kept.
  const used = new Set((await layout.reachable(images)).map((descriptor) => descriptor.digest));
  for (const digest of added) if (!used.has(digest)) await rm(layout.blobPath(digest), { force: true });
  return { layout, format, images };
}

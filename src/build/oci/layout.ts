/**
 * @module build/oci/layout
 * An OCI image layout on disk (image-spec `image-layout.md`): `oci-layout`,
 * `index.json` and content-addressed `blobs/sha256/<hex>`. It is the
 * builder's working store, the `oci-layout:DIR` output, and how a base given
 * as `oci-layout:DIR` or `oci-archive:PATH` (extracted by archive.ts) is read.
 *
 * Blobs are written to a temp file beside their final place, hashed on the
 * way, checked against the expected digest and size, then renamed: a blob
 * file always holds the bytes its name promises. Reads verify too.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ToolError } from "../../core/tool-error.js";
import { type Descriptor, formatPlatform, nodePlatform, type Platform, platformMatches, selectPlatform } from "./descriptor.js";
import { assertDigest, type Digest, DigestStream, digestFile, digestHex, sha256, verifyContent } from "./digest.js";
import {
  type Encoded,
  encodeIndex,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  MediaType,
  type ParsedDocument,
  parseConfig,
  parseManifestOrIndex,
} from "./documents.js";
import type { Layer } from "./tar.js";

export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_LAYOUT_VERSION = "1.0.0";
/** The exact bytes of `oci-layout` (containerd rejects other versions). */
export const OCI_LAYOUT_BYTES = Buffer.from(`{"imageLayoutVersion":"${OCI_LAYOUT_VERSION}"}`);

/** Annotation keys this package writes or reads (image-spec `annotations.md`; containerd). */
export const Annotation = Object.freeze({
  /** On index.json descriptors: the tag (Docker writes the tag alone). */
  RefName: "org.opencontainers.image.ref.name",
  /** On index.json descriptors: the full reference; podman and containerd take it first when loading. */
  ContainerdName: "io.containerd.image.name",
  Created: "org.opencontainers.image.created",
  Title: "org.opencontainers.image.title",
  Description: "org.opencontainers.image.description",
  Version: "org.opencontainers.image.version",
  Revision: "org.opencontainers.image.revision",
  Source: "org.opencontainers.image.source",
  Licenses: "org.opencontainers.image.licenses",
  BaseName: "org.opencontainers.image.base.name",
  BaseDigest: "org.opencontainers.image.base.digest",
});

/** Largest JSON document (manifest, index, config) read into memory. */
const MAX_DOCUMENT = 16 << 20;

/**
 * The index.json annotations that name an image on load (oci-build.md
 * section 2.1, "Naming rules"): `io.containerd.image.name` = the full
 * reference (give one with a registry host: podman and Docker complete short
 * names differently) and `org.opencontainers.image.ref.name` = its tag.
 * A reference by digest gets no ref.name.
 */
export function imageNameAnnotations(reference: string): Record<string, string> {
  if (reference === "" || /\s/.test(reference))
    throw new ToolError("CHASSIS_USAGE", `${JSON.stringify(reference)} is not an image reference`);
  const at = reference.indexOf("@");
  const named = at === -1 ? reference : reference.slice(0, at);
  const colon = named.lastIndexOf(":");
  const tag = colon > named.lastIndexOf("/") ? named.slice(colon + 1) : at === -1 ? "latest" : undefined;
  const full = colon > named.lastIndexOf("/") || at !== -1 ? reference : `${reference}:latest`;
  return tag === undefined ? { [Annotation.ContainerdName]: full } : { [Annotation.ContainerdName]: full, [Annotation.RefName]: tag };
}

/** A blob's content: bytes, a file (moved into the layout with `move`), or a stream. */
export type BlobSource = Uint8Array | { path: string; move?: boolean } | (() => Readable | AsyncIterable<Uint8Array>);

export interface StoredBlob {
  readonly digest: Digest;
  readonly size: number;
  /** False when the layout already had it. */
  readonly created: boolean;
}

/** An image found in a layout: the documents and the exact bytes their digests cover. */
export interface ResolvedImage {
  /** The index.json entry that led here (for a nested index, the outer one). */
  readonly indexEntry: Descriptor;
  /** The image manifest's descriptor (the platform's entry of a nested index, or the index.json entry). */
  readonly descriptor: Descriptor;
  readonly manifest: ImageManifest;
  readonly manifestBytes: Buffer;
  readonly config: ImageConfig;
  readonly configBytes: Buffer;
}

export interface ResolveOptions {
  /** A full reference (io.containerd.image.name) or a tag (ref.name). @default the only image */
  ref?: string;
  /** For indexes. @default this machine's platform */
  platform?: Platform;
}

/** Passes a blob through and fails at its end if it does not hash to the expected digest and size. */
class VerifyStream extends Transform {
  readonly #hash: Hash = createHash("sha256");
  #size = 0;
  readonly #what: string;
  readonly #expected: { digest: Digest; size?: number };

  constructor(what: string, expected: { digest: Digest; size?: number }) {
    super();
    this.#what = what;
    this.#expected = expected;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      verifyContent(this.#what, { digest: `sha256:${this.#hash.digest("hex")}`, size: this.#size }, this.#expected);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

export class OciLayout {
  private constructor(readonly dir: string) {}

  /** Creates the layout (or completes a partial one): the folder, `oci-layout`, `blobs/sha256/`, and an empty `index.json`. */
  static async init(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    const layout = new OciLayout(dir);
    const existing = await readFile(join(dir, OCI_LAYOUT_FILE)).catch(() => undefined);
    if (existing === undefined) await writeFile(join(dir, OCI_LAYOUT_FILE), OCI_LAYOUT_BYTES);
    else checkLayoutFile(existing, dir);
    if (!(await exists(join(dir, "index.json")))) await layout.writeIndex([]);
    return layout;
  }

  /** Opens an existing layout; throws CHASSIS_IMAGE_INVALID unless it has `oci-layout` 1.0.0 and `index.json`. */
  static async open(dir: string): Promise<OciLayout> {
    const layoutFile = await readFile(join(dir, OCI_LAYOUT_FILE)).catch((error: NodeJS.ErrnoException) => {
      throw new ToolError(
        "CHASSIS_IMAGE_INVALID",
        `${dir} is not an OCI image layout: ${error.code === "ENOENT" ? "it has no oci-layout file" : error.message}`,
        {
          cause: error,
        },
      );
    });
    checkLayoutFile(layoutFile, dir);
    if (!(await exists(join(dir, "index.json"))))
      throw new ToolError("CHASSIS_IMAGE_INVALID", `${dir} is not an OCI image layout: it has no index.json`);
    return new OciLayout(dir);
  }

  blobPath(digest: Digest): string {
    return join(this.dir, "blobs", "sha256", digestHex(assertDigest(digest, "blob digest")));
  }

  /** Whether the blob is present (and has this size, when given). Contents are not re-hashed. */
  async hasBlob(digest: Digest, size?: number): Promise<boolean> {
    const info = await stat(this.blobPath(digest)).catch(() => undefined);
    return info?.isFile() === true && (size === undefined || info.size === size);
  }

  /**
   * Stores a blob and returns its digest, its size, and whether it was new.
   * With `expected`, the content must match (CHASSIS_DIGEST_MISMATCH
   * otherwise); for a stream or file source, a blob already present with
   * that digest (and size) is not written again, nor the source read. A `{path, move: true}` source is hashed,
   * then renamed into place (copied across file systems).
   */
  async writeBlob(source: BlobSource, expected?: { digest: Digest; size?: number }): Promise<StoredBlob> {
    if (source instanceof Uint8Array) {
      const actual = { digest: sha256(source), size: source.byteLength };
      if (expected) verifyContent(`blob ${expected.digest}`, actual, expected);
      if (await this.hasBlob(actual.digest, actual.size)) return { ...actual, created: false };
      await this.#place(actual.digest, (temp) => writeFile(temp, source));
      return { ...actual, created: true };
    }
    const isFile = typeof source === "object";
    if (expected && (await this.hasBlob(expected.digest, expected.size))) {
      if (isFile && source.move) await unlink(source.path).catch(() => {});
      const size = expected.size ?? (await stat(this.blobPath(expected.digest))).size;
      return { digest: expected.digest, size, created: false };
    }
    if (isFile) {
      const actual = await digestFile(source.path);
      if (expected) verifyContent(`blob ${expected.digest} (${source.path})`, actual, expected);
      if (await this.hasBlob(actual.digest, actual.size)) {
        if (source.move) await unlink(source.path);
        return { ...actual, created: false };
      }
      if (source.move) {
        try {
          await rename(source.path, this.blobPath(actual.digest));
          return { ...actual, created: true };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
        }
      }
      await this.#place(actual.digest, (temp) => copyFile(source.path, temp));
      if (source.move) await unlink(source.path);
      return { ...actual, created: true };
    }
    // A stream: hashed while written to a temp file, renamed once it checks out.
    if (typeof source !== "function") throw new ToolError("CHASSIS_INTERNAL", "writeBlob: unknown source");
    const temp = this.#tempPath();
    const digest = new DigestStream();
    try {
      await pipeline(source(), digest, createWriteStream(temp, { flags: "wx", mode: 0o644 }));
      const actual = { digest: digest.digest, size: digest.size };
      if (expected) verifyContent(`blob ${expected.digest}`, actual, expected);
      const created = !(await this.hasBlob(actual.digest, actual.size));
      if (created) await rename(temp, this.blobPath(actual.digest));
      else await rm(temp, { force: true });
      return { ...actual, created };
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** Stores an encoded document (manifest, config, index) and returns its descriptor. */
  async writeDocument(document: Encoded<unknown>): Promise<Descriptor> {
    await this.writeBlob(document.bytes, document.descriptor);
    return document.descriptor;
  }

  /** Stores a layer made by `writeLayer`: its bytes, or its temp file (moved). */
  async writeLayer(layer: Layer): Promise<Descriptor> {
    if (layer.data) await this.writeBlob(layer.data, layer.descriptor);
    else if (layer.path) await this.writeBlob({ path: layer.path, move: true }, layer.descriptor);
    else throw new ToolError("CHASSIS_INTERNAL", `layer ${layer.digest} has neither data nor a file`);
    return layer.descriptor;
  }

  /** A blob in memory, verified against its digest (and size, when given). For documents and small blobs. */
  async readBlob(digest: Digest, size?: number, maxSize = MAX_DOCUMENT): Promise<Buffer> {
    const path = this.blobPath(digest);
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir} has no blob ${digest}`, { cause: error });
    });
    if (info.size > maxSize)
      throw new ToolError("CHASSIS_IMAGE_INVALID", `blob ${digest} is ${info.size} bytes, more than the ${maxSize} read into memory`);
    const bytes = await readFile(path);
    verifyContent(
      `blob ${digest} in ${this.dir}`,
      { digest: sha256(bytes), size: bytes.byteLength },
      { digest, ...(size === undefined ? {} : { size }) },
    );
    return bytes;
  }

  /** A blob as a stream, verified as it is read: the stream errors with CHASSIS_DIGEST_MISMATCH at the end if the bytes are wrong. */
  openBlob(descriptor: { digest: Digest; size?: number }, verify = true): Readable {
    const file = createReadStream(this.blobPath(descriptor.digest), { highWaterMark: 1 << 20 });
    if (!verify) return file;
    const check = new VerifyStream(`blob ${descriptor.digest} in ${this.dir}`, descriptor);
    file.on("error", (error) => check.destroy(error));
    return file.pipe(check);
  }

  async readIndex(): Promise<ImageIndex> {
    const bytes = await readFile(join(this.dir, "index.json")).catch((error: NodeJS.ErrnoException) => {
      throw new ToolError("CHASSIS_IMAGE_INVALID", `${this.dir}/index.json cannot be read: ${error.message}`, { cause: error });
    });
    const parsed = parseManifestOrIndex(bytes, `${this.dir}/index.json`);
    if (parsed.kind !== "index") throw new ToolError("CHASSIS_IMAGE_INVALID", `${this.dir}/index.json is not an image index`);
    return parsed.index;
  }

  /** Replaces index.json (written atomically, canonical bytes, OCI index media type). */
  async writeIndex(manifests: readonly Descriptor[], annotations?: Record<string, string>): Promise<void> {
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...manifests] };
    if (annotations && Object.keys(annotations).length > 0) index.annotations = annotations;
    const temp = join(this.dir, `.index.json.${randomBytes(6).toString("hex")}.tmp`);
    await writeFile(temp, encodeIndex(index).bytes);
    await rename(temp, join(this.dir, "index.json"));
  }

  /**
   * Adds an image to index.json, named by `reference` (see
   * imageNameAnnotations); an entry with the same full name or tag is
   * replaced, others are kept in their order. Returns the entry written.
   */
  async addImage(descriptor: Descriptor, reference?: string, platform?: Platform): Promise<Descriptor> {
    const entry: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
    const names = reference === undefined ? undefined : imageNameAnnotations(reference);
    const annotations = { ...(descriptor.annotations ?? {}), ...(names ?? {}) };
    if (Object.keys(annotations).length > 0) entry.annotations = annotations;
    const where = platform ?? descriptor.platform;
    if (where) entry.platform = where;
    const index = await this.readIndex();
    const sameName = (other: Descriptor): boolean =>
      names !== undefined &&
      (other.annotations?.[Annotation.ContainerdName] === names[Annotation.ContainerdName] ||
        (other.annotations?.[Annotation.ContainerdName] === undefined &&
          other.annotations?.[Annotation.RefName] === names[Annotation.RefName]));
    const kept = index.manifests.filter((other) => !sameName(other));
    await this.writeIndex([...kept, entry], index.annotations);
    return entry;
  }

  /** Reads and verifies a manifest or index blob. */
  async readDocument(descriptor: Descriptor): Promise<ParsedDocument> {
    const bytes = await this.readBlob(descriptor.digest, descriptor.size);
    return parseManifestOrIndex(bytes, `${descriptor.mediaType} ${descriptor.digest}`);
  }

  /**
   * Finds an image: the index.json entry named `ref` (full name or tag), or
   * the only entry; through nested indexes by platform; then its manifest and
   * config, verified. Throws CHASSIS_IMAGE_INVALID or CHASSIS_PLATFORM_NOT_FOUND.
   */
  async resolve(options: ResolveOptions = {}): Promise<ResolvedImage> {
    const index = await this.readIndex();
    const named = (entry: Descriptor): string =>
      entry.annotations?.[Annotation.ContainerdName] ?? entry.annotations?.[Annotation.RefName] ?? `${entry.digest} (unnamed)`;
    let candidates = index.manifests;
    if (options.ref !== undefined) {
      const ref = options.ref;
      candidates = candidates.filter(
        (entry) => entry.annotations?.[Annotation.ContainerdName] === ref || entry.annotations?.[Annotation.RefName] === ref,
      );
      if (candidates.length === 0) {
        throw new ToolError(
          "CHASSIS_IMAGE_INVALID",
          `layout ${this.dir} has no image named ${JSON.stringify(ref)} (it has ${index.manifests.map(named).join(", ") || "no images"})`,
        );
      }
    }
    if (candidates.length === 0) throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir} has no images (index.json lists none)`);
    let chosen: Descriptor;
    if (candidates.length === 1) chosen = candidates[0] as Descriptor;
    else if (options.platform && candidates.every((entry) => entry.platform))
      chosen = selectPlatform(candidates, options.platform, `${this.dir}/index.json`);
    else {
      throw new ToolError(
        "CHASSIS_IMAGE_INVALID",
        `layout ${this.dir} has ${candidates.length} images; choose one by name: ${candidates.map(named).join(", ")}`,
      );
    }
    const wanted = options.platform ?? nodePlatform();
    let descriptor = chosen;
    for (let depth = 0; ; depth++) {
      if (depth > 4) throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir}: indexes nested too deep`);
      const document = await this.readDocument(descriptor);
      if (document.kind === "index") {
        descriptor = selectPlatform(document.index.manifests, wanted, `image index ${descriptor.digest}`);
        continue;
      }
      const configBytes = await this.readBlob(document.manifest.config.digest, document.manifest.config.size);
      const config = parseConfig(configBytes, `config ${document.manifest.config.digest}`);
      if (
        options.platform &&
        !platformMatches(
          { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
          options.platform,
        )
      ) {
        throw new ToolError(
          "CHASSIS_PLATFORM_NOT_FOUND",
          `image ${named(chosen)} in ${this.dir} is ${config.os}/${config.architecture}, not ${formatPlatform(options.platform)}`,
        );
      }
      return { indexEntry: chosen, descriptor, manifest: document.manifest, manifestBytes: document.bytes, config, configBytes };
    }
  }

  /**
   * Every blob reachable from these descriptors (indexes, manifests, configs,
   * layers), each once, in the order found. Layers must be present unless
   * `allowMissingLayers` (a layout made for pushing may hold only new layers).
   */
  async reachable(roots: readonly Descriptor[], allowMissingLayers = false): Promise<Descriptor[]> {
    const seen = new Map<Digest, Descriptor>();
    const visit = async (descriptor: Descriptor, depth: number): Promise<void> => {
      if (seen.has(descriptor.digest)) return;
      if (depth > 6) throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir}: indexes nested too deep`);
      seen.set(descriptor.digest, descriptor);
      const document = await this.readDocument(descriptor);
      if (document.kind === "index") {
        for (const child of document.index.manifests) await visit(child, depth + 1);
        return;
      }
      const config = document.manifest.config;
      if (!(await this.hasBlob(config.digest, config.size)))
        throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir} is missing config blob ${config.digest}`);
      if (!seen.has(config.digest)) seen.set(config.digest, config);
      for (const layer of document.manifest.layers) {
        if (seen.has(layer.digest)) continue;
        if (!(await this.hasBlob(layer.digest, layer.size))) {
          if (allowMissingLayers) continue;
          throw new ToolError("CHASSIS_IMAGE_INVALID", `layout ${this.dir} is missing layer blob ${layer.digest} (${layer.size} bytes)`);
        }
        seen.set(layer.digest, layer);
      }
    };
    for (const root of roots) {
      if (!isIndexMediaType(root.mediaType) && root.mediaType !== MediaType.OciManifest && root.mediaType !== MediaType.DockerManifest) {
        throw new ToolError(
          "CHASSIS_IMAGE_INVALID",
          `index.json entry ${root.digest} has media type ${root.mediaType}, not a manifest or index`,
        );
      }
      await visit(root, 0);
    }
    return [...seen.values()];
  }

  /** Removes blobs not reachable from index.json (and leftover temp files). Returns the digests removed. */
  async garbageCollect(): Promise<Digest[]> {
    const keep = new Set((await this.reachable((await this.readIndex()).manifests, true)).map((descriptor) => descriptor.digest));
    const removed: Digest[] = [];
    for (const name of await readdir(join(this.dir, "blobs", "sha256"))) {
      const digest = `sha256:${name}` as Digest;
      if (keep.has(digest)) continue;
      await rm(join(this.dir, "blobs", "sha256", name), { force: true });
      removed.push(digest);
    }
    for (const name of await readdir(join(this.dir, "blobs"))) {
      if (name.startsWith(".tmp-")) await rm(join(this.dir, "blobs", name), { force: true });
    }
    return removed;
  }

  #tempPath(): string {
    return join(this.dir, "blobs", `.tmp-${randomBytes(8).toString("hex")}`);
  }

  async #place(digest: Digest, write: (temp: string) => Promise<void>): Promise<void> {
    const temp = this.#tempPath();
    try {
      await write(temp);
      await rename(temp, this.blobPath(digest));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}

function checkLayoutFile(bytes: Buffer, dir: string): void {
  let version: unknown;
  try {
    version = (JSON.parse(bytes.toString("utf8")) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (version !== OCI_LAYOUT_VERSION) {
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `${dir}/oci-layout says imageLayoutVersion ${JSON.stringify(version)}, expected "${OCI_LAYOUT_VERSION}"`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

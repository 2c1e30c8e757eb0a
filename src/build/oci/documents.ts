/**
 * @module build/oci/documents
 * The JSON documents of an image (image-spec `manifest.md`, `image-index.md`,
 * `config.md`), their media types (OCI and Docker schema2), and their
 * canonical bytes: compact JSON, fixed key order (the order of the reference
 * documents in oci-build.md section 1.2), so the same image always has the
 * same digests. Parsed documents keep the bytes they came from: a base's
 * manifest or config is never re-serialized before its digest is used.
 */
import { ToolError } from "../../core/tool-error.js";
import { type Descriptor, descriptorJson, parseDescriptor } from "./descriptor.js";
import { assertDigest, type Digest, sha256 } from "./digest.js";
import { type Field, jsonArray, jsonMap, jsonNumber, jsonString, jsonStrings, withExtras } from "./json.js";

export const MediaType = Object.freeze({
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  /** Uncompressed layer: digest == diff_id; good for large weights (section 1.5). Only valid in OCI manifests. */
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** Not in the schema2 spec; Quay rejects it (containers/image#1270). Read it, do not write it. */
  DockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  DockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
});

/** Which family of media types an image uses; new layers follow the base's family (ko `gobuild.go`). */
export type MediaTypeFamily = "oci" | "docker";

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest;
}

/** The media type of a new layer: gzip or not, in the OCI or the Docker family. */
export function layerMediaType(compressed: boolean, family: MediaTypeFamily = "oci"): string {
  if (family === "docker") {
    if (!compressed) {
      throw new ToolError(
        "CHASSIS_USAGE",
        "an uncompressed layer needs an OCI manifest (Docker schema2 has no such layer type; oci-build.md section 1.5)",
      );
    }
    return MediaType.DockerLayerGzip;
  }
  return compressed ? MediaType.OciLayerGzip : MediaType.OciLayer;
}

// Types.

/** `config.config` (image-spec `config.md`, "Properties"); other fields of a base config are kept as they are. */
export interface ContainerConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  User?: string;
  /** `{"8080/tcp": {}}`: a Go map[string]struct{}. */
  ExposedPorts?: Record<string, Record<string, never>>;
  Volumes?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  variant?: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: HistoryEntry[];
}

export interface ImageManifest {
  schemaVersion: 2;
  /** OciManifest or DockerManifest. */
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  /** OCI only: Docker schema2 has no annotations. */
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  /** OciIndex or DockerManifestList; optional in a layout's index.json but always written by us. */
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A document with the exact bytes its digest covers. */
export interface Encoded<T> {
  readonly value: T;
  readonly bytes: Buffer;
  readonly descriptor: Descriptor;
}

// Canonical bytes.

const optionalString = (value: string | undefined | null): string | undefined =>
  value === undefined || value === null ? undefined : jsonString(value);

function containerConfigJson(config: ContainerConfig): string {
  return withExtras(config, [
    ["Env", jsonStrings(config.Env)],
    ["Entrypoint", jsonStrings(config.Entrypoint)],
    ["Cmd", jsonStrings(config.Cmd)],
    ["WorkingDir", optionalString(config.WorkingDir)],
    ["User", optionalString(config.User)],
    ["ExposedPorts", jsonMap(config.ExposedPorts)],
    ["Volumes", jsonMap(config.Volumes)],
    ["Labels", jsonMap(config.Labels)],
    ["StopSignal", optionalString(config.StopSignal)],
    ["ArgsEscaped", config.ArgsEscaped === undefined ? undefined : String(config.ArgsEscaped)],
  ]);
}

function historyJson(entry: HistoryEntry): string {
  return withExtras(entry, [
    ["created", optionalString(entry.created)],
    ["created_by", optionalString(entry.created_by)],
    ["author", optionalString(entry.author)],
    ["comment", optionalString(entry.comment)],
    ["empty_layer", entry.empty_layer === undefined ? undefined : String(entry.empty_layer)],
  ]);
}

/** The config's canonical bytes: created, author, architecture, variant, os, os.version, os.features, config, rootfs, history. */
export function encodeConfig(config: ImageConfig, mediaType: string = MediaType.OciConfig): Encoded<ImageConfig> {
  const fields: Field[] = [
    ["created", optionalString(config.created)],
    ["author", optionalString(config.author)],
    ["architecture", jsonString(config.architecture)],
    ["variant", optionalString(config.variant)],
    ["os", jsonString(config.os)],
    ["os.version", optionalString(config["os.version"])],
    ["os.features", jsonStrings(config["os.features"])],
    ["config", config.config ? containerConfigJson(config.config) : undefined],
    [
      "rootfs",
      withExtras(config.rootfs, [
        ["type", jsonString(config.rootfs.type)],
        ["diff_ids", jsonStrings(config.rootfs.diff_ids)],
      ]),
    ],
    ["history", jsonArray(config.history, historyJson)],
  ];
  return encoded(config, withExtras(config, fields), mediaType);
}

/** The manifest's canonical bytes: schemaVersion, mediaType, artifactType, config, layers, subject, annotations. */
export function encodeManifest(manifest: ImageManifest): Encoded<ImageManifest> {
  if (manifest.annotations && manifest.mediaType === MediaType.DockerManifest) {
    throw new ToolError(
      "CHASSIS_INTERNAL",
      "Docker schema2 manifests have no annotations; use an OCI manifest or put them in config Labels",
    );
  }
  const json = withExtras(manifest, [
    ["schemaVersion", jsonNumber(manifest.schemaVersion)],
    ["mediaType", jsonString(manifest.mediaType)],
    ["artifactType", optionalString(manifest.artifactType)],
    ["config", descriptorJson(manifest.config)],
    ["layers", jsonArray(manifest.layers, descriptorJson)],
    ["subject", manifest.subject ? descriptorJson(manifest.subject) : undefined],
    ["annotations", jsonMap(manifest.annotations)],
  ]);
  return encoded(manifest, json, manifest.mediaType);
}

/** The index's canonical bytes: schemaVersion, mediaType, artifactType, manifests, subject, annotations. */
export function encodeIndex(index: ImageIndex): Encoded<ImageIndex> {
  const json = withExtras(index, [
    ["schemaVersion", jsonNumber(index.schemaVersion)],
    ["mediaType", optionalString(index.mediaType)],
    ["artifactType", optionalString(index.artifactType)],
    ["manifests", jsonArray(index.manifests, descriptorJson)],
    ["subject", index.subject ? descriptorJson(index.subject) : undefined],
    ["annotations", jsonMap(index.annotations)],
  ]);
  return encoded(index, json, index.mediaType ?? MediaType.OciIndex);
}

function encoded<T>(value: T, json: string, mediaType: string): Encoded<T> {
  const bytes = Buffer.from(json, "utf8");
  return { value, bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.byteLength } };
}

// Parsing (documents from a base image: checked enough to use, bytes kept).

function parseJsonObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function descriptors(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) throw new ToolError("CHASSIS_IMAGE_INVALID", `${where} must be an array of descriptors`);
  return value.map((item, i) => parseDescriptor(item, `${where}[${i}]`));
}

function checkSchemaVersion(record: Record<string, unknown>, where: string): void {
  if (record.schemaVersion !== 2) {
    throw new ToolError(
      "CHASSIS_IMAGE_INVALID",
      `${where}: schemaVersion is ${JSON.stringify(record.schemaVersion)}, expected 2 (schema1 images are not supported)`,
    );
  }
}

/** A manifest or an index, told apart by mediaType (or, when it is missing, by `manifests` vs `layers`). */
export type ParsedDocument =
  | { kind: "manifest"; manifest: ImageManifest; bytes: Buffer }
  | { kind: "index"; index: ImageIndex; bytes: Buffer };

export function parseManifestOrIndex(bytes: Uint8Array, where: string): ParsedDocument {
  const record = parseJsonObject(bytes, where);
  const mediaType = record.mediaType;
  if (isIndexMediaType(mediaType as string) || (mediaType === undefined && Array.isArray(record.manifests))) {
    return { kind: "index", index: parseIndex(bytes, where), bytes: Buffer.from(bytes) };
  }
  return { kind: "manifest", manifest: parseManifest(bytes, where), bytes: Buffer.from(bytes) };
}

export function parseManifest(bytes: Uint8Array, where: string): ImageManifest {
  const record = parseJsonObject(bytes, where);
  checkSchemaVersion(record, where);
  const mediaType = record.mediaType ?? MediaType.OciManifest;
  if (!isManifestMediaType(mediaType as string)) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: mediaType ${JSON.stringify(mediaType)} is not an image manifest`);
  }
  parseDescriptor(record.config, `${where}.config`);
  descriptors(record.layers, `${where}.layers`);
  return { ...record, mediaType } as unknown as ImageManifest;
}

export function parseIndex(bytes: Uint8Array, where: string): ImageIndex {
  const record = parseJsonObject(bytes, where);
  checkSchemaVersion(record, where);
  if (record.mediaType !== undefined && !isIndexMediaType(record.mediaType as string)) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: mediaType ${JSON.stringify(record.mediaType)} is not an image index`);
  }
  descriptors(record.manifests, `${where}.manifests`);
  return record as unknown as ImageIndex;
}

export function parseConfig(bytes: Uint8Array, where: string): ImageConfig {
  const record = parseJsonObject(bytes, where);
  if (typeof record.architecture !== "string" || typeof record.os !== "string") {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: config needs architecture and os`);
  }
  const rootfs = record.rootfs as Record<string, unknown> | undefined;
  if (rootfs?.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: config needs rootfs {type: "layers", diff_ids: [...]}`);
  }
  rootfs.diff_ids.forEach((id, i) => {
    assertDigest(id, `${where}.rootfs.diff_ids[${i}]`);
  });
  return record as unknown as ImageConfig;
}

/** ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)) (image-spec `config.md`). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    const previous = out.at(-1);
    out.push(previous === undefined ? diffId : sha256(`${previous} ${diffId}`));
  }
  return out;
}

/**
 * @module build/image/build
 * Builds a model's image into an OCI layout, without a daemon: the base's
 * layers as they are (never unpacked, never re-compressed), then our layers,
 * each a reproducible tar: runtime (chassis-ts), dependencies (native
 * packages), model (code and data), so a model change re-uploads only the
 * model layer. Config and manifest carry the OMI annotations, the OCI ones,
 * and the model's full metadata, readable at rest.
 */
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ToolError } from "../../core/tool-error.js";
import type { ModelMetadata } from "../../model/metadata.js";
import type { Descriptor, Platform as OciPlatform } from "../oci/descriptor.js";
import type { Digest } from "../oci/digest.js";
import { encodeConfig, encodeManifest, type ImageConfig, type ImageManifest, MediaType } from "../oci/documents.js";
import { parseSourceDateEpoch, rfc3339 } from "../oci/epoch.js";
import { Annotation, type OciLayout } from "../oci/layout.js";
import { type Layer, type TarEntry, writeLayer } from "../oci/tar.js";
import { bundleModel, bundleRuntime, IMAGE_PATHS, type LayerFile, type Platform } from "./bundle.js";
import { APP_USER, hostBase, hostPlatform, NODE_PATH } from "./host-base.js";

export type InterfaceName = "omi" | "kserve" | "both";

/** A base image already in the working layout (pulled or read by the caller), or the host's Node.js. */
export type BaseImage = { kind: "host" } | { kind: "layout"; name: string; manifest: ImageManifest; config: ImageConfig; digest: Digest };

export interface BuildOptions {
  /** The model module (model.ts / model.js) to bundle. */
  modelFile: string;
  /** Its validated metadata (the CLI loads the module to get it). */
  metadata: ModelMetadata;
  /** Full reference the image is named by, e.g. `localhost/digits-classifier:1.0.0`. */
  reference: string;
  layout: OciLayout;
  base: BaseImage;
  /** @default "both" */
  interface?: InterfaceName;
  /** The raw SOURCE_DATE_EPOCH, for mtimes and `created`. */
  sourceDateEpoch?: string;
  /** gzip level of our layers. @default 6 */
  gzip?: number;
  /** `org.opencontainers.image.source` / `.revision`, when known. */
  source?: string;
  revision?: string;
  /** Called as each step finishes (bundle, each layer, config). */
  progress?: (step: string, detail: Record<string, unknown>) => void;
}

export interface BuiltLayer {
  readonly name: "base" | "runtime" | "dependencies" | "model" | "workdir";
  readonly digest: Digest;
  readonly size: number;
  readonly uncompressedSize: number;
  readonly files: number;
}

export interface BuildResult {
  readonly descriptor: Descriptor;
  readonly manifest: ImageManifest;
  readonly config: ImageConfig;
  readonly configDigest: Digest;
  readonly layers: readonly BuiltLayer[];
  readonly platform: Platform;
  readonly reference: string;
}

export const PORTS = Object.freeze({ omi: 45000, kserve: 8080 });

/** The Env an image adds after its base's own, in order (the Dockerfile context writes the same). */
export function imageEnv(iface: InterfaceName): Array<[string, string]> {
  return [
    ["INTERFACE", iface],
    ["PSC_MODEL_PORT", String(PORTS.omi)],
    ["HTTP_PORT", String(PORTS.kserve)],
    ["NODE_ENV", "production"],
    // One serving process per CPU the container may use (its cgroup quota counts).
    ["WORKERS", "auto"],
  ];
}

/**
 * The last layer: only `/app`, owned by the app user, so the model may write
 * in its working directory. It must come last: every earlier layer holds
 * `/app` (as the parent of its files) owned by root, and the last entry wins.
 */
export function workdirLayer(): LayerFile[] {
  return [{ path: IMAGE_PATHS.app, type: "dir", mode: 0o755, size: 0, uid: APP_USER.uid, gid: APP_USER.gid }];
}

/** A layer file as a tar entry (files are read from disk when the tar reaches them). */
export function toTarEntry(file: LayerFile): TarEntry {
  const path = file.path;
  if (file.type === "dir") return { path, type: "dir", mode: file.mode, exactMode: true, uid: file.uid ?? 0, gid: file.gid ?? 0 };
  if (file.type === "symlink") return { path, type: "symlink", linkname: file.linkTarget ?? "" };
  const source = file.source;
  const data = file.data ?? (source ? () => createReadStream(source) : new Uint8Array());
  return { path, type: "file", mode: file.mode, data, size: file.size, uid: file.uid ?? 0, gid: file.gid ?? 0 };
}

/** The OMI annotations (and labels), as Chassis images carry them. */
export function omiAnnotations(metadata: ModelMetadata, iface: InterfaceName): Record<string, string> {
  const protocols = iface === "kserve" ? [] : ["v1"];
  return {
    "ml.openmodel.interfaces": JSON.stringify(iface === "kserve" ? [] : ["ml.openmodel.protocols.v1"]),
    "ml.openmodel.protocols": JSON.stringify([protocols]),
    "ml.openmodel.port": String(PORTS.omi),
    "ml.openml.model_name": metadata.name,
  };
}

/**
 * The manifest annotations (and config labels) of an image: org.opencontainers
 * keys and the OMI ones. Shared with the Dockerfile context, so both paths
 * label images the same way.
 */
export function imageAnnotations(options: {
  metadata: ModelMetadata;
  iface: InterfaceName;
  created: string;
  source?: string;
  revision?: string;
  baseName?: string;
  baseDigest?: string;
}): Record<string, string> {
  const { metadata } = options;
  return {
    [Annotation.Created]: options.created,
    [Annotation.Title]: metadata.name,
    [Annotation.Version]: metadata.version,
    ...(metadata.author ? { "org.opencontainers.image.authors": metadata.author } : {}),
    ...(metadata.description.summary ? { [Annotation.Description]: metadata.description.summary } : {}),
    ...(options.source ? { [Annotation.Source]: options.source } : {}),
    ...(options.revision ? { [Annotation.Revision]: options.revision } : {}),
    ...(options.baseName ? { [Annotation.BaseName]: options.baseName } : {}),
    ...(options.baseDigest ? { [Annotation.BaseDigest]: options.baseDigest } : {}),
    ...omiAnnotations(metadata, options.iface),
  };
}

/** The model's full metadata (every OMI StatusResponse field), readable without running the image. */
export function metadataLabel(metadata: ModelMetadata): string {
  return JSON.stringify({
    model_info: {
      model_name: metadata.name,
      model_version: metadata.version,
      model_author: metadata.author,
      model_type: metadata.modelType,
      source: metadata.source,
    },
    description: metadata.description,
    inputs: metadata.inputs.map((i) => ({
      filename: i.key,
      accepted_media_types: i.mediaTypes,
      max_size: i.maxSize,
      description: i.description,
    })),
    outputs: metadata.outputs.map((o) => ({ filename: o.key, media_type: o.mediaType, max_size: o.maxSize, description: o.description })),
    resources: { required_ram: metadata.resources.ram, num_cpus: metadata.resources.cpus, num_gpus: metadata.resources.gpus },
    timeout: { status: metadata.timeout.status, run: metadata.timeout.run },
    features: {
      adversarial_defense: metadata.features.adversarialDefense,
      batch_size: metadata.features.batchSize,
      retrainable: metadata.features.retrainable,
      results_format: metadata.features.resultsFormat,
      drift_format: metadata.features.driftFormat,
      explanation_format: metadata.features.explanationFormat,
    },
  });
}

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const { layout, metadata } = options;
  const iface = options.interface ?? "both";
  const progress = options.progress ?? (() => {});
  const epoch = parseSourceDateEpoch(options.sourceDateEpoch) ?? 0;
  const created = rfc3339(epoch);
  const layerOptions = { gzip: options.gzip ?? 6, ...(options.sourceDateEpoch ? { sourceDateEpoch: options.sourceDateEpoch } : {}) };

  // The base: its layers stay as they are; only the host base is made here, after bundling,
  // because the model's native binaries add shared libraries to it.
  const wanted: Platform =
    options.base.kind === "host"
      ? hostPlatform()
      : { os: "linux", architecture: options.base.config.architecture as Platform["architecture"] };
  if (options.base.kind === "layout") {
    const { config } = options.base;
    if (config.os !== "linux" || (config.architecture !== "amd64" && config.architecture !== "arm64")) {
      throw new ToolError(
        "CHASSIS_PLATFORM_NOT_FOUND",
        `base ${options.base.name} is ${config.os}/${config.architecture}; chassis-ts builds linux/amd64 and linux/arm64`,
      );
    }
  }
  const platform = wanted;
  const started = performance.now();
  const [runtimeFiles, model] = await Promise.all([bundleRuntime(), bundleModel(options.modelFile, platform)]);
  progress("bundle", { ms: Math.round(performance.now() - started), nativePackages: model.nativePackages });

  // Every layer is compressed at once: zlib runs on libuv's thread pool, so a cold build
  // uses both cores for the ~100 MB host base and the native packages together.
  const candidates: Array<[BuiltLayer["name"], LayerFile[]]> = [
    ["runtime", runtimeFiles],
    ["dependencies", model.dependencies],
    ["model", model.model],
    ["workdir", workdirLayer()],
  ];
  const ours = candidates.filter(([, files]) => files.length > 0);
  const ourPending = ours.map(([name, files]) =>
    // Native packages are large and rarely change: reuse their layer like the host base's.
    name === "dependencies" ? cachedLayer(layout, files, layerOptions) : writtenLayer(layout, files, layerOptions),
  );
  let host: ReturnType<typeof hostBase> | undefined;
  let hostPending: Promise<CachedLayer> | undefined;
  if (options.base.kind === "host") {
    const binaries = model.dependencies.filter((f) => f.source && /\.node$|\.so(\.\d+)*$/.test(f.path)).map((f) => f.source as string);
    host = hostBase(binaries);
    // gzip-1 for the ~100 MB runtime base: half the CPU of gzip-6 for ~9% more bytes (oci-build.md 6),
    // and this layer is made once per machine, then cached.
    hostPending = cachedLayer(layout, host.files, { ...layerOptions, gzip: Math.min(layerOptions.gzip, 1) });
  }
  const [hostLayer, ...ourDone] = await Promise.all([hostPending, ...ourPending]);

  let baseLayers: Descriptor[] = [];
  let baseConfig: ImageConfig;
  const built: BuiltLayer[] = [];
  if (host && hostLayer) {
    baseLayers = [hostLayer.descriptor];
    built.push(describeLayer("base", hostLayer, host.files.length));
    baseConfig = {
      architecture: platform.architecture,
      os: platform.os,
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
      rootfs: { type: "layers", diff_ids: [hostLayer.diffId] },
      history: [{ created, created_by: "chassis build --base host", comment: host.description }],
    };
    progress("base", { layer: "base", size: hostLayer.size, description: host.description });
  } else if (options.base.kind === "layout") {
    baseLayers = options.base.manifest.layers;
    baseConfig = options.base.config;
    progress("base", { name: options.base.name, layers: baseLayers.length });
  } else {
    throw new ToolError("CHASSIS_INTERNAL", "the host base layer was not built");
  }

  const ourLayers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  const history = [...(baseConfig.history ?? [])];
  ours.forEach(([name, files], i) => {
    const layer = ourDone[i] as CachedLayer;
    ourLayers.push(layer.descriptor);
    diffIds.push(layer.diffId);
    built.push(describeLayer(name, layer, files.length));
    history.push({ created, created_by: `chassis build (${name})`, comment: `chassis-ts ${name} layer` });
    progress("layer", { layer: name, size: layer.size, uncompressed: layer.uncompressedSize, files: files.length });
  });

  const baseEnv = (baseConfig.config?.Env ?? []).filter(
    (entry) => !/^(INTERFACE|PSC_MODEL_PORT|HTTP_PORT|MODEL_NAME|NODE_ENV|WORKERS)=/.test(entry),
  );
  const ports: Record<string, Record<string, never>> = {};
  if (iface !== "kserve") ports[`${PORTS.omi}/tcp`] = {};
  if (iface !== "omi") ports[`${PORTS.kserve}/tcp`] = {};
  const annotations = imageAnnotations({
    metadata,
    iface,
    created,
    ...(options.source ? { source: options.source } : {}),
    ...(options.revision ? { revision: options.revision } : {}),
    ...(options.base.kind === "layout" ? { baseName: options.base.name, baseDigest: options.base.digest } : {}),
  });
  const config: ImageConfig = {
    ...baseConfig,
    created,
    architecture: platform.architecture,
    os: platform.os,
    config: {
      ...(baseConfig.config ?? {}),
      Env: [...baseEnv, ...imageEnv(iface).map(([name, value]) => `${name}=${value}`)],
      // The server handles SIGTERM itself (Node as PID 1 would ignore it otherwise) and drains before exit.
      Entrypoint: [NODE_PATH, IMAGE_PATHS.cli, "serve", IMAGE_PATHS.model],
      Cmd: [],
      WorkingDir: IMAGE_PATHS.app,
      User: `${APP_USER.uid}:${APP_USER.gid}`,
      ExposedPorts: ports,
      Labels: { ...(baseConfig.config?.Labels ?? {}), ...annotations, "ml.openmodel.metadata": metadataLabel(metadata) },
      StopSignal: "SIGTERM",
    },
    rootfs: { type: "layers", diff_ids: [...baseConfig.rootfs.diff_ids, ...diffIds] },
    history,
  };
  const encodedConfig = encodeConfig(config);
  await layout.writeDocument(encodedConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: encodedConfig.descriptor,
    layers: [...baseLayers, ...ourLayers],
    annotations,
  };
  const encodedManifest = encodeManifest(manifest);
  const descriptor = await layout.writeDocument(encodedManifest);
  const ociPlatform: OciPlatform = { os: platform.os, architecture: platform.architecture };
  await layout.addImage({ ...descriptor, platform: ociPlatform }, options.reference, ociPlatform);
  progress("config", { digest: descriptor.digest });
  return {
    descriptor: { ...descriptor, platform: ociPlatform },
    manifest,
    config,
    configDigest: encodedConfig.descriptor.digest,
    layers: built,
    platform,
    reference: options.reference,
  };
}

type CachedLayer = Pick<Layer, "digest" | "size" | "diffId" | "uncompressedSize" | "descriptor">;

async function writtenLayer(
  layout: OciLayout,
  files: readonly LayerFile[],
  options: { gzip: number; sourceDateEpoch?: string },
): Promise<CachedLayer> {
  const layer = await writeLayer(files.map(toTarEntry), options);
  await layout.writeLayer(layer);
  return layer;
}

/**
 * A layer made of files on this machine (the host base, native packages),
 * reused while its inputs are unchanged: keyed by every file's path, size,
 * mode and mtime and the layer options, recorded beside the working layout.
 * Re-compressing ~100 MB of node and libraries takes seconds.
 */
async function cachedLayer(
  layout: OciLayout,
  files: readonly LayerFile[],
  options: { gzip: number; sourceDateEpoch?: string },
): Promise<CachedLayer> {
  const inputs = files.map((f) => [
    f.path,
    f.type ?? "file",
    f.size,
    f.mode,
    f.linkTarget ?? "",
    f.source ? statSync(f.source).mtimeMs : 0,
  ]);
  const key = createHash("sha256")
    .update(JSON.stringify([inputs, options]))
    .digest("hex");
  const record = join(layout.dir, "..", "layer-cache", `${key}.json`);
  try {
    const cached = JSON.parse(await readFile(record, "utf8")) as CachedLayer;
    if (await layout.hasBlob(cached.digest, cached.size)) return cached;
  } catch {
    // not cached yet
  }
  const layer = await writeLayer(files.map(toTarEntry), options);
  const descriptor = await layout.writeLayer(layer);
  const entry: CachedLayer = {
    digest: layer.digest,
    size: layer.size,
    diffId: layer.diffId,
    uncompressedSize: layer.uncompressedSize,
    descriptor,
  };
  await mkdir(dirname(record), { recursive: true });
  await writeFile(record, JSON.stringify(entry));
  return entry;
}

function describeLayer(name: BuiltLayer["name"], layer: CachedLayer, files: number): BuiltLayer {
  return { name, digest: layer.digest, size: layer.size, uncompressedSize: layer.uncompressedSize, files };
}

/**
 * @module build/context/dockerfile
 * `chassis build --context DIR`: a Dockerfile build context for people who
 * build with Docker, BuildKit, Kaniko or buildah instead of the daemonless
 * builder. The files come from the same bundler (bundleRuntime, bundleModel)
 * and land in one folder per layer (`rootfs-runtime/`, `rootfs-dependencies/`,
 * `rootfs-model/`, mirroring their paths in the image); the Dockerfile copies
 * them in the daemonless build's layer order (so a model change rebuilds only
 * the last layer) and sets the same config: Env, WorkingDir, User,
 * ExposedPorts, Labels (OMI, `org.opencontainers.image.*`, the full metadata),
 * Entrypoint, Cmd and StopSignal.
 *
 * Files get the modes and mtimes the daemonless layers give them (0644/0755,
 * SOURCE_DATE_EPOCH or 1 s), directories 0755, whatever the umask, so COPY
 * (which keeps both) yields the same tree.
 *
 * Departures from the daemonless image, inherent to Dockerfiles: the builder
 * writes its own `created`, history and (buildah) an `io.buildah.version`
 * label; a base whose Env sets INTERFACE, PSC_MODEL_PORT, HTTP_PORT,
 * NODE_ENV or WORKERS has them replaced in place rather than moved last, and one that
 * sets MODEL_NAME keeps it (a Dockerfile cannot unset a variable); a label
 * value cannot hold a line break (refused with CHASSIS_USAGE).
 */
import { chmod, copyFile, lstat, lutimes, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ToolError } from "../../core/tool-error.js";
import { VERSION } from "../../core/version.js";
import { type ModelMetadata, modelSlug } from "../../model/metadata.js";
import { type InterfaceName, imageAnnotations, imageEnv, metadataLabel, PORTS, workdirLayer } from "../image/build.js";
import { bundleModel, bundleRuntime, IMAGE_PATHS, type LayerFile, type Platform } from "../image/bundle.js";
import { APP_USER, NODE_PATH } from "../image/host-base.js";
import type { Digest } from "../oci/digest.js";
import { parseSourceDateEpoch, rfc3339 } from "../oci/epoch.js";
import { normalizeMode, normalizePath, resolveMtime } from "../oci/tar.js";

/** Our layers, in the daemonless build's order, and the context folder each is copied from. */
export const CONTEXT_LAYERS = Object.freeze([
  { name: "runtime", folder: "rootfs-runtime" },
  { name: "dependencies", folder: "rootfs-dependencies" },
  { name: "model", folder: "rootfs-model" },
  // Copied as the app user, last: see workdirLayer() in build.ts.
  { name: "workdir", folder: "rootfs-workdir", owner: `${APP_USER.uid}:${APP_USER.gid}` },
] as const);

export type ContextLayerName = (typeof CONTEXT_LAYERS)[number]["name"];

/** The first line of every Dockerfile we write: how a folder is recognized as ours (and so may be rewritten). */
export const DOCKERFILE_MARKER = "# chassis-ts build context";

/** Label key of the model's full metadata (as build.ts writes it). */
const METADATA_LABEL = "ml.openmodel.metadata";

export interface BuildContextOptions {
  /** The folder to write; created if missing. An existing one must be empty or a context written before (it is replaced). */
  dir: string;
  /** The model module (model.ts / model.js) to bundle. */
  modelFile: string;
  /** Its validated metadata. */
  metadata: ModelMetadata;
  /** The FROM reference, e.g. `localhost/chassis-node-base:20`: it must provide Node.js at /usr/local/bin/node and a user 1000:1000. */
  baseImage: string;
  /** @default "both" */
  interface?: InterfaceName;
  /** The platform the native packages are copied for; the image must be built for it. */
  platform: Platform;
  /** The raw SOURCE_DATE_EPOCH, for file mtimes and the `created` label. */
  sourceDateEpoch?: string;
  /** `org.opencontainers.image.base.digest`, when the base's manifest digest is known. */
  baseDigest?: Digest;
  /** `org.opencontainers.image.source` / `.revision`, when known. */
  source?: string;
  revision?: string;
  /** Called as each step finishes (bundle, each layer folder). */
  progress?: (step: string, detail: Record<string, unknown>) => void;
}

export interface ContextLayer {
  readonly name: ContextLayerName;
  /** The folder under DIR, e.g. `rootfs-model`. */
  readonly folder: string;
  /** `uid:gid` its COPY gives the files: 0:0, or the app user's for the workdir layer. */
  readonly owner: string;
  readonly files: number;
  readonly bytes: number;
}

export interface BuildContextResult {
  /** Path of the Dockerfile written. */
  readonly dockerfile: string;
  /** Entries (files, directories, symlinks) written under the rootfs-* folders. */
  readonly files: number;
  /** The layers copied by the Dockerfile, in order (an empty one, e.g. no native packages, has no folder and no COPY). */
  readonly layers: readonly ContextLayer[];
}

/** What the Dockerfile says, apart from the files. */
export interface DockerfileSpec {
  baseImage: string;
  /** Folders to COPY, in order. */
  folders: ReadonlyArray<string | { folder: string; owner: string }>;
  env: ReadonlyArray<readonly [string, string]>;
  workdir: string;
  user: string;
  exposedPorts: readonly string[];
  labels: Readonly<Record<string, string>>;
  entrypoint: readonly string[];
  stopSignal: string;
  /** Comment lines under the marker (no `#`). */
  comments?: readonly string[];
}

/**
 * A Dockerfile double-quoted word holding exactly `value`. Inside double
 * quotes the Dockerfile lexer (Docker/BuildKit, buildah's imagebuilder,
 * Kaniko) takes every character as is, except `\"`, `\\` and `\$` (escapes) and
 * `$` (variable expansion, in LABEL and ENV): so those three characters get a
 * backslash. A line break cannot be written at all (a backslash before it
 * joins the lines), so it is refused.
 */
export function dockerfileQuote(value: string, what = "value"): string {
  const control = /(?!\t)\p{Cc}/u.exec(value);
  if (control) {
    const code = `U+${(control[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new ToolError(
      "CHASSIS_USAGE",
      `${what} ${JSON.stringify(value)} holds the control character ${code}, which a Dockerfile cannot hold`,
      {
        hint: "remove line breaks and control characters from the model's metadata, or build daemonlessly (chassis build without --context)",
      },
    );
  }
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

/** A bare word when it needs no quoting, else a quoted one. */
function word(value: string, what: string): string {
  return /^[A-Za-z0-9_.,:/@+-]+$/.test(value) ? value : dockerfileQuote(value, what);
}

function checkReference(reference: string): string {
  // No whitespace, quotes or `$` (FROM expands build args): the characters of image references only.
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(reference)) {
    throw new ToolError("CHASSIS_USAGE", `base ${JSON.stringify(reference)} is not an image reference Dockerfile FROM can take`, {
      hint: "give a reference such as localhost/chassis-node-base:20 or docker.io/library/node:20-bookworm-slim",
    });
  }
  return reference;
}

/** The ExposedPorts build.ts sets, in its order. */
export function contextPorts(iface: InterfaceName): string[] {
  return [...(iface !== "kserve" ? [`${PORTS.omi}/tcp`] : []), ...(iface !== "omi" ? [`${PORTS.kserve}/tcp`] : [])];
}

/** The config Labels build.ts gives an image of this model on a base named by reference (same keys, same values). */
export function contextLabels(
  options: Pick<BuildContextOptions, "metadata" | "baseImage" | "baseDigest" | "sourceDateEpoch" | "source" | "revision"> & {
    interface?: InterfaceName;
  },
): Record<string, string> {
  const { metadata } = options;
  return {
    ...imageAnnotations({
      metadata,
      iface: options.interface ?? "both",
      created: rfc3339(parseSourceDateEpoch(options.sourceDateEpoch) ?? 0),
      baseName: options.baseImage,
      ...(options.source ? { source: options.source } : {}),
      ...(options.revision ? { revision: options.revision } : {}),
      ...(options.baseDigest ? { baseDigest: options.baseDigest } : {}),
    }),
    [METADATA_LABEL]: metadataLabel(metadata),
  };
}

/** The Entrypoint build.ts sets. */
export function contextEntrypoint(): string[] {
  return [NODE_PATH, IMAGE_PATHS.cli, "serve", IMAGE_PATHS.model];
}

/** The Dockerfile text for a spec (no files touched). */
export function renderDockerfile(spec: DockerfileSpec): string {
  const continued = (head: string, items: readonly string[]) =>
    items.length === 0 ? [] : [`${head} ${items.join(` \\\n${" ".repeat(head.length + 1)}`)}`];
  const comment = (text: string) => `# ${text.replace(/\p{Cc}+/gu, " ")}`;
  const lines = [
    DOCKERFILE_MARKER,
    ...(spec.comments ?? []).map(comment),
    `FROM ${checkReference(spec.baseImage)}`,
    ...spec.folders.map((entry) =>
      typeof entry === "string" ? `COPY --chown=0:0 ${entry}/ /` : `COPY --chown=${entry.owner} ${entry.folder}/ /`,
    ),
    ...continued(
      "ENV",
      spec.env.map(([key, value]) => `${key}=${word(value, `ENV ${key}`)}`),
    ),
    `WORKDIR ${word(spec.workdir, "WORKDIR")}`,
    `USER ${word(spec.user, "USER")}`,
    ...(spec.exposedPorts.length > 0 ? [`EXPOSE ${spec.exposedPorts.join(" ")}`] : []),
    ...continued(
      "LABEL",
      Object.entries(spec.labels).map(([key, value]) => `${word(key, "label key")}=${dockerfileQuote(value, `label ${key}`)}`),
    ),
    comment("The server handles SIGTERM itself (Node as PID 1 would ignore it otherwise) and drains before exit."),
    `ENTRYPOINT ${JSON.stringify(spec.entrypoint)}`,
    "CMD []",
    `STOPSIGNAL ${word(spec.stopSignal, "STOPSIGNAL")}`,
  ];
  return `${lines.join("\n")}\n`;
}

const DOCKERIGNORE = (folders: readonly string[]) =>
  [
    "# Send only the layer folders to the builder (it reads the Dockerfile and this file anyway).",
    "*",
    ...folders.map((folder) => `!${folder}`),
    "",
  ].join("\n");

function readme(options: {
  metadata: ModelMetadata;
  platform: Platform;
  baseImage: string;
  iface: InterfaceName;
  layers: readonly ContextLayer[];
}): string {
  const platform = `${options.platform.os}/${options.platform.architecture}`;
  const name = `${modelSlug(options.metadata.name)}:${options.metadata.version.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
  const what: Record<ContextLayerName, string> = {
    runtime: "the chassis-ts server, bundled  -> /app/node_modules/...",
    dependencies: `native packages for ${platform}  -> /app/model/node_modules/...`,
    model: "the bundled model and its data  -> /app/model/...",
    workdir: "only /app, owned by the app user, so the model may write there",
  };
  const layerLines = options.layers.map((l) => `  ${`${l.folder}/`.padEnd(22)}${what[l.name]}`).join("\n");
  const ports = contextPorts(options.iface)
    .map((p) => `-p ${p.replace("/tcp", "")}:${p.replace("/tcp", "")}`)
    .join(" ");
  return `chassis-ts build context: ${options.metadata.name} ${options.metadata.version}
Written by chassis-ts ${VERSION} (chassis build --context). Build it with any
Dockerfile builder; the image behaves like the one \`chassis build\` makes
without a daemon (same layers in the same order, same config and labels).

  Dockerfile            FROM ${options.baseImage}, ${options.layers.length} COPY layers, config
${layerLines}
  .dockerignore         sends only the rootfs-* folders to the builder

The native packages are for ${platform} only: build for that platform
(--platform ${platform}, or on a ${platform} machine).

The base (FROM) must provide Node.js 20 or later at ${NODE_PATH} and the
user ${APP_USER.uid}:${APP_USER.gid}. The official node images do (node:20-bookworm-slim has
node at /usr/local/bin/node and the user "node" as 1000:1000). Offline, load a
base into the builder first (docker load / podman load -i base.tar) and name
it in the FROM line.

Run these in this folder (or give its path instead of "."):

Docker (BuildKit or the classic builder):
  docker build --platform ${platform} -t ${name} .
  docker run --rm ${ports} ${name}

podman / buildah (--pull=never: only a base loaded locally, e.g. podman load -i base.tar):
  podman build --platform ${platform} --pull=never -t ${name} .
  buildah bud --platform ${platform} -t ${name} .

BuildKit without Docker:
  buildctl build --frontend dockerfile.v0 --local context=. --local dockerfile=. \\
    --opt platform=${platform} --output type=image,name=REGISTRY/${name},push=true

Kaniko (in a cluster; the context is this folder, e.g. in a volume or a tar.gz in a bucket):
  /kaniko/executor --context dir:///workspace --dockerfile Dockerfile \\
    --custom-platform ${platform} --destination REGISTRY/${name}
  (Kaniko pulls FROM from a registry: push the base there first.)

Reproducible builds: files carry fixed modes and mtimes; with BuildKit add
SOURCE_DATE_EPOCH and --output type=image,rewrite-timestamp=true, with
buildah/podman --timestamp 0.

Do not edit the rootfs-* folders by hand: run chassis build --context again.
`;
}

/** Makes DIR ready: created if missing; an old context of ours is cleared; anything else is refused. */
async function prepareDir(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined);
  if (info === undefined) {
    await mkdir(dir, { recursive: true });
    return;
  }
  if (!info.isDirectory()) throw new ToolError("CHASSIS_USAGE", `--context ${dir} exists and is not a folder`);
  const names = await readdir(dir);
  if (names.length === 0) return;
  const dockerfile = await readFile(join(dir, "Dockerfile"), "utf8").catch(() => "");
  if (!dockerfile.startsWith(DOCKERFILE_MARKER)) {
    throw new ToolError("CHASSIS_USAGE", `--context ${dir} is not empty and holds no build context written by chassis-ts`, {
      hint: "give a new or empty folder (chassis replaces only a context it wrote itself)",
    });
  }
  const ours = new Set(["Dockerfile", ".dockerignore", "README.txt", ...CONTEXT_LAYERS.map((l) => l.folder)]);
  for (const name of names) if (ours.has(name)) await rm(join(dir, name), { recursive: true, force: true });
}

/** Writes one layer's files under `root` (= the image's `/`), with their modes and the fixed mtime. */
async function writeLayerFolder(root: string, files: readonly LayerFile[], mtime: number, owner = "0:0"): Promise<{ bytes: number }> {
  const dirs = new Map<string, number>([[root, 0o755]]);
  const seen = new Set<string>();
  let bytes = 0;
  const ensureDir = async (path: string) => {
    if (dirs.has(path)) return;
    await ensureDir(dirname(path));
    await mkdir(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
    dirs.set(path, 0o755);
  };
  await mkdir(root, { recursive: true });
  for (const file of files) {
    const rel = normalizePath(file.path, `layer file ${JSON.stringify(file.path)}`);
    if (seen.has(rel)) throw new ToolError("CHASSIS_LAYER_INVALID", `duplicate path "${rel}" in the ${root} layer; give each path once`);
    seen.add(rel);
    if (`${file.uid ?? 0}:${file.gid ?? 0}` !== owner) {
      throw new ToolError(
        "CHASSIS_INTERNAL",
        `layer file /${rel} is owned by ${file.uid ?? 0}:${file.gid ?? 0}; this context layer is copied as ${owner}`,
      );
    }
    const target = join(root, ...rel.split("/"));
    if (file.type === "dir") {
      await ensureDir(target);
      dirs.set(target, file.mode & 0o7777); // kept exactly, as build.ts's tar entry does
      continue;
    }
    await ensureDir(dirname(target));
    if (file.type === "symlink") {
      if (!file.linkTarget) throw new ToolError("CHASSIS_LAYER_INVALID", `symlink /${rel} has no target`);
      await symlink(file.linkTarget, target);
      await lutimes(target, mtime, mtime);
      continue;
    }
    if (file.data !== undefined) await writeFile(target, file.data);
    else if (file.source !== undefined) await copyFile(file.source, target);
    else await writeFile(target, new Uint8Array());
    const size = (await lstat(target)).size;
    if (size !== file.size) throw new ToolError("CHASSIS_LAYER_INVALID", `/${rel}: wrote ${size} bytes, its layer entry says ${file.size}`);
    bytes += size;
    await chmod(target, normalizeMode("file", file.mode));
    await utimes(target, mtime, mtime);
  }
  // Directories last and deepest first: writing their children changed their mtimes.
  const ordered = [...dirs.entries()].sort((a, b) => b[0].length - a[0].length);
  for (const [path, mode] of ordered) {
    await chmod(path, mode);
    await utimes(path, mtime, mtime);
  }
  return { bytes };
}

/**
 * Writes DIR: the Dockerfile, `.dockerignore`, `README.txt` and one
 * `rootfs-<layer>/` folder per non-empty layer. Bundles first, so a bundling
 * error leaves DIR untouched.
 */
export async function writeBuildContext(options: BuildContextOptions): Promise<BuildContextResult> {
  const iface = options.interface ?? "both";
  const progress = options.progress ?? (() => {});
  checkReference(options.baseImage);
  const mtime = resolveMtime(options.sourceDateEpoch ? { sourceDateEpoch: options.sourceDateEpoch } : {});
  const labels = contextLabels({ ...options, interface: iface });
  // Check every value now, before any file is written.
  for (const [key, value] of Object.entries(labels)) dockerfileQuote(value, `label ${key}`);

  const started = performance.now();
  const [runtimeFiles, model] = await Promise.all([bundleRuntime(), bundleModel(options.modelFile, options.platform)]);
  progress("bundle", { ms: Math.round(performance.now() - started), nativePackages: model.nativePackages });

  await prepareDir(options.dir);
  const contents: Record<ContextLayerName, LayerFile[]> = {
    runtime: runtimeFiles,
    dependencies: model.dependencies,
    model: model.model,
    workdir: workdirLayer(),
  };
  const layers: ContextLayer[] = [];
  let files = 0;
  for (const layer of CONTEXT_LAYERS) {
    const { name, folder } = layer;
    const owner = "owner" in layer ? layer.owner : "0:0";
    const list = contents[name];
    if (list.length === 0) continue; // build.ts adds no empty layer either
    const written = await writeLayerFolder(join(options.dir, folder), list, mtime, owner);
    files += list.length;
    layers.push({ name, folder, owner, files: list.length, bytes: written.bytes });
    progress("layer", { layer: name, folder, files: list.length, bytes: written.bytes, size: written.bytes });
  }

  const platform = `${options.platform.os}/${options.platform.architecture}`;
  const text = renderDockerfile({
    baseImage: options.baseImage,
    folders: layers.map((l) => ({ folder: l.folder, owner: l.owner })),
    env: imageEnv(iface),
    workdir: IMAGE_PATHS.app,
    user: `${APP_USER.uid}:${APP_USER.gid}`,
    exposedPorts: contextPorts(iface),
    labels,
    entrypoint: contextEntrypoint(),
    stopSignal: "SIGTERM",
    comments: [
      `${options.metadata.name} ${options.metadata.version}, written by chassis-ts ${VERSION}; see README.txt.`,
      `Native packages are for ${platform}: build with --platform ${platform}.`,
      `The base must provide Node.js at ${NODE_PATH} and the user ${APP_USER.uid}:${APP_USER.gid}.`,
      "Layers as the daemonless build makes them, in its order: a model change rebuilds only the last COPY.",
    ],
  });
  const dockerfile = join(options.dir, "Dockerfile");
  await writeFile(dockerfile, text);
  await writeFile(join(options.dir, ".dockerignore"), DOCKERIGNORE(layers.map((l) => l.folder)));
  await writeFile(
    join(options.dir, "README.txt"),
    readme({ metadata: options.metadata, platform: options.platform, baseImage: options.baseImage, iface, layers }),
  );
  progress("dockerfile", { path: dockerfile, files });
  return { dockerfile, files, layers };
}

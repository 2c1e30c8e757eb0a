/**
 * @module build/image/base
 * Resolves `--base`: `host` (this machine's Node.js), `oci-layout:DIR`,
 * `oci-archive:PATH` / `docker-archive:PATH`, or an image reference pulled
 * from a registry (image index or Docker manifest list -> the target
 * platform). The base's blobs are copied into the working layout as they
 * are: never unpacked, never re-compressed; blobs already there are skipped.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ToolError } from "../../core/tool-error.js";
import { readArchive } from "../oci/archive.js";
import type { Descriptor } from "../oci/descriptor.js";
import type { Digest } from "../oci/digest.js";
import { parseConfig, parseManifest } from "../oci/documents.js";
import { OciLayout } from "../oci/layout.js";
import { type CredentialLookup, parseReference, RegistryClient } from "../registry/index.js";
import type { BaseImage } from "./build.js";
import type { Platform } from "./bundle.js";

export type BaseSpec =
  | { kind: "host" }
  | { kind: "oci-layout"; dir: string; ref?: string }
  | { kind: "archive"; path: string }
  | { kind: "registry"; reference: string };

export function parseBaseSpec(text: string): BaseSpec {
  if (text === "host") return { kind: "host" };
  if (text.startsWith("oci-layout:")) {
    const [dir = "", ref] = text.slice("oci-layout:".length).split(/:(?=[^/]*$)/);
    if (!dir) throw new ToolError("CHASSIS_USAGE", `--base ${text}: give the layout folder, e.g. oci-layout:./base`);
    return ref ? { kind: "oci-layout", dir, ref } : { kind: "oci-layout", dir };
  }
  for (const prefix of ["oci-archive:", "docker-archive:"]) {
    if (text.startsWith(prefix)) {
      const path = text.slice(prefix.length);
      if (!path) throw new ToolError("CHASSIS_USAGE", `--base ${text}: give the archive's path`);
      return { kind: "archive", path };
    }
  }
  parseReference(text); // validates, with a clear message
  return { kind: "registry", reference: text };
}

async function copyImage(from: OciLayout, to: OciLayout, descriptors: readonly Descriptor[]): Promise<void> {
  for (const descriptor of descriptors) {
    if (await to.hasBlob(descriptor.digest, descriptor.size)) continue;
    await to.writeBlob({ path: from.blobPath(descriptor.digest) }, { digest: descriptor.digest, size: descriptor.size });
  }
}

/** Makes the base available in `layout` and returns what the build needs of it. */
export async function resolveBase(
  spec: BaseSpec,
  layout: OciLayout,
  platform: Platform,
  options: {
    credentials?: (registry: string, repository: string) => CredentialLookup;
    progress?: (step: string, detail: Record<string, unknown>) => void;
  } = {},
): Promise<BaseImage> {
  const progress = options.progress ?? (() => {});
  if (spec.kind === "host") return { kind: "host" };
  if (spec.kind === "oci-layout" || spec.kind === "archive") {
    const temp = spec.kind === "archive" ? await mkdtemp(join(tmpdir(), "chassis-base-")) : undefined;
    try {
      const source = spec.kind === "archive" ? (await readArchive(spec.path, temp as string)).layout : await OciLayout.open(spec.dir);
      const image = await source.resolve({ ...(spec.kind === "oci-layout" && spec.ref ? { ref: spec.ref } : {}), platform });
      await copyImage(source, layout, [image.manifest.config, ...image.manifest.layers]);
      const name = spec.kind === "archive" ? spec.path : spec.dir;
      progress("base", { name, layers: image.manifest.layers.length });
      return { kind: "layout", name, manifest: image.manifest, config: image.config, digest: image.descriptor.digest };
    } finally {
      if (temp) await rm(temp, { recursive: true, force: true });
    }
  }
  const ref = parseReference(spec.reference);
  const client = new RegistryClient({
    registry: ref.registry,
    ...(options.credentials ? { credentials: options.credentials(ref.registry, ref.repository) } : {}),
  });
  const resolved = await client.resolvePlatform(ref.repository, ref.digest ?? ref.tag ?? "latest", platform);
  const manifest = parseManifest(resolved.manifest.bytes, spec.reference);
  const configBytes = await client.getBlobBytes(ref.repository, manifest.config.digest);
  const config = parseConfig(configBytes, `config of ${spec.reference}`);
  await layout.writeBlob(configBytes, { digest: manifest.config.digest, size: manifest.config.size });
  for (const layer of manifest.layers) {
    if (await layout.hasBlob(layer.digest, layer.size)) continue;
    const download = await client.getBlob(ref.repository, layer.digest, { size: layer.size });
    await layout.writeBlob(() => download.stream, { digest: layer.digest, size: layer.size });
    progress("pull", { layer: layer.digest, size: layer.size });
  }
  return { kind: "layout", name: spec.reference, manifest, config, digest: resolved.manifest.digest as Digest };
}

/**
 * @module build/publish/publish
 * Where a built image goes: an OCI layout folder, an oci-archive, a "dual"
 * docker-archive (what `docker load` and `podman load` take), or the
 * registry named by its reference. Each output reads the working layout.
 */
import type { Writable } from "node:stream";
import { ToolError } from "../../core/tool-error.js";
import { type ArchiveResult, writeDockerArchive, writeOciArchive } from "../oci/archive.js";
import type { Descriptor } from "../oci/descriptor.js";
import { OciLayout } from "../oci/layout.js";
import { type CredentialLookup, layoutBlobReader, parseReference, RegistryClient } from "../registry/index.js";

export type Output =
  | { kind: "oci-archive"; path: string }
  | { kind: "docker-archive"; path: string }
  | { kind: "oci-layout"; dir: string }
  | { kind: "registry" };

export const OUTPUT_FORMS = "oci-archive:PATH, docker-archive:PATH, oci-layout:DIR or registry";

export function parseOutput(text: string): Output {
  if (text === "registry") return { kind: "registry" };
  const colon = text.indexOf(":");
  const kind = colon === -1 ? text : text.slice(0, colon);
  const where = colon === -1 ? "" : text.slice(colon + 1);
  if ((kind === "oci-archive" || kind === "docker-archive") && where) return { kind, path: where };
  if (kind === "oci-layout" && where) return { kind, dir: where };
  throw new ToolError("CHASSIS_USAGE", `--output "${text}" is not an output (expected ${OUTPUT_FORMS})`);
}

export interface PublishResult {
  /** Where the image went, for the summary. */
  readonly where: string;
  /** The archive's own digest (archives), or the manifest digest (layout, registry). */
  readonly digest: string;
  readonly size?: number;
}

/** True for the index.json entry of this image. */
const only = (image: Descriptor) => (entry: Descriptor) => entry.digest === image.digest;

export async function publish(
  layout: OciLayout,
  image: Descriptor,
  reference: string,
  output: Output,
  options: {
    credentials?: (registry: string, repository: string) => CredentialLookup;
    sourceDateEpoch?: string;
    onBlob?: (what: string) => void;
  } = {},
): Promise<PublishResult> {
  const archiveOptions = { select: only(image), ...(options.sourceDateEpoch ? { sourceDateEpoch: options.sourceDateEpoch } : {}) };
  const archived = (where: string, result: ArchiveResult): PublishResult => ({ where, digest: result.digest, size: result.size });
  switch (output.kind) {
    case "oci-archive":
      return archived(output.path, await writeOciArchive(layout, output.path as string | Writable, archiveOptions));
    case "docker-archive":
      return archived(output.path, await writeDockerArchive(layout, output.path, archiveOptions));
    case "oci-layout": {
      const target = await OciLayout.init(output.dir).catch(() => OciLayout.open(output.dir));
      for (const descriptor of await layout.reachable([image])) {
        if (!(await target.hasBlob(descriptor.digest, descriptor.size))) {
          await target.writeBlob({ path: layout.blobPath(descriptor.digest) }, { digest: descriptor.digest, size: descriptor.size });
        }
      }
      await target.addImage(image, reference);
      return { where: output.dir, digest: image.digest };
    }
    case "registry": {
      const ref = parseReference(reference);
      const client = new RegistryClient({
        registry: ref.registry,
        ...(options.credentials ? { credentials: options.credentials(ref.registry, ref.repository) } : {}),
      });
      const manifest = await layout.readBlob(image.digest, image.size);
      const pushed = await client.pushImage({
        repository: ref.repository,
        ...(ref.tag ? { tag: ref.tag } : {}),
        manifest,
        mediaType: image.mediaType,
        blobs: layoutBlobReader(layout.dir),
        ...(options.onBlob
          ? { onBlob: (result: { digest: string; action: string }) => options.onBlob?.(`${result.action} ${result.digest}`) }
          : {}),
      });
      return { where: pushed.reference, digest: pushed.digest };
    }
  }
}

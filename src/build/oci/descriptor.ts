/**
 * @module build/oci/descriptor
 * Descriptors (image-spec `descriptor.md`): what a manifest, index or
 * index.json says about a blob, and platforms with the matching rules
 * containerd uses (`platforms.normalizeArch`, oci-build.md section 5).
 */
import { ToolError } from "../../core/tool-error.js";
import { assertDigest, type Digest, sha256 } from "./digest.js";
import { jsonMap, jsonNumber, jsonString, jsonStrings, withExtras } from "./json.js";

export interface Platform {
  /** GOARCH names: amd64, arm64, arm, 386, ppc64le, s390x, riscv64. */
  architecture: string;
  /** GOOS names: linux (windows and others are only carried through). */
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  /** v8 for arm64, v7/v6 for arm; amd64 may say v2/v3. */
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Embedded content, base64. */
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

/** A descriptor of these exact bytes. */
export function descriptorOf(
  mediaType: string,
  bytes: Uint8Array,
  extra: Partial<Omit<Descriptor, "mediaType" | "digest" | "size">> = {},
): Descriptor {
  return { mediaType, digest: sha256(bytes), size: bytes.byteLength, ...extra };
}

export function platformJson(platform: Platform | undefined): string | undefined {
  if (platform === undefined) return undefined;
  return withExtras(platform, [
    ["architecture", jsonString(platform.architecture)],
    ["os", jsonString(platform.os)],
    ["os.version", platform["os.version"] === undefined ? undefined : jsonString(platform["os.version"])],
    ["os.features", jsonStrings(platform["os.features"])],
    ["variant", platform.variant === undefined ? undefined : jsonString(platform.variant)],
    ["features", jsonStrings(platform.features)],
  ]);
}

/** Canonical compact JSON of a descriptor: mediaType, digest, size, urls, annotations, data, platform, artifactType, then unknown fields. */
export function descriptorJson(descriptor: Descriptor): string {
  return withExtras(descriptor, [
    ["mediaType", jsonString(descriptor.mediaType)],
    ["digest", jsonString(descriptor.digest)],
    ["size", jsonNumber(descriptor.size)],
    ["urls", jsonStrings(descriptor.urls)],
    ["annotations", jsonMap(descriptor.annotations)],
    ["data", descriptor.data === undefined ? undefined : jsonString(descriptor.data)],
    ["platform", platformJson(descriptor.platform)],
    ["artifactType", descriptor.artifactType === undefined ? undefined : jsonString(descriptor.artifactType)],
  ]);
}

/** Checks the shape of a parsed descriptor (mediaType, digest, size); throws CHASSIS_IMAGE_INVALID naming `where`. */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: a descriptor must be an object`);
  }
  const record = value as Record<string, unknown>;
  if (typeof record.mediaType !== "string" || record.mediaType === "") {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: descriptor has no mediaType`);
  }
  assertDigest(record.digest, `${where}.digest`);
  if (typeof record.size !== "number" || !Number.isSafeInteger(record.size) || record.size < 0) {
    throw new ToolError("CHASSIS_IMAGE_INVALID", `${where}: descriptor size ${JSON.stringify(record.size)} is not a whole number of bytes`);
  }
  return record as unknown as Descriptor;
}

// Platforms.

/** `linux/arm64/v8` style. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** Parses `os/arch[/variant]` (e.g. `linux/amd64`, `linux/arm/v7`); throws CHASSIS_USAGE. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split("/");
  if (!os || !architecture || rest.length > 0 || variant === "") {
    throw new ToolError("CHASSIS_USAGE", `platform "${text}" is not os/arch[/variant] (e.g. linux/amd64, linux/arm64, linux/arm/v7)`);
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** The platform of this Node process, in OCI names (oci-build.md section 5, "Node -> OCI"). */
export function nodePlatform(platform: string = process.platform, arch: string = process.arch, armVersion?: string | number): Platform {
  const architecture = ({ x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm" } as Record<string, string>)[arch] ?? arch;
  const os = platform === "win32" ? "windows" : platform;
  if (architecture === "arm") {
    const version = armVersion ?? (process.config.variables as unknown as Record<string, unknown>).arm_version;
    return { architecture, os, variant: `v${version ?? 7}` };
  }
  return { architecture, os };
}

/** Arch aliases and default variants, as containerd's `normalizeArch` (x86_64 -> amd64, aarch64 -> arm64 v8, arm -> v7). */
export function normalizePlatform(platform: Platform): Platform {
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  const os = platform.os.toLowerCase();
  switch (architecture) {
    case "i386":
      architecture = "386";
      variant = undefined;
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      architecture = "amd64";
      if (variant === "v1") variant = undefined;
      break;
    case "aarch64":
    case "arm64":
      architecture = "arm64";
      if (variant === undefined || variant === "8" || variant === "v8") variant = "v8";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === undefined || variant === "7" || variant === "7l") variant = "v7";
      else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
      break;
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Whether `candidate` can run where `wanted` is asked for: same os and arch after normalizing; a wanted variant must match. */
export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const c = normalizePlatform(candidate);
  const w = normalizePlatform(wanted);
  if (c.os !== w.os || c.architecture !== w.architecture) return false;
  // An explicit variant on the wanted side must match; arm64's default v8 is filled on both sides.
  return wanted.variant === undefined && w.architecture !== "arm" ? true : c.variant === w.variant;
}

/** BuildKit attestation manifests and other entries that are not runnable images. */
function isRunnable(descriptor: Descriptor): boolean {
  if (!descriptor.platform) return false;
  if (descriptor.platform.os === "unknown" || descriptor.platform.architecture === "unknown") return false;
  return descriptor.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest";
}

/**
 * The first descriptor of an index (or manifest list) for the platform
 * (image-spec: "the first matching entry SHOULD be used"); entries without a
 * platform and attestation manifests are skipped. Throws
 * CHASSIS_PLATFORM_NOT_FOUND listing what the index has.
 */
export function selectPlatform(manifests: readonly Descriptor[], wanted: Platform, where = "the image index"): Descriptor {
  const runnable = manifests.filter(isRunnable);
  const found = runnable.find((descriptor) => descriptor.platform && platformMatches(descriptor.platform, wanted));
  if (found) return found;
  const available = runnable.map((descriptor) => formatPlatform(descriptor.platform as Platform));
  throw new ToolError(
    "CHASSIS_PLATFORM_NOT_FOUND",
    `${where} has no manifest for ${formatPlatform(wanted)} (it has ${available.length > 0 ? available.join(", ") : "no runnable platforms"})`,
  );
}

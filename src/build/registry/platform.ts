/**
 * @module build/registry/platform
 * Choosing one manifest from an image index or a Docker manifest list, the
 * way containerd's `platforms` package does (oci-build.md §5): architecture
 * aliases (`x86_64` -> `amd64`, `aarch64` -> `arm64`), default variants
 * (arm64 `v8`, arm `v7`, amd64 `v1` = none), attestation entries skipped, and
 * the first match wins (image-spec image-index.md: "the first matching entry
 * SHOULD be used").
 */
import type { Descriptor, Platform } from "./media-types.js";

/** What to pick: `{os: "linux", architecture: "arm64"}`; a variant only where it matters (arm). */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  i386: "386",
  i686: "386",
  x86: "386",
};

/** containerd `normalizeArch`: canonical architecture and variant. */
export function normalizePlatform(platform: PlatformSpec | Platform): { os: string; architecture: string; variant: string } {
  const os = platform.os.toLowerCase();
  const raw = platform.architecture.toLowerCase();
  const architecture = ARCH_ALIASES[raw] ?? raw;
  let variant = (platform.variant ?? "").toLowerCase();
  if (raw === "armhf" && variant === "") variant = "v7";
  if (raw === "armel" && variant === "") variant = "v6";
  if (/^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === "arm64" && variant === "") variant = "v8";
  if (architecture === "arm" && variant === "") variant = "v7";
  if (architecture === "amd64" && variant === "v1") variant = "";
  return { os, architecture, variant };
}

/** `linux/arm64/v8`, `linux/amd64` */
export function formatPlatform(platform: PlatformSpec | Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined && p !== "").join("/");
}

/** Parses `linux/arm64/v8` or `linux/amd64`; undefined when malformed. */
export function parsePlatform(text: string): PlatformSpec | undefined {
  const [os, architecture, variant, ...rest] = text.split("/");
  if (!os || !architecture || rest.length > 0 || variant === "") return undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The platform of this Node process, in OCI terms (`process.arch` x64 -> amd64, ia32 -> 386). */
export function nodePlatform(platform: string = process.platform, arch: string = process.arch, armVersion?: string): PlatformSpec {
  const architecture = arch === "x64" ? "amd64" : arch === "ia32" ? "386" : arch;
  const spec: PlatformSpec = { os: platform === "win32" ? "windows" : platform, architecture };
  if (architecture === "arm" && armVersion) spec.variant = `v${armVersion}`;
  return spec;
}

/** True for index entries that are not images (BuildKit attestations, `unknown/unknown`). */
export function isAttestation(descriptor: Descriptor): boolean {
  return (
    descriptor.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (descriptor.platform?.os === "unknown" && descriptor.platform.architecture === "unknown")
  );
}

/**
 * The first descriptor for `wanted`. An exact (normalised) variant match is
 * preferred; when `wanted` names no variant, an entry whose variant differs
 * is taken only if no exact one exists (e.g. `amd64/v3` for plain `amd64`).
 */
export function selectPlatform(manifests: readonly Descriptor[], wanted: PlatformSpec): Descriptor | undefined {
  const want = normalizePlatform(wanted);
  const images = manifests.filter((d) => d.platform !== undefined && !isAttestation(d));
  const same = images.filter((d) => {
    const have = normalizePlatform(d.platform as Platform);
    return have.os === want.os && have.architecture === want.architecture;
  });
  const exact = same.find((d) => normalizePlatform(d.platform as Platform).variant === want.variant);
  if (exact) return exact;
  return wanted.variant === undefined ? same[0] : undefined;
}

/** The platforms an index offers (attestations left out), for error messages. */
export function availablePlatforms(manifests: readonly Descriptor[]): string[] {
  return manifests.filter((d) => d.platform !== undefined && !isAttestation(d)).map((d) => formatPlatform(d.platform as Platform));
}

/**
 * @module build/image/host-base
 * `--base host`: a minimal runtime assembled from this machine's own Node.js
 * for air-gapped builds: the node binary, the shared libraries it links
 * (its `ldd` closure, with the host's symlinks reproduced: merged-/usr hosts
 * link /lib -> usr/lib), CA certificates, /tmp, and a passwd/group with the
 * non-root user the server runs as (reference oci-build.md section 6).
 */
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { ToolError } from "../../core/tool-error.js";
import type { LayerFile, Platform } from "./bundle.js";

export const APP_USER = Object.freeze({ name: "app", uid: 1000, gid: 1000, home: "/app" });
export const NODE_PATH = "/usr/local/bin/node";

const encoder = new TextEncoder();
const text = (path: string, content: string, mode = 0o644): LayerFile => {
  const data = encoder.encode(content);
  return { path, data, mode, size: data.byteLength };
};

export interface HostBase {
  readonly files: LayerFile[];
  readonly platform: Platform;
  /** What the base was made from, for labels: node version, libc. */
  readonly description: string;
}

export function hostPlatform(): Platform {
  if (process.platform !== "linux") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `--base host needs a Linux machine (this is ${process.platform}); use --base REF or --base oci-layout:DIR`,
    );
  }
  if (process.arch !== "x64" && process.arch !== "arm64")
    throw new ToolError("CHASSIS_USAGE", `--base host does not support ${process.arch}`);
  return { os: "linux", architecture: process.arch === "x64" ? "amd64" : "arm64" };
}

/** Shared libraries a binary needs, from `ldd` (the loader included). */
export function sharedLibraries(binary: string): string[] {
  let output: string;
  try {
    output = execFileSync("ldd", [binary], { encoding: "utf8" });
  } catch (error) {
    throw new ToolError("CHASSIS_INTERNAL", `ldd ${binary} failed: ${(error as Error).message}`);
  }
  const libraries: string[] = [];
  for (const line of output.split("\n")) {
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libraries.push(path);
  }
  return libraries;
}

/**
 * Adds a host path to the layer at the same path, walking every component:
 * a symlinked component becomes a symlink entry with the same target, and the
 * walk continues at the resolved path; the final file is copied.
 */
function addHostPath(path: string, files: Map<string, LayerFile>, depth = 0): void {
  if (depth > 40) throw new ToolError("CHASSIS_INTERNAL", `too many symlinks resolving ${path}`);
  const parts = resolve(path).split("/").filter(Boolean);
  let current = "";
  for (let i = 0; i < parts.length; i++) {
    current = `${current}/${parts[i]}`;
    const stat = lstatSync(current);
    if (stat.isSymbolicLink()) {
      const target = readlinkSync(current);
      if (!files.has(current)) files.set(current, { path: current, type: "symlink", linkTarget: target, mode: 0o777, size: 0 });
      const resolved = posix.resolve(dirname(current), target);
      addHostPath(join(resolved, ...parts.slice(i + 1)), files, depth + 1);
      return;
    }
  }
  const stat = statSync(current);
  if (stat.isFile() && !files.has(current))
    files.set(current, { path: current, source: current, mode: stat.mode & 0o111 ? 0o755 : 0o644, size: stat.size });
}

/**
 * The files of the host base for this machine. `nativeBinaries` (the model's
 * .node and .so files) add their own shared libraries, which node's ldd
 * closure does not cover (onnxruntime needs librt, for one).
 */
export function hostBase(nativeBinaries: readonly string[] = []): HostBase {
  const platform = hostPlatform();
  const node = realpathSync(process.execPath);
  const files = new Map<string, LayerFile>();
  files.set(NODE_PATH, { path: NODE_PATH, source: node, mode: 0o755, size: statSync(node).size });
  for (const library of sharedLibraries(node)) addHostPath(library, files);
  for (const binary of nativeBinaries) {
    // Libraries shipped inside the package itself are in the dependency layer already.
    for (const library of sharedLibraries(binary)) if (!library.includes("/node_modules/")) addHostPath(library, files);
  }
  // Native addons (onnxruntime-node) link libstdc++ and libgcc_s even when node does not list them.
  for (const extra of ["libstdc++.so.6", "libgcc_s.so.1"]) {
    for (const dir of [
      "/lib/x86_64-linux-gnu",
      "/usr/lib/x86_64-linux-gnu",
      "/lib/aarch64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/lib64",
      "/usr/lib64",
    ]) {
      const candidate = join(dir, extra);
      if (existsSync(candidate)) {
        addHostPath(candidate, files);
        break;
      }
    }
  }
  const certs = "/etc/ssl/certs/ca-certificates.crt";
  if (existsSync(certs))
    files.set(certs, { path: certs, source: realpathSync(certs), mode: 0o644, size: statSync(realpathSync(certs)).size });
  const { name, uid, gid, home } = APP_USER;
  files.set(
    "/etc/passwd",
    text(
      "/etc/passwd",
      `root:x:0:0:root:/root:/sbin/nologin\n${name}:x:${uid}:${gid}:${name}:${home}:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`,
    ),
  );
  files.set("/etc/group", text("/etc/group", `root:x:0:\n${name}:x:${gid}:\nnogroup:x:65534:\n`));
  files.set("/tmp", { path: "/tmp", type: "dir", mode: 0o1777, size: 0 });
  files.set(home, { path: home, type: "dir", mode: 0o755, size: 0, uid, gid });
  const libc = (() => {
    try {
      return execFileSync("ldd", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? "";
    } catch {
      return "";
    }
  })();
  return { files: [...files.values()], platform, description: `node ${process.version} from this host (${libc.trim() || "unknown libc"})` };
}

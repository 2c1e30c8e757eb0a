/**
 * @module test/helpers/registry
 * Starts Debian's `docker-registry` (distribution 2.8) by hand for tests: on
 * 127.0.0.1 and a free port, with a temporary storage folder and a generated
 * config, optionally behind htpasswd (bcrypt) basic auth. Installs the
 * packages first when they are missing and we are root (a no-op when they are
 * there). Never uses the package's own config: it binds :5000 on every
 * interface and points htpasswd at a folder (oci-build.md §4.1, pitfall 11).
 *
 * Also runnable as a script: `node --import tsx test/helpers/registry.ts [--user NAME:PASS]`
 * prints the URL and serves until Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StartedRegistry {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  readonly host: string;
  /** The htpasswd user, when started with auth. */
  readonly auth: { username: string; password: string } | undefined;
  /** Everything the registry logged so far (access log included). */
  logs(): string;
  /** Stops the process (by its pid) and deletes its storage. */
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  /** Put the registry behind htpasswd basic auth with this one user. */
  auth?: { username: string; password: string };
  /** How long to wait for `GET /v2/` to answer. Default 15 s. */
  readyTimeoutMs?: number;
}

const PACKAGES = ["docker-registry", "apache2-utils"];

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/**
 * Makes sure `docker-registry` and `htpasswd` exist, installing the Debian
 * packages when we are root and they are missing. Returns undefined when
 * ready, else the reason they are not (for a test to skip or fail on).
 */
export function ensureRegistryInstalled(): string | undefined {
  if (onPath("docker-registry") && onPath("htpasswd")) return undefined;
  if (process.getuid?.() !== 0)
    return `docker-registry or htpasswd is missing and we are not root: apt-get install -y ${PACKAGES.join(" ")}`;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...PACKAGES], { env, encoding: "utf8" });
  let result = install();
  if (result.status !== 0) {
    // A fresh machine has no package lists yet.
    spawnSync("apt-get", ["update", "-qq"], { env, stdio: "ignore" });
    result = install();
  }
  if (result.status !== 0 || !onPath("docker-registry") || !onPath("htpasswd")) {
    return `apt-get install ${PACKAGES.join(" ")} failed (exit ${result.status}): ${(result.stderr ?? "").trim().slice(-500)}`;
  }
  return undefined;
}

/** A port that was free a moment ago (the registry binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a registry; throws if the packages are missing (call ensureRegistryInstalled first). */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<StartedRegistry> {
  const missing = ensureRegistryInstalled();
  if (missing !== undefined) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), "chassis-registry-"));
  let lastError = "";
  // A port may be taken between freePort() and the bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = [
      "version: 0.1",
      "log: {level: info, accesslog: {disabled: false}}",
      `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(dir, "data"))}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}", headers: {X-Content-Type-Options: [nosniff]}}`,
    ];
    if (options.auth) {
      const htpasswd = join(dir, "htpasswd");
      // bcrypt (-B) is the only hash distribution accepts.
      const result = spawnSync("htpasswd", ["-Bbn", options.auth.username, options.auth.password], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`htpasswd failed: ${result.stderr}`);
      writeFileSync(htpasswd, result.stdout, { mode: 0o600 });
      config.push(`auth: {htpasswd: {realm: chassis-test, path: ${JSON.stringify(htpasswd)}}}`);
    }
    const configPath = join(dir, "config.yml");
    writeFileSync(configPath, `${config.join("\n")}\n`);
    const child = spawn("docker-registry", ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
    let logs = "";
    child.stdout?.setEncoding("utf8").on("data", (s: string) => {
      logs += s;
    });
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      logs += s;
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitReady(url, child, options.readyTimeoutMs ?? 15_000);
    if (ready) {
      return {
        url,
        host: `127.0.0.1:${port}`,
        auth: options.auth ? { ...options.auth } : undefined,
        logs: () => logs,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(timer);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
    lastError = logs.trim().split("\n").slice(-5).join("\n");
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start:\n${lastError}`);
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const response = await fetch(`${url}/v2/`);
      await response.arrayBuffer();
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

// `node --import tsx test/helpers/registry.ts [--user NAME:PASS]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const userFlag = process.argv.indexOf("--user");
  const user = userFlag >= 0 ? process.argv[userFlag + 1] : undefined;
  const colon = user?.indexOf(":") ?? -1;
  const auth = user && colon > 0 ? { username: user.slice(0, colon), password: user.slice(colon + 1) } : undefined;
  const registry = await startRegistry(auth ? { auth } : {});
  process.stdout.write(`${registry.url}${auth ? ` (basic auth: user ${auth.username})` : ""}\n`);
  const stop = () => {
    void registry.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

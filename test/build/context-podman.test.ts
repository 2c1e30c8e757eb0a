/**
 * `chassis build --context DIR` checked with a real Dockerfile builder:
 * `podman build` of the context (FROM a base loaded locally), run with
 * `podman run -p` on loopback, must answer OMI Status/Run and KServe v1
 * predict like the daemonless image, and carry the same config (Labels, Env,
 * Entrypoint, User, WorkingDir, ExposedPorts, StopSignal) and the same /app
 * tree as the daemonless image of the same model on the same base.
 *
 * The base is made daemonlessly, as `--base host` makes it (this machine's
 * node, its libraries and the model's native ones' libraries, a passwd with
 * user 1000), written to an OCI layout and a dual docker-archive, and
 * `podman load`ed into a private store (oci-build.md: podman with --root,
 * --runroot, runc, cgroupfs; ulimits on run). Everything is removed at the
 * end: containers, images, the store.
 *
 * Skipped when podman or runc is missing, except under CI=true, where that fails.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { dockerfileQuote, writeBuildContext } from "../../src/build/context/dockerfile.js";
import { buildImage, toTarEntry } from "../../src/build/image/build.js";
import { bundleModel } from "../../src/build/image/bundle.js";
import { hostBase, hostPlatform } from "../../src/build/image/host-base.js";
import { writeDockerArchive } from "../../src/build/oci/archive.js";
import type { Digest } from "../../src/build/oci/digest.js";
import { encodeConfig, encodeManifest, type ImageConfig, type ImageManifest, MediaType } from "../../src/build/oci/documents.js";
import { Annotation, OciLayout } from "../../src/build/oci/layout.js";
import { writeLayer } from "../../src/build/oci/tar.js";
import { OmiClient } from "../../src/client/omi-client.js";
import type { ModelMetadata } from "../../src/model/metadata.js";
import { loadModelModule } from "../../src/server/load-module.js";
import { freePort } from "../helpers/registry.js";

const run = promisify(execFile);
const DIGITS = fileURLToPath(new URL("../../examples/digits", import.meta.url));
const SAMPLE = readFileSync(join(DIGITS, "sample.json"));
const BASE_REF = "localhost/chassis-node-base:20";
const DAEMONLESS_REF = "localhost/chassis-context-test/daemonless:1";
const CONTEXT_REF = "localhost/chassis-context-test/dockerfile:1";
const LABELS_REF = "localhost/chassis-context-test/labels:1";
const ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

const missing = !onPath("podman") || !onPath("runc") ? "podman and runc are needed (apt-get install -y podman runc)" : undefined;
if (missing !== undefined && process.env.CI === "true") {
  test("podman is available (required under CI)", () => {
    assert.fail(`podman cannot be used: ${missing}`);
  });
}
const skip = missing !== undefined ? `podman is not available: ${missing}` : false;

interface Inspected {
  Id: string;
  RootFS: { Layers: string[] };
  Config: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    User?: string;
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown>;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
  };
}

/** Lists /app in a container of the image: path, type, mode, owner, size, link target; and who and where the process is. */
const LIST_APP = `
const fs = require("node:fs"), path = require("node:path");
const out = [];
const walk = (p) => {
  const s = fs.lstatSync(p);
  const type = s.isSymbolicLink() ? "l" : s.isDirectory() ? "d" : "f";
  out.push([p, type, (s.mode & 0o7777).toString(8), s.uid + ":" + s.gid, type === "f" ? s.size : 0, type === "l" ? fs.readlinkSync(p) : ""].join(" "));
  if (type === "d") for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n));
};
walk("/app");
console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(), tree: out }));
`;

describe("chassis build --context, built with podman build", { skip, timeout: 180_000 }, () => {
  let tmp = "";
  let metadata: ModelMetadata;
  let contextDir = "";
  let baseDigest: Digest;
  const containers: string[] = [];
  const timings: Record<string, number> = {};

  const podman = async (args: string[], timeoutMs = 60_000): Promise<string> => {
    const store = ["--root", join(tmp, "root"), "--runroot", join(tmp, "run"), "--runtime", "runc", "--cgroup-manager", "cgroupfs"];
    try {
      const { stdout } = await run("podman", [...store, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: "utf8" });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`podman ${args.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}${e.stdout ?? ""}`.slice(0, 6000));
    }
  };
  const time = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await step();
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };
  const inspect = async (ref: string): Promise<Inspected> =>
    (JSON.parse(await podman(["image", "inspect", ref])) as Inspected[])[0] as Inspected;
  const listApp = async (ref: string): Promise<{ uid: number; gid: number; cwd: string; tree: string[] }> =>
    JSON.parse(await podman(["run", "--rm", ...ULIMITS, "--network", "none", "--entrypoint", "/usr/local/bin/node", ref, "-e", LIST_APP]));

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "chassis-context-"));
    const loaded = await loadModelModule(DIGITS);
    metadata = loaded.model.metadata;
    const platform = hostPlatform();
    const layout = await OciLayout.init(join(tmp, "layout"));

    // The base, as --base host makes it (with the model's native libraries' own libraries).
    await time("base image (bundle, layer, layout)", async () => {
      const { dependencies } = await bundleModel(loaded.file, platform);
      const binaries = dependencies.filter((f) => f.source && /\.node$|\.so(\.\d+)*$/.test(f.path)).map((f) => f.source as string);
      const host = hostBase(binaries);
      const layer = await writeLayer(host.files.map(toTarEntry), { gzip: 1 });
      const layerDescriptor = await layout.writeLayer(layer);
      const config: ImageConfig = {
        architecture: platform.architecture,
        os: platform.os,
        config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        rootfs: { type: "layers", diff_ids: [layer.diffId] },
        history: [{ created: "1970-01-01T00:00:00Z", created_by: "chassis build --base host", comment: host.description }],
      };
      const encodedConfig = encodeConfig(config);
      await layout.writeDocument(encodedConfig);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: encodedConfig.descriptor,
        layers: [layerDescriptor],
      };
      const descriptor = await layout.writeDocument(encodeManifest(manifest));
      await layout.addImage(descriptor, BASE_REF, platform);
      baseDigest = descriptor.digest;
      return { manifest, config };
    }).then(async ({ manifest, config }) => {
      // The daemonless image of the same model on the same base, and the context, side by side.
      contextDir = join(tmp, "context");
      await Promise.all([
        time("daemonless build", () =>
          buildImage({
            modelFile: loaded.file,
            metadata,
            reference: DAEMONLESS_REF,
            layout,
            base: { kind: "layout", name: BASE_REF, manifest, config, digest: baseDigest },
            gzip: 1,
          }),
        ),
        time("writeBuildContext", () =>
          writeBuildContext({
            dir: contextDir,
            modelFile: loaded.file,
            metadata,
            baseImage: BASE_REF,
            baseDigest,
            interface: "both",
            platform,
          }),
        ),
      ]);
    });
    const named = (ref: string) => (entry: { annotations?: Record<string, string> }) =>
      entry.annotations?.[Annotation.ContainerdName] === ref;
    await time("archives", () =>
      Promise.all([
        writeDockerArchive(layout, join(tmp, "base.tar"), { select: named(BASE_REF) }),
        writeDockerArchive(layout, join(tmp, "daemonless.tar"), { select: named(DAEMONLESS_REF) }),
      ]),
    );
    await time("podman load (base, daemonless)", async () => {
      await podman(["load", "-q", "-i", join(tmp, "base.tar")]);
      await podman(["load", "-q", "-i", join(tmp, "daemonless.tar")]);
    });
    await time("podman build", () => podman(["build", "-q", "--pull=never", "-t", CONTEXT_REF, contextDir], 120_000));
  });

  after(async () => {
    if (!tmp) return;
    for (const name of containers) await podman(["rm", "-f", "-t", "0", name]).catch(() => {});
    // Every image and layer of the private store, then the store itself. Not `podman system reset`:
    // it also removes networks, which are not private to the store. The overlay driver bind-mounts
    // its folder onto itself: unmount what is left under ours, deepest first.
    await podman(["rmi", "-a", "-f"]).catch(() => {});
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((point) => point.startsWith(`${tmp}/`))
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) spawnSync("umount", [point], { stdio: "ignore" });
    rmSync(tmp, { recursive: true, force: true });
    if (process.env.TEST_LOG === "1") console.error("timings (ms):", timings);
  });

  test("the context has the files, a Dockerfile and its README", () => {
    const dockerfile = readFileSync(join(contextDir, "Dockerfile"), "utf8");
    assert.match(dockerfile, new RegExp(`^FROM ${BASE_REF}$`, "m"));
    assert.deepEqual(
      dockerfile.split("\n").filter((line) => line.startsWith("COPY")),
      [
        "COPY --chown=0:0 rootfs-runtime/ /",
        "COPY --chown=0:0 rootfs-dependencies/ /",
        "COPY --chown=0:0 rootfs-model/ /",
        "COPY --chown=1000:1000 rootfs-workdir/ /",
      ],
    );
    assert.match(readFileSync(join(contextDir, "README.txt"), "utf8"), /podman build/);
  });

  test("the image podman built serves OMI Status/Run and KServe v1 predict: sample.json is a 1", async () => {
    const [omiPort, httpPort] = [await freePort(), await freePort()];
    const name = `chassis-context-${process.pid}`;
    containers.push(name);
    await time("podman run", () =>
      podman([
        "run",
        "-d",
        "--name",
        name,
        ...ULIMITS,
        "-p",
        `127.0.0.1:${omiPort}:45000`,
        "-p",
        `127.0.0.1:${httpPort}:8080`,
        CONTEXT_REF,
      ]),
    );
    const client = new OmiClient({ address: `127.0.0.1:${omiPort}`, timeoutMs: 10_000 });
    try {
      const status = await time("ready (first Status 200)", () => client.waitUntilReady({ timeoutMs: 30_000 }));
      assert.equal(status.modelInfo?.modelName, metadata.name);
      assert.equal(status.modelInfo?.modelVersion, metadata.version);
      const response = await client.run([{ input: SAMPLE }]);
      assert.equal(response.statusCode, 200, response.message);
      assert.equal(response.outputs[0]?.success, true);
      const omiAnswer = JSON.parse(Buffer.from(response.outputs[0]?.output["results.json"] ?? new Uint8Array()).toString("utf8"));
      assert.equal(omiAnswer.classPredictions[0].class, 1);
    } finally {
      client.close();
    }
    const predict = await fetch(`http://127.0.0.1:${httpPort}/v1/models/digits-classifier:predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instances: [SAMPLE.toString("base64")] }),
    });
    const body = await predict.text();
    assert.equal(predict.status, 200, body);
    const [prediction] = (JSON.parse(body) as { predictions: Array<string | { b64: string }> }).predictions;
    const text = typeof prediction === "string" ? prediction : Buffer.from(prediction?.b64 ?? "", "base64").toString("utf8");
    assert.equal(JSON.parse(text).classPredictions[0].class, 1);

    // SIGTERM (the image's StopSignal) ends it promptly and cleanly.
    const stopped = performance.now();
    await podman(["stop", "-t", "10", name]);
    const stopMs = performance.now() - stopped;
    assert.ok(stopMs < 8_000, `podman stop took ${Math.round(stopMs)} ms: SIGTERM was not handled`);
    assert.equal((await podman(["inspect", "--format", "{{.State.ExitCode}}", name])).trim(), "0");
  });

  test("podman inspect shows the daemonless image's Labels, Env, Entrypoint, Cmd, User, WorkingDir, ExposedPorts, StopSignal", async () => {
    const [built, daemonless] = [await inspect(CONTEXT_REF), await inspect(DAEMONLESS_REF)];
    const labels = { ...(built.Config.Labels ?? {}) };
    // buildah's identity label is the one addition (podman build --identity-label=false leaves it out).
    delete labels["io.buildah.version"];
    assert.deepEqual(labels, daemonless.Config.Labels);
    assert.equal(labels[Annotation.BaseName], BASE_REF);
    assert.equal(labels[Annotation.BaseDigest], baseDigest);
    // The metadata label is JSON with quotes and backslashes: it round-trips exactly through the Dockerfile.
    assert.equal(JSON.parse(labels["ml.openmodel.metadata"] ?? "").outputs[0].description, metadata.outputs[0]?.description);
    for (const key of ["Env", "Entrypoint", "User", "WorkingDir", "ExposedPorts", "StopSignal"] as const) {
      assert.deepEqual(built.Config[key], daemonless.Config[key], `Config.${key}`);
    }
    assert.deepEqual(built.Config.Cmd ?? [], daemonless.Config.Cmd ?? [], "Config.Cmd");
    assert.deepEqual(built.Config.Entrypoint, ["/usr/local/bin/node", "/app/node_modules/chassis-ts/cli.mjs", "serve", "/app/model"]);
    // The base's layer, then one per COPY, as the daemonless image: metadata instructions add no layer.
    assert.equal(built.RootFS.Layers.length, 5, "base + runtime + dependencies + model + workdir");
    assert.equal(built.RootFS.Layers.length, daemonless.RootFS.Layers.length);
    assert.equal(built.RootFS.Layers[0], daemonless.RootFS.Layers[0], "the same base layer");
  });

  test("both images have the same /app tree (paths, modes, owners, sizes) and run as 1000:1000 in /app", async () => {
    const [built, daemonless] = [await listApp(CONTEXT_REF), await listApp(DAEMONLESS_REF)];
    assert.deepEqual({ uid: built.uid, gid: built.gid, cwd: built.cwd }, { uid: 1000, gid: 1000, cwd: "/app" });
    assert.ok(built.tree.length > 500, `only ${built.tree.length} entries under /app`);
    const missingInBuilt = daemonless.tree.filter((line) => !built.tree.includes(line));
    const extraInBuilt = built.tree.filter((line) => !daemonless.tree.includes(line));
    assert.deepEqual({ missingInBuilt, extraInBuilt }, { missingInBuilt: [], extraInBuilt: [] });
  });

  test("LABEL values with quotes, backslashes, $, braces, tabs and non-ASCII round-trip through podman build", async () => {
    const values: Record<string, string> = {
      "test.quotes": `say "hi" and 'bye'`,
      "test.backslashes": "C:\\path\\to\\n and \\\\server\\ and \\",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile variables, on purpose
      "test.dollar": "$HOME ${PATH} $$ \\$ ${x:-y} $",
      "test.json": JSON.stringify({ a: 'b"c', d: "e\\f", g: "$h", nl: "x\ny" }),
      "test.misc": "tab\there # not a comment {braces} [brackets] = equals ` backtick; semi & amp | pipe",
      "test.unicode": "Crème brûlée ✓ 数字 🙂",
      "test.spaces": "  leading and trailing  ",
      "test.empty": "",
    };
    const dir = join(tmp, "labels");
    mkdirSync(dir);
    const lines = Object.entries(values).map(([key, value]) => `${key}=${dockerfileQuote(value)}`);
    writeFileSync(join(dir, "Dockerfile"), `FROM ${BASE_REF}\nLABEL ${lines.join(" \\\n      ")}\n`);
    await time("podman build (labels)", () => podman(["build", "-q", "--pull=never", "-t", LABELS_REF, dir]));
    const labels = (await inspect(LABELS_REF)).Config.Labels ?? {};
    for (const [key, value] of Object.entries(values)) assert.equal(labels[key], value, key);
  });
});

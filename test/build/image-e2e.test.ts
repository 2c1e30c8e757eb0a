/**
 * Issue 4's end-to-end check, with real components on loopback and no Docker
 * daemon: `chassis build examples/digits --base host` into a docker-archive ->
 * `podman load` -> `podman run -p` -> OMI Status/Run and KServe v1 predict
 * answer -> `podman stop` (SIGTERM) exits promptly with status 0 -> a second
 * build gives the same digest and byte-identical archive -> push to Debian's
 * `docker-registry` (open, then htpasswd basic auth; a wrong password is exit
 * 20 and never printed) -> `podman pull` it back and run it -> `skopeo
 * inspect` shows the labels and annotations -> a model change re-uploads only
 * the model layer (read from the registry's access log: push progress is only
 * printed on a terminal) -> `chassis test-container ARCHIVE` answers.
 *
 * One sequential suite: each step uses what the previous ones made. Podman
 * runs from its own store in a temporary folder (scripts/start-podman-service.sh),
 * so the machine's images are neither seen nor touched. Without podman, runc,
 * skopeo or docker-registry the suite fails under CI=true and is skipped
 * elsewhere.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import { OmiClient } from "../../src/client/omi-client.js";
import { ensureRegistryInstalled, freePort, type StartedRegistry, startRegistry } from "../helpers/registry.js";
import { type ProcessResult, ROOT, runCli, runProcess } from "../helpers/server.js";

// Reproducibility is checked with the default `created` (SOURCE_DATE_EPOCH unset); runCli passes our env on.
delete process.env.SOURCE_DATE_EPOCH;

const SAMPLE = join(ROOT, "examples", "digits", "sample.json");
const USER = { username: "chassis", password: "e2e-S3cret-pw" };
const WRONG_PASSWORD = "e2e-Wr0ng-pw";
const BUILD_TIMEOUT = 180_000;

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function missingTools(): string | undefined {
  const absent = ["podman", "runc", "skopeo"].filter((command) => !onPath(command));
  if (absent.length > 0) return `${absent.join(", ")} not installed (apt-get install podman runc skopeo)`;
  return ensureRegistryInstalled();
}

const missing = missingTools();
if (missing !== undefined && process.env.CI === "true") {
  test("podman, runc, skopeo and docker-registry are available (required under CI)", () => {
    assert.fail(`the image end-to-end test cannot run: ${missing}`);
  });
}
const skip = missing !== undefined ? `image end-to-end test needs podman, runc, skopeo and docker-registry: ${missing}` : false;

interface Run extends ProcessResult {
  ms: number;
}

/** runProcess, timed. Asynchronous, so the registries keep logging through their pipes meanwhile. */
async function run(command: string, args: readonly string[], timeoutMs = 120_000): Promise<Run> {
  const started = performance.now();
  const result = await runProcess(command, [...args], { timeoutMs });
  return { ...result, ms: performance.now() - started };
}

function succeeded(result: Run, what: string): string {
  assert.equal(result.code, 0, `${what} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

interface Summary {
  reference: string;
  digest: string;
  config: string;
  layers: Record<string, string>;
}

/** Reads the summary `chassis build` prints on stdout. */
function summary(stdout: string): Summary {
  const reference = /^built (\S+) in [\d.]+ s$/m.exec(stdout)?.[1];
  const digest = /^ {2}image digest\s+(sha256:[0-9a-f]{64})$/m.exec(stdout)?.[1];
  const config = /^ {2}config \(ID\)\s+(sha256:[0-9a-f]{64})$/m.exec(stdout)?.[1];
  assert.ok(reference && digest && config, `no build summary in:\n${stdout}`);
  const layers: Record<string, string> = {};
  for (const [, name, layerDigest] of stdout.matchAll(/^ {2}(\w+) layer\s+.*\s(sha256:[0-9a-f]{64})$/gm))
    layers[name as string] = layerDigest as string;
  assert.ok(layers.base && layers.runtime && layers.model, `the summary lacks the base, runtime or model layer:\n${stdout}`);
  return { reference, digest, config, layers };
}

/** The labels and manifest annotations every image carries (issue 4, item 3). */
function checkMetadata(values: Record<string, string> | undefined, where: string): void {
  assert.ok(values, `${where}: none`);
  assert.deepEqual(JSON.parse(values["ml.openmodel.interfaces"] ?? "null"), ["ml.openmodel.protocols.v1"], where);
  assert.deepEqual(JSON.parse(values["ml.openmodel.protocols"] ?? "null"), [["v1"]], where);
  assert.equal(values["ml.openmodel.port"], "45000", where);
  assert.equal(values["ml.openml.model_name"], "Digits Classifier", where);
  assert.equal(values["org.opencontainers.image.title"], "Digits Classifier", where);
  assert.equal(values["org.opencontainers.image.version"], "1.0.0", where);
  assert.equal(values["org.opencontainers.image.created"], "1970-01-01T00:00:00Z", where);
}

function checkMetadataLabel(labels: Record<string, string> | undefined, where: string): void {
  const metadata = JSON.parse(labels?.["ml.openmodel.metadata"] ?? "null") as {
    model_info?: { model_name?: string; model_version?: string };
    inputs?: Array<{ filename: string }>;
  } | null;
  assert.equal(metadata?.model_info?.model_name, "Digits Classifier", `${where}: ml.openmodel.metadata`);
  assert.equal(metadata?.model_info?.model_version, "1.0.0", `${where}: ml.openmodel.metadata`);
  assert.deepEqual(
    metadata?.inputs?.map((i) => i.filename),
    ["input"],
    `${where}: ml.openmodel.metadata inputs`,
  );
}

describe("chassis build -> podman -> registry -> podman, end to end (issue 4)", { skip, timeout: 240_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "chassis-image-e2e-"));
  const state = join(work, "podman");
  const cache = join(work, "cache");
  const archive = join(work, "digits.tar");
  const echoDir = join(ROOT, "test", `.tmp-echo-${process.pid}`);
  const store = ["--root", join(state, "root"), "--runroot", join(state, "run"), "--runtime", "runc", "--cgroup-manager", "cgroupfs"];
  const podman = (args: readonly string[], timeoutMs?: number) => run("podman", [...store, ...args], timeoutMs);
  const timings: Array<[string, number]> = [];
  let socket = "";
  let servicePid: number | undefined;
  let open: StartedRegistry | undefined;
  let basic: StartedRegistry | undefined;
  let built: Summary | undefined;
  let loadedName = "";

  const timed = async <T>(t: TestContext, what: string, body: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await body();
    } finally {
      const ms = performance.now() - started;
      timings.push([what, ms]);
      t.diagnostic(`${what}: ${(ms / 1000).toFixed(2)} s`);
    }
  };

  const build = (args: readonly string[]) => runCli(["build", ...args], {}, BUILD_TIMEOUT);

  /** `podman run -d` with both ports published on free loopback ports (and `env`, NAME=value); returns the id and ports. */
  const startContainer = async (image: string, env: readonly string[] = []) => {
    const omiPort = await freePort();
    let httpPort = await freePort();
    while (httpPort === omiPort) httpPort = await freePort();
    const started = await podman([
      "run",
      "-d",
      "--ulimit",
      "nofile=1024:1024",
      "--ulimit",
      "nproc=1024:1024",
      "-p",
      `127.0.0.1:${omiPort}:45000`,
      "-p",
      `127.0.0.1:${httpPort}:8080`,
      ...env.flatMap((setting) => ["-e", setting]),
      image,
    ]);
    const id = succeeded(started, `podman run ${image}`).trim().split("\n").pop() as string;
    return { id, omiPort, httpPort };
  };

  /** Waits for OMI Status 200; on failure, the assertion carries the container's log. */
  const waitReady = async (id: string, omiPort: number) => {
    const client = new OmiClient({ address: `127.0.0.1:${omiPort}` });
    try {
      return await client.waitUntilReady({ timeoutMs: 30_000 });
    } catch (error) {
      const logs = await podman(["logs", id]);
      const inspect = await podman(["inspect", "--format", "{{.State.Status}} exit {{.State.ExitCode}}", id]);
      assert.fail(`${(error as Error).message}\ncontainer ${inspect.stdout.trim()}; its log:\n${logs.stdout}${logs.stderr}`);
    } finally {
      client.close();
    }
  };

  const removeContainer = async (id: string) => {
    succeeded(await podman(["rm", "-f", id]), "podman rm");
  };

  before(async () => {
    const started = await run("bash", [join(ROOT, "scripts", "start-podman-service.sh"), state], 120_000);
    if (existsSync(join(state, "podman.pid"))) servicePid = Number(readFileSync(join(state, "podman.pid"), "utf8").trim());
    socket = succeeded(started, "scripts/start-podman-service.sh").trim().split("\n").pop() as string;
    [open, basic] = await Promise.all([startRegistry(), startRegistry({ auth: USER })]);
  });

  after(async () => {
    // Containers first (they hold overlay mounts in the store), then the service by its pid, registries, files.
    if (existsSync(state)) {
      await podman(["rm", "-a", "-f"], 60_000).catch(() => undefined);
      await podman(["rmi", "-a", "-f"], 60_000).catch(() => undefined);
    }
    if (servicePid) {
      try {
        process.kill(servicePid, "SIGTERM");
        for (let i = 0; i < 50; i++) {
          process.kill(servicePid, 0);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        process.kill(servicePid, "SIGKILL");
      } catch {
        // gone
      }
    }
    // podman bind-mounts its overlay folder onto itself; unmount it so the store can be deleted.
    await run("umount", [join(state, "root", "overlay")]).catch(() => undefined);
    await Promise.all([open?.stop(), basic?.stop()]);
    rmSync(echoDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    const total = timings.reduce((sum, [, ms]) => sum + ms, 0);
    process.stderr.write(
      `image e2e timings:\n${timings.map(([what, ms]) => `  ${(ms / 1000).toFixed(2).padStart(6)} s  ${what}\n`).join("")}  ${(total / 1000).toFixed(2).padStart(6)} s  total of the steps\n`,
    );
  });

  test("chassis build examples/digits --base host writes a docker-archive and prints a summary", async (t) => {
    const result = await timed(t, "cold build (fresh cache) -> docker-archive", () =>
      build(["examples/digits", "--base", "host", "--cache", cache, "--output", `docker-archive:${archive}`]),
    );
    assert.equal(result.code, 0, result.stderr);
    built = summary(result.stdout);
    assert.equal(built.reference, "localhost/digits-classifier:1.0.0");
    assert.ok(built.layers.dependencies, "onnxruntime-node goes in a dependencies layer");
    assert.match(
      result.stdout,
      new RegExp(`output\\s+docker-archive ${archive.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(sha256:[0-9a-f]{64}\\)`),
    );
    // Progress is for terminals; under a pipe (CI) only the summary is printed.
    assert.doesNotMatch(result.stderr, /^ {2}layer /m);
    assert.ok(existsSync(archive));
  });

  test("podman loads the docker-archive", async (t) => {
    assert.ok(built, "needs the build");
    const loaded = await timed(t, "podman load", () => podman(["load", "-i", archive], 180_000));
    const text = succeeded(loaded, "podman load");
    loadedName = /Loaded image(?:\(s\))?: (\S+)/.exec(text)?.[1] ?? "";
    assert.equal(loadedName, "localhost/digits-classifier:1.0.0", text);
  });

  test("podman run -p: OMI Status and Run, and KServe v1 predict, answer; SIGTERM stops it promptly with status 0", async (t) => {
    assert.ok(loadedName, "needs the loaded image");
    const container = await timed(t, "podman run -d", () => startContainer(loadedName));
    try {
      const status = await timed(t, "start -> first OMI Status 200", () => waitReady(container.id, container.omiPort));
      assert.equal(status.modelInfo?.modelName, "Digits Classifier");
      assert.equal(status.modelInfo?.modelVersion, "1.0.0");

      const client = new OmiClient({ address: `127.0.0.1:${container.omiPort}` });
      try {
        const response = await client.run([{ input: readFileSync(SAMPLE) }]);
        assert.equal(response.outputs.length, 1);
        const [item] = response.outputs;
        assert.ok(item?.success, "OMI Run item failed");
        const results = JSON.parse(new TextDecoder().decode(item.output["results.json"])) as { classPredictions: Array<{ class: number }> };
        assert.equal(results.classPredictions[0]?.class, 1);
      } finally {
        client.close();
      }

      const body = JSON.stringify({ instances: [readFileSync(SAMPLE).toString("base64")] });
      let reply: Response | undefined;
      for (let attempt = 0; attempt < 50 && !reply; attempt++) {
        reply = await fetch(`http://127.0.0.1:${container.httpPort}/v1/models/digits-classifier:predict`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        }).catch(async () => {
          await new Promise((resolve) => setTimeout(resolve, 100));
          return undefined;
        });
      }
      assert.ok(reply, "KServe did not answer");
      assert.equal(reply.status, 200);
      const predictions = ((await reply.json()) as { predictions: string[] }).predictions;
      assert.equal(predictions.length, 1);
      assert.equal((JSON.parse(predictions[0] as string) as { classPredictions: Array<{ class: number }> }).classPredictions[0]?.class, 1);

      // The app user (1000) may write in its working directory (the image's last layer owns /app).
      const write = await podman([
        "exec",
        container.id,
        "/usr/local/bin/node",
        "-e",
        "require('fs').writeFileSync('/app/written-by-model', 'ok')",
      ]);
      succeeded(write, "writing to /app as the app user");

      const stopped = await timed(t, "podman stop -t 10 (SIGTERM)", () => podman(["stop", "-t", "10", container.id]));
      succeeded(stopped, "podman stop");
      assert.ok(stopped.ms < 3000, `podman stop took ${Math.round(stopped.ms)} ms: SIGTERM was not handled promptly`);
      const exit = await podman(["inspect", "--format", "{{.State.ExitCode}}", container.id]);
      assert.equal(succeeded(exit, "podman inspect").trim(), "0");
      const logs = await podman(["logs", container.id]);
      assert.match(logs.stdout + logs.stderr, /SIGTERM/);
    } finally {
      await removeContainer(container.id);
    }
  });

  test("building again (fresh cache) gives the same image digest and a byte-identical archive", async (t) => {
    assert.ok(built, "needs the first build");
    const again = join(work, "digits-again.tar");
    const result = await timed(t, "second cold build (another fresh cache)", () =>
      build(["examples/digits", "--base", "host", "--cache", join(work, "cache-again"), "--output", `docker-archive:${again}`]),
    );
    assert.equal(result.code, 0, result.stderr);
    const second = summary(result.stdout);
    assert.equal(second.digest, built.digest);
    assert.deepEqual(second.layers, built.layers);
    assert.equal(await sha256File(again), await sha256File(archive), "the two archives differ");
    rmSync(join(work, "cache-again"), { recursive: true, force: true });
  });

  test("push to an open registry; podman pulls it back and it runs; skopeo inspect shows annotations and labels", async (t) => {
    assert.ok(built && open, "needs the build and the registry");
    const reference = `${open.host}/digits-classifier:1.0.0`;
    const pushed = await timed(t, "build + push (open registry)", () =>
      build(["examples/digits", "--base", "host", "--cache", cache, "--output", "registry", "--tag", reference]),
    );
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(summary(pushed.stdout).digest, built.digest, "the tag does not change the image");
    assert.match(pushed.stdout, new RegExp(`output\\s+registry ${reference.replace(/[.]/g, "\\.")}`));

    const raw = await run("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${reference}`]);
    const manifestText = succeeded(raw, "skopeo inspect --raw");
    assert.equal(
      `sha256:${createHash("sha256").update(manifestText).digest("hex")}`,
      built.digest,
      "the registry holds other manifest bytes",
    );
    const manifest = JSON.parse(manifestText) as { mediaType: string; annotations?: Record<string, string> };
    assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
    checkMetadata(manifest.annotations, "manifest annotations in the registry");
    const inspected = JSON.parse(
      succeeded(await run("skopeo", ["inspect", "--tls-verify=false", `docker://${reference}`]), "skopeo inspect"),
    ) as {
      Digest: string;
      Labels?: Record<string, string>;
    };
    assert.equal(inspected.Digest, built.digest);
    checkMetadata(inspected.Labels, "labels in the registry");
    checkMetadataLabel(inspected.Labels, "labels in the registry");

    // Pull into a store without the image, so the layers really come from the registry.
    succeeded(await podman(["rmi", "-a", "-f"]), "podman rmi");
    const pulled = await timed(t, "podman pull (open registry)", () => podman(["pull", "--tls-verify=false", reference], 180_000));
    succeeded(pulled, "podman pull");
    // This run predicts on two threads (the image's bundled server starting its predict threads).
    const container = await startContainer(reference, ["PREDICT_THREADS=2"]);
    try {
      const status = await timed(t, "pulled image: start -> OMI Status 200", () => waitReady(container.id, container.omiPort));
      assert.equal(status.modelInfo?.modelName, "Digits Classifier");
      const client = new OmiClient({ address: `127.0.0.1:${container.omiPort}` });
      try {
        const response = await client.run([{ input: readFileSync(SAMPLE) }, { input: readFileSync(SAMPLE) }]);
        assert.deepEqual(
          response.outputs.map((item) => item.success),
          [true, true],
        );
      } finally {
        client.close();
      }
      const logs = await podman(["logs", container.id]);
      assert.match(`${logs.stdout}${logs.stderr}`, /\[predict thread 2\] loaded/);
    } finally {
      await removeContainer(container.id);
    }
  });

  test("basic auth: a wrong password is exit 20 (CHASSIS_REGISTRY_UNAUTHORIZED) and is never printed", async (t) => {
    assert.ok(basic, "needs the registry");
    const result = await timed(t, "build + refused push (wrong password)", () =>
      build([
        "examples/digits",
        "--cache",
        cache,
        "--output",
        "registry",
        "--tag",
        `${basic?.host}/digits-classifier:1.0.0`,
        "--creds",
        `${USER.username}:${WRONG_PASSWORD}`,
      ]),
    );
    assert.equal(result.code, 20, `${result.stderr}${result.stdout}`);
    assert.match(result.stderr, /CHASSIS_REGISTRY_UNAUTHORIZED/);
    assert.ok(!`${result.stdout}${result.stderr}`.includes(WRONG_PASSWORD), "the password was printed");
  });

  test("basic auth: push with --creds; podman pull --creds brings it back and it runs", async (t) => {
    assert.ok(built && basic, "needs the build and the registry");
    const reference = `${basic.host}/digits-classifier:1.0.0`;
    const creds = `${USER.username}:${USER.password}`;
    const pushed = await timed(t, "build + push (basic auth)", () =>
      build(["examples/digits", "--cache", cache, "--output", "registry", "--tag", reference, "--creds", creds]),
    );
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(summary(pushed.stdout).digest, built.digest);
    assert.ok(!`${pushed.stdout}${pushed.stderr}`.includes(USER.password), "the password was printed");

    const anonymous = await run("skopeo", ["inspect", "--tls-verify=false", "--raw", `docker://${reference}`]);
    assert.notEqual(anonymous.code, 0, "the registry answered without credentials");
    const raw = await run("skopeo", ["inspect", "--tls-verify=false", "--creds", creds, "--raw", `docker://${reference}`]);
    checkMetadata(
      (JSON.parse(succeeded(raw, "skopeo inspect --creds")) as { annotations?: Record<string, string> }).annotations,
      "annotations",
    );

    succeeded(await podman(["rmi", "-a", "-f"]), "podman rmi");
    const pulled = await timed(t, "podman pull --creds (basic auth)", () =>
      podman(["pull", "--tls-verify=false", "--creds", creds, reference], 180_000),
    );
    succeeded(pulled, "podman pull --creds");
    const container = await startContainer(reference);
    try {
      const status = await timed(t, "pulled image (auth): start -> OMI Status 200", () => waitReady(container.id, container.omiPort));
      assert.equal(status.modelInfo?.modelName, "Digits Classifier");
    } finally {
      await removeContainer(container.id);
    }
  });

  test("skopeo inspect docker-archive: shows the labels and the runtime config", async (t) => {
    const inspected = await timed(t, "skopeo inspect docker-archive:", async () => ({
      image: JSON.parse(succeeded(await run("skopeo", ["inspect", `docker-archive:${archive}`]), "skopeo inspect")) as {
        Labels?: Record<string, string>;
        Architecture: string;
        Os: string;
        Env: string[];
      },
      config: JSON.parse(
        succeeded(await run("skopeo", ["inspect", "--config", `docker-archive:${archive}`]), "skopeo inspect --config"),
      ) as {
        created: string;
        config: {
          User?: string;
          WorkingDir?: string;
          Entrypoint?: string[];
          ExposedPorts?: Record<string, unknown>;
          StopSignal?: string;
          Labels?: Record<string, string>;
        };
      },
    }));
    checkMetadata(inspected.image.Labels, "labels in the docker-archive");
    checkMetadataLabel(inspected.image.Labels, "labels in the docker-archive");
    assert.equal(inspected.image.Os, "linux");
    for (const env of ["INTERFACE=both", "PSC_MODEL_PORT=45000", "HTTP_PORT=8080", "NODE_ENV=production", "WORKERS=auto"]) {
      assert.ok(inspected.image.Env.includes(env), `Env lacks ${env}: ${inspected.image.Env.join(" ")}`);
    }
    const { config } = inspected.config;
    assert.equal(inspected.config.created, "1970-01-01T00:00:00Z");
    assert.equal(config.User, "1000:1000");
    assert.equal(config.WorkingDir, "/app");
    assert.deepEqual(config.Entrypoint, ["/usr/local/bin/node", "/app/node_modules/chassis-ts/cli.mjs", "serve", "/app/model"]);
    assert.deepEqual(Object.keys(config.ExposedPorts ?? {}).sort(), ["45000/tcp", "8080/tcp"]);
    assert.equal(config.StopSignal, "SIGTERM");
  });

  test("a model change re-uploads only the model layer (with the config and manifest)", async (t) => {
    assert.ok(open, "needs the registry");
    // Inside the repository, so the copy's `import "chassis-ts"` resolves to this package.
    cpSync(join(ROOT, "examples", "echo"), echoDir, { recursive: true });
    const reference = `${open.host}/echo:1.0.0`;
    const first = await timed(t, "echo: build + push", () =>
      build([echoDir, "--cache", cache, "--output", "registry", "--tag", reference]),
    );
    assert.equal(first.code, 0, first.stderr);
    const original = summary(first.stdout);

    const model = join(echoDir, "model.ts");
    writeFileSync(model, readFileSync(model, "utf8").replace("Returns its input unchanged.", "Returns its input, unchanged (edited)."));
    const mark = open.logs().length;
    const second = await timed(t, "echo: build + push after a model change", () =>
      build([echoDir, "--cache", cache, "--output", "registry", "--tag", reference]),
    );
    assert.equal(second.code, 0, second.stderr);
    const changed = summary(second.stdout);
    assert.notEqual(changed.layers.model, original.layers.model, "the model layer did not change");
    assert.equal(changed.layers.base, original.layers.base);
    assert.equal(changed.layers.runtime, original.layers.runtime);
    assert.notEqual(changed.digest, original.digest);

    // The access log of the second push: blobs sent (PUT ...?digest=, after POST and any PATCHes), mounts, the manifest.
    const log = open
      .logs()
      .slice(mark)
      .split("\n")
      .filter((line) => /^\S+ - \S+ \[/.test(line));
    const uploaded = new Set(
      log.flatMap((line) => {
        const m = /"PUT \/v2\/echo\/blobs\/uploads\/\S*[?&]digest=sha256%3A([0-9a-f]{64})\S* HTTP\/[\d.]+" 201/.exec(line);
        return m ? [`sha256:${m[1]}`] : [];
      }),
    );
    const mounted = log.filter((line) => /"POST \/v2\/echo\/blobs\/uploads\/\?\S*mount=/.test(line));
    assert.deepEqual([...uploaded].sort(), [changed.config, changed.layers.model].sort(), `uploads:\n${log.join("\n")}`);
    assert.deepEqual(mounted, []);
    assert.ok(
      log.some((line) => line.includes('"PUT /v2/echo/manifests/1.0.0 HTTP/1.1" 201')),
      `no manifest PUT:\n${log.join("\n")}`,
    );
    assert.ok(
      log.some((line) => line.includes(`"HEAD /v2/echo/blobs/${original.layers.base} HTTP/1.1" 200`)),
      "the base layer was not checked with HEAD",
    );
  });

  test("chassis test-container ARCHIVE --engine-socket runs the sample and prints class 1", async (t) => {
    assert.ok(socket, "needs the podman service");
    succeeded(await podman(["rmi", "-a", "-f"]), "podman rmi");
    const result = await timed(t, "chassis test-container (load + start + Run + stop)", () =>
      runCli(["test-container", archive, "--engine-socket", socket, "--input", `input=@${SAMPLE}`], {}, BUILD_TIMEOUT),
    );
    assert.equal(result.code, 0, `${result.stderr}${result.stdout}`);
    assert.match(result.stdout, /item 0: ok/);
    assert.match(result.stdout, /"class":\s*1\b/);
    const left = await podman(["ps", "-a", "-q"]);
    assert.equal(succeeded(left, "podman ps").trim(), "", "test-container left a container behind");
  });
});

/**
 * @module cli/image-commands
 * `chassis build`, `chassis run` and `chassis test-container`: wiring of the
 * builder (bundle -> layers -> layout -> publish) and of the container
 * engine. Progress goes to stderr on a terminal; a summary ends each build.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseBaseSpec, resolveBase } from "../build/image/base.js";
import { buildImage, type InterfaceName } from "../build/image/build.js";
import { hostPlatform } from "../build/image/host-base.js";
import { OciLayout } from "../build/oci/layout.js";
import { parseOutput, publish } from "../build/publish/publish.js";
import { Credentials, findCredentials } from "../build/registry/index.js";
import { OmiClient } from "../client/omi-client.js";
import { ChassisError } from "../core/error.js";
import { ToolError } from "../core/tool-error.js";
import { EngineClient } from "../engine/engine.js";
import { modelSlug } from "../model/metadata.js";
import { formatBytes } from "../model/units.js";
import { loadModelModule } from "../server/load-module.js";
import { duration, out, parse, reportItems } from "./common.js";
import { parseInputs } from "./inputs.js";

const env = process.env;

function credentialsFor(values: { creds?: string | undefined; authfile?: string | undefined }) {
  const explicit = values.creds ? Credentials.fromFlag(values.creds) : undefined;
  return (registry: string, repository: string) =>
    findCredentials(registry, repository, {
      ...(explicit ? { credentials: explicit } : {}),
      ...(values.authfile ? { authFile: values.authfile } : {}),
      env,
    });
}

function cacheDir(flag: string | undefined): string {
  return resolve(flag ?? join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "chassis-ts"));
}

export async function build(args: string[]): Promise<number> {
  const { values, positionals } = parse("build", args, {
    tag: { type: "string" },
    output: { type: "string" },
    base: { type: "string", default: "host" },
    interface: { type: "string", default: "both" },
    gzip: { type: "string", default: "6" },
    cache: { type: "string" },
    creds: { type: "string" },
    authfile: { type: "string" },
    source: { type: "string" },
    revision: { type: "string" },
    context: { type: "string" },
    quiet: { type: "boolean", default: false },
  });
  if (positionals.length !== 1)
    throw new ToolError("CHASSIS_USAGE", "build needs one model: chassis build <model> --tag NAME:TAG --output ...");
  const iface = values.interface as InterfaceName;
  if (!["omi", "kserve", "both"].includes(iface))
    throw new ToolError("CHASSIS_USAGE", `--interface "${values.interface}" is not omi, kserve or both`);
  const gzip = Number(values.gzip);
  if (!Number.isInteger(gzip) || gzip < 0 || gzip > 9)
    throw new ToolError("CHASSIS_USAGE", `--gzip "${values.gzip}" is not a level from 0 to 9`);
  const started = performance.now();
  const { model, file } = await loadModelModule(positionals[0] as string);
  const metadata = model.metadata;
  const reference = values.tag ?? `localhost/${modelSlug(metadata.name)}:${metadata.version}`;
  const quiet = values.quiet || !process.stderr.isTTY;
  const say = (text: string) => {
    if (!quiet) process.stderr.write(`${text}\n`);
  };
  const progress = (step: string, detail: Record<string, unknown>) => {
    if (step === "layer")
      say(`  layer ${String(detail.layer).padEnd(12)} ${formatBytes(Number(detail.size)).padStart(8)} (${detail.files} files)`);
    else if (step === "bundle")
      say(
        `  bundled in ${detail.ms} ms${(detail.nativePackages as string[]).length ? `; native: ${(detail.nativePackages as string[]).join(", ")}` : ""}`,
      );
    else if (step === "base") say(`  base ${detail.name ?? detail.description ?? ""}`);
    else if (step === "pull") say(`  pulled ${detail.layer}`);
  };

  if (values.context) {
    const { writeBuildContext } = await import("../build/context/dockerfile.js");
    // The official node:20 images have node at /usr/local/bin/node and user 1000, as the host base does.
    const base = values.base === "host" ? "node:20-bookworm-slim" : values.base;
    const platform = hostPlatform();
    const sourceDateEpoch = env.SOURCE_DATE_EPOCH;
    const result = await writeBuildContext({
      dir: resolve(values.context),
      modelFile: file,
      metadata,
      baseImage: base,
      interface: iface,
      platform,
      ...(sourceDateEpoch ? { sourceDateEpoch } : {}),
      ...(values.source ? { source: values.source } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
      progress,
    });
    out(`wrote a Docker build context to ${values.context} (${result.files} files)\n`);
    out(`build it with: docker build --platform linux/${platform.architecture} -t ${reference} ${values.context}\n`);
    return 0;
  }

  const output = parseOutput(values.output ?? `docker-archive:${modelSlug(metadata.name)}-${metadata.version}.tar`);
  const layout = existsSync(join(cacheDir(values.cache), "oci", "oci-layout"))
    ? await OciLayout.open(join(cacheDir(values.cache), "oci"))
    : await OciLayout.init(join(cacheDir(values.cache), "oci"));
  const credentials = credentialsFor(values);
  const sourceDateEpoch = env.SOURCE_DATE_EPOCH;
  say(`building ${reference} from ${file}`);
  const base = await resolveBase(parseBaseSpec(values.base), layout, hostPlatform(), { credentials, progress });
  const result = await buildImage({
    modelFile: file,
    metadata,
    reference,
    layout,
    base,
    interface: iface,
    gzip,
    ...(sourceDateEpoch ? { sourceDateEpoch } : {}),
    ...(values.source ? { source: values.source } : {}),
    ...(values.revision ? { revision: values.revision } : {}),
    progress,
  });
  const published = await publish(layout, result.descriptor, reference, output, {
    credentials,
    ...(sourceDateEpoch ? { sourceDateEpoch } : {}),
    onBlob: (what) => say(`  ${what}`),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const total = result.layers.reduce((sum, layer) => sum + layer.size, 0);
  out(`built ${reference} in ${seconds} s\n`);
  out(`  image digest  ${result.descriptor.digest}\n`);
  out(`  config (ID)   ${result.configDigest}\n`);
  for (const layer of result.layers) out(`  ${`${layer.name} layer`.padEnd(18)} ${formatBytes(layer.size).padStart(8)}  ${layer.digest}\n`);
  out(`  total         ${formatBytes(total).padStart(8)} compressed\n`);
  out(`  output        ${output.kind} ${published.where}${output.kind.endsWith("archive") ? ` (${published.digest})` : ""}\n`);
  return 0;
}

function engineSocket(flag: string | undefined): string {
  const fromEnv = [env.CONTAINER_HOST, env.DOCKER_HOST].find((v) => v?.startsWith("unix://"))?.slice("unix://".length);
  const socket = flag ?? fromEnv ?? ["/run/podman/podman.sock", "/var/run/docker.sock"].find((path) => existsSync(path));
  if (!socket) {
    throw new ToolError(
      "CHASSIS_UNREACHABLE",
      "no container engine socket found (tried $CONTAINER_HOST, $DOCKER_HOST, /run/podman/podman.sock, /var/run/docker.sock)",
      {
        hint: "start one (podman system service, or Docker), or pass --engine-socket PATH",
      },
    );
  }
  return socket;
}

const ENGINE_OPTIONS = {
  "engine-socket": { type: "string" },
  port: { type: "string", default: "0" },
  "http-port": { type: "string", default: "0" },
  env: { type: "string", multiple: true, default: [] as string[] },
} as const;

/** Loads an archive (a path) or uses an image by name; starts it with OMI and KServe published on 127.0.0.1. */
async function startContainer(
  image: string,
  values: { "engine-socket"?: string | undefined; port: string; "http-port": string; env: string[] },
) {
  const engine = new EngineClient({ socketPath: engineSocket(values["engine-socket"]) });
  let name = image;
  if (existsSync(image)) {
    const loaded = await engine.loadImage(resolve(image));
    if (loaded.length === 0) throw new ToolError("CHASSIS_IMAGE_INVALID", `the engine loaded ${image} but named no image`);
    name = loaded[0] as string;
  }
  const envVars = Object.fromEntries(
    values.env.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new ToolError("CHASSIS_USAGE", `--env "${pair}" is not KEY=VALUE`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  const id = await engine.createContainer({
    image: name,
    env: envVars,
    ports: { "45000/tcp": Number(values.port), "8080/tcp": Number(values["http-port"]) },
    // runc on hosts like this one cannot set rlimits it is not given (SPEC.md 6).
    ulimits: [
      { name: "nofile", soft: 1024, hard: 1024 },
      { name: "nproc", soft: 1024, hard: 1024 },
    ],
  });
  await engine.startContainer(id);
  const ports = await engine.publishedPorts(id);
  return { engine, id, name, omiPort: ports["45000/tcp"], httpPort: ports["8080/tcp"] };
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse("run", args, ENGINE_OPTIONS);
  if (positionals.length !== 1) throw new ToolError("CHASSIS_USAGE", "run needs one image: a name, or a docker-archive/oci-archive path");
  const container = await startContainer(positionals[0] as string, values);
  out(
    `started ${container.name} as ${container.id.slice(0, 12)}: OMI on 127.0.0.1:${container.omiPort}, KServe on http://127.0.0.1:${container.httpPort}\n`,
  );
  out("press Ctrl-C to stop it\n");
  const stop = async () => {
    await container.engine.stopContainer(container.id, 10).catch(() => {});
    const status = await container.engine.waitContainer(container.id).catch(() => -1);
    await container.engine.removeContainer(container.id);
    out(`stopped (exit status ${status})\n`);
  };
  await new Promise<void>((resolveWait) => {
    const onSignal = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolveWait();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  await stop();
  return 0;
}

/** What Chassis's `OMIClient.test_container` does: start, wait until ready, run the inputs over OMI, print, stop, remove. */
export async function testContainer(args: string[]): Promise<number> {
  const { values, positionals } = parse("test-container", args, {
    ...ENGINE_OPTIONS,
    input: { type: "string", multiple: true, default: [] as string[] },
    json: { type: "boolean", default: false },
    wait: { type: "string", default: "30s" },
  });
  if (positionals.length !== 1) throw new ToolError("CHASSIS_USAGE", "test-container needs one image: a name, or an archive path");
  if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "test-container needs at least one --input key=@file or key=text");
  const item = parseInputs(values.input);
  const container = await startContainer(positionals[0] as string, values);
  const client = new OmiClient({ address: `127.0.0.1:${container.omiPort}` });
  try {
    await client.waitUntilReady({ timeoutMs: duration(values.wait, "wait") });
    const response = await client.run([item]);
    return reportItems(
      response.outputs.map((o) => ({ success: o.success, outputs: o.output })),
      values.json,
    );
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const logs = await container.engine.logs(container.id).catch(() => "");
    throw new ToolError("CHASSIS_UNREACHABLE", `${ChassisError.from(error).message}${logs ? `\ncontainer log:\n${logs.trimEnd()}` : ""}`);
  } finally {
    client.close();
    await container.engine.stopContainer(container.id, 10).catch(() => {});
    await container.engine.removeContainer(container.id).catch(() => {});
  }
}

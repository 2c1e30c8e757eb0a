/**
 * The Dockerfile context writer without a container engine: quoting (checked
 * against the Dockerfile lexer's double-quote rules), the Dockerfile text,
 * the same config as the daemonless build (buildImage on a stand-in base),
 * the files with their modes and mtimes whatever the umask, and the folder
 * rules. test/build/context-podman.test.ts builds and runs a context for real.
 */
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ToolError } from "../../core/tool-error.js";
import type { ModelMetadata } from "../../model/metadata.js";
import { loadModelModule } from "../../server/load-module.js";
import { buildImage, imageEnv } from "../image/build.js";
import { bundleModel, bundleRuntime, type Platform } from "../image/bundle.js";
import type { Digest } from "../oci/digest.js";
import { MediaType } from "../oci/documents.js";
import { OciLayout } from "../oci/layout.js";
import {
  CONTEXT_LAYERS,
  contextEntrypoint,
  contextLabels,
  contextPorts,
  DOCKERFILE_MARKER,
  dockerfileQuote,
  renderDockerfile,
  writeBuildContext,
} from "./dockerfile.js";

const ECHO = fileURLToPath(new URL("../../../examples/echo/model.ts", import.meta.url));
const PLATFORM: Platform = { os: "linux", architecture: "amd64" };
const BASE = "localhost/chassis-node-base:20";
const BASE_DIGEST = `sha256:${"ab".repeat(32)}` as Digest;

/**
 * The value a Dockerfile double-quoted word stands for, by the lexer's rules
 * (moby/buildkit frontend/dockerfile/shell/lex.go processDoubleQuote, the
 * same in buildah's imagebuilder): `\"`, `\\`, `\$` are escapes, any other
 * backslash is kept, an unescaped `$` would expand a variable.
 */
function unquote(word: string): string {
  assert.ok(word.startsWith('"') && word.endsWith('"') && word.length >= 2, `not a quoted word: ${word}`);
  let out = "";
  for (let i = 1; i < word.length - 1; i++) {
    const ch = word[i] as string;
    if (ch === '"') assert.fail(`unescaped quote at ${i} in ${word}`);
    if (ch === "$") assert.fail(`unescaped $ at ${i} in ${word} would expand a variable`);
    if (ch === "\\" && i + 1 < word.length - 1 && ['"', "$", "\\"].includes(word[i + 1] as string)) {
      out += word[i + 1];
      i++;
    } else if (ch === "\\" && i + 1 === word.length - 1) {
      assert.fail(`a backslash before the closing quote escapes it: ${word}`);
    } else {
      out += ch;
    }
  }
  return out;
}

function toolError(id: string, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ToolError, `expected a ToolError, got ${String(error)}`);
    assert.equal(error.id, id);
    assert.match(error.message, message);
    return true;
  };
}

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      const rel = path.slice(base.length);
      return lstatSync(path).isDirectory() ? [`${rel}/`, ...walk(path, base)] : [rel];
    });
}

describe("dockerfileQuote", () => {
  test("simple values are wrapped in double quotes", () => {
    assert.equal(dockerfileQuote("Digits Classifier"), '"Digits Classifier"');
    assert.equal(dockerfileQuote(""), '""');
  });

  test("quotes, backslashes and $ get a backslash; everything else is kept", () => {
    assert.equal(dockerfileQuote('a"b'), '"a\\"b"');
    assert.equal(dockerfileQuote("a\\b"), '"a\\\\b"');
    assert.equal(dockerfileQuote("$HOME"), '"\\$HOME"');
    assert.equal(dockerfileQuote("tab\tand 'single' {x} #"), "\"tab\tand 'single' {x} #\"");
  });

  test("every value round-trips through the lexer's double-quote rules", () => {
    const values = [
      'say "hi"',
      "C:\\path\\to\\n",
      "ends with \\",
      "\\\\server\\share",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile variables, on purpose
      "$HOME ${PATH} $$ \\$ ${x:-y} $",
      JSON.stringify({ a: 'b"c', d: "e\\f", g: "$h", nl: "x\ny" }),
      "Crème brûlée ✓ 数字 🙂",
      "  spaces  ",
      "`backtick` ; & |",
    ];
    for (const value of values) assert.equal(unquote(dockerfileQuote(value)), value, value);
  });

  test("line breaks and control characters are refused: a Dockerfile cannot hold them", () => {
    assert.throws(
      () => dockerfileQuote("two\nlines", "label x"),
      toolError("CHASSIS_USAGE", /label x "two\\nlines" holds the control character U\+000A/),
    );
    assert.throws(() => dockerfileQuote("cr\r"), toolError("CHASSIS_USAGE", /U\+000D/));
    assert.throws(() => dockerfileQuote("nul\0"), toolError("CHASSIS_USAGE", /U\+0000/));
    assert.throws(() => dockerfileQuote("del\u007f"), toolError("CHASSIS_USAGE", /U\+007F/));
  });
});

describe("renderDockerfile", () => {
  test("writes the instructions in order: FROM, one COPY per layer, ENV, WORKDIR, USER, EXPOSE, LABEL, ENTRYPOINT, CMD, STOPSIGNAL", () => {
    const text = renderDockerfile({
      baseImage: BASE,
      folders: ["rootfs-runtime", "rootfs-model"],
      env: [
        ["A", "1"],
        ["B", "two words"],
      ],
      workdir: "/app",
      user: "1000:1000",
      exposedPorts: ["45000/tcp"],
      labels: { "x.y": 'v"1', "z.metadata": '{"k":"$v"}' },
      entrypoint: ["/usr/local/bin/node", "/app/cli.mjs"],
      stopSignal: "SIGTERM",
      comments: ["hello\nworld"],
    });
    assert.equal(
      text,
      [
        DOCKERFILE_MARKER,
        "# hello world",
        `FROM ${BASE}`,
        "COPY --chown=0:0 rootfs-runtime/ /",
        "COPY --chown=0:0 rootfs-model/ /",
        "ENV A=1 \\",
        '    B="two words"',
        "WORKDIR /app",
        "USER 1000:1000",
        "EXPOSE 45000/tcp",
        'LABEL x.y="v\\"1" \\',
        '      z.metadata="{\\"k\\":\\"\\$v\\"}"',
        "# The server handles SIGTERM itself (Node as PID 1 would ignore it otherwise) and drains before exit.",
        'ENTRYPOINT ["/usr/local/bin/node","/app/cli.mjs"]',
        "CMD []",
        "STOPSIGNAL SIGTERM",
        "",
      ].join("\n"),
    );
  });

  test("refuses a FROM that is not an image reference (spaces, $, quotes)", () => {
    const spec = {
      folders: [],
      env: [],
      workdir: "/app",
      user: "1000:1000",
      exposedPorts: [],
      labels: {},
      entrypoint: ["node"],
      stopSignal: "SIGTERM",
    };
    for (const baseImage of ["", "node:20 AS x", "$BASE", 'a"b', "a\nb"]) {
      assert.throws(() => renderDockerfile({ ...spec, baseImage }), toolError("CHASSIS_USAGE", /is not an image reference/), baseImage);
    }
  });

  test("ports follow the interface, as build.ts's ExposedPorts", () => {
    assert.deepEqual(contextPorts("both"), ["45000/tcp", "8080/tcp"]);
    assert.deepEqual(contextPorts("omi"), ["45000/tcp"]);
    assert.deepEqual(contextPorts("kserve"), ["8080/tcp"]);
  });
});

describe("writeBuildContext (examples/echo)", () => {
  let tmp = "";
  let metadata: ModelMetadata;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "chassis-context-unit-"));
    metadata = (await loadModelModule(ECHO)).model.metadata;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("the config matches what buildImage writes for the same model on a base named by reference", async () => {
    const layout = await OciLayout.init(join(tmp, "layout"));
    const base = {
      kind: "layout" as const,
      name: BASE,
      digest: BASE_DIGEST,
      manifest: {
        schemaVersion: 2 as const,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: BASE_DIGEST, size: 2 },
        layers: [],
      },
      config: {
        architecture: "amd64",
        os: "linux",
        config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
        rootfs: { type: "layers" as const, diff_ids: [] },
      },
    };
    for (const iface of ["both", "omi", "kserve"] as const) {
      const built = await buildImage({
        modelFile: ECHO,
        metadata,
        reference: `localhost/echo:${iface}`,
        layout,
        base,
        interface: iface,
        sourceDateEpoch: "1700000000",
        source: "https://example.com/repo",
        revision: "abc123",
        gzip: 1,
      });
      const config = built.config.config ?? {};
      assert.deepEqual(
        contextLabels({
          metadata,
          baseImage: BASE,
          baseDigest: BASE_DIGEST,
          interface: iface,
          sourceDateEpoch: "1700000000",
          source: "https://example.com/repo",
          revision: "abc123",
        }),
        config.Labels,
        iface,
      );
      assert.deepEqual(
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...imageEnv(iface).map(([k, v]) => `${k}=${v}`)],
        config.Env,
      );
      assert.deepEqual(contextEntrypoint(), config.Entrypoint);
      assert.deepEqual(Object.fromEntries(contextPorts(iface).map((p) => [p, {}])), config.ExposedPorts);
      assert.deepEqual([config.User, config.WorkingDir, config.StopSignal, config.Cmd], ["1000:1000", "/app", "SIGTERM", []]);
      assert.deepEqual(
        built.layers.map((l) => l.name),
        CONTEXT_LAYERS.filter((l) => l.name !== "dependencies").map((l) => l.name),
      );
    }
  });

  test("writes each layer's files with their modes, sizes and the fixed mtime, directories 0755 whatever the umask", async () => {
    const dir = join(tmp, "ctx");
    const previous = process.umask(0o077);
    let result: Awaited<ReturnType<typeof writeBuildContext>>;
    try {
      result = await writeBuildContext({ dir, modelFile: ECHO, metadata, baseImage: BASE, interface: "omi", platform: PLATFORM });
    } finally {
      process.umask(previous);
    }
    const [runtime, model] = await Promise.all([bundleRuntime(), bundleModel(ECHO, PLATFORM)]);
    assert.deepEqual(model.dependencies, [], "echo has no native packages");
    assert.equal(result.dockerfile, join(dir, "Dockerfile"));
    assert.equal(result.files, runtime.length + model.model.length + 1);
    assert.deepEqual(
      result.layers.map((l) => [l.name, l.folder, l.owner, l.files]),
      [
        ["runtime", "rootfs-runtime", "0:0", runtime.length],
        ["model", "rootfs-model", "0:0", model.model.length],
        // Last, copied as the app user, so /app is writable by the model (build.ts's workdir layer).
        ["workdir", "rootfs-workdir", "1000:1000", 1],
      ],
    );
    assert.ok(lstatSync(join(dir, "rootfs-workdir", "app")).isDirectory());
    assert.deepEqual(readdirSync(dir).sort(), [
      ".dockerignore",
      "Dockerfile",
      "README.txt",
      "rootfs-model",
      "rootfs-runtime",
      "rootfs-workdir",
    ]);
    for (const [folder, files] of [
      ["rootfs-runtime", runtime],
      ["rootfs-model", model.model],
    ] as const) {
      for (const file of files) {
        const stat = lstatSync(join(dir, folder, file.path));
        assert.ok(stat.isFile(), file.path);
        assert.equal(stat.size, file.size, file.path);
        assert.equal(stat.mode & 0o7777, file.mode & 0o111 ? 0o755 : 0o644, file.path);
        assert.equal(stat.mtimeMs, 1000, `${file.path}: mtime is DEFAULT_MTIME (1 s), as in the daemonless layers`);
      }
      const paths = walk(join(dir, folder));
      assert.deepEqual(
        paths.filter((p) => !p.endsWith("/")).sort(),
        files.map((f) => f.path).sort(),
        `${folder} holds its layer's files only`,
      );
      for (const path of paths.filter((p) => p.endsWith("/"))) {
        const stat = lstatSync(join(dir, folder, path));
        assert.equal(stat.mode & 0o7777, 0o755, `${folder}${path}`);
        assert.equal(stat.mtimeMs, 1000, `${folder}${path}`);
      }
    }
    const dockerfile = readFileSync(join(dir, "Dockerfile"), "utf8");
    assert.ok(dockerfile.startsWith(`${DOCKERFILE_MARKER}\n`));
    assert.deepEqual(
      dockerfile.split("\n").filter((l) => /^(FROM|COPY|WORKDIR|USER|EXPOSE|ENTRYPOINT|CMD|STOPSIGNAL) /.test(l)),
      [
        `FROM ${BASE}`,
        "COPY --chown=0:0 rootfs-runtime/ /",
        "COPY --chown=0:0 rootfs-model/ /",
        "COPY --chown=1000:1000 rootfs-workdir/ /",
        "WORKDIR /app",
        "USER 1000:1000",
        "EXPOSE 45000/tcp",
        'ENTRYPOINT ["/usr/local/bin/node","/app/node_modules/chassis-ts/cli.mjs","serve","/app/model"]',
        "CMD []",
        "STOPSIGNAL SIGTERM",
      ],
    );
    assert.match(
      dockerfile,
      /^ENV INTERFACE=omi \\\n {4}PSC_MODEL_PORT=45000 \\\n {4}HTTP_PORT=8080 \\\n {4}NODE_ENV=production \\\n {4}WORKERS=auto$/m,
    );
    // The labels, read back with the lexer's rules, are contextLabels exactly.
    const labelBlock = dockerfile.slice(dockerfile.indexOf("LABEL ") + 6, dockerfile.indexOf("\n# The server"));
    const parsed = Object.fromEntries(
      labelBlock.split(" \\\n").map((line) => {
        const eq = line.trim().indexOf("=");
        return [line.trim().slice(0, eq), unquote(line.trim().slice(eq + 1))];
      }),
    );
    assert.deepEqual(parsed, contextLabels({ metadata, baseImage: BASE, interface: "omi" }));
    assert.equal(
      readFileSync(join(dir, ".dockerignore"), "utf8").split("\n").filter(Boolean).slice(1).join(" "),
      "* !rootfs-runtime !rootfs-model !rootfs-workdir",
    );
    const readme = readFileSync(join(dir, "README.txt"), "utf8");
    for (const needle of [
      "docker build --platform linux/amd64 -t echo:1.0.0 .",
      "podman build",
      "buildah bud",
      "/kaniko/executor",
      "buildctl build",
      "-p 45000:45000",
    ]) {
      assert.ok(readme.includes(needle), `README.txt mentions ${needle}`);
    }
  });

  test("honours SOURCE_DATE_EPOCH for mtimes and the created label", async () => {
    const dir = join(tmp, "ctx-epoch");
    await writeBuildContext({ dir, modelFile: ECHO, metadata, baseImage: BASE, platform: PLATFORM, sourceDateEpoch: "1700000000" });
    assert.equal(lstatSync(join(dir, "rootfs-model/app/model/model.mjs")).mtimeMs, 1_700_000_000_000);
    assert.match(readFileSync(join(dir, "Dockerfile"), "utf8"), /org\.opencontainers\.image\.created="2023-11-14T22:13:20Z"/);
  });

  test("rewrites a context it wrote (stale files go), refuses a folder that is not one", async () => {
    const dir = join(tmp, "ctx-again");
    await writeBuildContext({ dir, modelFile: ECHO, metadata, baseImage: BASE, platform: PLATFORM });
    writeFileSync(join(dir, "rootfs-model/app/model/stale.bin"), "old");
    writeFileSync(join(dir, "notes.txt"), "mine");
    await writeBuildContext({ dir, modelFile: ECHO, metadata, baseImage: BASE, platform: PLATFORM });
    assert.throws(() => lstatSync(join(dir, "rootfs-model/app/model/stale.bin")), /ENOENT/);
    assert.equal(readFileSync(join(dir, "notes.txt"), "utf8"), "mine", "files that are not ours are left alone");

    const foreign = join(tmp, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "Dockerfile"), "FROM scratch\n");
    await assert.rejects(
      writeBuildContext({ dir: foreign, modelFile: ECHO, metadata, baseImage: BASE, platform: PLATFORM }),
      toolError("CHASSIS_USAGE", /is not empty and holds no build context written by chassis-ts/),
    );
    assert.equal(readFileSync(join(foreign, "Dockerfile"), "utf8"), "FROM scratch\n");
  });

  test("refuses metadata a LABEL cannot hold, and a bad base, before writing anything", async () => {
    const dir = join(tmp, "ctx-refused");
    const twoLines = { ...metadata, description: { ...metadata.description, summary: "first line\nsecond line" } } as ModelMetadata;
    await assert.rejects(
      writeBuildContext({ dir, modelFile: ECHO, metadata: twoLines, baseImage: BASE, platform: PLATFORM }),
      toolError("CHASSIS_USAGE", /label org\.opencontainers\.image\.description .* U\+000A/),
    );
    await assert.rejects(
      writeBuildContext({ dir, modelFile: ECHO, metadata, baseImage: "my base", platform: PLATFORM }),
      toolError("CHASSIS_USAGE", /is not an image reference/),
    );
    assert.throws(() => lstatSync(dir), /ENOENT/);
  });
});

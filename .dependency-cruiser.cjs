// Import direction (docs/architecture.md): core <- model/runtime <- protocols (omi, kserve) <- server <- cli;
// metrics, deploy, engine and the builder are libraries beside them that the CLI wires.
// The runtime knows no protocol; protocols know neither each other nor the server; nothing imports the CLI.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } } },
    {
      name: "core-is-a-leaf",
      comment: "src/core is the shared vocabulary (codes, errors, logging); it imports nothing of ours.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { path: "^src/(?!core/)" },
    },
    {
      name: "runtime-knows-no-protocol",
      severity: "error",
      from: { path: "^src/(runtime|model)/" },
      to: { path: "^src/(omi|kserve|server|cli|client|build|engine)/" },
    },
    {
      name: "protocols-are-independent",
      comment: "A protocol adapter imports the core, the runtime and its own files only.",
      severity: "error",
      from: { path: "^src/(omi|kserve)/" },
      to: { path: "^src/(server|cli|client|build|engine)/" },
    },
    {
      name: "omi-does-not-import-kserve",
      severity: "error",
      from: { path: "^src/omi/" },
      to: { path: "^src/kserve/" },
    },
    {
      name: "servers-do-not-use-grpc-js",
      comment: "The OMI server runs on its own transport (src/omi/grpc); grpc-js is the client's (docs/dependencies.md).",
      severity: "error",
      from: { path: "^src/(omi|kserve|server|runtime)/" },
      to: { path: "@grpc/grpc-js" },
    },
    {
      name: "kserve-does-not-import-omi",
      severity: "error",
      from: { path: "^src/kserve/" },
      to: { path: "^src/omi/" },
    },
    {
      name: "clients-need-no-server",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/(server|cli|runtime|model)/" },
    },
    {
      name: "metrics-is-a-library",
      comment: "Metrics know no protocol, runtime or server; adapters record into them.",
      severity: "error",
      from: { path: "^src/metrics/" },
      to: { path: "^src/(?!core/|metrics/)" },
    },
    {
      name: "engine-and-deploy-are-libraries",
      comment: "The container engine client and the manifest writers need only the core (and the model's naming rules).",
      severity: "error",
      from: { path: "^src/(engine|deploy)/" },
      to: { path: "^src/(runtime|omi|kserve|server|cli|client|build)/" },
    },
    {
      name: "builder-runs-no-server",
      comment: "The image builder bundles the server; it never imports the serving code or the CLI.",
      severity: "error",
      from: { path: "^src/build/" },
      to: { path: "^src/(runtime|omi|kserve|server|cli|client|engine)/" },
    },
    {
      name: "oci-is-the-bottom-of-the-builder",
      comment: "As ko: oci <- registry <- image <- publish.",
      severity: "error",
      from: { path: "^src/build/oci/" },
      to: { path: "^src/build/(registry|image|publish)/" },
    },
    {
      name: "nothing-imports-the-cli",
      severity: "error",
      from: { pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};

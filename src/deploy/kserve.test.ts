import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { crdValidator, loadCrd } from "../../test/helpers/crd-schema.js";
import { ToolError } from "../core/tool-error.js";
import {
  type InferenceServiceManifest,
  ISVC_NAME_PATTERN,
  type KServeDeployOptions,
  kserveInferenceService,
  MAX_ISVC_NAME_LENGTH,
  modelReadyPath,
  nameFromImage,
  slugify,
} from "./kserve.js";
import { toYaml } from "./yaml.js";

const CRD_PATH = fileURLToPath(new URL("../../test/fixtures/crd/serving.kserve.io_inferenceservices.yaml", import.meta.url));
// Compiled once for the file (about 2 s: a 1.9 MB CRD).
const crd = loadCrd(CRD_PATH);

const IMAGE = "registry.example.com/digits:1.0.0";

/** A deep copy to break on purpose (typed loosely: the point is to make it invalid). */
// biome-ignore lint/suspicious/noExplicitAny: test manifests are mutated into shapes the types forbid
function copy(manifest: InferenceServiceManifest): any {
  return structuredClone(manifest);
}

/** The ToolError that `fn` throws; checks it is a CHASSIS_USAGE (exit 2) error. */
function usageError(fn: () => unknown): ToolError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ToolError, `expected a ToolError, got ${String(error)}`);
    assert.equal(error.id, "CHASSIS_USAGE");
    assert.equal(error.exitCode, 2);
    return error;
  }
  assert.fail("expected a CHASSIS_USAGE ToolError, but nothing was thrown");
}

/**
 * The admission-time rules the CRD schema does not carry, as KServe's and
 * Knative's webhooks apply them to a custom predictor (kserve-rest.md §4.4;
 * knative.dev/serving k8s_validation.go). Written independently of kserve.ts
 * so the generated manifests are checked against the rules, not against the
 * code that made them.
 */
function webhookProblems(manifest: InferenceServiceManifest): string[] {
  const problems: string[] = [];
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(manifest.metadata.name)) problems.push("isvc name does not match the webhook regex");
  const [first, ...others] = manifest.spec.predictor.containers;
  if (!first || others.length > 0) problems.push("expected exactly one container");
  if (!first) return problems;
  if (first.name !== "kserve-container") problems.push("the predictor container is not named kserve-container");
  const protocol = first.env.find((e) => e.name === "PROTOCOL");
  if (protocol && protocol.value !== "v1" && protocol.value !== "v2")
    problems.push(`invalid protocol ${protocol.value}. Must be one of [v1, v2]`);
  const ports = first.ports;
  if (ports.length !== 1) problems.push("Knative: more than one container port is set");
  const [port] = ports;
  if (port && !["", "http1", "h2c"].includes(port.name)) problems.push(`Knative: port name ${port.name} is not allowed`);
  if (port && [8008, 8012, 8013, 8022, 9090, 9091].includes(port.containerPort)) problems.push("Knative: reserved port");
  const probePort = first.readinessProbe.httpGet.port;
  if (port && probePort !== port.containerPort) problems.push("readiness probe port is not the container port");
  for (const e of first.env) {
    if (["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"].includes(e.name)) problems.push(`Knative: ${e.name} is reserved`);
    if (e.name === "PYTHONPATH") problems.push("KServe: PYTHONPATH is blocked");
  }
  const names = first.env.map((e) => e.name);
  if (new Set(names).size !== names.length) problems.push("duplicate environment variable names");
  return problems;
}

function envOf(manifest: InferenceServiceManifest): Record<string, string> {
  return Object.fromEntries(manifest.spec.predictor.containers[0].env.map((e) => [e.name, e.value]));
}

describe("kserveInferenceService", () => {
  test("the default manifest, field by field", () => {
    assert.deepEqual(kserveInferenceService({ image: IMAGE, name: "digits" }), {
      apiVersion: "serving.kserve.io/v1beta1",
      kind: "InferenceService",
      metadata: {
        name: "digits",
        annotations: { "prometheus.kserve.io/port": "8080", "prometheus.kserve.io/path": "/metrics" },
      },
      spec: {
        predictor: {
          containers: [
            {
              name: "kserve-container",
              image: IMAGE,
              env: [
                { name: "PROTOCOL", value: "v1" },
                { name: "MODEL_NAME", value: "digits" },
                { name: "INTERFACE", value: "kserve" },
                { name: "HTTP_PORT", value: "8080" },
              ],
              ports: [{ containerPort: 8080, protocol: "TCP", name: "http1" }],
              readinessProbe: { httpGet: { path: "/v1/models/digits", port: 8080 } },
            },
          ],
        },
      },
    });
  });

  test("the readiness probe uses the protocol's model-ready route", () => {
    const v1 = kserveInferenceService({ image: IMAGE, name: "digits", protocol: "v1" });
    const v2 = kserveInferenceService({ image: IMAGE, name: "digits", protocol: "v2" });
    assert.deepEqual(v1.spec.predictor.containers[0].readinessProbe, { httpGet: { path: "/v1/models/digits", port: 8080 } });
    assert.deepEqual(v2.spec.predictor.containers[0].readinessProbe, { httpGet: { path: "/v2/models/digits/ready", port: 8080 } });
    assert.equal(envOf(v2).PROTOCOL, "v2");
    assert.equal(modelReadyPath("v1", "m"), "/v1/models/m");
    assert.equal(modelReadyPath("v2", "m"), "/v2/models/m/ready");
  });

  test("every option lands where it belongs", () => {
    const manifest = kserveInferenceService({
      image: "ghcr.io/acme/digits@sha256:0123456789abcdef",
      name: "digits-classifier",
      protocol: "v2",
      interface: "both",
      httpPort: 9000,
      omiPort: 50051,
      namespace: "models",
      resources: { cpu: "500m", memory: "1Gi" },
      env: { LOG_LEVEL: "debug", "my.setting": "" },
    });
    const container = manifest.spec.predictor.containers[0];
    assert.equal(manifest.metadata.namespace, "models");
    assert.equal(container.image, "ghcr.io/acme/digits@sha256:0123456789abcdef");
    assert.deepEqual(container.env, [
      { name: "PROTOCOL", value: "v2" },
      { name: "MODEL_NAME", value: "digits-classifier" },
      { name: "INTERFACE", value: "both" },
      { name: "HTTP_PORT", value: "9000" },
      { name: "PSC_MODEL_PORT", value: "50051" },
      { name: "LOG_LEVEL", value: "debug" },
      { name: "my.setting", value: "" },
    ]);
    // One port only, even with OMI: Knative allows one (see kserve.ts).
    assert.deepEqual(container.ports, [{ containerPort: 9000, protocol: "TCP", name: "http1" }]);
    assert.deepEqual(container.readinessProbe, { httpGet: { path: "/v2/models/digits-classifier/ready", port: 9000 } });
    assert.deepEqual(container.resources, { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "500m", memory: "1Gi" } });
    assert.deepEqual(manifest.metadata.annotations, { "prometheus.kserve.io/port": "9000", "prometheus.kserve.io/path": "/metrics" });
  });

  test("resources: only what is given; none at all leaves KServe's defaults", () => {
    const cpuOnly = kserveInferenceService({ image: IMAGE, name: "m", resources: { cpu: "2" } });
    assert.deepEqual(cpuOnly.spec.predictor.containers[0].resources, { requests: { cpu: "2" }, limits: { cpu: "2" } });
    for (const resources of [undefined, {}]) {
      const options: KServeDeployOptions = resources === undefined ? { image: IMAGE, name: "m" } : { image: IMAGE, name: "m", resources };
      assert.equal("resources" in kserveInferenceService(options).spec.predictor.containers[0], false);
    }
    // requests and limits are separate objects (editing one must not change the other).
    const both = kserveInferenceService({ image: IMAGE, name: "m", resources: { memory: "512Mi" } }).spec.predictor.containers[0].resources;
    assert.notEqual(both?.requests, both?.limits);
  });

  test("OMI's port is set only with interface both", () => {
    assert.equal(envOf(kserveInferenceService({ image: IMAGE, name: "m" })).PSC_MODEL_PORT, undefined);
    assert.equal(envOf(kserveInferenceService({ image: IMAGE, name: "m", omiPort: 50051 })).PSC_MODEL_PORT, undefined);
    assert.equal(envOf(kserveInferenceService({ image: IMAGE, name: "m", interface: "both" })).PSC_MODEL_PORT, "45000");
  });

  test("no namespace option: no metadata.namespace (kubectl -n decides)", () => {
    assert.equal("namespace" in kserveInferenceService({ image: IMAGE, name: "m" }).metadata, false);
  });
});

describe("generated manifests against the real KServe CRD (v1beta1 openAPIV3Schema)", () => {
  const variants: [string, KServeDeployOptions][] = [];
  for (const protocol of ["v1", "v2"] as const) {
    for (const resources of [undefined, { cpu: "500m", memory: "1Gi" }, { memory: "256Mi" }]) {
      for (const iface of ["kserve", "both"] as const) {
        const options: KServeDeployOptions = { image: IMAGE, name: "digits-classifier", protocol, interface: iface };
        if (resources) options.resources = resources;
        variants.push([`${protocol}, ${iface}, resources ${resources ? JSON.stringify(resources) : "none"}`, options]);
      }
    }
  }
  variants.push([
    "every option",
    {
      image: "localhost:5000/a/b/c:tag",
      name: "a",
      protocol: "v2",
      interface: "both",
      httpPort: 8081,
      omiPort: 45001,
      namespace: "kserve-test",
      resources: { cpu: "1.5", memory: "2G" },
      env: { A: "1", B: "true", C: "" },
    },
  ]);

  for (const [title, options] of variants) {
    test(`${title}: valid as an object and as its YAML, and passes the webhook rules`, () => {
      const manifest = kserveInferenceService(options);
      assert.deepEqual(crd.validate(manifest), []);
      const fromYaml = parse(toYaml(manifest));
      assert.deepEqual(fromYaml, manifest);
      assert.deepEqual(crd.validate(fromYaml), []);
      assert.deepEqual(webhookProblems(manifest), []);
    });
  }

  test("the CRD serves exactly serving.kserve.io/v1beta1 InferenceService", () => {
    assert.deepEqual(crd.apiVersions, ["serving.kserve.io/v1beta1"]);
    assert.equal(crd.kind, "InferenceService");
  });
});

describe("the CRD validator rejects broken manifests (so the tests above can fail)", () => {
  const good = kserveInferenceService({ image: IMAGE, name: "digits", resources: { cpu: "1", memory: "1Gi" } });

  const cases: [string, (m: ReturnType<typeof copy>) => void, RegExp][] = [
    [
      "container without a name",
      (m) => {
        delete m.spec.predictor.containers[0].name;
      },
      /^\/spec\/predictor\/containers\/0: must have required property 'name'$/,
    ],
    [
      "containerPort as a string",
      (m) => {
        m.spec.predictor.containers[0].ports[0].containerPort = "8080";
      },
      /^\/spec\/predictor\/containers\/0\/ports\/0\/containerPort: must be integer$/,
    ],
    [
      "env value as a number",
      (m) => {
        m.spec.predictor.containers[0].env[0].value = 1;
      },
      /^\/spec\/predictor\/containers\/0\/env\/0\/value: must be string$/,
    ],
    [
      "containers as an object",
      (m) => {
        m.spec.predictor.containers = { name: "kserve-container" };
      },
      /^\/spec\/predictor\/containers: must be array$/,
    ],
    [
      "probe port as a boolean (int-or-string)",
      (m) => {
        m.spec.predictor.containers[0].readinessProbe.httpGet.port = true;
      },
      /^\/spec\/predictor\/containers\/0\/readinessProbe\/httpGet\/port: must be integer$/,
    ],
    [
      "containerPort beyond int32",
      (m) => {
        m.spec.predictor.containers[0].ports[0].containerPort = 2 ** 31;
      },
      /^\/spec\/predictor\/containers\/0\/ports\/0\/containerPort: must match format "int32"$/,
    ],
    [
      "a misspelt field (strict field validation)",
      (m) => {
        m.spec.predictor.containers[0].readinessprobe = {};
      },
      /^\/spec\/predictor\/containers\/0: must NOT have additional properties \(readinessprobe\)$/,
    ],
    [
      "a resource quantity that is not one",
      (m) => {
        m.spec.predictor.containers[0].resources.limits.cpu = "lots";
      },
      /^\/spec\/predictor\/containers\/0\/resources\/limits\/cpu: must match pattern/,
    ],
    [
      "two ports with the same containerPort and (defaulted) protocol",
      (m) => {
        m.spec.predictor.containers[0].ports.push({ containerPort: 8080, name: "again" });
      },
      /^\/spec\/predictor\/containers\/0\/ports: duplicate entry for list-map key \[8080,"TCP"\]$/,
    ],
    [
      "no predictor",
      (m) => {
        delete m.spec.predictor;
      },
      /^\/spec: must have required property 'predictor'$/,
    ],
    [
      "an annotation value that is not a string",
      (m) => {
        m.metadata.annotations["prometheus.kserve.io/port"] = 8080;
      },
      /^\/metadata\/annotations\/prometheus.kserve.io~1port: must be string$/,
    ],
    [
      "an unknown apiVersion",
      (m) => {
        m.apiVersion = "serving.kserve.io/v1alpha1";
      },
      /^\/apiVersion: "serving.kserve.io\/v1alpha1" is not served by this CRD \(served: serving.kserve.io\/v1beta1\)$/,
    ],
    [
      "another group's apiVersion",
      (m) => {
        m.apiVersion = "serving.knative.dev/v1";
      },
      /^\/apiVersion: "serving.knative.dev\/v1" is not served/,
    ],
    [
      "the wrong kind",
      (m) => {
        m.kind = "ServingRuntime";
      },
      /^\/kind: must be "InferenceService", got "ServingRuntime"$/,
    ],
  ];

  for (const [title, breakIt, expected] of cases) {
    test(title, () => {
      const manifest = copy(good);
      breakIt(manifest);
      const problems = crd.validate(manifest);
      assert.ok(
        problems.some((p) => expected.test(p)),
        `expected a problem matching ${expected}, got:\n${problems.join("\n") || "(none: the manifest was accepted)"}`,
      );
    });
  }

  test("the unbroken manifest is accepted (the cases above fail for their change alone)", () => {
    assert.deepEqual(crd.validate(copy(good)), []);
  });

  test("a CRD using a schema keyword the validator does not implement is refused, not half-checked", () => {
    const document = parse(readFileSync(CRD_PATH, "utf8"));
    document.spec.versions[0].schema.openAPIV3Schema.properties.spec["x-kubernetes-validations"] = [{ rule: "self.predictor != null" }];
    assert.throws(() => crdValidator(document), /keyword "x-kubernetes-validations" at openAPIV3Schema\.spec is not understood/);
  });
});

describe("rules the CRD does not encode, enforced by kserveInferenceService", () => {
  test("the InferenceService name must match KServe's webhook regex", () => {
    for (const name of ["Digits", "digits_classifier", "digits classifier", "-digits", "digits-", "1digits", "", "digits.v1", "dígits"]) {
      const error = usageError(() => kserveInferenceService({ image: IMAGE, name }));
      assert.ok(error.message.includes(JSON.stringify(name)), `the message names the value: ${error.message}`);
      assert.ok(error.message.includes("^[a-z]([-a-z0-9]*[a-z0-9])?$"), `the message gives the rule: ${error.message}`);
    }
    for (const name of ["a", "a1", "digits", "digits-classifier", "a-b-c-1", "x".repeat(MAX_ISVC_NAME_LENGTH)]) {
      assert.equal(kserveInferenceService({ image: IMAGE, name }).metadata.name, name);
    }
  });

  test("the name leaves room for KServe's -predictor suffix (53 characters)", () => {
    const error = usageError(() => kserveInferenceService({ image: IMAGE, name: "x".repeat(MAX_ISVC_NAME_LENGTH + 1) }));
    assert.match(error.message, /at most 53 characters/);
  });

  test("an invalid name comes with a slug to use instead", () => {
    const error = usageError(() => kserveInferenceService({ image: IMAGE, name: "Digits Classifier" }));
    assert.equal(error.hint, 'for example "digits-classifier"');
  });

  test("PROTOCOL must be v1 or v2 (KServe webhook, predictor_custom.go)", () => {
    for (const protocol of ["v3", "V1", "grpc-v2", ""]) {
      const error = usageError(() => kserveInferenceService({ image: IMAGE, name: "m", protocol: protocol as "v1" }));
      assert.ok(error.message.includes(JSON.stringify(protocol)), error.message);
      assert.match(error.message, /"v1" or "v2"/);
    }
  });

  test("interface must be kserve or both", () => {
    const error = usageError(() => kserveInferenceService({ image: IMAGE, name: "m", interface: "omi" as "kserve" }));
    assert.match(error.message, /interface "omi" is not valid for KServe/);
  });

  test("ports: integers 1-65535, not Knative's reserved ports, OMI and REST apart", () => {
    for (const httpPort of [0, -1, 65536, 80.5, Number.NaN]) {
      assert.match(
        usageError(() => kserveInferenceService({ image: IMAGE, name: "m", httpPort })).message,
        /^httpPort .* is not a port number/,
      );
    }
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", httpPort: "8080" as unknown as number })).message,
      /httpPort "8080"/,
    );
    for (const httpPort of [8012, 8013, 8022, 9090, 9091, 8008]) {
      assert.match(usageError(() => kserveInferenceService({ image: IMAGE, name: "m", httpPort })).message, /reserved by Knative/);
    }
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", interface: "both", omiPort: 9091 })).message,
      /^omiPort 9091 is reserved/,
    );
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", omiPort: 0 })).message,
      /^omiPort 0 is not a port number/,
    );
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", interface: "both", httpPort: 45000 })).message,
      /omiPort 45000 is the same as httpPort/,
    );
    // Without OMI the default OMI port cannot clash.
    assert.equal(
      kserveInferenceService({ image: IMAGE, name: "m", httpPort: 45000 }).spec.predictor.containers[0].ports[0]?.containerPort,
      45000,
    );
  });

  test("image, namespace and resources are checked", () => {
    for (const image of ["", "has space:1", "tab\t"]) {
      assert.match(usageError(() => kserveInferenceService({ image, name: "m" })).message, /is not an image reference/);
    }
    for (const namespace of ["Models", "-x", "a_b", "x".repeat(64)]) {
      assert.match(
        usageError(() => kserveInferenceService({ image: IMAGE, name: "m", namespace })).message,
        /is not a valid Kubernetes namespace/,
      );
    }
    for (const cpu of ["lots", "1 core", "", "1.5.5"]) {
      assert.match(
        usageError(() => kserveInferenceService({ image: IMAGE, name: "m", resources: { cpu } })).message,
        /^resources\.cpu .* is not a Kubernetes quantity/,
      );
    }
    const gpu = { gpu: "1" } as unknown as { cpu: string };
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", resources: gpu })).message,
      /resources\.gpu is not supported/,
    );
  });

  test("env: no overriding what the options set, nor Knative's and KServe's reserved names", () => {
    for (const name of [
      "PROTOCOL",
      "MODEL_NAME",
      "INTERFACE",
      "HTTP_PORT",
      "PSC_MODEL_PORT",
      "PORT",
      "K_SERVICE",
      "K_CONFIGURATION",
      "K_REVISION",
      "PYTHONPATH",
    ]) {
      assert.match(
        usageError(() => kserveInferenceService({ image: IMAGE, name: "m", env: { [name]: "x" } })).message,
        new RegExp(`^env ${name} cannot be set here`),
      );
    }
    for (const name of ["", "1ABC", "A=B", "A B"]) {
      assert.match(
        usageError(() => kserveInferenceService({ image: IMAGE, name: "m", env: { [name]: "x" } })).message,
        /is not a valid environment variable name/,
      );
    }
    const numeric = { N: 1 } as unknown as Record<string, string>;
    assert.match(
      usageError(() => kserveInferenceService({ image: IMAGE, name: "m", env: numeric })).message,
      /env N has the value 1; environment values must be strings/,
    );
    // "__proto__" and friends are ordinary names, not lookups into an object's prototype.
    const proto = JSON.parse('{"__proto__": "x", "constructor": "y"}') as Record<string, string>;
    assert.deepEqual(kserveInferenceService({ image: IMAGE, name: "m", env: proto }).spec.predictor.containers[0].env.slice(4), [
      { name: "__proto__", value: "x" },
      { name: "constructor", value: "y" },
    ]);
  });
});

describe("slugify", () => {
  test("turns display names into InferenceService names", () => {
    const cases: [string, string][] = [
      ["Digits Classifier", "digits-classifier"],
      ["digits", "digits"],
      ["  Hello, World!  ", "hello-world"],
      ["Café Crème", "cafe-creme"],
      ["snake_case_name", "snake-case-name"],
      ["v2.1 Model", "v2-1-model"],
      ["3D Model", "m-3d-model"],
      ["", "model"],
      ["!!!", "model"],
      ["日本語", "model"],
    ];
    for (const [input, want] of cases) assert.equal(slugify(input), want, input);
  });

  test("always gives a name kserveInferenceService accepts, at most 53 characters", () => {
    const long = `${"a".repeat(52)}-b`;
    assert.equal(slugify(long), "a".repeat(52)); // cut, and the dangling "-" dropped
    for (const input of ["Digits Classifier", long, "9", "-x-", "A".repeat(100), "a ".repeat(40), "Ünïcödé 123", "x--y"]) {
      const slug = slugify(input);
      assert.match(slug, ISVC_NAME_PATTERN, input);
      assert.ok(slug.length <= MAX_ISVC_NAME_LENGTH, input);
      assert.equal(kserveInferenceService({ image: IMAGE, name: slug }).metadata.name, slug);
    }
  });
});

describe("nameFromImage", () => {
  test("takes the repository's last path segment, without tag or digest", () => {
    const cases: [string, string][] = [
      ["registry.example.com:5000/team/digits-classifier:1.0.0", "digits-classifier"],
      ["digits", "digits"],
      ["localhost:5000/Digits_Classifier", "digits-classifier"],
      ["ghcr.io/acme/echo@sha256:0123abcd", "echo"],
      ["ghcr.io/acme/echo:1.0@sha256:0123abcd", "echo"],
      ["docker.io/library/3d-model:latest", "m-3d-model"],
    ];
    for (const [image, want] of cases) assert.equal(nameFromImage(image), want, image);
  });
});

/**
 * @module deploy/kserve
 * Builds a KServe `InferenceService` (serving.kserve.io/v1beta1) that runs a
 * chassis-ts image as a custom predictor container (kserve-rest.md §4.1-4.2).
 * Pure data in, plain JSON-like object out: no I/O, no CLI; `toYaml` prints it.
 *
 * The manifest is meant to be accepted in both KServe deployment modes:
 * Knative (KServe's shipped default, "Serverless") and Standard ("RawDeployment").
 * Where the two differ the choice is explained at the field. It passes the
 * CRD's openAPIV3Schema (tested against the full CRD) and, checked here because
 * the CRD does not encode them, the KServe webhook rules (name regex, `PROTOCOL`
 * value) and Knative's container rules (one port, named `http1`; reserved ports
 * and environment variables).
 */
import { ToolError } from "../core/tool-error.js";
import { modelSlug } from "../model/metadata.js";

export const KSERVE_API_VERSION = "serving.kserve.io/v1beta1";
/** KServe finds the predictor's main container by this name (constants.InferenceServiceContainerName). */
export const KSERVE_CONTAINER_NAME = "kserve-container";
export const DEFAULT_HTTP_PORT = 8080;
/** The OMI gRPC port (SPEC §2, `PSC_MODEL_PORT`); the same default as src/omi/server.ts, not imported to keep this module core-only. */
export const DEFAULT_OMI_PORT = 45000;

/**
 * The InferenceService name rule of KServe's validating webhook
 * (pkg/apis/serving/v1beta1/inference_service_validation.go `IsvcNameFmt`).
 */
export const ISVC_NAME_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * KServe names the predictor's Service (Standard mode) and Knative Service
 * (Knative mode) `<name>-predictor`; both must be DNS-1035 labels of at most
 * 63 characters, so the InferenceService name can have at most 63 - 10.
 */
export const MAX_ISVC_NAME_LENGTH = 53;

/**
 * Container ports Knative keeps for its queue-proxy and profiling
 * (knative.dev/serving pkg/apis/serving/k8s_validation.go `reservedPorts`).
 * Standard mode has no queue-proxy, but a manifest meant for both modes avoids them.
 */
export const KNATIVE_RESERVED_PORTS: readonly number[] = [8008, 8012, 8013, 8022, 9090, 9091];

/**
 * Environment variable names a user cannot set through `env`: the ones this
 * module sets from its own options, the ones Knative reserves (it sets them
 * itself: `PORT`, `K_SERVICE`, `K_CONFIGURATION`, `K_REVISION`), and the one
 * KServe's webhook blocks (`PYTHONPATH`, pkg/validation/env_policy.go).
 */
const RESERVED_ENV: ReadonlyMap<string, string> = new Map([
  ["PROTOCOL", "set by the protocol option"],
  ["MODEL_NAME", "set from the name option (the model is served under the InferenceService name)"],
  ["INTERFACE", "set by the interface option"],
  ["HTTP_PORT", "set by the httpPort option"],
  ["PSC_MODEL_PORT", "set by the omiPort option"],
  ["PORT", "reserved by Knative, which sets it to the container port"],
  ["K_SERVICE", "reserved by Knative"],
  ["K_CONFIGURATION", "reserved by Knative"],
  ["K_REVISION", "reserved by Knative"],
  ["PYTHONPATH", "blocked by KServe's validating webhook"],
]);

/** Environment variable names Kubernetes accepts on every version (C identifiers plus `-` and `.`). */
const ENV_NAME_PATTERN = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** Kubernetes namespace names are DNS-1123 labels. */
const NAMESPACE_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A Kubernetes resource quantity, the CRD's own pattern for
 * `resources.requests`/`limits` values (`500m`, `2`, `1.5`, `512Mi`, `1Gi`, `1e3`).
 */
const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

export type KServeProtocol = "v1" | "v2";
/** `kserve`: REST only. `both`: REST plus OMI gRPC in the same container (OMI needs its own Service; see docs/deploy-kserve.md). */
export type KServeInterface = "kserve" | "both";

export interface KServeDeployOptions {
  /** The image reference to run, e.g. `registry.example.com/digits:1.0.0` or a `@sha256:` digest. */
  image: string;
  /**
   * The InferenceService name, also the model name the server answers to
   * (`MODEL_NAME`) and so the `<name>` in `/v1/models/<name>:predict`. Must match
   * {@link ISVC_NAME_PATTERN}, at most {@link MAX_ISVC_NAME_LENGTH} characters;
   * {@link slugify} turns a model's display name into one.
   */
  name: string;
  /** `PROTOCOL`: which KServe REST protocol the server advertises and the readiness probe uses. @default "v1" (KServe's own default) */
  protocol?: KServeProtocol;
  /** `INTERFACE`. @default "kserve" */
  interface?: KServeInterface;
  /** The REST port (`HTTP_PORT`, the container port KServe routes to). @default 8080 */
  httpPort?: number;
  /** The OMI gRPC port (`PSC_MODEL_PORT`), used only with `interface: "both"`. @default 45000 */
  omiPort?: number;
  /** `metadata.namespace`; omitted when not given, so `kubectl apply -n` decides. */
  namespace?: string;
  /** Kubernetes quantities, set as both request and limit (as KServe's own defaults are); omitted: KServe's configured defaults apply. */
  resources?: { cpu?: string; memory?: string };
  /** Extra environment variables for the container, in the given order, after the ones this module sets. */
  env?: Record<string, string>;
}

export interface EnvVar {
  name: string;
  value: string;
}

export interface PredictorContainer {
  name: string;
  image: string;
  env: EnvVar[];
  ports: { containerPort: number; protocol: "TCP"; name: "http1" }[];
  readinessProbe: { httpGet: { path: string; port: number } };
  resources?: { requests: Record<string, string>; limits: Record<string, string> };
}

/** The shape this module produces: a JSON-like object, ready for `toYaml` or `JSON.stringify`. */
export interface InferenceServiceManifest {
  apiVersion: typeof KSERVE_API_VERSION;
  kind: "InferenceService";
  metadata: { name: string; namespace?: string; annotations: Record<string, string> };
  spec: { predictor: { containers: [PredictorContainer] } };
}

/**
 * Turns a model's display name into a valid InferenceService name:
 * "Digits Classifier" -> "digits-classifier". The rule of the server's default
 * `MODEL_NAME` (src/model/metadata.ts `modelSlug`: lower case, runs of other
 * characters become one "-"), plus: accents are dropped rather than turned
 * into "-" ("Café Crème" -> "cafe-creme"), a leading digit gets an "m-" prefix,
 * and the result is cut to 53 characters. The manifest sets `MODEL_NAME`
 * explicitly, so the two never need to agree at run time.
 */
export function slugify(name: string): string {
  let slug = modelSlug(name);
  if (/^[0-9]/.test(slug)) slug = `m-${slug}`;
  return slug.slice(0, MAX_ISVC_NAME_LENGTH).replace(/-+$/, "");
}

/**
 * A default InferenceService name from an image reference: the last path
 * segment of the repository, without tag or digest, through {@link slugify}:
 * "registry.example.com:5000/team/digits-classifier:1.0.0" -> "digits-classifier".
 */
export function nameFromImage(image: string): string {
  const withoutDigest = image.split("@")[0] ?? "";
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const repository = lastSegment.split(":")[0] ?? "";
  return slugify(repository);
}

/** The route that answers 200 only once the model is loaded (kserve-rest.md §1, §2): the readiness probe's path. */
export function modelReadyPath(protocol: KServeProtocol, modelName: string): string {
  return protocol === "v2" ? `/v2/models/${modelName}/ready` : `/v1/models/${modelName}`;
}

/** Builds the InferenceService; throws ToolError("CHASSIS_USAGE") naming the option, the value and the rule when an option is invalid. */
export function kserveInferenceService(options: KServeDeployOptions): InferenceServiceManifest {
  const name = checkName(options.name);
  const image = checkImage(options.image);
  const protocol = checkProtocol(options.protocol ?? "v1");
  const iface = checkInterface(options.interface ?? "kserve");
  const httpPort = checkPort("httpPort", options.httpPort ?? DEFAULT_HTTP_PORT);
  // omiPort matters only with interface "both"; a given value is checked all the same.
  const omiPort = iface === "both" || options.omiPort !== undefined ? checkPort("omiPort", options.omiPort ?? DEFAULT_OMI_PORT) : undefined;
  if (iface === "both" && omiPort === httpPort) {
    throw usage(`omiPort ${omiPort} is the same as httpPort: OMI gRPC and KServe REST need different ports`);
  }

  const env: EnvVar[] = [
    { name: "PROTOCOL", value: protocol },
    { name: "MODEL_NAME", value: name },
    { name: "INTERFACE", value: iface },
    { name: "HTTP_PORT", value: String(httpPort) },
  ];
  if (iface === "both" && omiPort !== undefined) env.push({ name: "PSC_MODEL_PORT", value: String(omiPort) });
  env.push(...checkEnv(options.env ?? {}));

  const container: PredictorContainer = {
    name: KSERVE_CONTAINER_NAME,
    image,
    env,
    // Exactly one port: Knative allows one container port and routes to it; its
    // name must be empty, "http1" or "h2c", and "http1" says "HTTP/1.1 REST".
    // KServe routes to ports[0] in both modes (Standard: Service port 80 ->
    // targetPort ports[0].containerPort). The OMI port is not declared here: a
    // second entry would make Knative reject the revision. A Service's numeric
    // targetPort reaches an undeclared port, which is how OMI is exposed in
    // Standard mode (docs/deploy-kserve.md).
    ports: [{ containerPort: httpPort, protocol: "TCP", name: "http1" }],
    // An HTTP probe on the model-ready route, so the pod gets traffic only once
    // the model is loaded (a TCP probe, Standard mode's default, passes as soon
    // as the port is bound). `port` is required by Kubernetes (Standard mode)
    // and the CRD allows it (int-or-string). Knative rejected any probe port
    // before v1.1 (kserve#804, #1748); since knative/serving#12225 (v1.1) it
    // accepts the container port, and later versions any port, so the
    // container port itself validates in both modes. periodSeconds,
    // timeoutSeconds and failureThreshold stay unset: Knative then probes
    // aggressively through queue-proxy until ready (and rejects timeout or
    // failure thresholds without a period), and Kubernetes applies its defaults.
    // In Knative mode the pod shows queue-proxy's probe, not this one; queue-proxy
    // runs this one on the container's behalf (kserve#2994).
    readinessProbe: { httpGet: { path: modelReadyPath(protocol, name), port: httpPort } },
  };
  const resources = checkResources(options.resources);
  if (resources) container.resources = { requests: { ...resources }, limits: { ...resources } };

  // KServe's metrics scraping reads these (kserve-rest.md §3.3); annotation values are strings.
  const annotations = {
    "prometheus.kserve.io/port": String(httpPort),
    "prometheus.kserve.io/path": "/metrics",
  };
  const metadata: InferenceServiceManifest["metadata"] =
    options.namespace === undefined ? { name, annotations } : { name, namespace: checkNamespace(options.namespace), annotations };

  return {
    apiVersion: KSERVE_API_VERSION,
    kind: "InferenceService",
    metadata,
    spec: { predictor: { containers: [container] } },
  };
}

function usage(message: string, hint?: string): ToolError {
  return new ToolError("CHASSIS_USAGE", message, hint === undefined ? {} : { hint });
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function checkName(name: unknown): string {
  if (typeof name !== "string" || !ISVC_NAME_PATTERN.test(name) || name.length > MAX_ISVC_NAME_LENGTH) {
    const suggestion = typeof name === "string" ? slugify(name) : undefined;
    throw usage(
      `name ${show(name)} is not a valid InferenceService name: it must match ${ISVC_NAME_PATTERN.source} ` +
        `(lower-case letters, digits and "-"; starting with a letter, not ending with "-") ` +
        `and have at most ${MAX_ISVC_NAME_LENGTH} characters (KServe appends "-predictor" to make a 63-character DNS label)`,
      suggestion ? `for example "${suggestion}"` : undefined,
    );
  }
  return name;
}

function checkImage(image: unknown): string {
  if (typeof image !== "string" || image === "" || /\s/.test(image) || [...image].some((ch) => ch < " " || ch === "\u007f")) {
    throw usage(`image ${show(image)} is not an image reference (expected e.g. registry.example.com/model:1.0.0, without spaces)`);
  }
  return image;
}

function checkProtocol(protocol: unknown): KServeProtocol {
  // KServe's webhook: "invalid protocol %s. Must be one of [v1, v2]" (predictor_custom.go).
  if (protocol !== "v1" && protocol !== "v2") {
    throw usage(`protocol ${show(protocol)} is not valid: KServe accepts PROTOCOL "v1" or "v2" for a custom container`);
  }
  return protocol;
}

function checkInterface(iface: unknown): KServeInterface {
  if (iface !== "kserve" && iface !== "both") {
    throw usage(
      `interface ${show(iface)} is not valid for KServe: expected "kserve" (REST only) or "both" (REST plus OMI gRPC); ` +
        `KServe routes REST, so "omi" alone cannot serve an InferenceService`,
    );
  }
  return iface;
}

function checkPort(option: "httpPort" | "omiPort", port: unknown): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw usage(`${option} ${show(port)} is not a port number (expected an integer from 1 to 65535)`);
  }
  if (KNATIVE_RESERVED_PORTS.includes(port)) {
    throw usage(
      `${option} ${port} is reserved by Knative (queue-proxy and profiling use ${KNATIVE_RESERVED_PORTS.join(", ")}); choose another port`,
    );
  }
  return port;
}

function checkNamespace(namespace: unknown): string {
  if (typeof namespace !== "string" || !NAMESPACE_PATTERN.test(namespace) || namespace.length > 63) {
    throw usage(
      `namespace ${show(namespace)} is not a valid Kubernetes namespace: it must match ${NAMESPACE_PATTERN.source} and have at most 63 characters`,
    );
  }
  return namespace;
}

function checkResources(resources: KServeDeployOptions["resources"]): Record<string, string> | undefined {
  if (resources === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const key of ["cpu", "memory"] as const) {
    const value: unknown = resources[key];
    if (value === undefined) continue;
    if (typeof value !== "string" || !QUANTITY_PATTERN.test(value)) {
      throw usage(
        `resources.${key} ${show(value)} is not a Kubernetes quantity (expected e.g. ${key === "cpu" ? '"500m" or "2"' : '"512Mi" or "2Gi"'})`,
      );
    }
    out[key] = value;
  }
  for (const key of Object.keys(resources)) {
    if (key !== "cpu" && key !== "memory") throw usage(`resources.${key} is not supported (expected cpu and/or memory)`);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function checkEnv(env: Record<string, string>): EnvVar[] {
  return Object.entries(env).map(([name, value]) => {
    if (!ENV_NAME_PATTERN.test(name)) {
      throw usage(
        `env name ${show(name)} is not a valid environment variable name (expected letters, digits, "_", "-" or ".", not starting with a digit)`,
      );
    }
    const reason = RESERVED_ENV.get(name);
    if (reason !== undefined) throw usage(`env ${name} cannot be set here: ${reason}`);
    if (typeof value !== "string") throw usage(`env ${name} has the value ${show(value)}; environment values must be strings`);
    return { name, value };
  });
}

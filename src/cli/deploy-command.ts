/**
 * @module cli/deploy-command
 * `chassis deploy kserve`: prints a KServe InferenceService for an image.
 */
import { ToolError } from "../core/tool-error.js";
import { kserveInferenceService, nameFromImage } from "../deploy/kserve.js";
import { toYaml } from "../deploy/yaml.js";
import { parsePort } from "../server/config.js";
import { out, parse } from "./common.js";

/** `chassis deploy kserve`: prints an InferenceService for an image (docs/deploy-kserve.md). */
export function deploy(args: string[]): number {
  const [target, ...rest] = args;
  if (target !== "kserve") throw new ToolError("CHASSIS_USAGE", `deploy needs a target: kserve (got ${target ?? "nothing"})`);
  const { values, positionals } = parse("deploy kserve", rest, {
    image: { type: "string" },
    name: { type: "string" },
    protocol: { type: "string" },
    interface: { type: "string" },
    "http-port": { type: "string" },
    "omi-port": { type: "string" },
    namespace: { type: "string" },
    cpu: { type: "string" },
    memory: { type: "string" },
    env: { type: "string", multiple: true, default: [] as string[] },
    json: { type: "boolean", default: false },
  });
  if (positionals.length > 0) throw new ToolError("CHASSIS_USAGE", `deploy kserve: unexpected argument ${positionals[0]}`);
  if (!values.image)
    throw new ToolError("CHASSIS_USAGE", "deploy kserve needs --image REF, e.g. --image registry.example.com/digits:1.0.0");
  if (values.protocol !== undefined && values.protocol !== "v1" && values.protocol !== "v2") {
    throw new ToolError("CHASSIS_USAGE", `--protocol "${values.protocol}" is not v1 or v2`);
  }
  if (values.interface !== undefined && values.interface !== "kserve" && values.interface !== "both") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `--interface "${values.interface}" is not kserve or both (KServe routes REST, so omi alone cannot be deployed there)`,
    );
  }
  const env: Record<string, string> = {};
  for (const pair of values.env) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ToolError("CHASSIS_USAGE", `--env "${pair}" is not KEY=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const resources = { ...(values.cpu ? { cpu: values.cpu } : {}), ...(values.memory ? { memory: values.memory } : {}) };
  const manifest = kserveInferenceService({
    image: values.image,
    name: values.name ?? nameFromImage(values.image),
    ...(values.protocol ? { protocol: values.protocol } : {}),
    ...(values.interface ? { interface: values.interface } : {}),
    ...(values["http-port"] ? { httpPort: parsePort(values["http-port"], "--http-port") } : {}),
    ...(values["omi-port"] ? { omiPort: parsePort(values["omi-port"], "--omi-port") } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    ...(Object.keys(env).length > 0 ? { env } : {}),
  });
  out(values.json ? `${JSON.stringify(manifest, null, 2)}\n` : toYaml(manifest));
  return 0;
}

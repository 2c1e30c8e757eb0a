/**
 * @module cli/client-commands
 * `chassis client status|run|shutdown` (OMI) and `chassis client predict`
 * (KServe v1/v2): one call to a running server, printed.
 */
import { toJson } from "@bufbuild/protobuf";
import { KServeClient } from "../client/kserve-client.js";
import { OmiClient } from "../client/omi-client.js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { TOOL_ERRORS, ToolError } from "../core/tool-error.js";
import { RunResponseSchema, ShutdownResponseSchema, StatusResponseSchema } from "../omi/gen/model_pb.js";
import { parsePort } from "../server/config.js";
import { duration, out, parse, reportItems } from "./common.js";
import { parseInputs } from "./inputs.js";

const CLIENT_OPTIONS = {
  url: { type: "string" },
  model: { type: "string" },
  protocol: { type: "string", default: "v1" },
  host: { type: "string", default: "localhost" },
  port: { type: "string" },
  timeout: { type: "string", default: "60s" },
  wait: { type: "string" },
  input: { type: "string", multiple: true, default: [] as string[] },
  json: { type: "boolean", default: false },
} as const;

export async function client(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "status" && action !== "run" && action !== "shutdown" && action !== "predict") {
    throw new ToolError(
      "CHASSIS_USAGE",
      `client needs an action: status, run, shutdown (OMI) or predict (KServe) (got ${action ?? "nothing"})`,
    );
  }
  const { values, positionals } = parse(`client ${action}`, rest, CLIENT_OPTIONS);
  if (positionals.length > 0) throw new ToolError("CHASSIS_USAGE", `client ${action}: unexpected argument ${positionals[0]}`);
  if (action === "predict") return predict(values);
  const envPort = process.env.PSC_MODEL_PORT;
  const port = values.port !== undefined ? parsePort(values.port, "--port") : envPort ? parsePort(envPort, "PSC_MODEL_PORT") : 45000;
  const host = values.host.includes(":") && !values.host.startsWith("[") ? `[${values.host}]` : values.host;
  const timeoutMs = duration(values.timeout, "timeout");
  const omi = new OmiClient({ address: `${host}:${port}`, timeoutMs });
  try {
    if (values.wait !== undefined) await omi.waitUntilReady({ timeoutMs: duration(values.wait, "wait") });
    switch (action) {
      case "status": {
        const response = await omi.status();
        out(`${JSON.stringify(toJson(StatusResponseSchema, response, { alwaysEmitImplicit: true }), null, 2)}\n`);
        return response.statusCode === 200 ? 0 : TOOL_ERRORS.CHASSIS_CALL_FAILED.exit;
      }
      case "run": {
        if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "client run needs at least one --input key=@file or key=text");
        const response = await omi.run([parseInputs(values.input)]);
        if (values.json) {
          out(`${JSON.stringify(toJson(RunResponseSchema, response, { alwaysEmitImplicit: true }), null, 2)}\n`);
          return response.outputs.every((o) => o.success) ? 0 : TOOL_ERRORS.CHASSIS_ITEM_FAILED.exit;
        }
        out(`${response.statusCode} ${response.status}: ${response.message}\n`);
        return reportItems(
          response.outputs.map((o) => ({ success: o.success, outputs: o.output })),
          false,
        );
      }
      case "shutdown": {
        const response = await omi.shutdown();
        out(`${JSON.stringify(toJson(ShutdownResponseSchema, response, { alwaysEmitImplicit: true }))}\n`);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const reason = ChassisError.from(error);
    const id = reason.code === Code.UNAVAILABLE || reason.code === Code.DEADLINE_EXCEEDED ? "CHASSIS_UNREACHABLE" : "CHASSIS_CALL_FAILED";
    throw new ToolError(id, reason.message);
  } finally {
    omi.close();
  }
}

/** `chassis client predict`: one item over KServe v1 (an instance keyed by input name, base64) or v2 (BYTES tensors). */
async function predict(values: {
  url?: string | undefined;
  model?: string | undefined;
  protocol: string;
  input: string[];
  json: boolean;
  timeout: string;
  wait?: string | undefined;
}): Promise<number> {
  if (!values.url) throw new ToolError("CHASSIS_USAGE", "client predict needs --url, e.g. --url http://localhost:8080");
  if (values.input.length === 0) throw new ToolError("CHASSIS_USAGE", "client predict needs at least one --input key=@file or key=text");
  if (values.protocol !== "v1" && values.protocol !== "v2")
    throw new ToolError("CHASSIS_USAGE", `--protocol "${values.protocol}" is not v1 or v2`);
  const item = parseInputs(values.input);
  const client = new KServeClient({ url: values.url, timeoutMs: duration(values.timeout, "timeout") });
  try {
    const model = values.model ?? (await client.models())[0];
    if (!model) throw new ToolError("CHASSIS_CALL_FAILED", `${values.url} serves no models`);
    if (values.wait !== undefined) await client.waitUntilReady(model, { timeoutMs: duration(values.wait, "wait") });
    let outputs: Record<string, Uint8Array>;
    if (values.protocol === "v1") {
      const instance = Object.fromEntries(
        Object.entries(item).map(([key, bytes]) => [key, { b64: Buffer.from(bytes).toString("base64") }]),
      );
      const [prediction] = (await client.predict(model, [instance], { output_format: "all" })) as Array<Record<string, unknown>>;
      outputs = Object.fromEntries(
        Object.entries(prediction ?? {}).map(([key, value]) => [
          key,
          new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value)),
        ]),
      );
    } else {
      // v2 BYTES travel as JSON strings here, so inputs must be UTF-8 text.
      const text = new TextDecoder("utf-8", { fatal: true });
      for (const [key, bytes] of Object.entries(item)) {
        try {
          text.decode(bytes);
        } catch {
          throw new ToolError(
            "CHASSIS_BAD_INPUT",
            `--input ${key} is not UTF-8 text, which v2 JSON tensors carry; use --protocol v1 (base64) for binary inputs`,
          );
        }
      }
      const [result] = await client.inferItems(model, [Object.fromEntries(Object.entries(item).map(([k, v]) => [k, text.decode(v)]))]);
      outputs = Object.fromEntries(Object.entries(result ?? {}).map(([key, value]) => [key, new TextEncoder().encode(value)]));
    }
    return reportItems([{ success: true, outputs }], values.json);
  } catch (error) {
    if (error instanceof ToolError) throw error;
    const reason = ChassisError.from(error);
    const unreachable = reason.code === Code.UNAVAILABLE || reason.code === Code.DEADLINE_EXCEEDED;
    throw new ToolError(unreachable ? "CHASSIS_UNREACHABLE" : "CHASSIS_CALL_FAILED", reason.message);
  }
}

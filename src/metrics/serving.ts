/**
 * @module metrics/serving
 * The metrics every interface records: KServe's histogram names
 * (`request_predict_seconds` etc., label `model_name`, reference
 * kserve-rest.md 3.3) plus request and item counters by interface and
 * outcome, which KServe leaves to the mesh.
 */
import { Counter, Histogram, Registry } from "./registry.js";

export type InterfaceLabel = "omi" | "v1" | "v2";
/** ok: every item succeeded; item_error: the call worked, some items failed; error: the call failed. */
export type RequestOutcome = "ok" | "item_error" | "error";

export class ServingMetrics {
  readonly registry = new Registry();
  readonly preprocess = this.registry.register(new Histogram("request_preprocess_seconds", "pre-process request latency"));
  readonly predict = this.registry.register(new Histogram("request_predict_seconds", "predict request latency"));
  readonly postprocess = this.registry.register(new Histogram("request_postprocess_seconds", "post-process request latency"));
  readonly explain = this.registry.register(new Histogram("request_explain_seconds", "explain request latency"));
  readonly requests = this.registry.register(
    new Counter("chassis_requests_total", "Inference calls by interface (omi, v1, v2) and outcome (ok, item_error, error)."),
  );
  readonly items = this.registry.register(new Counter("chassis_items_total", "Items predicted, by interface and outcome (ok, failed)."));

  constructor(readonly modelName: string) {}

  /** Records one inference call: its predict time and counts. */
  recordRun(iface: InterfaceLabel, seconds: number, ok: number, failed: number, callFailed = false): void {
    this.predict.observe({ model_name: this.modelName }, seconds);
    const outcome: RequestOutcome = callFailed ? "error" : failed > 0 ? "item_error" : "ok";
    this.requests.inc({ interface: iface, outcome });
    if (ok > 0) this.items.inc({ interface: iface, outcome: "ok" }, ok);
    if (failed > 0) this.items.inc({ interface: iface, outcome: "failed" }, failed);
  }

  /** Records a call refused before predict (bad body, unknown model, not ready). */
  recordRefused(iface: InterfaceLabel): void {
    this.requests.inc({ interface: iface, outcome: "error" });
  }
}

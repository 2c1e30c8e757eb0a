/**
 * @module metrics/serving
 * The metrics every interface records: KServe's histogram names
 * (`request_predict_seconds` etc., label `model_name`, reference
 * kserve-rest.md 3.3) plus request and item counters by interface and
 * outcome, which KServe leaves to the mesh.
 */
import { Counter, Histogram, Registry } from "./registry.js";

/** Powers of two up to 1024: batch sizes, not seconds. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

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
  readonly batchItems = this.registry.register(
    new Histogram("chassis_batch_items", "Items in each predictBatch call that batching across calls made.", BATCH_BUCKETS),
  );

  // Series resolved on first use and kept: the label lookup is off the per-call path.
  readonly #stageSeries = new Map<Histogram, { observe(seconds: number): void }>();
  // counter -> interface -> outcome -> series; constant strings as keys, so no key is built per call.
  readonly #counters = new Map<Counter, Map<string, Map<string, { inc(by?: number): void }>>>();

  constructor(readonly modelName: string) {}

  #count(counter: Counter, iface: InterfaceLabel, outcome: string, by: number): void {
    let byInterface = this.#counters.get(counter);
    if (!byInterface) {
      byInterface = new Map();
      this.#counters.set(counter, byInterface);
    }
    let byOutcome = byInterface.get(iface);
    if (!byOutcome) {
      byOutcome = new Map();
      byInterface.set(iface, byOutcome);
    }
    let series = byOutcome.get(outcome);
    if (!series) {
      series = counter.child({ interface: iface, outcome });
      byOutcome.set(outcome, series);
    }
    series.inc(by);
  }

  /** Records the size of one predictBatch call that batching across calls made. */
  recordBatch(items: number): void {
    this.observe(this.batchItems, items);
  }

  /** Records a stage's time (preprocess, predict, postprocess, explain) for the served model, or a batch's size. */
  observe(stage: Histogram, seconds: number): void {
    let series = this.#stageSeries.get(stage);
    if (!series) {
      series = stage.child({ model_name: this.modelName });
      this.#stageSeries.set(stage, series);
    }
    series.observe(seconds);
  }

  /** Records one inference call: its predict time and counts. */
  recordRun(iface: InterfaceLabel, seconds: number, ok: number, failed: number, callFailed = false): void {
    this.observe(this.predict, seconds);
    const outcome: RequestOutcome = callFailed ? "error" : failed > 0 ? "item_error" : "ok";
    this.#count(this.requests, iface, outcome, 1);
    if (ok > 0) this.#count(this.items, iface, "ok", ok);
    if (failed > 0) this.#count(this.items, iface, "failed", failed);
  }

  /** Records a call refused before predict (bad body, unknown model, not ready). */
  recordRefused(iface: InterfaceLabel): void {
    this.#count(this.requests, iface, "error", 1);
  }
}

/**
 * @module omi/service
 * The ModzyModel service (OMI): Status, Run and Shutdown as thin adapters over
 * the Runtime. Texts follow the Chassis reference server byte for byte; the
 * places where chassis-ts fixes its bugs are marked "Departure".
 */
import type { ServingMetrics } from "../metrics/serving.js";
import type { ItemOutcome, RawItem } from "../runtime/outcome.js";
import type { RunOptions, Runtime } from "../runtime/runtime.js";
import type { RunReply } from "./run-codec.js";
import { encodeShutdownResponse, encodeStatusResponse } from "./service-codec.js";
import { errorOutput, OMI_INTERNAL_ERROR, OMI_OK, omiStatusFor } from "./status.js";

export const MESSAGES = Object.freeze({
  initialized: "Model Initialized Successfully.",
  alreadyInitialized: "Model Already Initialized.",
  failedToInitialize: "Model Failed to Initialize.",
  inferenceExecuted: "Inference executed",
  shutdown: "Model Shutdown Successfully.",
});

export interface OmiServiceOptions {
  /** Called once after the Shutdown reply has been handed to the transport. */
  onShutdown?: () => void;
  metrics?: ServingMetrics;
}

export class OmiService {
  readonly #runtime: Runtime;
  readonly #onShutdown: () => void;
  readonly #metrics: ServingMetrics | undefined;
  #statusAnswered = false;
  #shutdownRequested = false;

  constructor(runtime: Runtime, options: OmiServiceOptions = {}) {
    this.#runtime = runtime;
    this.#onShutdown = options.onShutdown ?? (() => {});
    this.#metrics = options.metrics;
  }

  /**
   * Loads the model if needed (a failed load is retried, as in Chassis) and
   * answers with all metadata. The first successful Status says
   * "Initialized", later ones "Already Initialized", even when the model was
   * loaded at start (so clients see what they saw with Chassis).
   */
  async status(): Promise<Uint8Array> {
    try {
      await this.#runtime.load();
    } catch {
      // The runtime logged the load error; OMI only carries the fixed text.
      return encodeStatusResponse(this.#runtime.metadata, OMI_INTERNAL_ERROR, MESSAGES.failedToInitialize);
    }
    const message = this.#statusAnswered ? MESSAGES.alreadyInitialized : MESSAGES.initialized;
    this.#statusAnswered = true;
    return encodeStatusResponse(this.#runtime.metadata, OMI_OK, message);
  }

  /**
   * Predicts every item. Departures from Chassis: a model that is not loaded
   * gives per-item errors instead of gRPC UNKNOWN; a failed item has
   * success=false (Chassis said true); a failed batch fails only its items
   * (Chassis returned 0 outputs).
   */
  /** `options.signal` may be a getter: the runtime reads it only when a predict needs it. */
  run(items: readonly RawItem[], options: RunOptions = {}): Promise<RunReply> {
    const ready = this.#runtime.state === "ready";
    const started = performance.now();
    // .then rather than async/await: one promise fewer on the hot path.
    return this.#runtime.run(items, options).then((outcomes) => this.#reply(outcomes, ready, started));
  }

  #reply(outcomes: ItemOutcome[], ready: boolean, started: number): RunReply {
    let failed = 0;
    const outputs = outcomes.map((outcome) => {
      if (outcome.ok) return { output: outcome.outputs, success: true };
      failed++;
      return { output: errorOutput(outcome.error), success: false };
    });
    this.#metrics?.recordRun("omi", (performance.now() - started) / 1000, outcomes.length - failed, failed, !ready);
    const first = outcomes[0];
    if (!ready && first && !first.ok) {
      const { statusCode, status } = omiStatusFor(first.error.code);
      return { statusCode, status, message: first.error.message, outputs };
    }
    return { statusCode: OMI_OK.statusCode, status: OMI_OK.status, message: MESSAGES.inferenceExecuted, outputs };
  }

  /** Answers, then asks the server to drain and exit (Chassis exits 143; we drain and exit 0). */
  shutdown(): Uint8Array {
    if (!this.#shutdownRequested) {
      this.#shutdownRequested = true;
      setImmediate(this.#onShutdown);
    }
    return encodeShutdownResponse(OMI_OK, MESSAGES.shutdown);
  }
}

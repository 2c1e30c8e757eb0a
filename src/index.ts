/**
 * @module chassis-ts
 * For model authors: defineModel and its helpers. For tools and other
 * libraries (below): the runtime, the servers and the clients.
 */

export type { KServeClientOptions, V2InferResponse, V2Tensor } from "./client/kserve-client.js";
export { KServeClient } from "./client/kserve-client.js";
export type { OmiClientOptions, RunResponse, ShutdownResponse, StatusResponse } from "./client/omi-client.js";
export { OmiClient } from "./client/omi-client.js";
export { Code } from "./core/code.js";
export { ChassisError } from "./core/error.js";
export type { Logger, LogLevel } from "./core/log.js";
export { createLogger } from "./core/log.js";
export type { KServeDeployOptions } from "./deploy/kserve.js";
export { kserveInferenceService, slugify } from "./deploy/kserve.js";
export { toYaml } from "./deploy/yaml.js";
export type {
  BatchPredictDefinition,
  LoadContext,
  ModelDefinition,
  PredictContext,
  SinglePredictDefinition,
} from "./model/define.js";
export { defineModel, isModel, Model } from "./model/define.js";
export type { ModelOutputs } from "./model/item.js";
export { json, ModelItem, text } from "./model/item.js";
export type { InputSpec, MetadataSpec, ModelMetadata, OutputSpec } from "./model/metadata.js";
export { modelSlug } from "./model/metadata.js";
export type { ItemOutcome, RawItem } from "./runtime/outcome.js";
export type { RunOptions, RuntimeState } from "./runtime/runtime.js";
// For tools and other libraries.
export { Runtime } from "./runtime/runtime.js";
export type { ServerConfig } from "./server/config.js";
export { parseServeArgs, resolveServerConfig } from "./server/config.js";
export type { RunningServer } from "./server/serve.js";
export { startServer } from "./server/serve.js";

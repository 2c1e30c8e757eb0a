/**
 * @module omi/server
 * The OMI gRPC server on @grpc/grpc-js: ModzyModel + Health + reflection on
 * one port. It only adapts transport to OmiService; start-up order, signals
 * and exit belong to src/server.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { ChassisError } from "../core/error.js";
import { type Logger, silentLogger } from "../core/log.js";
import type { ServingMetrics } from "../metrics/serving.js";
import type { Runtime } from "../runtime/runtime.js";
import { file_grpc_health_v1_health } from "./gen/grpc/health/v1/health_pb.js";
import { file_model, ModzyModel, type RunRequest, type RunResponse, type StatusResponse } from "./gen/model_pb.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { HealthService, ServingStatus } from "./health.js";
import { ReflectionService } from "./reflection.js";
import { OmiService } from "./service.js";
import { grpcStatusFor } from "./status.js";

export interface OmiServerOptions {
  /** @default "0.0.0.0" */
  host?: string;
  /** @default 45000 */
  port?: number;
  /** Largest request or response message. grpc-js's own default is 4 MiB. @default 64 MiB */
  maxMessageBytes?: number;
  log?: Logger;
  /** Called once after a Shutdown RPC was answered. */
  onShutdown?: () => void;
  metrics?: ServingMetrics;
}

export const DEFAULT_OMI_PORT = 45000;
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export class OmiServer {
  readonly health: HealthService;
  readonly #server: Server;
  readonly #runtime: Runtime;
  readonly #options: Required<Omit<OmiServerOptions, "onShutdown" | "metrics">>;
  #port: number | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(runtime: Runtime, options: OmiServerOptions = {}) {
    this.#runtime = runtime;
    this.#options = {
      host: options.host ?? "0.0.0.0",
      port: options.port ?? DEFAULT_OMI_PORT,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      log: options.log ?? silentLogger,
    };
    const log = this.#options.log;
    this.#server = new Server({
      "grpc.max_receive_message_length": this.#options.maxMessageBytes,
      "grpc.max_send_message_length": this.#options.maxMessageBytes,
    });

    const service = new OmiService(runtime, {
      ...(options.onShutdown ? { onShutdown: options.onShutdown } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    const unaryFailure = <T>(callback: sendUnaryData<T>, error: unknown) => {
      const reason = ChassisError.from(error);
      log.error(`OMI call failed: ${reason.message}`);
      callback({ code: grpcStatusFor(reason.code), details: reason.message });
    };
    this.#server.addService(grpcServiceDefinition(ModzyModel), {
      Status: (_call: ServerUnaryCall<unknown, StatusResponse>, callback: sendUnaryData<StatusResponse>) => {
        service.status().then(
          (response) => callback(null, response),
          (error: unknown) => unaryFailure(callback, error),
        );
      },
      Run: (call: ServerUnaryCall<RunRequest, RunResponse>, callback: sendUnaryData<RunResponse>) => {
        const controller = new AbortController();
        let answered = false;
        // grpc-js emits "cancelled" after every finished call too; only a call still running is really cancelled.
        call.once("cancelled", () => {
          if (!answered) controller.abort();
        });
        service.run(call.request, controller.signal).then(
          (response) => {
            answered = true;
            callback(null, response);
          },
          (error: unknown) => {
            answered = true;
            unaryFailure(callback, error);
          },
        );
      },
      Shutdown: (_call: unknown, callback: sendUnaryData<unknown>) => {
        callback(null, service.shutdown());
      },
    });

    this.health = new HealthService([ModzyModel.typeName]);
    this.#server.addService(this.health.definition, this.health.implementation);
    const reflection = new ReflectionService([file_model, file_grpc_health_v1_health], [ModzyModel.typeName, "grpc.health.v1.Health"]);
    for (const { definition, implementation } of reflection.services()) this.#server.addService(definition, implementation);

    // Health follows the runtime: SERVING only while the model is ready.
    const follow = (state: string) => this.health.setAll(state === "ready" ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    follow(runtime.state);
    this.#unsubscribe = runtime.onStateChange(follow);
  }

  /** The bound port (useful with port 0), once listening. */
  get port(): number | undefined {
    return this.#port;
  }

  /** Binds and starts serving. Rejects with a clear error when the port is taken. */
  listen(): Promise<number> {
    const { host, port } = this.#options;
    const address = host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(address, ServerCredentials.createInsecure(), (error, bound) => {
        if (error) {
          reject(new PortError(host, port, error));
          return;
        }
        this.#port = bound;
        this.#options.log.info(`OMI gRPC server listening on ${host}:${bound}`);
        resolve(bound);
      });
    });
  }

  /**
   * Graceful close: health goes NOT_SERVING, the listener closes, open
   * connections get GOAWAY, and calls already accepted run to completion.
   * After graceMs, remaining calls are cancelled.
   */
  close(graceMs = 30_000): Promise<void> {
    this.health.setAll(ServingStatus.NOT_SERVING);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.health.closeWatchers();
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        this.#options.log.warn(`OMI server: calls still open after ${graceMs} ms; cancelling them`);
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      force.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  /** Closes at once, cancelling calls in flight. */
  forceClose(): void {
    this.#server.forceShutdown();
  }

  get runtime(): Runtime {
    return this.#runtime;
  }
}

/** The port could not be bound (usually: already in use). */
export class PortError extends Error {
  override readonly name = "PortError";
  constructor(
    readonly host: string,
    readonly port: number,
    cause: Error,
  ) {
    const inUse = /EADDRINUSE/.test(cause.message);
    // grpc-js wraps the socket error: "No address added ... errors: [listen EADDRNOTAVAIL: ...]".
    const detail = /errors: \[(.*)\]/.exec(cause.message)?.[1] ?? cause.message;
    super(inUse ? `port ${port} on ${host} is already in use by another process` : `cannot listen on ${host}:${port}: ${detail}`, {
      cause,
    });
  }
}

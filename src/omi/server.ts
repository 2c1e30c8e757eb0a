/**
 * @module omi/server
 * The OMI gRPC server: ModzyModel + Health + reflection on one port, over our
 * own gRPC transport (omi/grpc, on our HTTP/2 connection). It only adapts transport to
 * OmiService; start-up order, signals and exit belong to src/server.
 */
import type { Logger } from "../core/log.js";
import { silentLogger } from "../core/log.js";
import type { ServingMetrics } from "../metrics/serving.js";
import type { Runtime } from "../runtime/runtime.js";
import { FramedMessage, PREFIX_BYTES } from "./grpc/frame.js";
import { GrpcServer } from "./grpc/server.js";
import { HEALTH_SERVICE, HealthService, ServingStatus } from "./health.js";
import { registerReflection } from "./reflection.js";
import { decodeRunRequest, encodeRunResponse, type RunReply } from "./run-codec.js";
import { OmiService } from "./service.js";

export interface OmiServerOptions {
  /** @default "0.0.0.0" */
  host?: string;
  /** @default 45000 */
  port?: number;
  /** Largest request or response message, each way. @default 64 MiB */
  maxMessageBytes?: number;
  log?: Logger;
  /** Called once after a Shutdown RPC was answered. */
  onShutdown?: () => void;
  metrics?: ServingMetrics;
}

export const DEFAULT_OMI_PORT = 45000;
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** The OMI service's full name: proto/model.proto has no package. */
const MODZY_MODEL = "ModzyModel";

export class OmiServer {
  readonly health: HealthService;
  readonly #server: GrpcServer;
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
    this.#server = new GrpcServer({
      maxMessageBytes: this.#options.maxMessageBytes,
      onHandlerError: (path, reason) => log.error(`OMI call ${path} failed: ${reason.message}`),
    });
    const service = new OmiService(runtime, {
      ...(options.onShutdown ? { onShutdown: options.onShutdown } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    const path = (method: string) => `/${MODZY_MODEL}/${method}`;
    this.#server.unary(path("Status"), () => service.status(), { emptyRequestOk: true });
    // The hot path: hand-written codec (omi/run-codec), no protobuf-es message objects; the reply is encoded
    // straight into its gRPC frame.
    this.#server.unary(path("Run"), (bytes, call) => service.run(decodeRunRequest(bytes).items, call).then(framedRunResponse));
    this.#server.unary(path("Shutdown"), () => service.shutdown(), { emptyRequestOk: true });

    this.health = new HealthService([MODZY_MODEL]);
    this.health.register(this.#server);
    registerReflection(this.#server, async () => {
      const [{ ReflectionService }, { file_model }, { file_grpc_health_v1_health }] = await Promise.all([
        import("./reflection-answers.js"),
        import("./gen/model_pb.js"),
        import("./gen/grpc/health/v1/health_pb.js"),
      ]);
      return new ReflectionService([file_model, file_grpc_health_v1_health], [MODZY_MODEL, HEALTH_SERVICE]);
    });

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
    return this.#server.listen(host, port).then(
      (bound) => {
        this.#port = bound;
        this.#options.log.info(`OMI gRPC server listening on ${host}:${bound}`);
        return bound;
      },
      (error: Error) => {
        throw new PortError(host, port, error);
      },
    );
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
    return this.#server.close(graceMs);
  }

  /** Closes at once, cancelling calls in flight. */
  forceClose(): void {
    this.#server.forceClose();
  }

  get runtime(): Runtime {
    return this.#runtime;
  }
}

/** A RunResponse encoded straight into its gRPC frame (5-byte prefix, then the message). */
function framedRunResponse(reply: RunReply): FramedMessage {
  const frame = encodeRunResponse(reply, PREFIX_BYTES);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - PREFIX_BYTES, 1);
  return new FramedMessage(frame);
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
    super(inUse ? `port ${port} on ${host} is already in use by another process` : `cannot listen on ${host}:${port}: ${cause.message}`, {
      cause,
    });
  }
}

/**
 * @module client/omi-client
 * OmiClient: a typed OMI client on @grpc/grpc-js for any ModzyModel server
 * (chassis-ts or Chassis). Calls reject with ChassisError, whose code is the
 * gRPC status. grpc-js and protobuf-es (client/omi-wire) are imported on the
 * first call, not with this module: every model imports chassis-ts, whose
 * entry exports this class, and `chassis serve` should not pay their start-up
 * time (~50 and ~40 ms) for a client it never uses.
 */
import type { Client, ServiceError } from "@grpc/grpc-js";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { RunResponse, ShutdownResponse, StatusResponse } from "../omi/gen/model_pb.js";

export type { RunResponse, ShutdownResponse, StatusResponse };

export interface OmiClientOptions {
  /** `host:port`. @default "localhost:45000" */
  address?: string;
  /** Per-call deadline. @default 60_000 */
  timeoutMs?: number;
  /** Largest message sent or received. @default 64 MiB (grpc-js's own default receive limit is 4 MiB) */
  maxMessageBytes?: number;
}

export interface RunOptions {
  detectDrift?: boolean;
  explain?: boolean;
  timeoutMs?: number;
}

type GrpcJs = typeof import("@grpc/grpc-js");
type Wire = typeof import("./omi-wire.js");
interface Connection {
  grpc: GrpcJs;
  wire: Wire;
  client: Client;
}

export class OmiClient {
  readonly address: string;
  readonly #timeoutMs: number;
  readonly #maxMessageBytes: number;
  /** The channel, made on the first call. */
  #client: Promise<Connection> | undefined;
  #closed = false;

  constructor(options: OmiClientOptions = {}) {
    this.address = options.address ?? "localhost:45000";
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
  }

  status(options: { timeoutMs?: number } = {}): Promise<StatusResponse> {
    return this.#call("Status", (wire) => wire.statusRequest(), options.timeoutMs);
  }

  /** Runs items (input key -> bytes, or a string sent as UTF-8). */
  run(items: Array<Record<string, Uint8Array | string>>, options: RunOptions = {}): Promise<RunResponse> {
    return this.#call("Run", (wire) => wire.runRequest(items, options), options.timeoutMs);
  }

  shutdown(options: { timeoutMs?: number } = {}): Promise<ShutdownResponse> {
    return this.#call("Shutdown", (wire) => wire.shutdownRequest(), options.timeoutMs);
  }

  /**
   * Polls Status until the server answers status_code 200, or rejects with
   * DEADLINE_EXCEEDED naming the last failure after timeoutMs.
   */
  async waitUntilReady(options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<StatusResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let delay = options.intervalMs ?? 50;
    let last = "no answer yet";
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const response = await this.status({ timeoutMs: Math.max(1, Math.min(remaining, 5_000)) });
        if (response.statusCode === 200) return response;
        last = `Status answered ${response.statusCode} ${response.status}: ${response.message}`;
      } catch (error) {
        last = ChassisError.from(error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 500);
    }
    throw new ChassisError(
      Code.DEADLINE_EXCEEDED,
      `OMI server at ${this.address} was not ready within ${options.timeoutMs ?? 30_000} ms (${last})`,
    );
  }

  close(): void {
    this.#closed = true;
    void this.#client?.then(({ client }) => client.close());
  }

  #connect(): Promise<Connection> {
    this.#client ??= Promise.all([import("@grpc/grpc-js"), import("./omi-wire.js")]).then(([loaded, wire]) => {
      // A CommonJS package: both Node's import and the runtime bundle's (esbuild's __toESM, build/image/runtime-package.ts)
      // give its exports object as `default`, besides the named exports.
      const grpc = (loaded as { default?: GrpcJs }).default ?? loaded;
      const client = new grpc.Client(this.address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": this.#maxMessageBytes,
        "grpc.max_send_message_length": this.#maxMessageBytes,
      });
      // Closed before the first call: calls fail as grpc-js fails them on a closed channel.
      if (this.#closed) client.close();
      return { grpc, wire, client };
    });
    return this.#client;
  }

  async #call<Res>(method: "Status" | "Run" | "Shutdown", request: (wire: Wire) => unknown, timeoutMs?: number): Promise<Res> {
    const deadline = Date.now() + (timeoutMs ?? this.#timeoutMs);
    const { grpc, wire, client } = await this.#connect();
    const { path, requestSerialize, responseDeserialize } = wire.definition[method] as (typeof wire.definition)[string];
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        requestSerialize,
        responseDeserialize,
        request(wire),
        { deadline },
        (error: ServiceError | null, response?: unknown) => {
          if (error) reject(callError(grpc, this.address, method, error));
          else resolve(response as Res);
        },
      );
    });
  }
}

function callError(grpc: GrpcJs, address: string, method: string, error: ServiceError): ChassisError {
  const name = grpc.status[error.code] ?? String(error.code);
  // grpc-js appends an empty "Resolution note:" to connection errors.
  const details = (error.details || error.message).replace(/\.? ?Resolution note: *$/, "");
  return new ChassisError(error.code as number as Code, `${method} at ${address} failed: ${name}: ${details}`, {
    cause: error,
  });
}

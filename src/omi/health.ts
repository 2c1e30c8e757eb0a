/**
 * @module omi/health
 * grpc.health.v1.Health (Check and Watch) for the whole server ("") and for
 * "ModzyModel": NOT_SERVING until the model is loaded and again while
 * draining. Written over the generated code instead of grpc-health-check,
 * which loads protobufjs and proto-loader at start-up for one tiny service.
 */
import { create } from "@bufbuild/protobuf";
import {
  status as GrpcStatus,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "./gen/grpc/health/v1/health_pb.js";
import { grpcServiceDefinition } from "./grpc-service.js";

export { ServingStatus };

export class HealthService {
  readonly #services: Map<string, ServingStatus>;
  readonly #watchers = new Set<{ service: string; send: (status: ServingStatus) => void; end: () => void }>();

  constructor(serviceNames: string[]) {
    this.#services = new Map(["", ...serviceNames].map((name) => [name, ServingStatus.NOT_SERVING]));
  }

  /** Sets every registered service's status and notifies watchers. */
  setAll(status: ServingStatus): void {
    for (const name of this.#services.keys()) this.#services.set(name, status);
    for (const watcher of this.#watchers) watcher.send(status);
  }

  status(service = ""): ServingStatus | undefined {
    return this.#services.get(service);
  }

  readonly definition = grpcServiceDefinition(Health);

  readonly implementation: UntypedServiceImplementation = {
    Check: (call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) => {
      const status = this.#services.get(call.request.service);
      if (status === undefined) {
        callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
        return;
      }
      callback(null, create(HealthCheckResponseSchema, { status }));
    },
    Watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
      const service = call.request.service;
      let last: ServingStatus | undefined;
      const send = (status: ServingStatus) => {
        if (status === last) return;
        last = status;
        call.write(create(HealthCheckResponseSchema, { status }));
      };
      send(this.#services.get(service) ?? ServingStatus.SERVICE_UNKNOWN);
      if (!this.#services.has(service)) return; // stays open with SERVICE_UNKNOWN, as the protocol says
      const watcher = { service, send, end: () => call.end() };
      this.#watchers.add(watcher);
      call.on("cancelled", () => this.#watchers.delete(watcher));
      call.on("close", () => this.#watchers.delete(watcher));
    },
  };

  /** Ends open Watch streams (after their last NOT_SERVING), so a draining server is not held open by them. */
  closeWatchers(): void {
    for (const watcher of this.#watchers) watcher.end();
    this.#watchers.clear();
  }
}

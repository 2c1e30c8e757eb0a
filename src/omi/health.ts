/**
 * @module omi/health
 * grpc.health.v1.Health (Check and Watch) for the whole server ("") and for
 * "ModzyModel": NOT_SERVING until the model is loaded and again while
 * draining. Written over the generated code instead of grpc-health-check,
 * which loads protobufjs and proto-loader at start-up for one tiny service.
 */
import { create } from "@bufbuild/protobuf";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "./gen/grpc/health/v1/health_pb.js";
import { decodeRequest, encodeResponse } from "./grpc/codec.js";
import type { GrpcServer } from "./grpc/server.js";

export { ServingStatus };

const CHECK = "/grpc.health.v1.Health/Check";
const WATCH = "/grpc.health.v1.Health/Watch";

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

  /** Adds Check and Watch to the server. An empty request asks about the whole server (""). */
  register(server: GrpcServer): void {
    server.unary(
      CHECK,
      (bytes) => {
        const { service } = decodeRequest(HealthCheckRequestSchema, bytes, CHECK);
        const status = this.#services.get(service);
        if (status === undefined) throw new ChassisError(Code.NOT_FOUND, `unknown service "${service}"`);
        return encodeResponse(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status }));
      },
      { emptyRequestOk: true },
    );
    server.serverStream(
      WATCH,
      (bytes, call) => {
        const { service } = decodeRequest(HealthCheckRequestSchema, bytes, WATCH);
        let last: ServingStatus | undefined;
        const send = (status: ServingStatus) => {
          if (status === last) return;
          last = status;
          call.write(encodeResponse(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status })));
        };
        send(this.#services.get(service) ?? ServingStatus.SERVICE_UNKNOWN);
        if (!this.#services.has(service)) return; // stays open with SERVICE_UNKNOWN, as the protocol says
        const watcher = { service, send, end: () => call.end() };
        this.#watchers.add(watcher);
        call.onClose(() => this.#watchers.delete(watcher));
      },
      { emptyRequestOk: true },
    );
  }

  /** Ends open Watch streams (after their last NOT_SERVING), so a draining server is not held open by them. */
  closeWatchers(): void {
    for (const watcher of this.#watchers) watcher.end();
    this.#watchers.clear();
  }
}

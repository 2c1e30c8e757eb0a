/**
 * @module omi/health
 * grpc.health.v1.Health (Check and Watch) for the whole server ("") and for
 * "ModzyModel": NOT_SERVING until the model is loaded and again while
 * draining. Its two messages are written by hand (omi/wire), instead of
 * grpc-health-check, which loads protobufjs and proto-loader at start-up for
 * one tiny service, or protobuf-es, whose start-up cost is the same kind.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import type { GrpcServer } from "./grpc/server.js";
import { malformed, WireReader, WireWriter } from "./wire.js";

/** grpc.health.v1.HealthCheckResponse.ServingStatus (the generated enum's values). */
export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

const REQUEST = "grpc.health.v1.HealthCheckRequest";

/**
 * HealthCheckRequest's `service` (field 1). Like protobuf-es, field 1 is read
 * as a string whatever its wire type says, the last one wins, and other fields
 * are skipped (service-codec.test.ts compares the two).
 */
export function decodeHealthCheckRequest(bytes: Uint8Array): string {
  const reader = new WireReader(bytes, 0, bytes.length, REQUEST);
  let service = "";
  while (reader.pos < reader.end) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    if (field === 0) throw malformed(REQUEST, "field number 0 is not allowed");
    if (field !== 1) {
      reader.skip(tag & 7, field);
      continue;
    }
    service = reader.string("the service name");
  }
  return service;
}

/** HealthCheckResponse: one enum field. */
export function encodeHealthCheckResponse(status: ServingStatus): Uint8Array {
  return new WireWriter().int32(1, status).finish();
}

/** The health service's full name, as reflection lists it. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";
const CHECK = `/${HEALTH_SERVICE}/Check`;
const WATCH = `/${HEALTH_SERVICE}/Watch`;

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
        const service = decodeHealthCheckRequest(bytes);
        const status = this.#services.get(service);
        if (status === undefined) throw new ChassisError(Code.NOT_FOUND, `unknown service "${service}"`);
        return encodeHealthCheckResponse(status);
      },
      { emptyRequestOk: true },
    );
    server.serverStream(
      WATCH,
      (bytes, call) => {
        const service = decodeHealthCheckRequest(bytes);
        let last: ServingStatus | undefined;
        const send = (status: ServingStatus) => {
          if (status === last) return;
          last = status;
          call.write(encodeHealthCheckResponse(status));
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

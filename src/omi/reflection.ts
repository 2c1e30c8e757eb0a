/**
 * @module omi/reflection
 * The routes of gRPC server reflection, v1 and v1alpha. The answers
 * (omi/reflection-answers) need protobuf-es and the generated descriptors,
 * which cost about 40 ms to load: they are loaded by the first reflection
 * call, not at start-up. Each call's requests are answered in order.
 */
import type { GrpcServer } from "./grpc/server.js";

export const V1 = "grpc.reflection.v1";
export const V1ALPHA = "grpc.reflection.v1alpha";
export const REFLECTION_SERVICES: readonly string[] = [`${V1}.ServerReflection`, `${V1ALPHA}.ServerReflection`];

export interface ReflectionAnswers {
  answerBytes(request: Uint8Array, path: string): Uint8Array;
}

/** Adds ServerReflectionInfo, v1 and v1alpha; `load` is called once, by the first call. */
export function registerReflection(server: GrpcServer, load: () => Promise<ReflectionAnswers>): void {
  let loaded: Promise<ReflectionAnswers> | undefined;
  for (const service of REFLECTION_SERVICES) {
    const path = `/${service}/ServerReflectionInfo`;
    server.bidi(path, (call) => {
      // Every message waits for the one before it (and the first for the load), so answers keep the order of requests.
      loaded ??= load();
      let previous = loaded;
      call.onMessage((bytes) => {
        previous = previous.then((answers) => {
          call.write(answers.answerBytes(bytes, path));
          return answers;
        });
        previous.catch((error: unknown) => call.end(error));
      });
      call.onEnd(() => {
        previous.then(() => call.end()).catch(() => {});
      });
    });
  }
}

/**
 * @module core/listen
 * Binding a net.Server as a promise, shared by the OMI and KServe servers.
 */
import type { Server } from "node:net";

/** Binds host:port; resolves with the port bound (useful with port 0), rejects with the bind error (e.g. EADDRINUSE). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

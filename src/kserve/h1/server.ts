/**
 * @module kserve/h1/server
 * An HTTP/1.1 server on net.Server, one H1Connection per socket (./connection),
 * with node:http's timeouts: keep-alive (idle between requests), headers (a
 * head must arrive within it) and request (a whole request must), checked
 * for all connections by one interval timer (once a second, or a quarter of
 * the shortest timeout) rather than a timer per socket.
 */
import net from "node:net";
import { listen } from "../../core/listen.js";
import { H1Connection, type H1ConnectionOptions } from "./connection.js";
import { HeadError } from "./head.js";

export interface H1ServerOptions extends H1ConnectionOptions {
  /** A head must arrive within this, from its first byte. @default 66_000 */
  headersTimeoutMs?: number;
  /** A whole request, head and body, must arrive within this. @default 300_000, node:http's requestTimeout */
  requestTimeoutMs?: number;
}

/** How often the timeouts are checked, at most: they fire up to this late. */
const TIMEOUT_CHECK_MS = 1000;

export class H1Server {
  readonly #server: net.Server;
  readonly #connections = new Set<H1Connection>();
  readonly #options: Required<H1ServerOptions>;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: H1ServerOptions) {
    this.#options = { headersTimeoutMs: 66_000, requestTimeoutMs: 300_000, ...options };
    // allowHalfOpen: otherwise net ends our side as soon as the client ends its own, before answers already made
    // are written; H1Connection decides what a client's end means (it cancels what is unanswered, as node:http).
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const connection = new H1Connection(socket, this.#options);
      this.#connections.add(connection);
      connection.onClose = () => this.#connections.delete(connection);
    });
  }

  /** Binds host:port; resolves with the port bound (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return listen(this.#server, host, port).then((bound) => {
      const { keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs } = this.#options;
      const every = Math.min(TIMEOUT_CHECK_MS, Math.max(10, Math.min(keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs) / 4));
      this.#timer = setInterval(() => this.#checkTimeouts(), every);
      this.#timer.unref();
      return bound;
    });
  }

  /**
   * Stops accepting; each connection answers the requests it has read (the
   * last answer with `connection: close`), then closes. After graceMs,
   * destroys what is left, as GrpcServer.close. Resolves when all are closed.
   */
  close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const connection of this.#connections) connection.close();
    const force = setTimeout(() => this.forceClose(), graceMs);
    force.unref();
    return closed.finally(() => {
      clearTimeout(force);
      clearInterval(this.#timer);
    });
  }

  /** Destroys every connection: requests in flight are cancelled. */
  forceClose(): void {
    this.#server.close();
    clearInterval(this.#timer);
    for (const connection of this.#connections) connection.destroy();
  }

  #checkTimeouts(): void {
    // Nothing to check while idle; and the first `performance` read loads perf_hooks, which an idle server never needs.
    if (this.#connections.size === 0) return;
    const now = performance.now();
    const { keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs } = this.#options;
    for (const connection of this.#connections) {
      const waited = now - connection.since;
      if (connection.idle) {
        if (waited > keepAliveTimeoutMs) connection.destroy();
      } else if (connection.reading) {
        const limit = connection.readingBody ? requestTimeoutMs : headersTimeoutMs;
        if (waited > limit)
          connection.refuse(
            new HeadError(
              408,
              `the request did not arrive within ${limit / 1000} s (${connection.readingBody ? "request" : "headers"} timeout)`,
            ),
          );
      }
    }
  }
}

/**
 * @module engine/engine
 * A small client of the Docker Engine API (which podman's API service,
 * `podman system service`, also speaks) over a unix socket: load an image
 * archive, create/start/stop/remove a container, read its logs. Enough for
 * `chassis run` and `chassis test-container`, with no Docker CLI needed.
 */
import { createReadStream, statSync } from "node:fs";
import { request } from "node:http";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

export interface EngineOptions {
  /** The API socket, e.g. /run/podman/podman.sock or /var/run/docker.sock. */
  socketPath: string;
  /** API version prefix. @default "v1.41" (Docker 20.10; podman 4 serves it) */
  apiVersion?: string;
}

export interface ContainerSpec {
  image: string;
  name?: string;
  env?: Record<string, string>;
  /** Extra arguments (replace the image's Cmd). */
  cmd?: string[];
  /** container port ("45000/tcp") -> host port on 127.0.0.1 (0: any free port). */
  ports?: Record<string, number>;
  /** Address to publish ports on. @default "127.0.0.1" */
  hostIp?: string;
  /** Resource limits that runc on some hosts needs set explicitly (SPEC.md 6). */
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
}

interface Answer {
  status: number;
  body: Buffer;
}

export class EngineClient {
  readonly socketPath: string;
  readonly #prefix: string;

  constructor(options: EngineOptions) {
    this.socketPath = options.socketPath;
    this.#prefix = `/${options.apiVersion ?? "v1.41"}`;
  }

  #call(method: string, path: string, body?: unknown | { file: string; contentType: string }, timeoutMs = 120_000): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { host: "docker" };
      let payload: Buffer | undefined;
      let file: string | undefined;
      if (body && typeof body === "object" && "file" in body && "contentType" in body) {
        file = (body as { file: string }).file;
        headers["content-type"] = (body as { contentType: string }).contentType;
        headers["content-length"] = statSync(file).size;
      } else if (body !== undefined) {
        payload = Buffer.from(JSON.stringify(body));
        headers["content-type"] = "application/json";
        headers["content-length"] = payload.length;
      }
      const req = request({ socketPath: this.socketPath, method, path: `${this.#prefix}${path}`, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("timeout", () =>
        req.destroy(new ChassisError(Code.DEADLINE_EXCEEDED, `${method} ${path} on ${this.socketPath} took longer than ${timeoutMs} ms`)),
      );
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (error instanceof ChassisError) reject(error);
        else
          reject(
            new ChassisError(
              Code.UNAVAILABLE,
              `container engine at ${this.socketPath} is not reachable (${error.code ?? error.message}); start one, e.g. podman system service, or pass --engine-socket`,
              { cause: error },
            ),
          );
      });
      if (file) createReadStream(file).pipe(req);
      else req.end(payload);
    });
  }

  async #json<T>(method: string, path: string, body?: unknown, ok: number[] = [200, 201, 204, 304]): Promise<T> {
    const answer = await this.#call(method, path, body);
    if (!ok.includes(answer.status)) throw engineError(method, path, answer);
    const text = answer.body.toString("utf8");
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** `GET /_ping` and `/version`: which engine and API version answer. */
  async version(): Promise<{ engine: string; version: string; apiVersion: string }> {
    const info = await this.#json<{ Version: string; ApiVersion: string; Components?: Array<{ Name: string }> }>("GET", "/version");
    const engine = info.Components?.some((c) => /podman/i.test(c.Name)) ? "podman" : "docker";
    return { engine, version: info.Version, apiVersion: info.ApiVersion };
  }

  /** `POST /images/load` of a docker-archive (or OCI archive): returns the names loaded. */
  async loadImage(archive: string): Promise<string[]> {
    const answer = await this.#call("POST", "/images/load?quiet=1", { file: archive, contentType: "application/x-tar" }, 600_000);
    if (answer.status !== 200) throw engineError("POST", "/images/load", answer);
    const names: string[] = [];
    for (const line of answer.body.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      const message = JSON.parse(line) as { stream?: string; error?: string };
      if (message.error) throw new ChassisError(Code.INVALID_ARGUMENT, `the engine refused the image archive: ${message.error}`);
      const loaded = /Loaded image(?: ID)?: (\S+)/.exec(message.stream ?? "");
      if (loaded?.[1]) names.push(...loaded[1].split(","));
    }
    return names;
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const [containerPort, hostPort] of Object.entries(spec.ports ?? {})) {
      exposed[containerPort] = {};
      bindings[containerPort] = [{ HostIp: spec.hostIp ?? "127.0.0.1", HostPort: hostPort === 0 ? "" : String(hostPort) }];
    }
    const body = {
      Image: spec.image,
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        Ulimits: (spec.ulimits ?? []).map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
      },
    };
    const query = spec.name ? `?name=${encodeURIComponent(spec.name)}` : "";
    const created = await this.#json<{ Id: string }>("POST", `/containers/create${query}`, body);
    return created.Id;
  }

  async startContainer(id: string): Promise<void> {
    await this.#json("POST", `/containers/${id}/start`, undefined);
  }

  /** The host ports the engine chose: container port ("45000/tcp") -> host port. */
  async publishedPorts(id: string): Promise<Record<string, number>> {
    const info = await this.#json<{ NetworkSettings?: { Ports?: Record<string, Array<{ HostPort: string }> | null> } }>(
      "GET",
      `/containers/${id}/json`,
    );
    const ports: Record<string, number> = {};
    for (const [port, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
      const hostPort = bindings?.[0]?.HostPort;
      if (hostPort) ports[port] = Number(hostPort);
    }
    return ports;
  }

  /** Sends the stop signal (SIGTERM), waits up to `timeoutSeconds`, then kills. */
  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    await this.#json("POST", `/containers/${id}/stop?t=${timeoutSeconds}`, undefined, [204, 304]);
  }

  /** Waits for the container to exit; returns its exit status. */
  async waitContainer(id: string): Promise<number> {
    const answer = await this.#json<{ StatusCode: number }>("POST", `/containers/${id}/wait`, undefined);
    return answer.StatusCode;
  }

  async removeContainer(id: string): Promise<void> {
    await this.#json("DELETE", `/containers/${id}?force=true`, undefined, [200, 204, 404]);
  }

  /** stdout and stderr so far (the multiplexed stream decoded). */
  async logs(id: string): Promise<string> {
    const answer = await this.#call("GET", `/containers/${id}/logs?stdout=1&stderr=1`);
    if (answer.status !== 200) throw engineError("GET", "/logs", answer);
    return demultiplex(answer.body);
  }
}

/** Docker's log stream: frames of [stream, 0, 0, 0, size (4 bytes BE)] + payload; plain text when a TTY was used. */
export function demultiplex(buffer: Buffer): string {
  let offset = 0;
  let text = "";
  while (offset + 8 <= buffer.length && buffer[offset + 1] === 0 && (buffer[offset] as number) <= 2) {
    const size = buffer.readUInt32BE(offset + 4);
    text += buffer.subarray(offset + 8, offset + 8 + size).toString("utf8");
    offset += 8 + size;
  }
  return offset === 0 ? buffer.toString("utf8") : text;
}

function engineError(method: string, path: string, answer: Answer): ChassisError {
  let message = answer.body.toString("utf8").trim();
  try {
    message = (JSON.parse(message) as { message?: string }).message ?? message;
  } catch {
    // plain text
  }
  const code = answer.status === 404 ? Code.NOT_FOUND : answer.status === 409 ? Code.ALREADY_EXISTS : Code.INTERNAL;
  return new ChassisError(code, `container engine: ${method} ${path.split("?")[0]} answered ${answer.status}: ${message}`);
}

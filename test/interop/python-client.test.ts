/**
 * Wire compatibility with an independent client: the official Python gRPC and
 * protobuf libraries (Debian python3-grpcio, python3-grpc-tools,
 * python3-protobuf) drive a `chassis serve examples/echo` child process
 * through omi_client.py: OMI Status/Run/Shutdown with stubs generated from
 * proto/model.proto, grpc.health.v1 Check, reflection v1 and v1alpha, and a
 * client built only from the descriptors that reflection returned.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { PYTHON, runPythonChecks } from "../helpers/python-checks.js";
import { spawnServer, withTimeout } from "../helpers/server.js";

const SCRIPT = fileURLToPath(new URL("./omi_client.py", import.meta.url));
const INSTALL_HINT = "apt-get install python3-grpcio python3-grpc-tools";

/** Checks omi_client.py must report as ok, in this order. */
const EXPECTED_CHECKS = [
  "generate_stubs",
  "connect",
  "status",
  "status_again",
  "run_batch",
  "run_unknown_key",
  "run_empty",
  "health_check",
  "reflection_v1alpha",
  "reflection_v1",
  "reflection_only_client",
  "shutdown",
];

function pythonProblem(): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", "import grpc, grpc_tools, google.protobuf"], { encoding: "utf8", timeout: 30_000 });
  if (probe.error) return `${PYTHON} cannot run (${probe.error.message})`;
  if (probe.status !== 0) return `${PYTHON} cannot import grpc, grpc_tools: ${probe.stderr.trim().split("\n").at(-1) ?? ""}`;
  return undefined;
}

const problem = pythonProblem();
const skip = problem && !process.env.CI ? `${problem}; install with \`${INSTALL_HINT}\`` : false;

test("the official Python gRPC client talks to the OMI server (stubs, health, reflection v1/v1alpha, Shutdown)", { skip }, async () => {
  if (problem) assert.fail(`CI is set and ${problem}; install with \`${INSTALL_HINT}\``);

  const server = await spawnServer(["examples/echo", "--host", "127.0.0.1"]);
  let serverExited = false;
  void server.exited.then(() => {
    serverExited = true;
  });
  try {
    await runPythonChecks([SCRIPT, `127.0.0.1:${server.port}`], EXPECTED_CHECKS, server, 60_000);

    // Shutdown was the last call: the server drains and exits 0 on its own.
    const code = await withTimeout(server.exited, 5_000, `server did not exit after Shutdown:\n${server.stderr()}`);
    assert.equal(code, 0, `server exit code after Shutdown\n${server.stderr()}`);
    assert.match(server.stderr(), /shutting down \(Shutdown call\)/);
  } finally {
    if (!serverExited) server.kill("SIGKILL");
  }
});

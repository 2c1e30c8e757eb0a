/**
 * KServe REST compatibility with an independent client: kserve_predict.py,
 * written with the Python standard library only (urllib.request, base64,
 * json), drives a `chassis serve examples/digits --interface kserve` child
 * process as a KServe v1 client of a Chassis container would: readiness, the
 * Chassis base64 convention on `:predict` (class 1 for sample.json), v2
 * `/infer` with a BYTES tensor, and KServe's 404 text. Python 3 is always
 * present on this machine, so there is no skip.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runPythonChecks } from "../helpers/python-checks.js";
import { ROOT, spawnServer, withTimeout } from "../helpers/server.js";

const SCRIPT = fileURLToPath(new URL("./kserve_predict.py", import.meta.url));
const SAMPLE = `${ROOT}/examples/digits/sample.json`;
const MODEL = "digits-classifier";

/** Checks kserve_predict.py must report as ok, in this order. */
const EXPECTED_CHECKS = ["alive", "v1_models", "v1_model_ready", "v1_predict", "v1_predict_batch", "v2_infer", "v1_unknown_model"];

test("a Python standard-library client calls KServe v1 :predict (Chassis base64 convention) and v2 /infer on the digits model", async () => {
  const server = await spawnServer(["examples/digits", "--host", "127.0.0.1", "--interface", "kserve"]);
  let serverExited = false;
  void server.exited.then(() => {
    serverExited = true;
  });
  try {
    assert.equal(server.port, 0, "--interface kserve opens no OMI port");
    const { lines, transcript } = await runPythonChecks(
      [SCRIPT, `http://127.0.0.1:${server.httpPort}`, SAMPLE, MODEL],
      EXPECTED_CHECKS,
      server,
      30_000,
    );
    const predicted = lines.find((line) => line.check === "v1_predict")?.detail as { class: number } | undefined;
    assert.equal(predicted?.class, 1, `v1 predicted class\n${transcript}`);

    // The container contract: SIGTERM drains and exits 0.
    server.kill("SIGTERM");
    const code = await withTimeout(server.exited, 5_000, `server did not exit after SIGTERM:\n${server.stderr()}`);
    assert.equal(code, 0, `server exit code after SIGTERM\n${server.stderr()}`);
  } finally {
    if (!serverExited) server.kill("SIGKILL");
  }
});

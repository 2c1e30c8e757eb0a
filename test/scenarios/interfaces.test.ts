/**
 * One scenario suite, three interfaces. Every scenario below is written once,
 * against the small `Driver` interface, and run through three drivers that
 * share one in-process server per model (`--interface both`): OMI over gRPC
 * (OmiClient), KServe v1 (`POST /v1/models/{name}:predict`) and KServe v2 /
 * Open Inference Protocol (`POST /v2/models/{name}/infer` with BYTES tensors).
 * Each scenario returns an observation; a last test per scenario checks that
 * the three observations are equal, so the interfaces provably agree.
 *
 * How errors come back (the drivers' mapping):
 *
 * - OMI answers per item: `success=false` and an `error` key holding the text.
 *   The wire carries no per-item code, so the OMI driver derives it: a
 *   response `status_code` of 503 (the model is not loaded) makes every failed
 *   item `not_ready`; otherwise the runtime's validation texts decide
 *   ("over its max_size" -> `too_large`, "missing input"/"unknown input"/"the
 *   item has no inputs" -> `invalid`, "Model has not been initialized" ->
 *   `not_ready`), and anything else is a predict failure (`failed`).
 * - KServe answers one error per request, `{"error": "..."}` with an HTTP
 *   status. The KServe drivers map the status back to a code:
 *     400 -> invalid, 413 -> too_large, 500 -> failed, 503 -> not_ready,
 *     404 -> not_found (any other status fails the test).
 *   A 500 caused by an error the model threw reads `"<Type> : <message>"`
 *   (KServe's generic handler); the driver strips the `<Type> : ` part. When
 *   the request had several items the server prefixes the culprit
 *   (`instance N: ` on v1, `item N: ` on v2; the v1 codec also says
 *   `instance N has ...`); the driver attributes the error to that index, and
 *   every other item of the request gets the same code with `withheld: true`
 *   (KServe did not answer it). An error without an index is about the whole
 *   request, so every item gets it.
 *
 * Encodings: the v1 driver sends an item that holds only the model's first
 * input with the Chassis convention (a base64 string), any other item as an
 * object keyed by input name (base64 values); v1 predictions hold the first
 * declared output as text, so the v1 driver reports that output only (every
 * model here has one). The v2 driver sends one BYTES tensor per input key, one
 * UTF-8 element per item; v2 tensors are columns, so every item of a v2 batch
 * must carry the same keys (the driver refuses otherwise rather than invent
 * values).
 *
 * Afterwards `/metrics` must show `chassis_requests_total` grown, per
 * interface, by exactly the number of inference calls each driver made.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, type TestContext, test } from "node:test";
import { KServeClient } from "../../src/client/kserve-client.js";
import { OmiClient } from "../../src/client/omi-client.js";
import type { RunningServer } from "../../src/server/serve.js";
import { fixture, ROOT, startInProcess } from "../helpers/server.js";

// ---------------------------------------------------------------------------
// The driver interface

type Iface = "omi" | "v1" | "v2";
const IFACES: readonly Iface[] = ["omi", "v1", "v2"];

type ErrorCode = "invalid" | "too_large" | "failed" | "not_ready" | "not_found";
type Item = Record<string, Uint8Array>;
type Outcome =
  | { ok: true; outputs: Record<string, string> }
  | {
      ok: false;
      error: string;
      code: ErrorCode;
      /** KServe only: this item was not the cause; the request failed because of another item. */
      withheld?: true;
    };

const NOT_APPLICABLE = Symbol("not applicable");

interface Driver {
  readonly iface: Iface;
  status(): Promise<{ ready: boolean }>;
  run(items: Item[]): Promise<Outcome[]>;
  /** Why this interface cannot carry these items (v2: tensors are columns), or undefined when it can. */
  inexpressible(items: Item[]): string | undefined;
  /** The same interface addressing another model name, or NOT_APPLICABLE where the interface has no model names (OMI). */
  forModel(name: string): Driver | typeof NOT_APPLICABLE;
  close(): void;
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array | undefined): string => utf8.decode(data ?? new Uint8Array());
const base64 = (data: Uint8Array): string => Buffer.from(data).toString("base64");

// ---------------------------------------------------------------------------
// OMI

/** Derives a code for a failed OMI item (the wire has none per item; see the top comment). */
function omiCode(responseStatusCode: number, error: string): ErrorCode {
  if (responseStatusCode === 503 || /^Model has not been initialized/.test(error)) return "not_ready";
  if (/over its max_size/.test(error)) return "too_large";
  if (/(?:missing|unknown) input "|the item has no inputs/.test(error)) return "invalid";
  return "failed";
}

function omiDriver(server: RunningServer, onRun: () => void): Driver {
  const client = new OmiClient({ address: `127.0.0.1:${server.omiPort}`, timeoutMs: 10_000 });
  return {
    iface: "omi",
    async status() {
      const response = await client.status();
      return { ready: response.statusCode === 200 };
    },
    async run(items) {
      onRun();
      const response = await client.run(items);
      assert.equal(response.outputs.length, items.length, `OMI answered ${response.outputs.length} outputs for ${items.length} items`);
      return response.outputs.map((output): Outcome => {
        if (output.success) {
          return { ok: true, outputs: Object.fromEntries(Object.entries(output.output).map(([key, value]) => [key, text(value)])) };
        }
        const error = text(output.output.error);
        return { ok: false, error, code: omiCode(response.statusCode, error) };
      });
    },
    inexpressible: () => undefined,
    forModel: () => NOT_APPLICABLE,
    close: () => client.close(),
  };
}

// ---------------------------------------------------------------------------
// KServe (v1 and v2 share the error mapping)

const HTTP_CODES: Readonly<Record<number, ErrorCode>> = {
  400: "invalid",
  404: "not_found",
  413: "too_large",
  500: "failed",
  503: "not_ready",
};

/** One KServe error answer -> one outcome per item of the request (see the top comment). */
function kserveFailure(status: number, body: string, count: number, iface: Iface): Outcome[] {
  const code = HTTP_CODES[status];
  let message: unknown;
  try {
    message = (JSON.parse(body) as { error?: unknown }).error;
  } catch {
    message = undefined;
  }
  if (code === undefined || typeof message !== "string") {
    assert.fail(
      `${iface} answered HTTP ${status}, which the driver does not map (expected 400, 404, 413, 500 or 503 with {"error": ...}): ${body}`,
    );
  }
  let error = message;
  // An error thrown by the model's code: KServe prints "<Type> : <message>".
  if (status === 500) error = error.replace(/^[A-Za-z_$][\w$]* : /, "");
  let index: number | undefined;
  const prefixed = /^(?:instance|item) (\d+): ([\s\S]*)$/.exec(error);
  const named = /^instance (\d+)\b/.exec(error);
  if (prefixed) {
    index = Number(prefixed[1]);
    error = prefixed[2] as string;
  } else if (named) {
    index = Number(named[1]);
  } else if (count === 1) {
    index = 0;
  }
  return Array.from({ length: count }, (_, i): Outcome => {
    if (index === undefined || i === index) return { ok: false, error, code };
    return { ok: false, error: `not answered: the request failed because of item ${index}`, code, withheld: true };
  });
}

function kserveStatus(client: KServeClient, iface: "v1" | "v2", name: string) {
  return async () => ({ ready: iface === "v1" ? await client.ready(name) : await client.v2Ready(name) });
}

function v1Driver(server: RunningServer, onRun: () => void, name = server.modelName): Driver {
  const url = `http://127.0.0.1:${server.httpPort}`;
  const client = new KServeClient({ url, timeoutMs: 10_000 });
  const firstInput = server.runtime.metadata.inputs[0]?.key as string;
  const firstOutput = server.runtime.metadata.outputs[0]?.key as string;
  return {
    iface: "v1",
    status: kserveStatus(client, "v1", name),
    async run(items) {
      onRun();
      const instances = items.map((item) => {
        const keys = Object.keys(item);
        // The Chassis convention: the bytes of the first input as a base64 string.
        if (keys.length === 1 && keys[0] === firstInput) return base64(item[firstInput] as Uint8Array);
        return Object.fromEntries(Object.entries(item).map(([key, value]) => [key, base64(value)]));
      });
      const response = await fetch(`${url}/v1/models/${encodeURIComponent(name)}:predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ instances }),
      });
      const body = await response.text();
      if (response.status !== 200) return kserveFailure(response.status, body, items.length, "v1");
      const { predictions } = JSON.parse(body) as { predictions: unknown[] };
      assert.equal(predictions.length, items.length, `v1 answered ${predictions.length} predictions for ${items.length} instances`);
      return predictions.map((prediction): Outcome => {
        if (typeof prediction === "string") return { ok: true, outputs: { [firstOutput]: prediction } };
        const { b64 } = prediction as { b64: string };
        return { ok: true, outputs: { [firstOutput]: text(Buffer.from(b64, "base64")) } };
      });
    },
    inexpressible: () => undefined,
    forModel: (other) => v1Driver(server, onRun, other),
    close: () => {},
  };
}

/** v2 tensors are columns: every item must carry the same, non-empty set of inputs. */
function v2Inexpressible(items: Item[]): string | undefined {
  const keys = Object.keys(items[0] ?? {});
  for (const [i, item] of items.entries()) {
    const mine = Object.keys(item);
    if (mine.length === 0) return `v2 tensors are columns: item ${i} has no inputs, so it would not be sent at all`;
    if (mine.length !== keys.length || !keys.every((key) => mine.includes(key))) {
      return `v2 tensors are columns: item ${i} carries ${mine.join(", ")} but item 0 carries ${keys.join(", ")}`;
    }
  }
  return undefined;
}

function v2Driver(server: RunningServer, onRun: () => void, name = server.modelName): Driver {
  const url = `http://127.0.0.1:${server.httpPort}`;
  const client = new KServeClient({ url, timeoutMs: 10_000 });
  return {
    iface: "v2",
    status: kserveStatus(client, "v2", name),
    async run(items) {
      const why = v2Inexpressible(items);
      if (why !== undefined) throw new Error(why);
      const keys = Object.keys(items[0] ?? {});
      onRun();
      const inputs = keys.map((key) => ({
        name: key,
        shape: [items.length],
        datatype: "BYTES",
        data: items.map((item) => text(item[key])),
      }));
      const response = await fetch(`${url}/v2/models/${encodeURIComponent(name)}/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs }),
      });
      const body = await response.text();
      if (response.status !== 200) return kserveFailure(response.status, body, items.length, "v2");
      const answer = JSON.parse(body) as {
        model_name: string;
        id: unknown;
        outputs: Array<{ name: string; shape: number[]; datatype: string; data: unknown[] }>;
      };
      assert.equal(answer.model_name, name, "v2 model_name");
      assert.equal(typeof answer.id, "string", "v2 always returns an id");
      for (const output of answer.outputs) {
        assert.equal(output.datatype, "BYTES", `v2 output ${output.name} datatype`);
        assert.deepEqual(output.shape, [items.length], `v2 output ${output.name} shape`);
        assert.equal(output.data.length, items.length, `v2 output ${output.name} has one element per item`);
      }
      return items.map(
        (_, i): Outcome => ({
          ok: true,
          outputs: Object.fromEntries(answer.outputs.map((output) => [output.name, String(output.data[i])])),
        }),
      );
    },
    inexpressible: v2Inexpressible,
    forModel: (other) => v2Driver(server, onRun, other),
    close: () => {},
  };
}

// ---------------------------------------------------------------------------
// The scenarios (written once; every interface runs each of them)

type ModelKey = "echo" | "batch" | "broken" | "digits";
const MODELS: Readonly<Record<ModelKey, string>> = {
  echo: `${ROOT}/examples/echo`,
  batch: fixture("batch.ts"),
  broken: fixture("broken-load.ts"),
  digits: `${ROOT}/examples/digits`,
};

const ECHO_MAX_INPUT = 1024 * 1024; // echo's input "input" has maxSize "1M"
const SAMPLE = readFileSync(`${ROOT}/examples/digits/sample.json`);

interface Scenario {
  name: string;
  model: ModelKey;
  /**
   * Runs the scenario through one driver with its interface-independent
   * assertions; returns an observation that must be equal on every interface
   * (or NOT_APPLICABLE, and the test is skipped).
   */
  run(driver: Driver, t: TestContext): Promise<unknown>;
  /**
   * Set when an interface is known to disagree (a bug to fix in src/): that
   * interface's test, and the agreement check, are marked todo with the reason.
   */
  todo?: Partial<Record<Iface, string>>;
}

/** A failed outcome, with a message naming `iface` when it is not. */
function failure(outcome: Outcome | undefined, iface: Iface, what: string): Extract<Outcome, { ok: false }> {
  assert.ok(outcome && !outcome.ok, `${iface}: ${what} should have failed, got ${JSON.stringify(outcome)}`);
  return outcome;
}

function success(outcome: Outcome | undefined, iface: Iface, what: string): Extract<Outcome, { ok: true }> {
  assert.ok(outcome?.ok, `${iface}: ${what} should have succeeded, got ${JSON.stringify(outcome)}`);
  return outcome;
}

const SCENARIOS: Scenario[] = [
  {
    name: "status: the loaded model is ready",
    model: "echo",
    async run(driver) {
      const status = await driver.status();
      assert.equal(status.ready, true, `${driver.iface}: ready`);
      return status;
    },
  },
  {
    name: "a batch of 3 answers 3, in order",
    model: "echo",
    async run(driver) {
      const results = await driver.run([{ input: bytes("one") }, { input: bytes("two") }, { input: bytes("three") }]);
      assert.equal(results.length, 3, `${driver.iface}: number of results`);
      const texts = results.map((r, i) => success(r, driver.iface, `item ${i}`).outputs["results.json"]);
      assert.deepEqual(texts, ["one", "two", "three"], `${driver.iface}: outputs in input order`);
      return results;
    },
  },
  {
    name: "an item whose predict throws fails with the thrown message",
    model: "echo",
    async run(driver) {
      const [result] = await driver.run([{ input: bytes("x"), raise: bytes("requested failure") }]);
      const failed = failure(result, driver.iface, "the raising item");
      assert.equal(failed.code, "failed", `${driver.iface}: code`);
      assert.equal(failed.error, "requested failure", `${driver.iface}: message`);
      return failed;
    },
  },
  {
    name: "a failing item in a batch is attributed to its index",
    model: "batch", // "bad" fails its item only
    async run(driver) {
      const results = await driver.run([{ input: bytes("a") }, { input: bytes("bad") }, { input: bytes("c") }]);
      assert.equal(results.length, 3, `${driver.iface}: number of results`);
      const culprits = results.flatMap((r, i) => (!r.ok && !r.withheld ? [i] : []));
      assert.deepEqual(culprits, [1], `${driver.iface}: the failure is item 1's`);
      const failed = failure(results[1], driver.iface, "item 1");
      assert.equal(failed.code, "failed", `${driver.iface}: code`);
      assert.equal(failed.error, "bad item", `${driver.iface}: message`);
      for (const i of [0, 2]) {
        const other = results[i] as Outcome;
        if (driver.iface === "omi") {
          // OMI answers per item: the others are unaffected.
          assert.equal(success(other, driver.iface, `item ${i}`).outputs["results.txt"], i === 0 ? "A" : "C");
        } else {
          // KServe answers one error per request: the others are withheld, not failed.
          assert.equal(failure(other, driver.iface, `item ${i}`).withheld, true, `${driver.iface}: item ${i} withheld`);
        }
      }
      return { index: 1, code: failed.code, error: failed.error };
    },
  },
  {
    name: "a missing required input is invalid and named",
    model: "batch", // required input "input"
    async run(driver) {
      const [result] = await driver.run([{ other: bytes("x") }]);
      const failed = failure(result, driver.iface, "an item without `input`");
      assert.equal(failed.code, "invalid", `${driver.iface}: code (${failed.error})`);
      assert.match(failed.error, /["']input["']/, `${driver.iface}: names the missing key`);
      assert.match(failed.error, /["']other["']/, `${driver.iface}: names the key it got`);
      // The texts differ by design (OMI: runtime validation; v1 and v2: each codec), so only the code is compared.
      return { code: failed.code };
    },
  },
  {
    name: "an item with no inputs is invalid and says so",
    model: "echo", // both inputs optional, so only "no inputs at all" is wrong
    async run(driver, t) {
      const items: Item[] = [{}];
      const why = driver.inexpressible(items);
      if (why !== undefined) {
        t.skip(why);
        return NOT_APPLICABLE;
      }
      const [result] = await driver.run(items);
      const failed = failure(result, driver.iface, "an item with no inputs");
      assert.equal(failed.code, "invalid", `${driver.iface}: code (${failed.error})`);
      assert.match(failed.error, /\bno inputs\b/, `${driver.iface}: says the item has no inputs`);
      assert.match(failed.error, /"input".*"raise"/, `${driver.iface}: names the model's inputs`);
      return { code: failed.code };
    },
  },
  {
    name: "an input over its max_size is too_large and names the limit",
    model: "echo",
    async run(driver) {
      const [result] = await driver.run([{ input: new Uint8Array(ECHO_MAX_INPUT + 1).fill(0x61) }]);
      const failed = failure(result, driver.iface, "an oversized item");
      assert.equal(failed.code, "too_large", `${driver.iface}: code (${failed.error})`);
      assert.match(
        failed.error,
        /input "input" .*over its max_size of 1M \(1048576 bytes\)/,
        `${driver.iface}: names the key and the limit`,
      );
      assert.match(failed.error, /1048577 bytes/, `${driver.iface}: says the size sent`);
      return failed;
    },
  },
  {
    name: "a model whose load failed is not ready and refuses to run",
    model: "broken",
    async run(driver) {
      const status = await driver.status();
      assert.equal(status.ready, false, `${driver.iface}: ready`);
      const results = await driver.run([{ input: bytes("x") }, { input: bytes("y") }]);
      assert.equal(results.length, 2, `${driver.iface}: number of results`);
      for (const [i, result] of results.entries()) {
        const failed = failure(result, driver.iface, `item ${i}`);
        assert.equal(failed.code, "not_ready", `${driver.iface}: item ${i} code (${failed.error})`);
        assert.notEqual(failed.withheld, true, `${driver.iface}: item ${i} is refused for itself`);
        if (driver.iface === "omi") assert.match(failed.error, /^Model has not been initialized/, "OMI text");
        else assert.equal(failed.error, "Model with name broken is not ready.", `${driver.iface}: KServe's text`);
      }
      return { ready: status.ready, codes: results.map((r) => (r.ok ? "ok" : r.code)) };
    },
  },
  {
    name: "an unknown model name is not_found",
    model: "echo",
    async run(driver, t) {
      const other = driver.forModel("no-such-model");
      if (other === NOT_APPLICABLE) {
        assert.equal(driver.iface, "omi", "only OMI has no model names");
        t.skip("OMI has no model names: not applicable");
        return NOT_APPLICABLE;
      }
      await assert.rejects(other.status(), /does not exist/, `${driver.iface}: status of an unknown model`);
      const [result] = await other.run([{ input: bytes("x") }]);
      const failed = failure(result, driver.iface, "a call to an unknown model");
      assert.equal(failed.code, "not_found", `${driver.iface}: code`);
      assert.equal(failed.error, "Model with name no-such-model does not exist.", `${driver.iface}: KServe's text`);
      return failed;
    },
  },
  {
    name: "digits predicts class 1 for examples/digits/sample.json",
    model: "digits",
    async run(driver) {
      const [result] = await driver.run([{ input: new Uint8Array(SAMPLE) }]);
      const output = success(result, driver.iface, "the digits sample").outputs["results.json"] as string;
      const parsed = JSON.parse(output) as { classPredictions: Array<{ class: number; score: number }> };
      assert.equal(parsed.classPredictions[0]?.class, 1, `${driver.iface}: predicted class (${output})`);
      return output; // the exact text, score included
    },
  },
];

// ---------------------------------------------------------------------------
// Metrics

/** Sum of chassis_requests_total by interface, from the Prometheus text. */
function requestsByInterface(metrics: string): Record<Iface, number> {
  const totals: Record<Iface, number> = { omi: 0, v1: 0, v2: 0 };
  for (const line of metrics.split("\n")) {
    const match = /^chassis_requests_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[1] as string).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const iface = labels.interface as Iface;
    if (iface in totals) totals[iface] += Number(match[2]);
  }
  return totals;
}

async function fetchMetrics(server: RunningServer): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`);
  assert.equal(response.status, 200, "GET /metrics");
  return response.text();
}

// ---------------------------------------------------------------------------
// The matrix: scenario x interface, against one server per model

describe("one scenario suite through OMI, KServe v1 and KServe v2", () => {
  const servers = {} as Record<ModelKey, RunningServer>;
  const drivers = {} as Record<ModelKey, Record<Iface, Driver>>;
  /** Inference calls each driver made, per model and interface. */
  const calls = {} as Record<ModelKey, Record<Iface, number>>;
  const metricsBefore = {} as Record<ModelKey, Record<Iface, number>>;

  before(async () => {
    const keys = Object.keys(MODELS) as ModelKey[];
    await Promise.all(
      keys.map(async (key) => {
        servers[key] = await startInProcess(MODELS[key], { interface: "both" });
      }),
    );
    for (const key of keys) {
      const server = servers[key];
      const counts = { omi: 0, v1: 0, v2: 0 };
      calls[key] = counts;
      drivers[key] = {
        omi: omiDriver(server, () => counts.omi++),
        v1: v1Driver(server, () => counts.v1++),
        v2: v2Driver(server, () => counts.v2++),
      };
      metricsBefore[key] = requestsByInterface(await fetchMetrics(server));
    }
  });

  after(() => {
    for (const byIface of Object.values(drivers)) for (const driver of Object.values(byIface)) driver.close();
    for (const server of Object.values(servers)) server.forceClose();
  });

  for (const scenario of SCENARIOS) {
    describe(scenario.name, () => {
      const observed = new Map<Iface, unknown>();
      const todos = Object.entries(scenario.todo ?? {}).map(([iface, reason]) => `${iface}: ${reason}`);
      for (const iface of IFACES) {
        const todo = scenario.todo?.[iface];
        test(iface, todo ? { todo } : {}, async (t) => {
          const observation = await scenario.run(drivers[scenario.model][iface], t);
          observed.set(iface, observation);
        });
      }
      test("the interfaces agree", todos.length > 0 ? { todo: todos.join("; ") } : {}, () => {
        const applicable = IFACES.filter((iface) => observed.get(iface) !== NOT_APPLICABLE);
        const missing = applicable.filter((iface) => !observed.has(iface));
        assert.deepEqual(missing, [], "every applicable interface produced an observation");
        const [first, ...rest] = applicable;
        assert.ok(first && rest.length > 0, "at least two interfaces to compare");
        for (const iface of rest) {
          assert.deepEqual(observed.get(iface), observed.get(first), `${iface} agrees with ${first}`);
        }
      });
    });
  }

  test("/metrics: chassis_requests_total grew by the calls made on each interface", async () => {
    for (const key of Object.keys(MODELS) as ModelKey[]) {
      const now = requestsByInterface(await fetchMetrics(servers[key]));
      const before = metricsBefore[key];
      const grew = Object.fromEntries(IFACES.map((iface) => [iface, now[iface] - before[iface]]));
      assert.deepEqual(grew, calls[key], `${key}: chassis_requests_total growth by interface vs calls made`);
    }
    for (const iface of IFACES) assert.ok(calls.echo[iface] > 0, `the echo server saw ${iface} calls`);
  });
});

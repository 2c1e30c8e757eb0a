/**
 * @module test/helpers/outcomes
 * Small helpers for tests of the runtime and its executors: Run items from
 * strings, the outputs or error of an outcome, deferred promises.
 */
import assert from "node:assert/strict";
import { Code } from "../../src/core/code.js";
import { ChassisError } from "../../src/core/error.js";
import type { ItemOutcome, RawItem } from "../../src/runtime/outcome.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A Run item from strings (UTF-8). */
export function item(values: Record<string, string | Uint8Array>): RawItem {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? encoder.encode(v) : v]));
}

/** The decoded outputs of a successful outcome. */
export function outputsOf(outcome: ItemOutcome | undefined): Record<string, string> {
  assert.ok(outcome, "missing outcome");
  assert.ok(outcome.ok, `expected success, got: ${outcome.ok ? "" : `${Code[outcome.error.code]} ${outcome.error.message}`}`);
  return Object.fromEntries(Object.entries(outcome.outputs).map(([k, v]) => [k, decoder.decode(v)]));
}

/** The error of a failed outcome, checked to carry `code`. */
export function errorOf(outcome: ItemOutcome | undefined, code: Code): ChassisError {
  assert.ok(outcome, "missing outcome");
  assert.ok(!outcome.ok, `expected a per-item error, got outputs ${JSON.stringify(Object.keys(outcome.ok ? outcome.outputs : {}))}`);
  assert.ok(outcome.error instanceof ChassisError);
  assert.equal(Code[outcome.error.code], Code[code], outcome.error.message);
  return outcome.error;
}

export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const never = () => new Promise<never>(() => {});
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a promise has settled, after letting pending callbacks run. */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await sleep(5);
  return done;
}

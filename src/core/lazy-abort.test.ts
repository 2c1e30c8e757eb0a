import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LazyAbortSource } from "./lazy-abort.js";

describe("LazyAbortSource", () => {
  test("a signal asked for before abort() is aborted with the reason; one asked for after is born aborted", () => {
    const early = new LazyAbortSource();
    const signal = early.signal;
    assert.equal(signal.aborted, false);
    early.abort("gone");
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, "gone");
    const late = new LazyAbortSource();
    assert.equal(late.reason, undefined);
    late.abort("left");
    late.abort("again"); // the first reason stays
    assert.equal(late.aborted, true);
    assert.equal(late.reason, "left");
    assert.equal(late.signal.aborted, true);
    assert.equal(late.signal.reason, "left");
  });

  test("onAbort listeners run once, not after unsubscribing, and at once when already aborted", () => {
    const source = new LazyAbortSource();
    const calls: string[] = [];
    source.onAbort(() => calls.push("a"));
    const off = source.onAbort(() => calls.push("b"));
    off();
    source.abort();
    source.abort();
    assert.deepEqual(calls, ["a"]);
    source.onAbort(() => calls.push("late"));
    assert.deepEqual(calls, ["a", "late"]);
  });
});

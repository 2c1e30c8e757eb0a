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

  test("one listener and many: each runs once, an unsubscribed one never, the same function once however often added", () => {
    const calls: string[] = [];
    const listener = (name: string) => () => calls.push(name);

    const lone = new LazyAbortSource();
    lone.onAbort(listener("gone"))();
    lone.abort();
    assert.deepEqual(calls, [], "the only listener, unsubscribed");

    const pair = new LazyAbortSource();
    const offA = pair.onAbort(listener("a"));
    pair.onAbort(listener("b"));
    offA();
    offA(); // twice is harmless
    pair.abort();
    assert.deepEqual(calls, ["b"]);

    calls.length = 0;
    const same = new LazyAbortSource();
    const twice = listener("twice");
    const offFirst = same.onAbort(twice);
    same.onAbort(twice);
    same.abort();
    assert.deepEqual(calls, ["twice"], "added twice, called once (as a Set of listeners does)");
    offFirst(); // after the abort: nothing left to remove

    calls.length = 0;
    const stale = new LazyAbortSource();
    const offOld = stale.onAbort(listener("old"));
    offOld();
    stale.onAbort(listener("new"));
    offOld(); // a stale unsubscribe leaves the new one alone
    stale.abort();
    assert.deepEqual(calls, ["new"]);

    calls.length = 0;
    const many = new LazyAbortSource();
    const offs = Array.from({ length: 1000 }, (_, i) => many.onAbort(listener(String(i))));
    for (let i = 0; i < 1000; i += 2) (offs[i] as () => void)();
    many.abort();
    assert.deepEqual(
      calls,
      Array.from({ length: 500 }, (_, i) => String(2 * i + 1)),
    );
  });

  test("a listener that unsubscribes another during abort() does not stop it: abort() calls all it had", () => {
    for (const count of [2, 3]) {
      const source = new LazyAbortSource();
      const calls: number[] = [];
      const offs: Array<() => void> = [];
      for (let i = 0; i < count; i++) {
        offs.push(
          source.onAbort(() => {
            calls.push(i);
            for (const off of offs) off();
          }),
        );
      }
      source.abort();
      assert.deepEqual(
        calls,
        Array.from({ length: count }, (_, i) => i),
      );
    }
  });
});

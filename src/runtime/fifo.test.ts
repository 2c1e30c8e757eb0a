import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Fifo } from "./fifo.js";

describe("Fifo", () => {
  test("takes from the front in order, at most what it holds", () => {
    const fifo = new Fifo<number>();
    assert.deepEqual(fifo.take(3), []);
    assert.equal(fifo.peek(), undefined);
    for (let i = 0; i < 5; i++) fifo.push(i);
    assert.equal(fifo.length, 5);
    assert.deepEqual(fifo.take(2), [0, 1]);
    assert.equal(fifo.peek(), 2);
    assert.equal(fifo.length, 3);
    assert.deepEqual(fifo.take(10), [2, 3, 4]);
    assert.equal(fifo.length, 0);
    fifo.push(5);
    assert.deepEqual(fifo.take(1), [5]);
  });

  test("retain drops entries and keeps the order of the rest", () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 10; i++) fifo.push(i);
    fifo.take(3);
    fifo.retain((n) => n % 2 === 0);
    assert.equal(fifo.length, 3);
    assert.deepEqual(fifo.take(10), [4, 6, 8]);
  });

  test("matches an array model over 200,000 random operations, through many compactions", () => {
    let state = 12345;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const fifo = new Fifo<number>();
    let model: number[] = [];
    let next = 0;
    for (let step = 0; step < 200_000; step++) {
      // Phases of 5,000 steps: pushes outnumber takes (the queue grows into the thousands), then the reverse.
      const growing = Math.floor(step / 5000) % 2 === 0;
      const op = random(100);
      if (op < (growing ? 70 : 30)) {
        const count = 1 + random(8);
        for (let i = 0; i < count; i++) {
          fifo.push(next);
          model.push(next++);
        }
      } else if (op < 99) {
        const count = 1 + random(20);
        assert.deepEqual(fifo.take(count), model.splice(0, count), `step ${step}`);
      } else {
        const mod = 2 + random(5);
        fifo.retain((n) => n % mod !== 0);
        model = model.filter((n) => n % mod !== 0);
      }
      assert.equal(fifo.length, model.length, `step ${step}`);
      assert.equal(fifo.peek(), model[0], `step ${step}`);
    }
    assert.ok(next > 100_000);
  });
});

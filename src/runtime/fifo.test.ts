import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { seededRandom } from "../../test/helpers/random.js";
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

  test("clear empties it, and it fills again from the start", () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 10; i++) fifo.push(i);
    fifo.take(3);
    fifo.clear();
    assert.equal(fifo.length, 0);
    assert.equal(fifo.peek(), undefined);
    fifo.push(10);
    assert.deepEqual(fifo.take(5), [10]);
  });

  test("matches an array model over 200,000 random pushes, takes and clears, through many compactions", () => {
    const uniform = seededRandom(12345);
    const random = (n: number) => Math.floor(uniform() * n);
    const fifo = new Fifo<number>();
    let model: number[] = [];
    let next = 0;
    for (let step = 0; step < 200_000; step++) {
      // Phases of 5,000 steps: pushes outnumber takes (the queue grows into the thousands), then the reverse.
      const growing = Math.floor(step / 5000) % 2 === 0;
      const op = random(10_000);
      if (op < (growing ? 7000 : 3000)) {
        const count = 1 + random(8);
        for (let i = 0; i < count; i++) {
          fifo.push(next);
          model.push(next++);
        }
      } else if (op < 9995) {
        const count = 1 + random(20);
        assert.deepEqual(fifo.take(count), model.splice(0, count), `step ${step}`);
      } else {
        fifo.clear();
        model = [];
      }
      assert.equal(fifo.length, model.length, `step ${step}`);
      assert.equal(fifo.peek(), model[0], `step ${step}`);
    }
    assert.ok(next > 100_000);
  });
});

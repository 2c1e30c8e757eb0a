import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "../../core/code.js";
import { ChassisError } from "../../core/error.js";
import type { ExplainOutcome, ItemOutcome, RawItem } from "../../runtime/outcome.js";
import { packResults, packTasks, type Task, type TaskKind, type TaskResult, unpackResults, unpackTasks } from "./wire.js";

/** A small seeded PRNG, so that a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state % n;
  };
}

/** Items whose values are views into a larger buffer, as a request's inputs are; lengths of 0 and odd sizes included. */
function randomItems(next: (n: number) => number): RawItem[] {
  const backing = new Uint8Array(4096).map((_, i) => (i * 31 + 7) & 0xff);
  return Array.from({ length: next(4) }, () => {
    const item: Record<string, Uint8Array> = {};
    for (const key of ["input", "raise", "ü-key", "x"].slice(0, next(4) + 1)) {
      const start = next(2000);
      item[key] = backing.subarray(start, start + next(7) * next(60));
    }
    return item;
  });
}

function plain(items: readonly RawItem[]): Array<Record<string, number[]>> {
  return items.map((item) => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, [...v]])));
}

test("tasks cross intact: ids, kinds, every item's keys and bytes, in order", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const kinds: TaskKind[] = ["execute", "predictChunk", "explain"];
    const tasks: Task[] = Array.from({ length: next(6) }, (_, i) => ({
      id: 1000 * seed + i,
      kind: kinds[next(3)] as TaskKind,
      items: randomItems(next),
    }));
    const packed = packTasks(tasks);
    // Only the values' bytes (aligned) and the index travel, never the 4 KiB buffers they were views into.
    const bytes = tasks.flatMap((t) => t.items.flatMap((item) => Object.values(item))).reduce((n, v) => n + v.byteLength, 0);
    assert.ok(packed.buffer.byteLength < bytes + 4 + 4 * (1 + 3 * tasks.length + 200), `seed ${seed}: ${packed.buffer.byteLength} bytes`);
    const back = unpackTasks(structuredClone(packed, { transfer: [packed.buffer] }));
    assert.deepEqual(
      back.map((t) => ({ id: t.id, kind: t.kind, items: plain(t.items) })),
      tasks.map((t) => ({ id: t.id, kind: t.kind, items: plain(t.items) })),
      `seed ${seed}`,
    );
  }
});

test("results cross intact: outputs, per-item errors with their code and message, explanations, in order", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = random(seed);
    const results: TaskResult[] = Array.from({ length: next(5) }, (_, i): TaskResult => {
      if (next(4) === 0) {
        const explained: ExplainOutcome[] = Array.from({ length: next(3) }, (_, j) =>
          j % 2 ? { ok: false, error: new ChassisError(Code.UNIMPLEMENTED, `no ${j}`) } : { ok: true, explanation: { j, why: ["a", j] } },
        );
        return { id: i, explained };
      }
      const outcomes: ItemOutcome[] = randomItems(next).map((outputs, j) =>
        next(3) === 0 ? { ok: false, error: new ChassisError(Code.INVALID_ARGUMENT, `item ${j} of ${i} is bad`) } : { ok: true, outputs },
      );
      return { id: i, outcomes };
    });
    const packed = packResults(results);
    const back = unpackResults(structuredClone({ type: "results" as const, ...packed }, { transfer: [packed.buffer] }));
    const view = (outcomes: readonly (ItemOutcome | ExplainOutcome)[]) =>
      outcomes.map((o) => {
        if (!o.ok) return { code: o.error.code, message: o.error.message, isChassisError: o.error instanceof ChassisError };
        return "outputs" in o ? plain([o.outputs])[0] : { explanation: o.explanation };
      });
    assert.deepEqual(
      back.map((r) => ({ id: r.id, outcomes: view(r.outcomes) })),
      results.map((r) => ({ id: r.id, outcomes: view("explained" in r ? r.explained : r.outcomes) })),
      `seed ${seed}`,
    );
  }
});

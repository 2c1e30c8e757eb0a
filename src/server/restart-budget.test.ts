import assert from "node:assert/strict";
import { test } from "node:test";
import { RestartBudget } from "./restart-budget.js";

test("max replacements within the window, then none until the oldest is out of it", () => {
  const budget = new RestartBudget(5, 60_000);
  for (let i = 0; i < 5; i++) assert.equal(budget.take(1_000 + i), true, `replacement ${i + 1}`);
  assert.equal(budget.take(30_000), false, "a sixth within the minute");
  assert.equal(budget.take(61_000), false, "the first is still inside the window at its edge");
  assert.equal(budget.take(61_001), true, "the first has left the window");
  assert.equal(budget.take(61_001), false, "and only one place came free at that moment");
});

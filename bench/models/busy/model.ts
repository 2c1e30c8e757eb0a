/**
 * A CPU-bound model for bench/threads.mjs: each predict computes, in plain
 * JavaScript on whatever thread runs it, for as many steps as its input says
 * (20-30 ns a step on the machine of docs/performance.md), and answers a
 * checksum of the work, so that a wrong or skipped predict shows.
 */
import { ChassisError, Code, defineModel } from "chassis-ts";

const MAX_STEPS = 1e9;

export default defineModel({
  name: "Busy",
  version: "1.0.0",
  author: "chassis-ts bench",
  description: { summary: "Computes for a given number of steps; a stand-in for a CPU-bound model." },
  inputs: [{ key: "input", mediaTypes: ["text/plain"], maxSize: "32", description: `Steps to compute, 1 to ${MAX_STEPS}.` }],
  outputs: [{ key: "results.json", mediaType: "application/json", maxSize: "1K", description: '{"checksum": n}' }],
  predict(item) {
    const steps = Number(item.text("input"));
    if (!Number.isInteger(steps) || steps < 1 || steps > MAX_STEPS) {
      throw new ChassisError(Code.INVALID_ARGUMENT, `steps must be a whole number from 1 to ${MAX_STEPS}; got ${item.text("input")}`);
    }
    let x = 1;
    for (let i = 0; i < steps; i++) x = (x * 48271 + i) % 2147483647;
    return { "results.json": { checksum: x } };
  },
});

/**
 * The echo model: output `results.json` holds the bytes of input `input`,
 * unchanged. An item with an input `raise` makes predict throw with that
 * input's text as the message, which tests of the error paths rely on.
 */
import { defineModel } from "chassis-ts";

export default defineModel({
  name: "Echo",
  version: "1.0.0",
  author: "chassis-ts",
  description: {
    summary: "Returns its input unchanged.",
    details: "Output results.json is the bytes of input `input`. An input `raise` makes predict throw with its text as the message.",
    technical: "No model file; a pure function.",
    performance: "Bound by the transport.",
  },
  inputs: [
    // Both optional, so an item may carry `input`, `raise`, or both.
    { key: "input", mediaTypes: ["application/octet-stream"], maxSize: "1M", description: "Any bytes.", required: false },
    { key: "raise", mediaTypes: ["text/plain"], maxSize: "1K", description: "If present, predict throws with this text.", required: false },
  ],
  outputs: [{ key: "results.json", mediaType: "application/json", maxSize: "1M", description: "The bytes of `input`." }],
  predict(item) {
    const raise = item.optional("raise");
    if (raise !== undefined) throw new Error(new TextDecoder().decode(raise));
    return { "results.json": item.get("input") };
  },
});

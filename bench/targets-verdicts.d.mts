// Types for bench/targets-verdicts.mjs, which plain node runs; the test imports it from TypeScript.
export interface Verdict {
  item: string;
  target: string;
  measured: string;
  /** undefined: a figure the issue asks to report, with no threshold. */
  met: boolean | undefined;
}
export const REFERENCE_REQ_PER_S: { echo: number; digits: number };
/** Each key is the parsed --json of one step; a step that did not run is left out. */
export function verdictsOf(figures: {
  serve?: unknown;
  workersOmi?: unknown;
  workersV1?: unknown;
  batching?: unknown;
  batchingInProcess?: unknown;
  coldstart?: unknown;
  soak?: unknown;
}): Verdict[];

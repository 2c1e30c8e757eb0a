/**
 * The digits data set and its deterministic train / held-out split, shared by
 * train.ts (which fits the model) and model.test.ts (which re-checks it).
 *
 * data/digits.csv.gz: 1797 rows of 64 pixel values (0..16, an 8x8 image read
 * row by row) followed by the label (0..9), comma separated. Source: UCI
 * Machine Learning Repository, "Optical Recognition of Handwritten Digits"
 * (E. Alpaydin, C. Kaynak), CC BY 4.0.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

export const PIXELS = 64;
export const CLASSES = 10;
export const MAX_PIXEL = 16;

export const DATA_PATH = fileURLToPath(new URL("./data/digits.csv.gz", import.meta.url));

export interface Digit {
  /** 64 integers 0..16. */
  readonly pixels: readonly number[];
  /** 0..9. */
  readonly label: number;
}

/** Reads and checks the gzipped CSV. */
export function loadDigits(path: string = DATA_PATH): Digit[] {
  const text = gunzipSync(readFileSync(path)).toString("utf8");
  const rows: Digit[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const values = line.split(",").map(Number);
    const where = `${path}:${index + 1}`;
    if (values.length !== PIXELS + 1) throw new Error(`${where}: expected ${PIXELS + 1} values, got ${values.length}`);
    if (values.some((v) => !Number.isInteger(v))) throw new Error(`${where}: every value must be an integer`);
    const pixels = values.slice(0, PIXELS);
    const label = values[PIXELS] as number;
    if (pixels.some((v) => v < 0 || v > MAX_PIXEL)) throw new Error(`${where}: pixel values must be 0..${MAX_PIXEL}`);
    if (label < 0 || label >= CLASSES) throw new Error(`${where}: label must be 0..${CLASSES - 1}, got ${label}`);
    rows.push({ pixels, label });
  });
  return rows;
}

/** mulberry32: a small, fast, seedable 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle in place, driven by `random`. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

export interface Split {
  /** Row indices into the data set, ascending. */
  readonly train: number[];
  readonly test: number[];
}

/**
 * Stratified split: for each label (in order 0..9) the row indices with that
 * label are shuffled with one seeded PRNG and round(fraction * count) of them
 * are held out. Both index lists are returned in ascending order.
 */
export function splitDigits(rows: readonly Digit[], seed: number, testFraction: number): Split {
  const random = mulberry32(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (let label = 0; label < CLASSES; label++) {
    const indices: number[] = [];
    rows.forEach((row, i) => {
      if (row.label === label) indices.push(i);
    });
    shuffle(indices, random);
    const held = Math.round(indices.length * testFraction);
    test.push(...indices.slice(0, held));
    train.push(...indices.slice(held));
  }
  const ascending = (a: number, b: number) => a - b;
  return { train: train.sort(ascending), test: test.sort(ascending) };
}

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { utf8Encode } from "./utf8.js";

const reference = new TextEncoder();

/** Random text mixing ASCII, 2- and 3-byte characters, astral pairs and lone surrogates. */
function randomText(length: number, seed: number): string {
  let state = seed;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0);
  const units: number[] = [];
  while (units.length < length) {
    const kind = next() % 6;
    if (kind < 2) units.push(0x20 + (next() % 0x5f));
    else if (kind === 2) units.push(0x80 + (next() % 0x780));
    else if (kind === 3) units.push(0x800 + (next() % 0xd000));
    else if (kind === 4) units.push(0xd800 + (next() % 0x400), 0xdc00 + (next() % 0x400));
    else units.push(0xd800 + (next() % 0x800)); // a lone high or low surrogate
  }
  return String.fromCharCode(...units.slice(0, length));
}

describe("utf8Encode", () => {
  test("gives TextEncoder's bytes for 2,000 random texts, short and long (either side of the scratch size)", () => {
    const lengths = [0, 1, 2, 3, 50, 1000, 8191, 8192, 8193, 20000];
    for (let seed = 1; seed <= 2000; seed++) {
      const text = randomText(lengths[seed % lengths.length] as number, seed);
      assert.deepEqual(utf8Encode(text), reference.encode(text), `seed ${seed}, length ${text.length}`);
    }
  });

  test("3-byte characters fill the scratch exactly, then go past it", () => {
    for (const count of [8191, 8192, 8193, 12000, 12288, 12289]) {
      const text = "✓".repeat(count);
      assert.deepEqual(utf8Encode(text), reference.encode(text), `${count} x U+2713`);
    }
  });

  test("each result owns its memory: a later encoding does not change an earlier one", () => {
    const first = utf8Encode('{"class":7}');
    const second = utf8Encode("xxxxxxxxxxxxxxxxxxxxxxxxx");
    assert.equal(Buffer.from(first).toString(), '{"class":7}');
    assert.equal(second.length, 25);
    assert.equal(first.buffer.byteLength, first.byteLength);
    const large = utf8Encode("é".repeat(10000));
    assert.equal(large.byteLength, 20000);
    assert.equal(large.buffer.byteLength, 20000);
    assert.equal(Object.getPrototypeOf(large), Uint8Array.prototype);
    assert.equal(Object.getPrototypeOf(first), Uint8Array.prototype);
  });
});

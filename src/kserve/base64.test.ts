import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeBase64Strict } from "./base64.js";

// The rule decodeBase64Strict replaces: this pattern, then Buffer.from.
const PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
function reference(text: string): Uint8Array | undefined {
  return PATTERN.test(text) ? new Uint8Array(Buffer.from(text, "base64")) : undefined;
}

describe("decodeBase64Strict", () => {
  test("decodes what Buffer encodes, every length 0-64 and every byte value", () => {
    for (let length = 0; length <= 64; length++) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + length * 31) & 0xff);
      const text = Buffer.from(bytes).toString("base64");
      assert.deepEqual(decodeBase64Strict(text), bytes, text);
      assert.deepEqual(decodeBase64Strict(text.replace(/=+$/, "")), bytes, `unpadded ${text}`);
    }
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(decodeBase64Strict(Buffer.from(all).toString("base64")), all);
  });

  test("refuses what the pattern refuses: bad characters, lone characters, padding in the middle or too much", () => {
    for (const text of [
      "a",
      "abcde",
      "ab=c",
      "ab==cd==",
      "a===",
      "abc==",
      "=",
      "==",
      "ab c",
      "ab\nc",
      "ab-_",
      "aé==",
      "abcĀ",
      "abc\u0141",
      "QQ=\u0000",
    ]) {
      assert.equal(reference(text), undefined, `the pattern itself refuses ${JSON.stringify(text)}`);
      assert.equal(decodeBase64Strict(text), undefined, JSON.stringify(text));
    }
  });

  test("agrees with the pattern and Buffer.from on 20,000 random texts over the alphabet, '=', whitespace and a few others", () => {
    const symbols = "ABCXYZabcxyz0189+/====  \n-_é\u0100";
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let valid = 0;
    for (let k = 0; k < 20_000; k++) {
      let text = "";
      const length = random(13);
      for (let i = 0; i < length; i++) text += symbols[random(symbols.length)];
      const expected = reference(text);
      if (expected) valid++;
      assert.deepEqual(decodeBase64Strict(text), expected, JSON.stringify(text));
    }
    assert.ok(valid > 500, `enough of the random texts are valid to compare bytes (${valid})`);
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { describeKeys, json, ModelItem, text } from "./item.js";
import type { InputMetadata } from "./metadata.js";

const encode = (s: string) => new TextEncoder().encode(s);

function input(key: string): InputMetadata {
  return { key, mediaTypes: ["application/octet-stream"], maxSize: "1M", maxBytes: 1024 ** 2, description: "", required: true };
}

const declared = [input("image"), input("config.json")];

function isChassis(code: Code, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ChassisError, `expected a ChassisError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

describe("ModelItem", () => {
  test("get returns the exact bytes of an input", () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const item = new ModelItem({ image: bytes }, declared);
    assert.equal(item.get("image"), bytes);
    assert.deepEqual([...item.get("image")], [0, 1, 2, 255]);
  });

  test("get of a missing key names the key, the item's keys and the declared inputs", () => {
    const item = new ModelItem({ image: encode("x") }, declared);
    assert.throws(
      () => item.get("config.json"),
      isChassis(
        Code.INVALID_ARGUMENT,
        /^missing input "config\.json": this item has inputs "image"; the model's inputs are "image", "config\.json"$/,
      ),
    );
  });

  test("get on an empty item says it has no inputs", () => {
    const item = new ModelItem({}, declared);
    assert.throws(() => item.get("image"), isChassis(Code.INVALID_ARGUMENT, /missing input "image": this item has no inputs;/));
  });

  test("get without declared inputs says none are declared", () => {
    const item = new ModelItem({ a: encode("1") });
    assert.throws(() => item.get("b"), isChassis(Code.INVALID_ARGUMENT, /the model's inputs are \(none declared\)/));
  });

  test("optional returns undefined for a missing key and the bytes otherwise", () => {
    const bytes = encode("hi");
    const item = new ModelItem({ image: bytes }, declared);
    assert.equal(item.optional("config.json"), undefined);
    assert.equal(item.optional("image"), bytes);
  });

  test("has is true only for keys the item carries, including empty values", () => {
    const item = new ModelItem({ image: new Uint8Array(0) }, declared);
    assert.equal(item.has("image"), true);
    assert.equal(item.has("config.json"), false);
    // An empty value is still present: get returns it rather than throwing.
    assert.equal(item.get("image").byteLength, 0);
  });

  test("inherited object properties are not inputs", () => {
    const item = new ModelItem({ image: encode("x") }, declared);
    assert.equal(item.has("toString"), false);
    assert.equal(item.has("__proto__"), false);
    assert.equal(item.optional("constructor"), undefined);
    assert.throws(() => item.get("hasOwnProperty"), isChassis(Code.INVALID_ARGUMENT, /missing input "hasOwnProperty"/));
  });

  test("text decodes UTF-8", () => {
    const item = new ModelItem({ image: encode("héllo ✓ 😀") }, declared);
    assert.equal(item.text("image"), "héllo ✓ 😀");
  });

  test("text of a missing key throws the missing-input error", () => {
    const item = new ModelItem({}, declared);
    assert.throws(() => item.text("image"), isChassis(Code.INVALID_ARGUMENT, /missing input "image"/));
  });

  test("json parses an input", () => {
    const item = new ModelItem({ "config.json": encode('{"threshold":0.5,"labels":["a","b"]}') }, declared);
    assert.deepEqual(item.json("config.json"), { threshold: 0.5, labels: ["a", "b"] });
    const typed = item.json<{ threshold: number }>("config.json");
    assert.equal(typed.threshold, 0.5);
  });

  test("json of invalid JSON names the input and keeps the parser's reason", () => {
    const item = new ModelItem({ "config.json": encode("{not json") }, declared);
    assert.throws(() => item.json("config.json"), isChassis(Code.INVALID_ARGUMENT, /^input "config\.json" is not valid JSON: \S/));
  });

  test("json of an empty input is invalid JSON, not undefined", () => {
    const item = new ModelItem({ "config.json": new Uint8Array(0) }, declared);
    assert.throws(() => item.json("config.json"), isChassis(Code.INVALID_ARGUMENT, /input "config\.json" is not valid JSON/));
  });

  test("json of a missing key throws the missing-input error", () => {
    const item = new ModelItem({}, declared);
    assert.throws(() => item.json("config.json"), isChassis(Code.INVALID_ARGUMENT, /missing input "config\.json"/));
  });

  test("keys and toObject expose the item's inputs", () => {
    const values = { image: encode("a"), "config.json": encode("{}") };
    const item = new ModelItem(values, declared);
    assert.deepEqual(item.keys(), ["image", "config.json"]);
    assert.equal(item.toObject(), values);
  });
});

describe("json() and text() helpers", () => {
  test("json encodes a value as UTF-8 JSON bytes", () => {
    const bytes = json({ label: "chat ✓", score: 0.9, list: [1, 2] });
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(bytes), '{"label":"chat ✓","score":0.9,"list":[1,2]}');
    assert.equal(new TextDecoder().decode(json("s")), '"s"');
    assert.equal(new TextDecoder().decode(json(null)), "null");
  });

  test("json of a value JSON cannot encode is an INVALID_ARGUMENT error naming its type", () => {
    assert.throws(() => json(undefined), isChassis(Code.INVALID_ARGUMENT, /json\(\): undefined cannot be encoded as JSON/));
    assert.throws(() => json(() => 1), isChassis(Code.INVALID_ARGUMENT, /json\(\): function cannot be encoded as JSON/));
  });

  test("text encodes a string as UTF-8", () => {
    assert.deepEqual([...text("é")], [0xc3, 0xa9]);
    assert.deepEqual([...text("")], []);
    assert.deepEqual([...text("ok")], [0x6f, 0x6b]);
  });

  test("describeKeys", () => {
    assert.equal(describeKeys([]), "no inputs");
    assert.equal(describeKeys(["a"]), 'inputs "a"');
    assert.equal(describeKeys(["a", "b"]), 'inputs "a", "b"');
  });
});

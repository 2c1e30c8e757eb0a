import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DEFAULT_MAX_DEPTH, JsonSyntaxError, parseJson, stringifyJson } from "./json-bigint.js";

/** A literal long enough (16+ digits) to send the text through our own parser instead of JSON.parse. */
const FORCE = "9007199254740993";

/** Parses through our own parser: the value is wrapped next to a big integer. */
function parseOwn(text: string): unknown {
  const wrapped = parseJson(`[${FORCE},${text}]`) as unknown[];
  assert.equal(wrapped[0], 9007199254740993n);
  return wrapped[1];
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function syntaxError(message: string) {
  return (error: unknown) => {
    assert.ok(error instanceof JsonSyntaxError, `expected a JsonSyntaxError, got ${String(error)}`);
    assert.ok(error instanceof SyntaxError);
    assert.equal(error.message, message);
    return true;
  };
}

describe("parseJson", () => {
  test("parses every kind of value like JSON.parse", () => {
    const text = ' { "a" : [1, -2.5, 3e2, -0.125E-2, true, false, null, "x"], "b": {"c": {}}, "d": [], "e": "" } ';
    assert.deepEqual(parseJson(text), JSON.parse(text));
    assert.deepEqual(parseOwn(text), JSON.parse(text));
  });

  test("integers outside MAX_SAFE_INTEGER become bigint, everything else stays a number", () => {
    for (const parse of [parseJson, parseOwn]) {
      assert.equal(parse("9007199254740993"), 9007199254740993n);
      assert.equal(parse("-9007199254740993"), -9007199254740993n);
      assert.equal(parse("9007199254740992"), 9007199254740992n, "2^53 is not safe");
      assert.equal(parse("18446744073709551615"), 18446744073709551615n);
      assert.equal(parse("9007199254740991"), Number.MAX_SAFE_INTEGER);
      assert.equal(parse("-9007199254740991"), -Number.MAX_SAFE_INTEGER);
      assert.equal(parse("1000000000000000"), 1e15, "16 digits but safe");
      assert.equal(parse("123456789012345678901.5"), Number("123456789012345678901.5"), "a fraction makes it a float");
      assert.equal(parse("12345678901234567890e0"), Number("12345678901234567890"), "an exponent makes it a float");
      assert.equal(parse("1e300"), 1e300);
      assert.ok(Object.is(parse("-0"), -0));
      assert.deepEqual(parse('{"v":[1,99999999999999999999]}'), { v: [1, 99999999999999999999n] });
    }
  });

  test("long fractions and digits inside strings keep the fast path exact", () => {
    assert.deepEqual(parseJson("[0.30000000000000004, 0.1234567890123456789]"), [0.1 + 0.2, Number("0.1234567890123456789")]);
    assert.deepEqual(parseJson('["12345678901234567890"]'), ["12345678901234567890"]);
  });

  test("strings: escapes, unicode, and lone surrogates as JSON.parse keeps them", () => {
    const text = String.raw`["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20AC\ud83d\ude00", "\ud800", "héllo 😀"]`;
    for (const parse of [parseJson, parseOwn]) {
      assert.deepEqual(parse(text), JSON.parse(text));
      assert.deepEqual(parse(text), ['a"b\\c/d\b\f\n\r\t', "é€😀", "\ud800", "héllo 😀"]);
    }
  });

  test("a __proto__ key is an own property and never the prototype", () => {
    for (const parse of [parseJson, parseOwn]) {
      const value = parse('{"__proto__": {"polluted": true}, "a": {"__proto__": 1}}') as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(value), Object.prototype);
      assert.ok(Object.hasOwn(value, "__proto__"));
      assert.deepEqual(Object.keys(value), ["__proto__", "a"]);
      assert.equal((value as { polluted?: unknown }).polluted, undefined);
      assert.equal(({} as { polluted?: unknown }).polluted, undefined);
      assert.ok(Object.hasOwn(value.a as object, "__proto__"));
    }
  });

  test("duplicate keys: the last one wins, as in JSON.parse", () => {
    assert.deepEqual(parseOwn('{"a":1,"a":2}'), { a: 2 });
  });

  test("errors read like orjson's, with line, column and char", () => {
    const cases: [string, string][] = [
      ["", "Input is a zero-length, empty document: line 1 column 1 (char 0)"],
      ['{"inputs": [1, 2', "unexpected end of data: line 1 column 17 (char 16)"],
      ['{"inputs": [1, 2, 3', "unexpected end of data: line 1 column 20 (char 19)"],
      ['{"inputs": [1, NaN]}', "unexpected character, expected a JSON value: line 1 column 16 (char 15)"],
      ["  ", "unexpected end of data: line 1 column 3 (char 2)"],
      ["[1,]", "trailing comma is not allowed: line 1 column 4 (char 3)"],
      ['{"a":1,}', "trailing comma is not allowed: line 1 column 8 (char 7)"],
      ["[01]", "number with leading zero is not allowed: line 1 column 2 (char 1)"],
      ["[-01]", "number with leading zero is not allowed: line 1 column 2 (char 1)"],
      ["[1.]", "invalid number: line 1 column 2 (char 1)"],
      ["[1e+]", "invalid number: line 1 column 2 (char 1)"],
      ["[-]", "invalid number: line 1 column 2 (char 1)"],
      ["[.5]", "unexpected character, expected a JSON value: line 1 column 2 (char 1)"],
      ["[+1]", "unexpected character, expected a JSON value: line 1 column 2 (char 1)"],
      ["[Infinity]", "unexpected character, expected a JSON value: line 1 column 2 (char 1)"],
      ["[-Infinity]", "invalid number: line 1 column 2 (char 1)"],
      ["[tru]", "invalid literal: line 1 column 2 (char 1)"],
      ["nul", "unexpected end of data: line 1 column 4 (char 3)"],
      ["[1] // comment", "unexpected content after document: line 1 column 5 (char 4)"],
      ["/* c */ [1]", "unexpected character, expected a JSON value: line 1 column 1 (char 0)"],
      ["['a']", "unexpected character, expected a JSON value: line 1 column 2 (char 1)"],
      ["{a:1}", "unexpected character, expected a string key: line 1 column 2 (char 1)"],
      ['{"a" 1}', "unexpected character, expected ':': line 1 column 6 (char 5)"],
      ["[1 2]", "unexpected character, expected ',' or ']': line 1 column 4 (char 3)"],
      ['{"a":1 "b":2}', "unexpected character, expected ',' or '}': line 1 column 8 (char 7)"],
      ['"a\tb"', "unexpected control character in string: line 1 column 3 (char 2)"],
      ['"\\x"', "invalid escaped sequence in string: line 1 column 2 (char 1)"],
      ['"\\u12g4"', "invalid escaped sequence in string: line 1 column 2 (char 1)"],
      ['"\\u12', "unexpected end of data: line 1 column 6 (char 5)"],
      ['"abc', "unexpected end of data: line 1 column 5 (char 4)"],
      ["\ufeff[1]", "unexpected character, expected a JSON value: line 1 column 1 (char 0)"],
      ['{\n  "a": [1,\n    x]\n}', "unexpected character, expected a JSON value: line 3 column 5 (char 17)"],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => JSON.parse(text), SyntaxError, `JSON.parse must reject ${JSON.stringify(text)} too`);
      assert.throws(() => parseJson(text), syntaxError(message), JSON.stringify(text));
    }
  });

  test("JsonSyntaxError carries the reason and the location", () => {
    try {
      parseJson('{\n"a": ]}');
      assert.fail("expected an error");
    } catch (error) {
      assert.ok(error instanceof JsonSyntaxError);
      assert.equal(error.name, "JsonSyntaxError");
      assert.equal(error.reason, "unexpected character, expected a JSON value");
      assert.deepEqual([error.line, error.column, error.position], [2, 6, 7]);
    }
  });

  test("nesting is limited (512 by default) without overflowing the stack", () => {
    assert.equal(DEFAULT_MAX_DEPTH, 512);
    const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
    assert.doesNotThrow(() => parseJson(nested(512)));
    assert.throws(() => parseJson(nested(513)), syntaxError("nesting depth exceeds the limit of 512: line 1 column 513 (char 512)"));
    assert.throws(() => parseJson(`${'{"a":'.repeat(600)}1${"}".repeat(600)}`), /nesting depth exceeds the limit of 512/);
    assert.throws(() => parseJson("[".repeat(1_000_000)), /nesting depth exceeds the limit of 512/);
    assert.throws(() => parseJson(nested(5), { maxDepth: 4 }), /nesting depth exceeds the limit of 4/);
    assert.doesNotThrow(() => parseJson(nested(600), { maxDepth: 1000 }));
  });

  test("brackets inside strings do not count as nesting", () => {
    const text = JSON.stringify(["[".repeat(2000), '{\\"[']);
    assert.deepEqual(parseJson(text), JSON.parse(text));
  });

  test("differential: accepts and rejects exactly what JSON.parse does, with the same values", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const atoms = ["0", "-0", "1", "-12", "3.25", "1e5", "-2E-3", "0.5e+2", "true", "false", "null", '""', '"a\\nb"', '"\\u00e9"', '"x y"'];
    const value = (depth: number): string => {
      const r = random();
      if (depth > 3 || r < 0.5) return pick(atoms);
      if (r < 0.75) return `[${Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1)).join(", ")}]`;
      return `{${Array.from({ length: Math.floor(random() * 4) }, (_, i) => `"k${i}": ${value(depth + 1)}`).join(",")}}`;
    };
    const noise = ["", " ", ",", "]", "[", "{", "}", ":", '"', "\\", "0", "1", ".", "e", "-", "+", "x", "\n", "\t", "\u0001", "/"];
    let valid = 0;
    let invalid = 0;
    for (let i = 0; i < 3000; i++) {
      let text = value(0);
      if (random() < 0.6) {
        const at = Math.floor(random() * (text.length + 1));
        const cut = random() < 0.5 ? 1 : 0;
        text = text.slice(0, at) + pick(noise) + text.slice(at + cut);
      }
      if (parses(text)) {
        valid++;
        const expected = JSON.parse(text);
        assert.deepEqual(parseJson(text), expected, text);
        assert.deepEqual(parseOwn(text), expected, text);
      } else {
        invalid++;
        assert.throws(() => parseJson(text), JsonSyntaxError, text);
        // Wrapping can make some invalid texts valid ("1,2" -> "[x,1,2]"); check parseOwn only where it does not.
        if (!parses(`[0,${text}]`)) assert.throws(() => parseOwn(text), JsonSyntaxError, text);
      }
    }
    assert.ok(valid > 500 && invalid > 500, `valid ${valid}, invalid ${invalid}`);
  });
});

describe("stringifyJson", () => {
  test("writes bigints as bare integers", () => {
    assert.equal(stringifyJson(9007199254740993n), "9007199254740993");
    assert.equal(stringifyJson({ a: [1, -18446744073709551615n, "x"] }), '{"a":[1,-18446744073709551615,"x"]}');
  });

  test("writes everything else exactly as JSON.stringify does", () => {
    const values: unknown[] = [
      null,
      true,
      0,
      -0,
      1.5,
      1e21,
      -1e-7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      'a"b\\c\n\u0001é😀\ud800',
      [1, undefined, () => 1, Symbol("s"), null],
      { a: 1, b: undefined, c: () => 1, d: { e: [] }, "k\ny": 2 },
      { date: new Date(0) },
      [new Number(3), new String("s"), new Boolean(false)],
      { __proto__: null, x: 1 },
    ];
    for (const value of values) assert.equal(stringifyJson(value), JSON.stringify(value));
  });

  test("round-trips with parseJson, big integers included", () => {
    const value = { id: "42", data: [9007199254740993n, -9223372036854775808n, 1, 2.5, "s", null, true], nested: { x: [[1n]] } };
    const text = stringifyJson(value);
    assert.equal(text, '{"id":"42","data":[9007199254740993,-9223372036854775808,1,2.5,"s",null,true],"nested":{"x":[[1]]}}');
    assert.deepEqual(parseJson(text), { ...value, nested: { x: [[1]] } });
  });

  test("rejects cycles and values that are not JSON", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    assert.throws(() => stringifyJson(cycle), TypeError);
    assert.throws(() => stringifyJson(undefined), TypeError);
    assert.throws(() => stringifyJson(() => 1), TypeError);
    const shared = { a: 1 };
    assert.equal(stringifyJson([shared, shared]), '[{"a":1},{"a":1}]', "a repeated (not circular) object is fine");
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { formatString, toYaml } from "./yaml.js";

/** parse(toYaml(x)) must give x back under YAML 1.2 (the `yaml` default, Go's sigs.k8s.io/yaml) and YAML 1.1 (PyYAML). */
function assertRoundTrip(value: unknown): void {
  const text = toYaml(value);
  assert.deepEqual(parse(text), value, `YAML 1.2 read back something else from:\n${text}`);
  assert.deepEqual(parse(text, { version: "1.1" }), value, `YAML 1.1 read back something else from:\n${text}`);
}

/** Strings a careless emitter gets wrong: each must come back as the same string. */
const TRICKY_STRINGS = [
  "",
  " ",
  " leading",
  "trailing ",
  "\ttab",
  "8080",
  "0",
  "-1",
  "+1",
  "1.5",
  ".5",
  "1e3",
  "1E3",
  "1e+3",
  "0x1F",
  "0o17",
  "0777",
  "0b101",
  "1_000",
  "1:30",
  "190:20:30",
  ".inf",
  "-.inf",
  ".nan",
  "NaN",
  "Infinity",
  "true",
  "True",
  "FALSE",
  "yes",
  "No",
  "on",
  "OFF",
  "y",
  "n",
  "null",
  "Null",
  "~",
  "=",
  "<<",
  "2024-01-01",
  "2001-12-14t21:59:43.10-05:00",
  "-",
  "- item",
  "--- ",
  "---",
  "...",
  "?",
  "? key",
  ":",
  "key:",
  "a: b",
  "a:b",
  "http://example.com/a?b=c#d",
  "a #comment",
  "#comment",
  "&anchor",
  "*alias",
  "!tag",
  "!!str",
  "%YAML",
  "@at",
  "`tick",
  "|",
  ">",
  "'single'",
  '"double"',
  "it's",
  'say "hi"',
  "back\\slash",
  "[a, b]",
  "{a: b}",
  "a, b",
  "a]",
  "line\nbreak",
  "trailing newline\n",
  "\n",
  "crlf\r\n",
  "nul\u0000byte",
  "bell\u0007",
  "del\u007f",
  "c1\u0085nel",
  "ls\u2028ps\u2029",
  "\ufeffbom",
  "caf\u00e9",
  "\u65e5\u672c\u8a9e",
  "emoji \u{1f600}",
  "lone \ud800 surrogate",
  "1Gi",
  "500m",
  "0.5Gi",
  "v1",
  "/metrics",
  "/v2/models/digits/ready",
  "registry.example.com/digits:1.0.0",
  "repo@sha256:0123abcd",
  "prometheus.kserve.io/port",
  "x".repeat(500),
];

describe("toYaml", () => {
  test("prints maps, lists and scalars in block style with two-space indentation", () => {
    const text = toYaml({
      apiVersion: "v1",
      list: [1, "two", { a: 1, b: [true, null] }, [3, 4], [], {}],
      empty: {},
      none: [],
      nested: { deeper: { value: "x" } },
    });
    assert.equal(
      text,
      [
        "apiVersion: v1",
        "list:",
        "  - 1",
        "  - two",
        "  - a: 1",
        "    b:",
        "      - true",
        "      - null",
        "  - - 3",
        "    - 4",
        "  - []",
        "  - {}",
        "empty: {}",
        "none: []",
        "nested:",
        "  deeper:",
        "    value: x",
        "",
      ].join("\n"),
    );
  });

  test("top-level scalars and empty collections are one line", () => {
    assert.equal(toYaml("x"), "x\n");
    assert.equal(toYaml("8080"), '"8080"\n');
    assert.equal(toYaml(42), "42\n");
    assert.equal(toYaml(null), "null\n");
    assert.equal(toYaml({}), "{}\n");
    assert.equal(toYaml([]), "[]\n");
  });

  test("quotes exactly the strings that need it", () => {
    // Plain where every reader agrees it is that string.
    for (const s of ["v1", "kserve-container", "1Gi", "500m", "/metrics", "http://x/y", "a:b", "hello world"]) {
      assert.equal(formatString(s), s, s);
    }
    // Quoted otherwise.
    for (const s of ["", "8080", "yes", "No", "~", "null", "1e3", "2024-01-01", "a: b", "key:", " x", "x ", "- x", "#x", "café"]) {
      assert.match(formatString(s), /^".*"$/, JSON.stringify(s));
    }
  });

  test("escapes control characters and YAML 1.1 line breaks inside double quotes", () => {
    assert.equal(formatString("a\nb"), '"a\\nb"');
    assert.equal(formatString("tab\there"), '"tab\\there"');
    assert.equal(formatString('q"b\\'), '"q\\"b\\\\"');
    assert.equal(formatString("\u0000\u007f\u0085\u2028\ufeff"), '"\\u0000\\u007f\\u0085\\u2028\\ufeff"');
    // Printable non-ASCII stays as it is (the output is UTF-8).
    assert.equal(formatString("日本 \u{1f600}"), '"日本 \u{1f600}"');
  });

  test("every tricky string round-trips as a value, as a key, and inside a list", () => {
    for (const s of TRICKY_STRINGS) {
      assertRoundTrip(s);
      assertRoundTrip({ [s]: s });
      assertRoundTrip({ list: [s, [s], { [s]: [s] }] });
    }
  });

  test("numbers, booleans and null round-trip with their types", () => {
    const values = [
      0,
      -0,
      1,
      -1,
      42,
      8080,
      65535,
      2 ** 31,
      2 ** 53 - 1,
      -(2 ** 53),
      0.1,
      -2.5,
      1 / 3,
      1e21,
      1.5e300,
      5e-7,
      1e-300,
      true,
      false,
      null,
    ];
    assertRoundTrip(values);
    assertRoundTrip({ values });
    for (const v of values) assertRoundTrip(v);
    // -0 really comes back as -0 (deepEqual uses Object.is).
    assert.ok(Object.is(parse(toYaml(-0)), -0));
    assert.equal(toYaml(1e21), "1.0e+21\n");
    assert.equal(toYaml(5e-7), "5.0e-7\n");
  });

  test("random strings from a hostile alphabet round-trip (1,500 seeded cases)", () => {
    const alphabet = [
      ..."aZ09 -_.:/#?&*!|>'\"%@`,[]{}=~+\\\t\n\r",
      "\u0000",
      "\u0085",
      "\u00e9",
      "\u2028",
      "\ufeff",
      "\u{1f600}",
      "e",
      "x",
      "y",
      "n",
    ];
    let seed = 0x2f6b1d;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 1500; i++) {
      const length = random(8);
      let s = "";
      for (let j = 0; j < length; j++) s += alphabet[random(alphabet.length)];
      assertRoundTrip({ [s]: [s, { k: s }] });
    }
  });

  test("a Kubernetes-like manifest round-trips", () => {
    const manifest = {
      apiVersion: "serving.kserve.io/v1beta1",
      kind: "InferenceService",
      metadata: { name: "digits", annotations: { "prometheus.kserve.io/port": "8080", "prometheus.kserve.io/path": "/metrics" } },
      spec: {
        predictor: {
          containers: [
            {
              name: "kserve-container",
              image: "registry.example.com/digits@sha256:abc",
              env: [
                { name: "HTTP_PORT", value: "8080" },
                { name: "FLAG", value: "true" },
                { name: "EMPTY", value: "" },
              ],
              ports: [{ containerPort: 8080, protocol: "TCP", name: "http1" }],
              resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } },
            },
          ],
        },
      },
    };
    assertRoundTrip(manifest);
    const text = toYaml(manifest);
    assert.match(text, /prometheus\.kserve\.io\/port: "8080"\n/);
    assert.match(text, /value: "true"\n/);
    assert.match(text, /cpu: "1"\n/);
    assert.match(text, /memory: 1Gi\n/);
  });

  test("follows JSON: undefined members are skipped, undefined list items become null", () => {
    assert.equal(toYaml({ a: 1, b: undefined }), "a: 1\n");
    assert.equal(toYaml({ b: undefined }), "{}\n");
    assert.equal(toYaml([1, undefined]), "- 1\n- null\n");
  });

  test("a value shared in two places is printed twice (no anchors)", () => {
    const shared = { x: 1 };
    assert.equal(toYaml({ a: shared, b: shared }), "a:\n  x: 1\nb:\n  x: 1\n");
  });

  test("rejects what is not JSON-like data, naming where it is", () => {
    const cases: [unknown, RegExp][] = [
      [{ n: Number.NaN }, /\$\.n is NaN/],
      [{ n: Number.POSITIVE_INFINITY }, /\$\.n is Infinity/],
      [{ b: 1n }, /\$\.b is a bigint/],
      [{ f: () => 1 }, /\$\.f is a function/],
      [{ s: Symbol("s") }, /\$\.s is a symbol/],
      [{ d: new Date(0) }, /\$\.d is a Date, not a plain object/],
      [{ m: new Map() }, /\$\.m is a Map/],
      [[new (class Thing {})()], /\$\[0\] is a Thing/],
    ];
    for (const [value, message] of cases) assert.throws(() => toYaml(value), { name: "TypeError", message });
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = { back: loop };
    assert.throws(() => toYaml(loop), { name: "TypeError", message: /circular reference at \$\.self\.back/ });
    // Objects without a prototype are plain data too.
    const bare = Object.assign(Object.create(null) as object, { k: "v" });
    assert.equal(toYaml(bare), "k: v\n");
  });
});

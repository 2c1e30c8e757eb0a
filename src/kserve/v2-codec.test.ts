import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { normalizeMetadata } from "../model/metadata.js";
import { parseJson } from "./json-bigint.js";
import {
  decodeBinaryBody,
  type InferenceRequest,
  modelMetadataV2,
  outputsToResponse,
  planOutputs,
  requestToItems,
  requestValidationDetail,
  V2ValidationError,
  validateInferenceRequest,
} from "./v2-codec.js";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

const metadata = normalizeMetadata(
  {
    name: "M",
    version: "1",
    inputs: [{ key: "text" }, { key: "features.json", mediaTypes: ["application/json"] }, { key: "image", mediaTypes: ["image/png"] }],
    outputs: [{ key: "results.json" }, { key: "summary.txt" }, { key: "mask.bin" }],
  },
  1,
);

function isChassis(code: Code, pattern: RegExp | string) {
  return (error: unknown) => {
    assert.ok(error instanceof ChassisError, `expected a ChassisError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (typeof pattern === "string") assert.equal(error.message, pattern);
    else assert.match(error.message, pattern);
    return true;
  };
}

const invalid = (pattern: RegExp | string) => isChassis(Code.INVALID_ARGUMENT, pattern);

/** The text of each item's input, for one input key. */
function column(items: Array<Record<string, Uint8Array>>, key: string): string[] {
  return items.map((item) => decode(item[key] as Uint8Array));
}

/** A JSON request through the same path a server takes: text -> parseJson -> validate -> items. */
function jsonItems(body: string) {
  return requestToItems(validateInferenceRequest(parseJson(body)), undefined, metadata, "m");
}

/** Builds a binary-extension body: JSON header, then the blocks. */
function binaryBody(header: unknown, ...blocks: Uint8Array[]): { body: Uint8Array; headerLength: number } {
  const json = encode(JSON.stringify(header));
  const body = new Uint8Array(json.length + blocks.reduce((n, b) => n + b.length, 0));
  body.set(json, 0);
  let offset = json.length;
  for (const block of blocks) {
    body.set(block, offset);
    offset += block.length;
  }
  return { body, headerLength: json.length };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** BYTES elements, each a 4-byte little-endian length and the bytes. */
function lengthPrefixed(...elements: (string | Uint8Array)[]): Uint8Array {
  const parts = elements.map((e) => (typeof e === "string" ? encode(e) : e));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const part of parts) {
    view.setUint32(offset, part.length, true);
    out.set(part, offset + 4);
    offset += 4 + part.length;
  }
  return out;
}

function binaryItems(header: unknown, ...blocks: Uint8Array[]) {
  const { body, headerLength } = binaryBody(header, ...blocks);
  const { request, binary } = decodeBinaryBody(body, headerLength);
  return requestToItems(request, binary, metadata, "m");
}

describe("validateInferenceRequest", () => {
  test("normalizes: datatype upper-cased, shape items as ints, null optional fields dropped, extra fields ignored", () => {
    const body = {
      id: "42",
      parameters: { binary_data_output: false, n: 1, s: "x" },
      extra: [1],
      inputs: [{ name: "text", shape: ["2", 1.0], datatype: "bytes", data: ["a", "b"], parameters: null, more: 1 }],
      outputs: [
        { name: "results.json", parameters: { binary_data: true } },
        { name: "summary.txt", parameters: null },
      ],
    };
    assert.deepEqual(validateInferenceRequest(body), {
      id: "42",
      parameters: { binary_data_output: false, n: 1, s: "x" },
      inputs: [{ name: "text", shape: [2, 1], datatype: "BYTES", data: ["a", "b"] }],
      outputs: [{ name: "results.json", parameters: { binary_data: true } }, { name: "summary.txt" }],
    });
    assert.deepEqual(validateInferenceRequest({ id: null, parameters: null, outputs: null, inputs: [] }), { inputs: [] });
  });

  test("does not copy data arrays", () => {
    const data = ["x"];
    const request = validateInferenceRequest({ inputs: [{ name: "text", shape: [1], datatype: "BYTES", data }] });
    assert.equal(request.inputs[0]?.data, data);
  });

  test("reports every schema problem at once, pydantic style", () => {
    const body = {
      id: 5,
      parameters: { ok: 1, bad: { nested: true } },
      inputs: [{ shape: [1, "a", 1.5, true], datatype: 3, data: "x" }, 7],
      outputs: [{ parameters: [] }],
    };
    try {
      validateInferenceRequest(body);
      assert.fail("expected a V2ValidationError");
    } catch (error) {
      assert.ok(error instanceof V2ValidationError);
      assert.ok(error instanceof ChassisError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.deepEqual(
        error.details.map((d) => [d.type, d.loc.join(".")]),
        [
          ["string_type", "id"],
          ["float_type", "parameters.bad.float"],
          ["int_type", "parameters.bad.int"],
          ["bool_type", "parameters.bad.bool"],
          ["string_type", "parameters.bad.str"],
          ["missing", "inputs.0.name"],
          ["int_parsing", "inputs.0.shape.1"],
          ["int_from_float", "inputs.0.shape.2"],
          ["int_type", "inputs.0.shape.3"],
          ["string_type", "inputs.0.datatype"],
          ["list_type", "inputs.0.data"],
          ["model_type", "inputs.1"],
          ["missing", "outputs.0.name"],
          ["dict_type", "outputs.0.parameters"],
        ],
      );
      assert.match(error.message, /^14 validation errors for InferenceRequest: id: Input should be a valid string; /);
      assert.deepEqual(error.details[0], { type: "string_type", loc: ["id"], msg: "Input should be a valid string", input: 5 });
    }
  });

  test("KServe's 422 detail for a missing `inputs`, exactly", () => {
    const body = { id: "1" };
    try {
      validateInferenceRequest(body);
      assert.fail("expected a V2ValidationError");
    } catch (error) {
      assert.ok(error instanceof V2ValidationError);
      assert.equal(
        JSON.stringify({ detail: requestValidationDetail(error, body) }),
        '{"detail":[{"type":"missing","loc":["body","InferenceRequest","inputs"],"msg":"Field required","input":{"id":"1"}},' +
          '{"type":"bytes_type","loc":["body","bytes"],"msg":"Input should be a valid bytes","input":{"id":"1"}}]}',
      );
    }
  });

  test("`data` is required, even empty, unless the input has binary_data_size", () => {
    assert.throws(
      () => validateInferenceRequest({ inputs: [{ name: "text", shape: [0], datatype: "BYTES" }] }),
      (error: unknown) =>
        error instanceof V2ValidationError && error.details[0]?.type === "missing" && error.details[0].loc.join(".") === "inputs.0.data",
    );
    assert.throws(
      () => validateInferenceRequest({ inputs: [{ name: "text", shape: [0], datatype: "BYTES", data: null }] }),
      (error: unknown) => error instanceof V2ValidationError && error.details[0]?.type === "list_type",
    );
    assert.doesNotThrow(() => validateInferenceRequest({ inputs: [{ name: "text", shape: [0], datatype: "BYTES", data: [] }] }));
    assert.doesNotThrow(() =>
      validateInferenceRequest({ inputs: [{ name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: 5 } }] }),
    );
  });

  test("a body that is not an object", () => {
    for (const body of [null, [], "x", 1]) {
      assert.throws(
        () => validateInferenceRequest(body),
        (error: unknown) => error instanceof V2ValidationError && error.details.length === 1 && error.details[0]?.type === "model_type",
      );
    }
  });
});

describe("requestToItems (JSON)", () => {
  test("BYTES: one UTF-8 string per item, several inputs side by side", () => {
    const items = jsonItems(
      JSON.stringify({
        inputs: [
          { name: "text", shape: [2], datatype: "BYTES", data: ["héllo", "wörld"] },
          { name: "image", shape: [2, 1], datatype: "BYTES", data: [["p1"], ["p2"]] },
        ],
      }),
    );
    assert.equal(items.length, 2);
    assert.deepEqual(column(items, "text"), ["héllo", "wörld"]);
    assert.deepEqual(column(items, "image"), ["p1", "p2"]);
    assert.deepEqual(Object.keys(items[0] as object), ["text", "image"]);
  });

  test("FP32 rows become JSON text shaped as shape[1:], nested or flat data alike", () => {
    const flat = jsonItems('{"inputs":[{"name":"features.json","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}');
    const nested = jsonItems('{"inputs":[{"name":"features.json","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}');
    assert.deepEqual(column(flat, "features.json"), ["[1,2]", "[3,4]"]);
    assert.deepEqual(column(nested, "features.json"), ["[1,2]", "[3,4]"]);
    const cube = jsonItems(`{"inputs":[{"name":"features.json","shape":[2,2,3],"datatype":"INT32","data":[${[...Array(12).keys()]}]}]}`);
    assert.deepEqual(column(cube, "features.json"), ["[[0,1,2],[3,4,5]]", "[[6,7,8],[9,10,11]]"]);
    const scalars = jsonItems('{"inputs":[{"name":"features.json","shape":[3],"datatype":"FP64","data":[0.1,-2,1e-7]}]}');
    assert.deepEqual(column(scalars, "features.json"), ["0.1", "-2", "1e-7"]);
  });

  test("a digits-like batch: FP32 [2,64] gives each item a 64-number JSON array", () => {
    const data = Array.from({ length: 128 }, (_, i) => i % 17);
    const items = jsonItems(JSON.stringify({ inputs: [{ name: "features.json", shape: [2, 64], datatype: "FP32", data }] }));
    assert.deepEqual(JSON.parse(column(items, "features.json")[0] as string), data.slice(0, 64));
    assert.deepEqual(JSON.parse(column(items, "features.json")[1] as string), data.slice(64));
  });

  test("FP32 values print as the shortest text of their float32 value", () => {
    const items = jsonItems(
      '{"inputs":[{"name":"features.json","shape":[1,4],"datatype":"FP32","data":[1.1,0.1,1.23456789012,3.4028235e38]}]}',
    );
    assert.deepEqual(column(items, "features.json"), ["[1.1,0.1,1.2345679,3.4028235e+38]"]);
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[1],"datatype":"FP32","data":[1e39]}]}'),
      invalid("input 'features.json' is FP32, but element 0 is 1e+39, outside FP32's range"),
    );
  });

  test("INT64 9007199254740993 survives parse -> item -> text exactly, as does UINT64's maximum", () => {
    const body =
      '{"inputs":[{"name":"features.json","shape":[2,2],"datatype":"INT64","data":[9007199254740993,-9223372036854775808,1,-0]}]}';
    assert.deepEqual(column(jsonItems(body), "features.json"), ["[9007199254740993,-9223372036854775808]", "[1,0]"]);
    const max = '{"inputs":[{"name":"features.json","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}';
    assert.deepEqual(column(jsonItems(max), "features.json"), ["18446744073709551615"]);
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[1],"datatype":"INT64","data":[9223372036854775808]}]}'),
      invalid(/element 0 is 9223372036854775808, outside INT64's range -9223372036854775808\.\.9223372036854775807/),
    );
  });

  test("integer and BOOL values are checked against the datatype", () => {
    const one = (datatype: string, value: unknown) =>
      jsonItems(JSON.stringify({ inputs: [{ name: "features.json", shape: [1], datatype, data: [value] }] }));
    assert.throws(() => one("UINT8", 300), invalid("input 'features.json' is UINT8, but element 0 is 300, outside UINT8's range 0..255"));
    assert.throws(() => one("INT8", -129), invalid(/outside INT8's range -128\.\.127/));
    assert.throws(() => one("UINT32", -1), invalid(/outside UINT32's range/));
    assert.throws(() => one("INT32", 1.7), invalid("input 'features.json' is INT32, but element 0 is 1.7, not an integer"));
    assert.throws(() => one("INT32", "5"), invalid("input 'features.json' is INT32, but element 0 is the string \"5\", not a number"));
    assert.throws(() => one("FP64", null), invalid("input 'features.json' is FP64, but element 0 is null, not a number"));
    assert.deepEqual(column(one("BOOL", true), "features.json"), ["true"]);
    assert.deepEqual(column(one("BOOL", 0), "features.json"), ["false"]);
    assert.throws(() => one("BOOL", "true"), invalid(/is BOOL, but element 0 is the string "true", not true, false, 0 or 1/));
    assert.deepEqual(column(one("UINT16", 65535), "features.json"), ["65535"]);
  });

  test("element count must fit the shape; a -1 dimension is inferred", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]}'),
      invalid("input 'features.json' has 3 values but shape [2,2] needs 4"),
    );
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":["a"]}]}'),
      invalid("input 'text' has 1 values but shape [3] needs 3"),
    );
    const inferred = jsonItems('{"inputs":[{"name":"features.json","shape":[-1,2],"datatype":"INT8","data":[1,2,3,4,5,6]}]}');
    assert.deepEqual(column(inferred, "features.json"), ["[1,2]", "[3,4]", "[5,6]"]);
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[-1,4],"datatype":"INT8","data":[1,2,3,4,5,6]}]}'),
      invalid("input 'features.json' has 6 values, which do not fit shape [-1,4]"),
    );
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[-1,-1],"datatype":"INT8","data":[1]}]}'),
      invalid(/only one dimension can be -1/),
    );
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[-2],"datatype":"INT8","data":[1]}]}'),
      invalid(/dimension -2 is not allowed/),
    );
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[],"datatype":"BYTES","data":["a"]}]}'),
      invalid(/shape \[\]: its first dimension is the batch size/),
    );
  });

  test("all inputs must agree on the batch size", () => {
    assert.throws(
      () =>
        jsonItems(
          JSON.stringify({
            inputs: [
              { name: "text", shape: [2], datatype: "BYTES", data: ["a", "b"] },
              { name: "features.json", shape: [3, 1], datatype: "FP32", data: [1, 2, 3] },
            ],
          }),
        ),
      invalid("inputs disagree on the batch size (the first dimension of shape): 'text' has 2, 'features.json' has 3"),
    );
  });

  test("an input that is not declared is refused, naming the declared inputs", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"zzz","shape":[1],"datatype":"BYTES","data":["a"]}]}'),
      invalid("input 'zzz' is not an input of model 'm'; its inputs are 'text', 'features.json', 'image'"),
    );
    assert.throws(
      () =>
        jsonItems(
          '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["a"]},{"name":"text","shape":[1],"datatype":"BYTES","data":["b"]}]}',
        ),
      invalid("input 'text' appears more than once in the request"),
    );
  });

  test("numeric tensors go only to JSON inputs", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"image","shape":[1,2],"datatype":"UINT8","data":[1,2]}]}'),
      invalid(/^input 'image' is UINT8, but the model's input 'image' takes image\/png, not JSON: send it as a BYTES tensor/),
    );
  });

  test("BYTES data must be strings with one element per item", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["a",5]}]}'),
      invalid("input 'text' is BYTES, so its data must be strings, but element 1 is 5"),
    );
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[1,2],"datatype":"BYTES","data":["a","b"]}]}'),
      invalid(/each item takes exactly one element of a BYTES tensor/),
    );
  });

  test("FP16 in JSON and unknown datatypes are refused with KServe's wording", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"features.json","shape":[1],"datatype":"FP16","data":[1]}]}'),
      invalid("Sending FP16 data via JSON is not supported. Please use the binary data format for input features.json"),
    );
    assert.deepEqual(jsonItems('{"inputs":[{"name":"features.json","shape":[0],"datatype":"FP16","data":[]}]}'), []);
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[1],"datatype":"BF16","data":[1]}]}'),
      invalid(/datatype 'BF16', which is not supported/),
    );
  });

  test("binary_data_size on a JSON body is refused", () => {
    assert.throws(
      () => jsonItems('{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":4}}]}'),
      invalid(/input 'text' has parameters\.binary_data_size, but the request carries no binary data for it/),
    );
  });

  test("no inputs, or a batch of 0, gives no items", () => {
    assert.deepEqual(jsonItems('{"inputs":[]}'), []);
    assert.deepEqual(jsonItems('{"inputs":[{"name":"text","shape":[0],"datatype":"BYTES","data":[]}]}'), []);
  });
});

describe("decodeBinaryBody and binary requestToItems", () => {
  const GOLDEN = "\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@";

  test("FP32 [2,2] = 1,2,3,4 (KServe's golden bytes)", () => {
    const raw = bytesOf(new Float32Array([1, 2, 3, 4]));
    assert.deepEqual(Buffer.from(raw), Buffer.from(GOLDEN, "latin1"));
    const header = { id: "1", inputs: [{ name: "features.json", shape: [2, 2], datatype: "FP32", parameters: { binary_data_size: 16 } }] };
    const { body, headerLength } = binaryBody(header, Buffer.from(GOLDEN, "latin1"));
    const { request, binary } = decodeBinaryBody(body, headerLength);
    assert.equal(request.id, "1");
    assert.deepEqual([...(binary.get("features.json") ?? [])], [...raw]);
    assert.equal(binary.get("features.json")?.buffer, body.buffer, "a view, not a copy");
    assert.deepEqual(column(requestToItems(request, binary, metadata, "m"), "features.json"), ["[1,2]", "[3,4]"]);
  });

  test("BYTES elements are length-prefixed; binary and JSON inputs mix, consumed in input order", () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]);
    const items = binaryItems(
      {
        inputs: [
          { name: "image", shape: [2], datatype: "BYTES", parameters: { binary_data_size: 4 + 6 + 4 + 0 } },
          { name: "text", shape: [2], datatype: "BYTES", data: ["a", "b"] },
          { name: "features.json", shape: [2, 1], datatype: "UINT8", parameters: { binary_data_size: 2 } },
        ],
      },
      lengthPrefixed(png, new Uint8Array(0)),
      new Uint8Array([7, 255]),
    );
    assert.deepEqual([...(items[0]?.image ?? [])], [...png]);
    assert.equal(items[1]?.image?.length, 0);
    assert.deepEqual(column(items, "text"), ["a", "b"]);
    assert.deepEqual(column(items, "features.json"), ["[7]", "[255]"]);
  });

  test("INT64 and UINT64 above 2^53 survive exactly", () => {
    const items = binaryItems(
      {
        inputs: [{ name: "features.json", shape: [1, 3], datatype: "INT64", parameters: { binary_data_size: 24 } }],
      },
      bytesOf(new BigInt64Array([9007199254740993n, -9223372036854775808n, -1n])),
    );
    assert.deepEqual(column(items, "features.json"), ["[9007199254740993,-9223372036854775808,-1]"]);
    const unsigned = binaryItems(
      { inputs: [{ name: "features.json", shape: [2], datatype: "UINT64", parameters: { binary_data_size: 16 } }] },
      bytesOf(new BigUint64Array([18446744073709551615n, 9007199254740993n])),
    );
    assert.deepEqual(column(unsigned, "features.json"), ["18446744073709551615", "9007199254740993"]);
  });

  test("every fixed-width datatype decodes little-endian", () => {
    const cases: [string, ArrayBufferView, string[]][] = [
      ["BOOL", new Uint8Array([0, 1, 2]), ["false", "true", "true"]],
      ["UINT8", new Uint8Array([0, 255]), ["0", "255"]],
      ["INT8", new Int8Array([-128, 127]), ["-128", "127"]],
      ["UINT16", new Uint16Array([65535]), ["65535"]],
      ["INT16", new Int16Array([-32768]), ["-32768"]],
      ["UINT32", new Uint32Array([4294967295]), ["4294967295"]],
      ["INT32", new Int32Array([-2147483648]), ["-2147483648"]],
      [
        "FP32",
        new Float32Array([0.1, -1.5, 1e-45, 3.4028234663852886e38, 16777217]),
        ["0.1", "-1.5", "1e-45", "3.4028235e+38", "16777216"],
      ],
      ["FP64", new Float64Array([0.1, 1e300, -0]), ["0.1", "1e+300", "0"]],
      ["FP16", new Uint16Array([0x3c00, 0x2e66, 0x7bff, 0xc000, 0x0001, 0x3555]), ["1", "0.1", "65504", "-2", "6e-8", "0.3333"]],
    ];
    for (const [datatype, values, expected] of cases) {
      const raw = bytesOf(values);
      const items = binaryItems(
        { inputs: [{ name: "features.json", shape: [expected.length], datatype, parameters: { binary_data_size: raw.length } }] },
        raw,
      );
      assert.deepEqual(column(items, "features.json"), expected, datatype);
    }
  });

  test("FP32 from binary: the shortest text that reads back to the same float32", () => {
    const values = new Float32Array(3000);
    const bits = new Uint32Array(values.buffer);
    let seed = 1;
    for (let i = 0; i < bits.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bits[i] = seed & 0xbfffffff; // clear the top exponent bit: finite values
    }
    const raw = bytesOf(values);
    const items = binaryItems(
      { inputs: [{ name: "features.json", shape: [values.length], datatype: "FP32", parameters: { binary_data_size: raw.length } }] },
      raw,
    );
    column(items, "features.json").forEach((text, i) => {
      const value = values[i] as number;
      assert.equal(Math.fround(Number(text)), value, `${text} for ${value}`);
      const digits = (s: string) => s.replace(/^-|e.*$|\./g, "").replace(/^0+/, "").length;
      for (let p = 1; p < digits(text); p++)
        assert.notEqual(Math.fround(Number(value.toPrecision(p))), value, `${text} is not the shortest for ${value}`);
    });
  });

  test("FP16 from binary: every finite value reads back to itself", () => {
    const half = (h: number) => {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
      return h & 0x8000 ? -v : v;
    };
    const codes: number[] = [];
    for (let h = 0; h < 0x10000; h++) if (((h >> 10) & 0x1f) !== 31) codes.push(h);
    const raw = bytesOf(new Uint16Array(codes));
    const items = binaryItems(
      { inputs: [{ name: "features.json", shape: [codes.length], datatype: "FP16", parameters: { binary_data_size: raw.length } }] },
      raw,
    );
    column(items, "features.json").forEach((text, i) => {
      const h = codes[i] as number;
      const value = half(h);
      const read = Number(text);
      const m = h & 0x3ff;
      // Strictly nearer to this half than to its neighbours (same sign), or a tie resolved to an even mantissa.
      for (const neighbour of [h - 1, h + 1]) {
        if ((neighbour & 0x7c00) === 0x7c00 || (neighbour & 0x8000) !== (h & 0x8000) || neighbour < 0) continue;
        const near = Math.abs(read - value);
        const far = Math.abs(read - half(neighbour));
        assert.ok(near < far || (near === far && m % 2 === 0), `${text} for half 0x${h.toString(16)} (${value})`);
      }
    });
  });

  test("FP16 data in JSON on the binary path: KServe's 'Receiving' wording", () => {
    assert.throws(
      () => binaryItems({ inputs: [{ name: "features.json", shape: [1], datatype: "FP16", data: [1] }] }),
      invalid("Receiving FP16 data via JSON is not supported. Please use the binary data format for input features.json"),
    );
  });

  test("an input with neither data nor binary_data_size: KServe's text", () => {
    assert.throws(
      () => binaryItems({ inputs: [{ name: "text", shape: [1], datatype: "BYTES" }] }),
      invalid("'data' field is missing for input 'text' for model 'm'"),
    );
  });

  test("size mismatches are clear errors", () => {
    const header = (size: unknown, datatype = "FP32", shape = [1, 2]) => ({
      inputs: [{ name: "features.json", shape, datatype, parameters: { binary_data_size: size } }],
    });
    const eight = new Uint8Array(8);
    assert.throws(
      () => binaryItems(header(16), eight),
      invalid(/^input 'features\.json' has binary_data_size 16, but only 8 bytes of binary data remain/),
    );
    assert.throws(() => binaryItems(header(4), eight), invalid(/^the body has 4 bytes after the JSON header and the binary inputs/));
    assert.throws(
      () => binaryItems(header(6), new Uint8Array(6)),
      invalid("input 'features.json' has binary_data_size 6, which is not a multiple of 4 bytes per FP32 value"),
    );
    assert.throws(
      () => binaryItems(header(8, "FP32", [1, 3]), eight),
      invalid("input 'features.json' has 2 values but shape [1,3] needs 3"),
    );
    assert.throws(() => binaryItems(header(-1), eight), invalid(/binary_data_size -1; it must be a whole number of bytes/));
    assert.throws(() => binaryItems(header("8"), eight), invalid(/binary_data_size "8"; it must be a whole number of bytes/));
    const truncated = lengthPrefixed("abc").subarray(0, 6);
    assert.throws(
      () => binaryItems({ inputs: [{ name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: 6 } }] }, truncated),
      invalid("input 'text' BYTES data is cut short: element 0 declares 3 bytes but 2 remain"),
    );
    assert.throws(
      () =>
        binaryItems({ inputs: [{ name: "text", shape: [1], datatype: "BYTES", parameters: { binary_data_size: 2 } }] }, new Uint8Array(2)),
      invalid("input 'text' BYTES data is cut short: element 0 needs a 4-byte length but 2 bytes remain"),
    );
    assert.throws(
      () =>
        binaryItems(
          { inputs: [{ name: "features.json", shape: [1], datatype: "FP32", data: [1], parameters: { binary_data_size: 4 } }] },
          new Uint8Array(4),
        ),
      invalid(/has both 'data' and parameters\.binary_data_size/),
    );
  });

  test("non-finite floats cannot become JSON", () => {
    const raw = bytesOf(new Float32Array([Number.NaN]));
    assert.throws(
      () => binaryItems({ inputs: [{ name: "features.json", shape: [1], datatype: "FP32", parameters: { binary_data_size: 4 } }] }, raw),
      invalid("input 'features.json' is FP32, but element 0 is NaN, which JSON cannot carry"),
    );
  });

  test("a bad header length or header", () => {
    const { body, headerLength } = binaryBody({ inputs: [] });
    assert.deepEqual(decodeBinaryBody(body, headerLength).request, { inputs: [] });
    assert.throws(
      () => decodeBinaryBody(body, body.length + 1),
      invalid(`inference-header-content-length is ${body.length + 1}, but the body has only ${body.length} bytes`),
    );
    assert.throws(() => decodeBinaryBody(body, 1.5), invalid(/must be a whole number of bytes/));
    assert.throws(
      () => decodeBinaryBody(body, headerLength - 1),
      invalid(/^Unrecognized request format: unexpected end of data: line 1 column \d+ \(char \d+\)$/),
    );
    assert.throws(
      () => decodeBinaryBody(body, 0),
      invalid("Unrecognized request format: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
    );
    assert.throws(() => decodeBinaryBody(new Uint8Array([0xff, 0xfe]), 2), invalid(/^Unrecognized request format: .*not valid UTF-8/));
    const schema = binaryBody({ inputs: [{ name: 1 }] });
    assert.throws(() => decodeBinaryBody(schema.body, schema.headerLength), V2ValidationError);
  });

  test("INT64 in the JSON header data keeps its exact value", () => {
    const text = '{"inputs":[{"name":"features.json","shape":[1],"datatype":"INT64","data":[9007199254740993]}]}';
    const body = encode(text);
    const { request, binary } = decodeBinaryBody(body, body.length);
    assert.deepEqual(column(requestToItems(request, binary, metadata, "m"), "features.json"), ["9007199254740993"]);
  });
});

describe("outputsToResponse", () => {
  const results = [
    { "results.json": encode('{"label":1}'), "summary.txt": encode("one"), "mask.bin": new Uint8Array([1, 2]) },
    { "results.json": encode('{"label":2}'), "summary.txt": encode("twö"), "mask.bin": new Uint8Array([]) },
  ];
  const base = { modelName: "m", outputs: metadata.outputs, results };

  test("JSON: BYTES outputs of shape [N] with KServe's key order and nulls", () => {
    const response = outputsToResponse({ ...base, id: "42" });
    assert.equal(response.binary, false);
    assert.equal(
      response.body,
      '{"model_name":"m","model_version":null,"id":"42","parameters":null,"outputs":[' +
        '{"name":"results.json","shape":[2],"datatype":"BYTES","parameters":null,"data":["{\\"label\\":1}","{\\"label\\":2}"]},' +
        '{"name":"summary.txt","shape":[2],"datatype":"BYTES","parameters":null,"data":["one","twö"]},' +
        '{"name":"mask.bin","shape":[2],"datatype":"BYTES","parameters":null,"data":["\\u0001\\u0002",""]}]}',
    );
    assert.deepEqual(JSON.parse(response.body), response.response);
  });

  test("an id is generated when the request has none", () => {
    const { response } = outputsToResponse(base);
    assert.match(response.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(outputsToResponse(base).response.id, response.id);
  });

  test("requested outputs: only those, in request order; an unknown one is KServe's 400", () => {
    const response = outputsToResponse({ ...base, requested: [{ name: "summary.txt" }, { name: "results.json" }] });
    assert.deepEqual(
      response.response.outputs.map((o) => o.name),
      ["summary.txt", "results.json"],
    );
    assert.deepEqual(
      outputsToResponse({ ...base, requested: [] }).response.outputs.map((o) => o.name),
      ["results.json", "summary.txt", "mask.bin"],
    );
    assert.throws(
      () => outputsToResponse({ ...base, modelName: "echo", requested: [{ name: "zzz" }] }),
      invalid("Unexpected inference output 'zzz' for model 'echo'"),
    );
    assert.throws(
      () => planOutputs(metadata.outputs, [{ name: "zzz" }], undefined, "echo"),
      invalid("Unexpected inference output 'zzz' for model 'echo'"),
    );
    assert.throws(
      () => planOutputs(metadata.outputs, [{ name: "mask.bin" }, { name: "mask.bin" }], undefined, "m"),
      invalid("output 'mask.bin' is requested more than once"),
    );
  });

  test("an output that is not UTF-8 cannot be a JSON string; it can be binary", () => {
    const bad = [{ "results.json": new Uint8Array([0xff]), "summary.txt": encode(""), "mask.bin": new Uint8Array([0xff]) }];
    assert.throws(
      () => outputsToResponse({ ...base, results: bad, requested: [{ name: "mask.bin" }] }),
      invalid(/^output 'mask\.bin' of item 0 is not UTF-8 text, so it cannot travel as a JSON string; ask for it as binary data/),
    );
    const ok = outputsToResponse({ ...base, results: bad, requested: [{ name: "mask.bin", parameters: { binary_data: true } }] });
    assert.equal(ok.binary, true);
  });

  test("an item without a selected output is an internal error", () => {
    assert.throws(
      () => outputsToResponse({ ...base, results: [{ "results.json": encode("{}") }] }),
      isChassis(Code.INTERNAL, "item 0 has no output 'summary.txt' (it has 'results.json'), so the v2 response cannot be built"),
    );
    assert.throws(() => outputsToResponse({ ...base, results: [{}] }), isChassis(Code.INTERNAL, /it has none/));
  });

  test("binary: header with binary_data_size, then length-prefixed elements, and the header's byte length", () => {
    const response = outputsToResponse({ ...base, id: "7", parameters: { binary_data_output: true } });
    assert.equal(response.binary, true);
    if (!response.binary) return;
    const sizes = [4 + 11 + 4 + 11, 4 + 3 + 4 + 4, 4 + 2 + 4 + 0];
    assert.equal(
      response.header,
      '{"id":"7","model_name":"m","model_version":null,"outputs":[' +
        `{"name":"results.json","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":${sizes[0]}}},` +
        `{"name":"summary.txt","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":${sizes[1]}}},` +
        `{"name":"mask.bin","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":${sizes[2]}}}]}`,
    );
    assert.equal(response.headerLength, Buffer.byteLength(response.header));
    const expected = Buffer.concat([
      Buffer.from(response.header),
      lengthPrefixed('{"label":1}', '{"label":2}'),
      lengthPrefixed("one", "twö"),
      lengthPrefixed(new Uint8Array([1, 2]), new Uint8Array([])),
    ]);
    assert.deepEqual(Buffer.from(response.body), expected);
    assert.equal(response.body.length, response.headerLength + sizes.reduce((a, b) => a + b, 0));
  });

  test("the header length counts UTF-8 bytes, not characters", () => {
    const response = outputsToResponse({ ...base, modelName: "modèle", id: "é", parameters: { binary_data_output: "true" } });
    assert.ok(response.binary);
    if (!response.binary) return;
    assert.equal(response.headerLength, response.header.length + 2);
    assert.equal(decode(response.body.subarray(0, response.headerLength)), response.header);
  });

  test("per-output binary_data overrides the global flag; non-binary outputs keep JSON data in the header", () => {
    const mixed = outputsToResponse({
      ...base,
      id: "1",
      parameters: { binary_data_output: true },
      requested: [{ name: "summary.txt", parameters: { binary_data: false } }, { name: "mask.bin" }],
    });
    assert.ok(mixed.binary);
    if (!mixed.binary) return;
    assert.equal(
      mixed.header,
      '{"id":"1","model_name":"m","model_version":null,"outputs":[' +
        '{"name":"summary.txt","shape":[2],"datatype":"BYTES","data":["one","twö"]},' +
        '{"name":"mask.bin","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}]}',
    );
    assert.deepEqual(
      Buffer.from(mixed.body.subarray(mixed.headerLength)),
      Buffer.from(lengthPrefixed(new Uint8Array([1, 2]), new Uint8Array([]))),
    );

    const onlyOne = planOutputs(
      metadata.outputs,
      [{ name: "mask.bin", parameters: { binary_data: true } }, { name: "summary.txt" }],
      undefined,
      "m",
    );
    assert.deepEqual(onlyOne, [
      { key: "mask.bin", binary: true },
      { key: "summary.txt", binary: false },
    ]);
    const allOff = outputsToResponse({
      ...base,
      parameters: { binary_data_output: true },
      requested: [{ name: "summary.txt", parameters: { binary_data: false } }],
    });
    assert.equal(allOff.binary, false, "no binary output: an ordinary JSON response");
  });

  test("truthiness of the flags: true, 'true', 1 on; false, 'false', '0', '', 0 off", () => {
    for (const on of [true, "true", "yes", 1])
      assert.equal(planOutputs(metadata.outputs, undefined, { binary_data_output: on }, "m")[0]?.binary, true, String(on));
    for (const off of [false, "false", "FALSE", "0", "", 0])
      assert.equal(planOutputs(metadata.outputs, undefined, { binary_data_output: off }, "m")[0]?.binary, false, String(off));
  });

  test("zero items give empty tensors", () => {
    const { response } = outputsToResponse({ ...base, results: [], id: "x" });
    assert.deepEqual(response.outputs[0], { name: "results.json", shape: [0], datatype: "BYTES", parameters: null, data: [] });
  });
});

describe("modelMetadataV2", () => {
  test("every input and output as a BYTES tensor of shape [-1]", () => {
    assert.deepEqual(modelMetadataV2(metadata, "m"), {
      name: "m",
      versions: null,
      platform: "chassis-ts",
      inputs: [
        { name: "text", datatype: "BYTES", shape: [-1] },
        { name: "features.json", datatype: "BYTES", shape: [-1] },
        { name: "image", datatype: "BYTES", shape: [-1] },
      ],
      outputs: [
        { name: "results.json", datatype: "BYTES", shape: [-1] },
        { name: "summary.txt", datatype: "BYTES", shape: [-1] },
        { name: "mask.bin", datatype: "BYTES", shape: [-1] },
      ],
    });
  });
});

describe("end to end", () => {
  test("a JSON request to items and a response, as the v2 handler will chain them", () => {
    const request: InferenceRequest = validateInferenceRequest(
      parseJson('{"id":"abc","inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["hi"]}],"outputs":[{"name":"summary.txt"}]}'),
    );
    planOutputs(metadata.outputs, request.outputs, request.parameters, "m");
    const items = requestToItems(request, undefined, metadata, "m");
    const results = items.map((item) => ({ "summary.txt": encode(decode(item.text as Uint8Array).toUpperCase()) }));
    const response = outputsToResponse({
      modelName: "m",
      id: request.id,
      outputs: metadata.outputs,
      requested: request.outputs,
      parameters: request.parameters,
      results,
    });
    assert.equal(
      response.body,
      '{"model_name":"m","model_version":null,"id":"abc","parameters":null,"outputs":[{"name":"summary.txt","shape":[1],"datatype":"BYTES","parameters":null,"data":["HI"]}]}',
    );
  });
});

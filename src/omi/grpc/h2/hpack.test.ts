/**
 * @module omi/grpc/h2/hpack.test
 * The HPACK codec against RFC 7541's own examples (Appendix C, hex copied from
 * the RFC), every octet through the Huffman decoder, each malformed input the
 * decoder must refuse, the header list limit, and encoder round trips.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom as random } from "../../../../test/helpers/random.js";
import {
  encodeHeaderBlock,
  HeaderListTooLarge,
  HpackDecoder,
  HpackError,
  ResponseEncoder,
  SharedHeaderBlock,
  tableSizeUpdate,
} from "./hpack.js";
import { decodeHuffman, HUFFMAN_CODE_LENGTHS, HUFFMAN_CODES } from "./huffman.js";

type Field = [string, string];

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ""), "hex");
}

function decodeAll(decoder: HpackDecoder, block: Uint8Array, maxListBytes = Number.MAX_SAFE_INTEGER): Field[] {
  const fields: Field[] = [];
  decoder.decode(block, 0, block.length, (name, value) => fields.push([name, value]), maxListBytes);
  return fields;
}

/** Test-only Huffman encoder from the same table; `padding` replaces the usual all-ones padding to the next octet. */
function huffman(octets: Uint8Array | string, padding?: string): Buffer {
  const bytes = typeof octets === "string" ? Buffer.from(octets, "latin1") : octets;
  let bits = "";
  for (const octet of bytes) bits += (HUFFMAN_CODES[octet] as number).toString(2).padStart(HUFFMAN_CODE_LENGTHS[octet] as number, "0");
  bits += padding ?? "1".repeat((8 - (bits.length % 8)) % 8);
  assert.equal(bits.length % 8, 0, "the test's padding must end on an octet");
  const out = Buffer.alloc(bits.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(bits.slice(8 * i, 8 * i + 8), 2);
  return out;
}

const REQUEST_1: Field[] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQUEST_2: Field[] = [...REQUEST_1, ["cache-control", "no-cache"]];
const REQUEST_3: Field[] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const TABLE_AFTER_REQUEST_1: Field[] = [[":authority", "www.example.com"]];
const TABLE_AFTER_REQUEST_2: Field[] = [["cache-control", "no-cache"], ...TABLE_AFTER_REQUEST_1];
const TABLE_AFTER_REQUEST_3: Field[] = [["custom-key", "custom-value"], ...TABLE_AFTER_REQUEST_2];

const RESPONSE_1: Field[] = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
  ["location", "https://www.example.com"],
];
const RESPONSE_2: Field[] = [[":status", "307"], ...RESPONSE_1.slice(1)];
const SET_COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSE_3: Field[] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ["location", "https://www.example.com"],
  ["content-encoding", "gzip"],
  ["set-cookie", SET_COOKIE],
];
const TABLE_AFTER_RESPONSE_1: Field[] = [
  ["location", "https://www.example.com"],
  ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
  ["cache-control", "private"],
  [":status", "302"],
];
const TABLE_AFTER_RESPONSE_2: Field[] = [[":status", "307"], ...TABLE_AFTER_RESPONSE_1.slice(0, 3)];
const TABLE_AFTER_RESPONSE_3: Field[] = [
  ["set-cookie", SET_COOKIE],
  ["content-encoding", "gzip"],
  ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
];

interface Step {
  readonly block: string;
  readonly fields: Field[];
  readonly table: Field[];
  readonly tableSize: number;
}

function runSequence(steps: readonly Step[], maxTableSize?: number): void {
  const decoder = new HpackDecoder(maxTableSize);
  for (const step of steps) {
    assert.deepEqual(decodeAll(decoder, hex(step.block)), step.fields);
    assert.deepEqual(decoder.tableEntries(), step.table);
    assert.equal(decoder.tableSize, step.tableSize);
  }
}

describe("RFC 7541 Appendix C", () => {
  it("C.2.1 literal header field with indexing", () => {
    const decoder = new HpackDecoder();
    const block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert.deepEqual(decodeAll(decoder, block), [["custom-key", "custom-header"]]);
    assert.deepEqual(decoder.tableEntries(), [["custom-key", "custom-header"]]);
    assert.equal(decoder.tableSize, 55);
  });

  it("C.2.2 literal header field without indexing", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decodeAll(decoder, hex("040c 2f73 616d 706c 652f 7061 7468")), [[":path", "/sample/path"]]);
    assert.deepEqual(decoder.tableEntries(), []);
    assert.equal(decoder.tableSize, 0);
  });

  it("C.2.3 literal header field never indexed", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decodeAll(decoder, hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), [["password", "secret"]]);
    assert.deepEqual(decoder.tableEntries(), []);
  });

  it("C.2.4 indexed header field", () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decodeAll(decoder, hex("82")), [[":method", "GET"]]);
    assert.deepEqual(decoder.tableEntries(), []);
  });

  it("C.3 requests without Huffman coding, one decoder", () => {
    runSequence([
      {
        block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        fields: REQUEST_1,
        table: TABLE_AFTER_REQUEST_1,
        tableSize: 57,
      },
      { block: "8286 84be 5808 6e6f 2d63 6163 6865", fields: REQUEST_2, table: TABLE_AFTER_REQUEST_2, tableSize: 110 },
      {
        block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        fields: REQUEST_3,
        table: TABLE_AFTER_REQUEST_3,
        tableSize: 164,
      },
    ]);
  });

  it("C.4 requests with Huffman coding, one decoder", () => {
    runSequence([
      { block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", fields: REQUEST_1, table: TABLE_AFTER_REQUEST_1, tableSize: 57 },
      { block: "8286 84be 5886 a8eb 1064 9cbf", fields: REQUEST_2, table: TABLE_AFTER_REQUEST_2, tableSize: 110 },
      {
        block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        fields: REQUEST_3,
        table: TABLE_AFTER_REQUEST_3,
        tableSize: 164,
      },
    ]);
  });

  it("C.5 responses without Huffman coding, 256-octet table with evictions", () => {
    runSequence(
      [
        {
          block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                  2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                  6c65 2e63 6f6d`,
          fields: RESPONSE_1,
          table: TABLE_AFTER_RESPONSE_1,
          tableSize: 222,
        },
        { block: "4803 3330 37c1 c0bf", fields: RESPONSE_2, table: TABLE_AFTER_RESPONSE_2, tableSize: 222 },
        {
          block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                  54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                  5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                  3d31`,
          fields: RESPONSE_3,
          table: TABLE_AFTER_RESPONSE_3,
          tableSize: 215,
        },
      ],
      256,
    );
  });

  it("C.6 responses with Huffman coding, 256-octet table with evictions", () => {
    runSequence(
      [
        {
          block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                  2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
          fields: RESPONSE_1,
          table: TABLE_AFTER_RESPONSE_1,
          tableSize: 222,
        },
        { block: "4883 640e ffc1 c0bf", fields: RESPONSE_2, table: TABLE_AFTER_RESPONSE_2, tableSize: 222 },
        {
          block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                  77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                  9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
          fields: RESPONSE_3,
          table: TABLE_AFTER_RESPONSE_3,
          tableSize: 215,
        },
      ],
      256,
    );
  });

  it("decodes from the middle of a buffer and from a plain Uint8Array", () => {
    const block = hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
    const framed = new Uint8Array(block.length + 10).fill(0xff);
    framed.set(block, 4);
    const fields: Field[] = [];
    new HpackDecoder().decode(framed, 4, 4 + block.length, (name, value) => fields.push([name, value]), 1 << 20);
    assert.deepEqual(fields, REQUEST_1);
  });
});

describe("Huffman decoding", () => {
  it("decodes every single octet 0..255", () => {
    for (let octet = 0; octet < 256; octet++) {
      const coded = huffman(Uint8Array.of(octet));
      assert.equal(decodeHuffman(coded, 0, coded.length), String.fromCharCode(octet), `octet ${octet}`);
    }
  });

  it("decodes the empty string and random strings", () => {
    assert.equal(decodeHuffman(new Uint8Array(0), 0, 0), "");
    const next = random(7541);
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(next() * (round % 10 === 0 ? 2000 : 60));
      // Mostly header-like text, sometimes any octet.
      const octets = Buffer.alloc(length);
      for (let i = 0; i < length; i++) octets[i] = round % 3 === 0 ? Math.floor(next() * 256) : 32 + Math.floor(next() * 95);
      const coded = huffman(octets);
      const framed = Buffer.concat([Buffer.from([0x00, 0x00]), coded, Buffer.from([0x00])]);
      assert.equal(decodeHuffman(framed, 2, 2 + coded.length), octets.toString("latin1"));
    }
  });

  it("accepts padding of 0 to 7 ones", () => {
    // "0" is 00000 (5 bits): 8 zeros' codes take 40 bits, so 0..7 bits of padding are all reachable with n symbols.
    for (let symbols = 0; symbols < 8; symbols++) {
      const coded = huffman("0".repeat(symbols));
      assert.equal(decodeHuffman(coded, 0, coded.length), "0".repeat(symbols));
    }
  });

  it("rejects the EOS symbol", () => {
    const eos = (HUFFMAN_CODES[256] as number).toString(2);
    for (const coded of [huffman("a", `${eos}11111`), huffman("", `${eos}11`), huffman("", `${eos}11${"0".repeat(8)}`)]) {
      assert.throws(() => decodeHuffman(coded, 0, coded.length), { name: "HpackError", message: /EOS/ });
    }
  });

  it("rejects padding longer than 7 bits", () => {
    for (const coded of [Buffer.from([0xff]), huffman("a", "1".repeat(11)), huffman("ab", "1".repeat(13))]) {
      assert.throws(() => decodeHuffman(coded, 0, coded.length), { name: "HpackError", message: /padding/ });
    }
  });

  it("rejects padding that is not all ones", () => {
    for (const padding of ["000", "011", "101", "110"]) {
      const coded = huffman("a", padding); // "a" is 00011: 5 bits, then 3 of padding
      assert.throws(() => decodeHuffman(coded, 0, coded.length), { name: "HpackError", message: /padding/ }, padding);
    }
  });
});

describe("HpackDecoder refuses malformed blocks", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["index 0", "80", /index 0/],
    ["index past the static table with an empty dynamic table", "be", /past the end/],
    ["index past the tables, multi-octet", "ff 80 01", /past the end/],
    ["literal name index past the tables", "7e 01 61", /past the end/],
    ["integer above 2^31 - 1", "ff ff ff ff ff 0f", /2\^31/],
    ["integer with too many continuation octets", "ff 80 80 80 80 80 00", /continuation/],
    ["integer cut by the block end", "ff 80", /past the end/],
    ["string longer than the block", "40 05 61 62", /past the end/],
    ["value missing at the block end", "40 01 61", /past the end/],
    ["string length cut by the block end", "04 7f", /past the end/],
    ["Huffman value with EOS", `04 84 ${huffman("", `${(HUFFMAN_CODES[256] as number).toString(2)}11`).toString("hex")}`, /EOS/],
    ["Huffman value with more than 7 bits of padding", "04 81 ff", /padding/],
    ["Huffman value with zero padding", `04 81 ${huffman("a", "000").toString("hex")}`, /padding/],
    ["size update above the limit we advertised", "3f e2 1f", /larger than the 4096/],
    ["size update after a field", "82 20", /after a header field/],
  ];
  for (const [title, block, message] of cases) {
    it(title, () => {
      assert.throws(
        () => decodeAll(new HpackDecoder(), hex(block)),
        (error: unknown) => {
          assert.ok(error instanceof HpackError, String(error));
          assert.equal(error.name, "HpackError");
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it("takes size updates at the start of a block, evicting what no longer fits", () => {
    const decoder = new HpackDecoder(4096);
    decodeAll(decoder, hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")); // 55 octets
    assert.equal(decoder.tableSize, 55);
    // Two updates (to 0, then to 4096: 31 + 97 + 31 * 128) before the first field, as RFC 7541 4.2 allows.
    assert.deepEqual(decodeAll(decoder, hex("20 3f e1 1f 82")), [[":method", "GET"]]);
    assert.equal(decoder.tableSize, 0);
    assert.throws(() => decodeAll(decoder, hex("be")), HpackError);
  });

  it("empties the table for an entry larger than it, and keeps the new limit", () => {
    const decoder = new HpackDecoder(4096);
    decodeAll(decoder, hex("3f 19")); // size update to 31 + 25 = 56
    decodeAll(decoder, hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")); // 55 octets: fits
    assert.equal(decoder.tableSize, 55);
    decodeAll(decoder, hex("4001 6103 6263 64")); // a: bcd, 36 octets: evicts the first
    assert.deepEqual(decoder.tableEntries(), [["a", "bcd"]]);
    // 57 octets > 56: the table is emptied and the entry is not added, but the field is still decoded.
    assert.deepEqual(decodeAll(decoder, hex("41 0f 7777 772e 6578 616d 706c 652e 636f 6d")), [[":authority", "www.example.com"]]);
    assert.deepEqual(decoder.tableEntries(), []);
    assert.equal(decoder.tableSize, 0);
  });

  it("keeps a dynamic table that wraps and grows in step with a simple model", () => {
    const next = random(42);
    const decoder = new HpackDecoder(4096);
    let model: Field[] = []; // newest first
    const modelSize = () => model.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);
    for (let round = 0; round < 3000; round++) {
      const name = `x-${Math.floor(next() * 1000)}`;
      const value = "v".repeat(Math.floor(next() * (round % 50 === 0 ? 5000 : 200)));
      const block = Buffer.concat([Buffer.from([0x40]), literal(name), literal(value)]);
      assert.deepEqual(decodeAll(decoder, block), [[name, value]]);
      model.unshift([name, value]);
      while (modelSize() > 4096) model.pop();
      const index = 62 + Math.floor(next() * model.length);
      if (model.length > 0) assert.deepEqual(decodeAll(decoder, integerBlock(0x80, 7, index)), [model[index - 62]]);
      if (round % 500 === 499) {
        assert.deepEqual(decoder.tableEntries(), model);
        assert.equal(decoder.tableSize, modelSize());
      }
      if (round === 1000) {
        decodeAll(decoder, hex("20 3f e1 1f")); // an encoder that empties the table and lets it grow back
        model = [];
      }
    }
  });
});

function literal(text: string): Buffer {
  return Buffer.concat([integerBlock(0x00, 7, text.length), Buffer.from(text, "latin1")]);
}

function integerBlock(flags: number, prefixBits: number, value: number): Buffer {
  const prefixMax = (1 << prefixBits) - 1;
  if (value < prefixMax) return Buffer.from([flags | value]);
  const octets = [flags | prefixMax];
  for (value -= prefixMax; value >= 128; value = Math.floor(value / 128)) octets.push((value % 128) | 0x80);
  octets.push(value);
  return Buffer.from(octets);
}

describe("header list size limit", () => {
  it("throws HeaderListTooLarge after the whole block, with the table in sync", () => {
    const decoder = new HpackDecoder();
    // :method GET (42), then custom-key: custom-header added to the table (55), then :path / (38).
    const block = hex("82 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572 84");
    const seen: Field[] = [];
    assert.throws(
      () => decoder.decode(block, 0, block.length, (name, value) => seen.push([name, value]), 60),
      (error: unknown) => {
        assert.ok(error instanceof HeaderListTooLarge);
        assert.equal(error.name, "HeaderListTooLarge");
        assert.equal(error.listBytes, 42 + 55 + 38);
        assert.equal(error.maxListBytes, 60);
        return true;
      },
    );
    assert.deepEqual(seen, [[":method", "GET"]], "no field past the limit is handed over");
    assert.deepEqual(decoder.tableEntries(), [["custom-key", "custom-header"]]);
    // The next block refers to the entry the refused block added.
    assert.deepEqual(decodeAll(decoder, hex("be"), 60), [["custom-key", "custom-header"]]);
  });

  it("accepts a list exactly at the limit", () => {
    assert.deepEqual(decodeAll(new HpackDecoder(), hex("82 84"), 42 + 38), [
      [":method", "GET"],
      [":path", "/"],
    ]);
  });
});

describe("encodeHeaderBlock", () => {
  it("indexes a static name and value: :status 200 is 0x88", () => {
    assert.deepEqual([...encodeHeaderBlock([[":status", "200"]])], [0x88]);
  });

  it("uses the static name index of content-type (31) in a literal without indexing", () => {
    const block = encodeHeaderBlock([["content-type", "application/grpc"]]);
    // 0000 1111 then 31 - 15 = 16: literal without indexing, name index 31; then the raw value.
    assert.deepEqual([...block.subarray(0, 3)], [0x0f, 0x10, 16]);
    assert.equal(block.subarray(3).toString("latin1"), "application/grpc");
  });

  it("writes a name absent from the static table as a literal", () => {
    const block = encodeHeaderBlock([["grpc-status", "0"]]);
    assert.deepEqual([...block], [0x00, 11, ...Buffer.from("grpc-status"), 1, 0x30]);
  });

  it("round-trips through HpackDecoder and leaves its table empty", () => {
    const fields: Field[] = [
      [":status", "200"],
      [":status", "418"],
      ["content-type", "application/grpc"],
      ["accept-encoding", "gzip, deflate"],
      ["accept-encoding", "identity"],
      ["grpc-encoding", "identity"],
      ["grpc-accept-encoding", "identity,deflate,gzip"],
      ["www-authenticate", ""],
      ["x-empty", ""],
      ["grpc-message", `caf\u00e9 ${"%20".repeat(200)}`],
      ["x-long-name-".padEnd(300, "n"), "v".repeat(70_000)],
      ["grpc-status", "0"],
    ];
    const block = encodeHeaderBlock(fields);
    const decoder = new HpackDecoder();
    assert.deepEqual(decodeAll(decoder, block), fields);
    assert.deepEqual(decoder.tableEntries(), []);
    // The same block decodes the same way again: nothing was indexed.
    assert.deepEqual(decodeAll(decoder, block), fields);
  });

  it("encodes an empty list as an empty block", () => {
    assert.equal(encodeHeaderBlock([]).length, 0);
  });
});

describe("tableSizeUpdate", () => {
  it("is 001 then the size on a 5-bit prefix (RFC 7541 6.3), and a decoder takes it before a block's fields", () => {
    assert.deepEqual([...tableSizeUpdate(0)], [0x20]);
    assert.deepEqual([...tableSizeUpdate(30)], [0x3e]);
    // 1024 = 31 + 993: 0x3f, then 993 in 7-bit groups, low first: 0xe1 0x07.
    assert.deepEqual([...tableSizeUpdate(1024)], [0x3f, 0xe1, 0x07]);
    for (const size of [0, 31, 1024, 4096]) {
      const decoder = new HpackDecoder();
      const block = Buffer.concat([tableSizeUpdate(size), encodeHeaderBlock([[":status", "200"]])]);
      assert.deepEqual(decodeAll(decoder, block), [[":status", "200"]], `size ${size}`);
    }
  });
});

describe("ResponseEncoder", () => {
  const headers = new SharedHeaderBlock([
    [":status", "200"],
    ["content-type", "application/grpc+proto"],
    ["grpc-accept-encoding", "identity,deflate,gzip"],
  ]);
  const trailers = new SharedHeaderBlock([["grpc-status", "0"]]);
  const errorTrailers: Field[] = [
    ["grpc-status", "5"],
    ["grpc-message", "not found"],
  ];

  it("indexes shared fields on first use, then sends one octet each, as a decoder reads them", () => {
    const encoder = new ResponseEncoder();
    const decoder = new HpackDecoder();
    const first = encoder.shared(headers);
    assert.deepEqual(decodeAll(decoder, first), headers.fields);
    assert.deepEqual(decodeAll(decoder, encoder.shared(trailers)), trailers.fields);
    assert.deepEqual(decodeAll(decoder, encoder.plain(encodeHeaderBlock(errorTrailers))), errorTrailers);
    for (let i = 0; i < 3; i++) {
      const again = encoder.shared(headers);
      assert.equal(again.length, 3, ":status 200 from the static table, the two others from the dynamic one");
      assert.deepEqual(decodeAll(decoder, again), headers.fields);
      const ok = encoder.shared(trailers);
      assert.equal(ok.length, 1);
      assert.deepEqual(decodeAll(decoder, ok), trailers.fields);
    }
    assert.ok(first.length > 40, `the first block carried the literals (${first.length} octets)`);
    assert.deepEqual(decoder.tableEntries().sort(), [
      ["content-type", "application/grpc+proto"],
      ["grpc-accept-encoding", "identity,deflate,gzip"],
      ["grpc-status", "0"],
    ]);
  });

  it("signals a lowered table size in the next block; empties the table when what it inserted no longer fits", () => {
    const encoder = new ResponseEncoder();
    const decoder = new HpackDecoder();
    decodeAll(decoder, encoder.shared(headers));
    decodeAll(decoder, encoder.shared(trailers));

    encoder.setPeerTableSize(1000); // still holds the three entries (~200 octets)
    const kept = encoder.shared(headers);
    assert.deepEqual([...kept.subarray(0, 3)], [...tableSizeUpdate(1000)]);
    assert.equal(kept.length, 3 + 3, "the update, then the same three octets");
    assert.deepEqual(decodeAll(decoder, kept), headers.fields);

    encoder.setPeerTableSize(50); // holds none of the response headers' entries
    const shrunk = encoder.shared(trailers);
    assert.deepEqual([...shrunk.subarray(0, 3)], [...tableSizeUpdate(0), ...tableSizeUpdate(50)]);
    assert.deepEqual(decodeAll(decoder, shrunk), trailers.fields);
    assert.deepEqual(decoder.tableEntries(), [["grpc-status", "0"]], "grpc-status: 0 (44 octets) was inserted again");
    for (let i = 0; i < 2; i++) assert.deepEqual(decodeAll(decoder, encoder.shared(headers)), headers.fields);
    assert.equal(encoder.shared(trailers).length, 1);

    encoder.setPeerTableSize(4096); // raising changes nothing: no update, the same encodings
    assert.equal(encoder.shared(trailers).length, 1);

    encoder.setPeerTableSize(0);
    const none = encoder.plain(encodeHeaderBlock(errorTrailers));
    assert.equal(none[0], 0x20, "a plain block carries the update too");
    assert.deepEqual(decodeAll(decoder, none), errorTrailers);
    assert.deepEqual(decoder.tableEntries(), []);
    assert.deepEqual(decodeAll(decoder, encoder.shared(headers)), headers.fields);
    assert.deepEqual(decoder.tableEntries(), [], "nothing is inserted into a table of size 0");
  });

  it("lowered twice between blocks: signals the smallest size, then the final one", () => {
    for (const [first, second, expected] of [
      [100, 50, [0, 50]], // 100 cannot hold the ~200 octets inserted: emptied (0), then 50
      [1000, 500, [500]], // both hold them: one update, to the final size
      [500, 100, [0, 100]],
    ] as const) {
      const encoder = new ResponseEncoder();
      const decoder = new HpackDecoder();
      decodeAll(decoder, encoder.shared(headers));
      decodeAll(decoder, encoder.shared(trailers));
      encoder.setPeerTableSize(first);
      encoder.setPeerTableSize(second);
      const block = encoder.shared(headers);
      const updates = Buffer.concat(expected.map((size) => tableSizeUpdate(size)));
      assert.deepEqual([...block.subarray(0, updates.length)], [...updates], `${first} then ${second}`);
      assert.deepEqual(decodeAll(decoder, block), headers.fields);
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(decodeAll(decoder, encoder.shared(trailers)), trailers.fields);
        assert.deepEqual(decodeAll(decoder, encoder.shared(headers)), headers.fields);
      }
    }
  });

  it("stays in step with a decoder over random blocks and table sizes (5 seeds x 300 blocks)", () => {
    const blocks = [
      headers,
      trailers,
      new SharedHeaderBlock([
        [":status", "200"],
        ["x-model", "digits"],
      ]),
    ];
    for (let seed = 1; seed <= 5; seed++) {
      const next = random(seed);
      const encoder = new ResponseEncoder();
      const decoder = new HpackDecoder();
      for (let i = 0; i < 300; i++) {
        const pick = next();
        if (pick < 0.08)
          encoder.setPeerTableSize(Math.floor(next() * 300)); // sometimes twice or more between blocks
        else if (pick < 0.2) assert.deepEqual(decodeAll(decoder, encoder.plain(encodeHeaderBlock(errorTrailers))), errorTrailers);
        else {
          const block = blocks[Math.floor(next() * blocks.length)] as SharedHeaderBlock;
          assert.deepEqual(decodeAll(decoder, encoder.shared(block)), block.fields, `seed ${seed}, block ${i}`);
        }
      }
    }
  });
});

/**
 * A minimal ONNX writer: a hand-written protobuf wire encoder for the few ONNX
 * messages a small feed-forward graph needs (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
 * OperatorSetIdProto). No dependencies.
 *
 * Field numbers follow onnx/onnx.proto (proto2, package onnx):
 *   ModelProto          ir_version=1 (int64), producer_name=2, producer_version=3,
 *                       doc_string=6, graph=7, opset_import=8
 *   OperatorSetIdProto  domain=1, version=2 (int64)
 *   GraphProto          node=1, name=2, initializer=5, doc_string=10, input=11, output=12
 *   NodeProto           input=1, output=2, name=3, op_type=4, attribute=5, doc_string=6
 *   AttributeProto      name=1, f=2 (float), i=3 (int64), type=20 (FLOAT=1, INT=2)
 *   TensorProto         dims=1 (int64), data_type=2 (FLOAT=1), name=8, raw_data=9
 *   ValueInfoProto      name=1, type=2
 *   TypeProto           tensor_type=1;  TypeProto.Tensor elem_type=1, shape=2
 *   TensorShapeProto    dim=1;  Dimension dim_value=1, dim_param=2
 *
 * Fields are written in field-number order, as protobuf's own serializers do,
 * and `TensorProto.dims` is written unpacked (one tag per value), which is the
 * proto2 default for `repeated int64 dims = 1` and what the onnx Python
 * package emits. The output is a pure function of the input, so the same model
 * always encodes to the same bytes.
 */

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2 } as const;

export interface TensorSpec {
  name: string;
  dims: readonly number[];
  /** Row-major values; stored as little-endian IEEE 754 float32 in raw_data. */
  data: Float32Array;
}

export type AttributeSpec = { name: string; int: number } | { name: string; float: number };

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: readonly AttributeSpec[];
  docString?: string;
}

export interface ValueInfoSpec {
  name: string;
  elemType: DataType;
  /** One entry per dimension: a number is a fixed size, a string a symbolic one (e.g. "N"). */
  shape: ReadonlyArray<number | string>;
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
  docString?: string;
}

export interface ModelSpec {
  irVersion: number;
  opsetImports: ReadonlyArray<{ domain?: string; version: number }>;
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: GraphSpec;
}

/** Serializes a model to ONNX (protobuf) bytes. */
export function encodeModel(model: ModelSpec): Uint8Array {
  const w = new Writer();
  w.int64(1, model.irVersion);
  w.string(2, model.producerName);
  if (model.producerVersion !== undefined) w.string(3, model.producerVersion);
  if (model.docString !== undefined) w.string(6, model.docString);
  w.message(7, encodeGraph(model.graph));
  for (const opset of model.opsetImports) {
    const o = new Writer();
    o.string(1, opset.domain ?? "");
    o.int64(2, opset.version);
    w.message(8, o.finish());
  }
  return w.finish();
}

function encodeGraph(graph: GraphSpec): Uint8Array {
  const w = new Writer();
  for (const node of graph.nodes) w.message(1, encodeNode(node));
  w.string(2, graph.name);
  for (const tensor of graph.initializers) w.message(5, encodeTensor(tensor));
  if (graph.docString !== undefined) w.string(10, graph.docString);
  for (const input of graph.inputs) w.message(11, encodeValueInfo(input));
  for (const output of graph.outputs) w.message(12, encodeValueInfo(output));
  return w.finish();
}

function encodeNode(node: NodeSpec): Uint8Array {
  const w = new Writer();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  if (node.name !== undefined) w.string(3, node.name);
  w.string(4, node.opType);
  for (const attribute of node.attributes ?? []) {
    const a = new Writer();
    a.string(1, attribute.name);
    if ("int" in attribute) {
      a.int64(3, attribute.int);
      a.int64(20, AttributeType.INT);
    } else {
      a.float32(2, attribute.float);
      a.int64(20, AttributeType.FLOAT);
    }
    w.message(5, a.finish());
  }
  if (node.docString !== undefined) w.string(6, node.docString);
  return w.finish();
}

function encodeTensor(tensor: TensorSpec): Uint8Array {
  const count = tensor.dims.reduce((product, dim) => product * dim, 1);
  if (count !== tensor.data.length) {
    throw new Error(`tensor "${tensor.name}": dims [${tensor.dims.join(", ")}] hold ${count} values but data has ${tensor.data.length}`);
  }
  const raw = new Uint8Array(tensor.data.length * 4);
  const view = new DataView(raw.buffer);
  tensor.data.forEach((value, i) => {
    if (!Number.isFinite(value)) throw new Error(`tensor "${tensor.name}": value ${i} is ${value}`);
    view.setFloat32(i * 4, value, true);
  });
  const w = new Writer();
  for (const dim of tensor.dims) w.int64(1, dim);
  w.int64(2, DataType.FLOAT);
  w.string(8, tensor.name);
  w.bytes(9, raw);
  return w.finish();
}

function encodeValueInfo(info: ValueInfoSpec): Uint8Array {
  const shape = new Writer();
  for (const dim of info.shape) {
    const d = new Writer();
    if (typeof dim === "number") d.int64(1, dim);
    else d.string(2, dim);
    shape.message(1, d.finish());
  }
  const tensorType = new Writer();
  tensorType.int64(1, info.elemType);
  tensorType.message(2, shape.finish());
  const type = new Writer();
  type.message(1, tensorType.finish());
  const w = new Writer();
  w.string(1, info.name);
  w.message(2, type.finish());
  return w.finish();
}

// Protobuf wire format: each field is a varint key (field_number << 3 | wire_type)
// followed by a varint (type 0), a length-delimited payload (type 2) or 4 bytes (type 5).
const VARINT = 0;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextEncoder();

class Writer {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  /** int64 / int32 / enum field (negative values take 10 bytes, as protobuf requires). */
  int64(field: number, value: number): void {
    this.#key(field, VARINT);
    this.#varint(value);
  }

  float32(field: number, value: number): void {
    this.#key(field, FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.#push(bytes);
  }

  string(field: number, value: string): void {
    this.bytes(field, utf8.encode(value));
  }

  bytes(field: number, value: Uint8Array): void {
    this.#key(field, LENGTH_DELIMITED);
    this.#varint(value.length);
    this.#push(value);
  }

  message(field: number, encoded: Uint8Array): void {
    this.bytes(field, encoded);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const part of this.#parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  #key(field: number, wireType: number): void {
    this.#varint(field * 8 + wireType);
  }

  #varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new Error(`protobuf varint: ${value} is not a safe integer`);
    let rest = BigInt.asUintN(64, BigInt(value));
    const bytes: number[] = [];
    while (rest >= 0x80n) {
      bytes.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    bytes.push(Number(rest));
    this.#push(Uint8Array.from(bytes));
  }

  #push(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#length += bytes.length;
  }
}

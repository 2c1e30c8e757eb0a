"""The models of bench/'s Python servers (python_omi_server.py, python_v1_server.py).

- echo: answers its input as it came.
- digits: examples/digits/model.onnx's prediction for the 64 pixels of a JSON
  array, {"classPredictions":[{"class":C,"score":S}]}, the same bytes as
  chassis-ts answers. The weights are read from the ONNX file (its W and b
  initializers) and the softmax regression runs in plain Python, one item at
  a time. The Chassis reference runs scikit-learn's predict_proba there;
  Debian's scikit-learn gives the same bytes but costs more per call under
  grpcio than the whole reference does (docs/performance.md, "Measured and
  not adopted: scikit-learn in the Python digits server").

predictor(model, onnx_path) gives a function from the input's bytes to
results.json's bytes; it raises ValueError on input it cannot read.
"""

import argparse
import json
import math
import operator
import os
import struct

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DIGITS_ONNX = os.path.join(ROOT, "examples", "digits", "model.onnx")
PIXELS, CLASSES, MAX_PIXEL = 64, 10, 16


def protobuf_fields(data):
    """(field number, value) of one protobuf message: ints for varints, bytes for length-delimited fields."""
    pos = 0

    def varint():
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire == 2:
            size = varint()
            yield field, data[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield field, data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"protobuf wire type {wire} is not read here")


def onnx_initializers(path):
    """The float32 initializers of an ONNX model: name -> (dims, values), from raw_data (ModelProto.graph=7,
    GraphProto.initializer=5, TensorProto dims=1, data_type=2, name=8, raw_data=9)."""
    with open(path, "rb") as file:
        model = file.read()
    tensors = {}
    for field, graph in protobuf_fields(model):
        if field != 7:
            continue
        for graph_field, tensor in protobuf_fields(graph):
            if graph_field != 5:
                continue
            dims, name, raw, data_type = [], None, b"", None
            for tensor_field, value in protobuf_fields(tensor):
                if tensor_field == 1:
                    dims.append(value)
                elif tensor_field == 2:
                    data_type = value
                elif tensor_field == 8:
                    name = value.decode()
                elif tensor_field == 9:
                    raw = value
            if data_type != 1:
                raise ValueError(f"{path}: initializer {name} is not float32 raw_data")
            tensors[name] = (dims, struct.unpack(f"<{len(raw) // 4}f", raw))
    return tensors


def digits_predictor(path):
    """The digits example's model (pixels / 16, MatMul W, Add b, Softmax) in plain Python, for one item."""
    try:
        tensors = onnx_initializers(path)
        (w_dims, w), (b_dims, bias) = tensors["W"], tensors["b"]
    except (ValueError, IndexError, KeyError, struct.error) as error:
        raise ValueError(f"{path} is not an ONNX model with float32 initializers W and b ({error!r})") from error
    if w_dims != [PIXELS, CLASSES] or b_dims != [CLASSES]:
        raise ValueError(f"{path}: W is {w_dims} and b is {b_dims}; expected [{PIXELS}, {CLASSES}] and [{CLASSES}]")
    columns = [[w[i * CLASSES + c] / MAX_PIXEL for i in range(PIXELS)] for c in range(CLASSES)]

    def predict(input_bytes):
        pixels = json.loads(input_bytes)
        if not isinstance(pixels, list) or len(pixels) != PIXELS:
            raise ValueError(f"input must be a JSON array of {PIXELS} numbers")
        logits = [bias[c] + sum(map(operator.mul, pixels, columns[c])) for c in range(CLASSES)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        best = exps.index(1.0)  # exp(0): the first largest logit
        score = round(1.0 / sum(exps), 5)
        return json.dumps({"classPredictions": [{"class": best, "score": score}]}, separators=(",", ":")).encode()

    return predict


def predictor(model, onnx_path=DIGITS_ONNX):
    if model == "echo":
        return lambda input_bytes: input_bytes
    if model == "digits":
        return digits_predictor(onnx_path)
    raise ValueError(f"model must be echo or digits, got {model}")


def server_arguments(description, argv):
    """The command line both Python servers take: --model, --onnx, --host, --port."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", choices=["echo", "digits"], default="echo")
    parser.add_argument("--onnx", default=DIGITS_ONNX, help="the digits model's ONNX file (default: examples/digits/model.onnx)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    return parser.parse_args(argv)

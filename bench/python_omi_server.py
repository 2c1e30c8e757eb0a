#!/usr/bin/env python3
"""A Python OMI server on Debian's grpcio, serving the echo or the digits model.

Usage: /usr/bin/python3 bench/python_omi_server.py [--model echo|digits] [--host 127.0.0.1] [--port 0]

A second implementation of the OMI wire to measure chassis-ts against in the
same run (`node bench/serve.mjs --protocol omi --versus HOST:PORT`), on the
stack Python model servers use (grpcio's asyncio server, protobuf from
protoc-generated code). It is not the Chassis reference server: that one runs
on grpclib, from PyPI, which this machine cannot reach.

One process, one asyncio thread, as the reference. Run answers each item
with status_code 200, "OK", "Inference executed", and "results.json":
- echo: the item's "input", as it came;
- digits: examples/digits/model.onnx's prediction for the 64 pixels in the
  item's "input" (a JSON array), {"classPredictions":[{"class":C,"score":S}]}.
  The weights are read from the ONNX file (its W and b initializers) and the
  softmax regression runs in plain Python, one item at a time: no numpy or
  onnxruntime for Python on this machine. The reference runs scikit-learn's
  predict_proba there instead.
Status answers 200 and Shutdown stops the server. Stubs are generated at
start from the repository's proto/model.proto with grpc_tools.protoc
(Debian python3-grpc-tools).

Prints "python OMI server (MODEL) listening on HOST:PORT" once it listens, and
stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import importlib.util
import json
import math
import operator
import os
import signal
import struct
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PROTO_ROOT = os.path.join(ROOT, "proto")
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


def load_messages(out_dir):
    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={out_dir}", "model.proto"])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) on {PROTO_ROOT}/model.proto")
    spec = importlib.util.spec_from_file_location("bench_model_pb2", os.path.join(out_dir, "model_pb2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handlers(pb, model_name, predict, stop):
    async def status(_request, _context):
        return pb.StatusResponse(
            status_code=200,
            status="OK",
            message="Model Initialized Successfully.",
            model_info=pb.ModelInfo(model_name=model_name, model_version="0.0.1"),
            features=pb.ModelFeatures(batch_size=1),
        )

    def answer(item):
        try:
            return pb.OutputItem(output={"results.json": predict(item.input["input"])}, success=True)
        except Exception as error:  # one item's failure is that item's answer, not the call's
            return pb.OutputItem(output={"error": str(error).encode()}, success=False)

    async def run(request, context):
        if not request.inputs:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "RunRequest has no inputs")
        outputs = [answer(item) for item in request.inputs]
        return pb.RunResponse(status_code=200, status="OK", message="Inference executed", outputs=outputs)

    async def shutdown(_request, _context):
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return pb.ShutdownResponse(status_code=200, status="OK", message="Model Shutdown Successfully.")

    def unary(fn, request_type, response_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString
        )

    return grpc.method_handlers_generic_handler(
        "ModzyModel",
        {
            "Status": unary(status, pb.StatusRequest, pb.StatusResponse),
            "Run": unary(run, pb.RunRequest, pb.RunResponse),
            "Shutdown": unary(shutdown, pb.ShutdownRequest, pb.ShutdownResponse),
        },
    )


async def serve(host, port, pb, model_name, predict):
    stop = asyncio.Event()
    # grpcio sets SO_REUSEPORT by default: a second server on a taken port would share it, unnoticed.
    options = [("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((handlers(pb, model_name, predict, stop),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises when the address cannot be bound (older versions return 0)
        bound = 0
    if bound == 0:
        raise RuntimeError(f"could not listen on {host}:{port} (taken, or not an address of this machine)")
    await server.start()
    print(f"python OMI server ({model_name}) listening on {host}:{bound}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def main(argv):
    parser = argparse.ArgumentParser(description="A Python OMI server on grpcio, serving the echo or the digits model.")
    parser.add_argument("--model", choices=["echo", "digits"], default="echo")
    parser.add_argument("--onnx", default=DIGITS_ONNX, help="the digits model's ONNX file (default: examples/digits/model.onnx)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="python-omi-") as out_dir:
            pb = load_messages(out_dir)
        predict = digits_predictor(args.onnx) if args.model == "digits" else (lambda input_bytes: input_bytes)
        asyncio.run(serve(args.host, args.port, pb, args.model, predict))
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        print(f"python_omi_server: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

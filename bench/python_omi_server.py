#!/usr/bin/env python3
"""A Python OMI server on Debian's grpcio, serving the echo or the digits model.

Usage: /usr/bin/python3 bench/python_omi_server.py [--model echo|digits] [--host 127.0.0.1] [--port 0]

A second implementation of the OMI wire to measure chassis-ts against in the
same run (`node bench/serve.mjs --protocol omi --versus HOST:PORT`), on the
stack Python model servers use (grpcio's asyncio server, protobuf from
protoc-generated code). It is not the Chassis reference server: that one runs
on grpclib, from PyPI, which this machine cannot reach.

One process, one asyncio thread, as the reference. Run answers each item
with status_code 200, "OK", "Inference executed", and "results.json": the
model's answer to the item's "input" (bench/python_models.py: echo, or
digits with examples/digits/model.onnx's weights in plain Python).
Status answers 200 and Shutdown stops the server. Stubs are generated at
start from the repository's proto/model.proto with grpc_tools.protoc
(Debian python3-grpc-tools).

Prints "python OMI server (MODEL) listening on HOST:PORT" once it listens, and
stops on SIGTERM or SIGINT.
"""

import asyncio
import importlib.util
import os
import signal
import sys
import tempfile

import grpc
from grpc_tools import protoc

from python_models import ROOT, predictor, server_arguments

PROTO_ROOT = os.path.join(ROOT, "proto")


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
    args = server_arguments("A Python OMI server on grpcio, serving the echo or the digits model.", argv)
    try:
        with tempfile.TemporaryDirectory(prefix="python-omi-") as out_dir:
            pb = load_messages(out_dir)
        predict = predictor(args.model, args.onnx)
        asyncio.run(serve(args.host, args.port, pb, args.model, predict))
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        print(f"python_omi_server: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

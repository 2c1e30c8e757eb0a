#!/usr/bin/env python3
"""A Python OMI server on Debian's grpcio, serving the echo model.

Usage: /usr/bin/python3 bench/python_omi_server.py [--host 127.0.0.1] [--port 0]

A second implementation of the OMI wire to measure chassis-ts against in the
same run (`node bench/serve.mjs --protocol omi --versus HOST:PORT`), on the
stack Python model servers use (grpcio's asyncio server, protobuf from
protoc-generated code). It is not the Chassis reference server: that one runs
on grpclib, from PyPI, which this machine cannot reach.

One process, one asyncio thread, as the reference. Run answers what the echo
model does: each item's "input" comes back as "results.json", with
status_code 200, "OK", "Inference executed". Status answers 200 and Shutdown
stops the server. Stubs are generated at start from the repository's
proto/model.proto with grpc_tools.protoc (Debian python3-grpc-tools).

Prints "python OMI server listening on HOST:PORT" once it listens, and
stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto"))


def load_messages(out_dir):
    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={out_dir}", "model.proto"])
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) on {PROTO_ROOT}/model.proto")
    spec = importlib.util.spec_from_file_location("bench_model_pb2", os.path.join(out_dir, "model_pb2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handlers(pb, stop):
    async def status(_request, _context):
        return pb.StatusResponse(
            status_code=200,
            status="OK",
            message="Model Initialized Successfully.",
            model_info=pb.ModelInfo(model_name="echo", model_version="0.0.1"),
            features=pb.ModelFeatures(batch_size=1),
        )

    async def run(request, context):
        if not request.inputs:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "RunRequest has no inputs")
        outputs = [pb.OutputItem(output={"results.json": item.input["input"]}, success=True) for item in request.inputs]
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


async def serve(host, port, pb):
    stop = asyncio.Event()
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
    server.add_generic_rpc_handlers((handlers(pb, stop),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not listen on {host}:{port}")
    await server.start()
    print(f"python OMI server listening on {host}:{bound}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def main(argv):
    parser = argparse.ArgumentParser(description="A Python OMI server on grpcio, serving the echo model.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="python-omi-") as out_dir:
        pb = load_messages(out_dir)
    asyncio.run(serve(args.host, args.port, pb))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""A Python KServe v1 server on Debian's FastAPI and uvicorn, serving echo or digits.

Usage: /usr/bin/python3 bench/python_v1_server.py [--model echo|digits] [--host 127.0.0.1] [--port 0]

A second implementation of KServe's v1 predict to measure chassis-ts against
in the same run (`node bench/serve.mjs --protocol v1 --versus-v1 PORT`), on
the stack KServe's Python ModelServer is built on: FastAPI on uvicorn, with
uvloop and httptools when they are installed (Debian python3-uvloop,
python3-httptools), as KServe runs it. It is not KServe's ModelServer,
which needs PyPI.

One process, one event loop. `POST /v1/models/NAME:predict` takes
{"instances": [...]}, each instance the base64 of a model input, and answers
{"predictions": [...]}, each the model's results.json as text, in order: what
chassis-ts answers (bench/python_models.py: echo, or digits with
examples/digits/model.onnx's weights in plain Python). `GET /v1/models/NAME`
answers {"name": NAME, "ready": true}. NAME is "echo" or "digits-classifier",
as chassis-ts names them; another name is 404, a body that is not
{"instances": [base64, ...]} is 400, with {"error": ...} as KServe words it.

Prints "python v1 server (MODEL) listening on HOST:PORT" once it listens, and
stops on SIGTERM or SIGINT.
"""

import asyncio
import base64
import binascii
import json
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request, Response

try:
    import uvloop
except ImportError:  # asyncio's own loop then
    uvloop = None

from python_models import predictor, server_arguments

MODEL_NAMES = {"echo": "echo", "digits": "digits-classifier"}


def json_response(status, value):
    return Response(content=json.dumps(value, separators=(",", ":")), status_code=status, media_type="application/json")


def make_app(model_name, predict):
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    def unknown(name):
        return json_response(404, {"error": f"Model with name {name} does not exist."})

    @app.get("/v1/models/{name}")
    async def ready(name: str):
        return json_response(200, {"name": name, "ready": True}) if name == model_name else unknown(name)

    # One path segment "NAME:predict", as KServe's route reads it.
    @app.post("/v1/models/{name}:predict")
    async def predict_route(name: str, request: Request):
        if name != model_name:
            return unknown(name)
        try:
            body = json.loads(await request.body())
            instances = body["instances"]
            if not isinstance(instances, list):
                raise TypeError("instances")
            inputs = [base64.b64decode(instance, validate=True) for instance in instances]
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            return json_response(400, {"error": f'Expected {{"instances": [base64, ...]}} in the request body: {error}'})
        try:
            predictions = [predict(item).decode("utf-8") for item in inputs]
        except ValueError as error:
            return json_response(500, {"error": str(error)})
        return json_response(200, {"predictions": predictions})

    return app


async def serve(host, port, model, predict):
    # uvicorn picks uvloop and httptools when they are there (its "auto"), as KServe's ModelServer does.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise OSError(f"could not listen on {host}:{port} ({error.strerror})") from error
    # Listening before the line is printed: a client that reads it and connects at once waits in the backlog
    # until uvicorn accepts, instead of being refused.
    sock.listen(2048)
    config = uvicorn.Config(make_app(MODEL_NAMES[model], predict), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    bound = sock.getsockname()[1]
    print(f"python v1 server ({model}) listening on {host}:{bound}", flush=True)
    await server.serve(sockets=[sock])


def main(argv):
    args = server_arguments("A Python KServe v1 server on FastAPI and uvicorn, serving echo or digits.", argv)
    try:
        predict = predictor(args.model, args.onnx)
        if uvloop is not None:
            uvloop.install()
        asyncio.run(serve(args.host, args.port, args.model, predict))
    except (OSError, ValueError) as error:
        print(f"python_v1_server: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
